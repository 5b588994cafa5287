"""Checkpoints: a network rebuilt from its config and state dict gives bit-identical outputs, in a fresh process too."""

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import ponita
from ponita import Ponita
from ponita.geometry import random_rotation
from ponita.testing import assert_reload_identical

F64 = torch.float64

CONFIGS = {
    "r3s2-fibonacci": dict(space="R3xS2", grid="fibonacci", num_ori=10),
    "r3s2-repulsion": dict(space="R3xS2", grid="repulsion", num_ori=10),
    "se3-repulsion": dict(space="SE3", num_ori=10),  # not a group size: a grid optimised from a seed
}

# Loads each checkpoint and its input in a new interpreter and writes the outputs and a rebuilt grid.
_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import torch
    from torch_geometric.data import Data
    from ponita import Ponita

    for directory in sys.argv[1:]:
        checkpoint = torch.load(f"{directory}/checkpoint.pt", weights_only=True)
        inputs = torch.load(f"{directory}/input.pt", weights_only=True)
        dtype = checkpoint["state_dict"]["embedding.weight"].dtype
        model = Ponita(**checkpoint["config"]).to(dtype)
        model.load_state_dict(checkpoint["state_dict"], strict=True)
        rebuilt_grid = Ponita(**checkpoint["config"]).grid
        with torch.no_grad():
            scalar, vector = model(Data(**inputs))
        torch.save({"scalar": scalar, "vector": vector, "rebuilt_grid": rebuilt_grid}, f"{directory}/output.pt")
    """
)


def _model_and_data(options: dict, dtype: torch.dtype = F64) -> tuple[Ponita, Data]:
    model = Ponita(input_dim=2, hidden_dim=8, num_layers=2, output_dim_vec=1, input_dim_vec=1, radius=2.5, **options)
    model = model.to(dtype)
    data = Data(
        pos=torch.randn(6, 3, dtype=dtype), x=torch.randn(6, 2, dtype=dtype), vec=torch.randn(6, 1, 3, dtype=dtype)
    )
    model.calibrate(data)  # changes the weights away from a fresh initialisation
    return model, data


@pytest.fixture(scope="module")
def fresh_process_reloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Ponita, Data, dict]]:
    """For every config: the network, its input, and what one fresh interpreter computed from the checkpoint."""
    torch.manual_seed(0)
    cases, directories = {}, []
    for name, options in CONFIGS.items():
        model, data = _model_and_data(options)
        directory = tmp_path_factory.mktemp(name)
        checkpoint = {"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}
        torch.save(checkpoint, directory / "checkpoint.pt")
        torch.save({"pos": data.pos, "x": data.x, "vec": data.vec}, directory / "input.pt")
        cases[name], directories = (model, data, directory), [*directories, str(directory)]
    command = [sys.executable, "-c", _FRESH_PROCESS, *directories]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {
        name: (model, data, torch.load(directory / "output.pt", weights_only=True))
        for name, (model, data, directory) in cases.items()
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_ponita_reloads_bit_identical_in_a_fresh_process(name: str, fresh_process_reloads: dict) -> None:
    model, data, output = fresh_process_reloads[name]
    with torch.no_grad():
        scalar, vector = model(data)
    assert torch.equal(output["scalar"], scalar)
    assert torch.equal(output["vector"], vector)
    # the grid is deterministic: a network built from the config alone has the same one
    assert torch.equal(output["rebuilt_grid"], model.grid)


@pytest.mark.parametrize("space", ponita.SPACES)
def test_ponita_reloads_bit_identical_in_process(space: str, tmp_path: Path) -> None:
    dim = int(space[2]) if space.startswith("SE") else int(space[1])
    options = dict(space=space, input_dim=2, hidden_dim=8, num_layers=2, task_level="node")
    if space in ("R2xS1", "R3xS2", "SE2", "SE3"):
        options["num_ori"] = 6
    model = Ponita(**options)
    data = Data(pos=torch.randn(5, dim), x=torch.randn(5, 2))
    if space.endswith("-points"):
        if space.startswith("SE"):
            data.rot = torch.stack([random_rotation(dim, dtype=torch.float32) for _ in range(5)])  # [N, n, n]
        else:
            data.ori = torch.nn.functional.normalize(torch.randn(5, dim), dim=-1)  # [N, n]
    assert_reload_identical(model, data, tmp_path)


def test_reload_check_detects_a_different_network(tmp_path: Path) -> None:
    model, data = _model_and_data(CONFIGS["r3s2-fibonacci"])

    class Shifted(Ponita):  # state outside the config and the state dict: the rebuilt network lacks it
        shift = 0.0

        def forward(self, data):
            scalar, vector = super().forward(data)
            return scalar + self.shift, vector

    shifted = Shifted(**dataclasses.asdict(model.config)).to(F64)
    shifted.load_state_dict(model.state_dict())
    shifted.shift = 1e-12
    with pytest.raises(AssertionError, match="Reloaded output 0 differs"):
        assert_reload_identical(shifted, data, tmp_path)


@pytest.mark.parametrize("name", CONFIGS)
def test_ponita_grid_is_in_the_state_dict_and_used_from_it(name: str) -> None:
    model, data = _model_and_data(CONFIGS[name])
    state = model.state_dict()
    assert torch.equal(state["space.grid"], model.grid)
    assert state["space.grid"].dtype == F64
    assert bool(state["calibrated"])
    # a network loading a different grid computes with the loaded one
    other = Ponita(**dataclasses.asdict(model.config)).to(F64)
    state["space.grid"] = -state["space.grid"]
    other.load_state_dict(state)
    assert torch.equal(other.grid, -model.grid)
    with torch.no_grad():
        assert not torch.allclose(other(data)[1], model(data)[1])


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_of_an_earlier_version_with_a_top_level_grid_loads(name: str) -> None:
    """Before the space owned its grid, state dicts held it as "grid"; they load unchanged."""
    model, data = _model_and_data(CONFIGS[name])
    legacy = {("grid" if key == "space.grid" else key): value for key, value in model.state_dict().items()}
    other = Ponita(**dataclasses.asdict(model.config)).to(F64)
    other.load_state_dict(legacy)  # strict: a key left unmapped would raise
    with torch.no_grad():
        assert torch.equal(other(data)[0], model(data)[0])


def test_point_cloud_network_has_no_grid_buffer() -> None:
    state = Ponita(input_dim=1, hidden_dim=8, num_layers=1, space="R3").state_dict()
    assert not any(key.endswith("grid") for key in state)
