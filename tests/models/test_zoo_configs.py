"""One config dataclass per zoo model: statistics apart from options, every option checked when it is built,
older checkpoints' field names read."""

import dataclasses

import pytest
import torch

from ponita import PonitaConfig
from ponita.models import (
    EDM,
    EDMConfig,
    EGNNConfig,
    NetworkModelConfig,
    build_config,
    check_options,
    model_classes,
    option_defaults,
    option_names,
    read_checkpoint,
    save_model,
    statistic_names,
)

EXPECTED_STATISTICS = {
    "PonitaPotential": ["atomic_numbers", "reference_energies", "scale"],
    "PonitaRegressor": ["mean", "std", "input_dim"],
    "PonitaNBody": [],
    "EGNNNBody": [],
    "EDM": ["atomic_numbers", "size_counts"],
}
NETWORK_OPTIONS = [f.name for f in dataclasses.fields(PonitaConfig)]


@pytest.mark.parametrize("name", sorted(EXPECTED_STATISTICS))
def test_every_zoo_config_splits_statistics_from_options(name) -> None:
    config_class = model_classes()[name].config_class
    assert statistic_names(config_class) == EXPECTED_STATISTICS[name]
    names = option_names(config_class)
    assert not set(names) & set(EXPECTED_STATISTICS[name]) and "network" not in names
    if issubclass(config_class, NetworkModelConfig):  # the network's options, less those the model derives
        assert {"hidden_dim", "num_layers", "space", "radius"} <= set(names)
        assert not {"input_dim", "output_dim", "task_level", "kernel_condition_dim"} & set(names)
    else:
        assert set(names) <= {f.name for f in dataclasses.fields(config_class)}


@pytest.mark.parametrize("name", sorted(EXPECTED_STATISTICS))
def test_a_config_built_from_flat_options_rebuilds_the_model(name) -> None:
    cls = model_classes()[name]
    examples = {f.name: f.metadata["ponita_statistic"] for f in dataclasses.fields(cls.config_class)
                if f.name in EXPECTED_STATISTICS[name]}
    options = {**option_defaults(cls.config_class), "hidden_dim": 8, "num_layers": 1}
    if "num_ori" in options:
        options["num_ori"] = 4
    config = build_config(cls.config_class, options, **examples)
    model = cls.from_config(config)
    assert model.config == config and cls.config_class(**dataclasses.asdict(config)) == config
    if issubclass(cls.config_class, NetworkModelConfig):
        assert model.network.config == config.network_config() and model.network.config.hidden_dim == 8


def test_bad_options_are_rejected_when_the_config_is_built() -> None:
    with pytest.raises(ValueError, match=r"EDMConfig has no option\(s\) \['stepz'\]; its options: steps, noise_precision"):
        check_options(EDMConfig, {"stepz": 10})
    with pytest.raises(TypeError, match=r"sets the network option\(s\) \['input_dim'\] itself"):
        check_options(EDMConfig, {"input_dim": 3})
    with pytest.raises(ValueError, match="Unknown objective 'ddpm'"):
        check_options(EDMConfig, {"objective": "ddpm"})
    with pytest.raises(ValueError, match="num_ori must be ≥ 1"):  # the network's own checks, through the config
        check_options(EDMConfig, {"num_ori": 0})
    with pytest.raises(ValueError, match=r"EGNNConfig has no option\(s\) \['num_ori'\]; its options: hidden_dim, num_layers"):
        check_options(EGNNConfig, {"num_ori": 8})


def test_a_generator_file_of_the_earlier_field_names_loads(tmp_path) -> None:
    model = EDM(EDMConfig([1, 6], {3: 2}, steps=20, noise_precision=1e-4, network={"hidden_dim": 8, "num_layers": 1,
                                                                                    "num_ori": 4}))
    path = save_model(model, tmp_path / "generator.pt", task="qm9-edm")
    raw = torch.load(path, weights_only=True)
    raw["config"]["precision"] = raw["config"].pop("noise_precision")  # as written before 2026-12
    torch.save(raw, path)
    loaded = read_checkpoint(path).build()
    assert loaded.config == model.config
    assert torch.equal(loaded.schedule.gamma_table, model.schedule.gamma_table)


def test_a_lifted_regressor_file_of_the_earlier_layout_loads_with_the_same_outputs(tmp_path) -> None:
    from torch_geometric.data import Data

    from ponita.models import PonitaRegressor, RegressorConfig

    network = {"space": "R3xS2-lifted", "connect_lifted": "all", "hidden_dim": 8, "num_layers": 1}
    model = PonitaRegressor(RegressorConfig(1.0, 2.0, 3, network=network)).double()
    path = save_model(model, tmp_path / "model.pt", task="qm9")
    raw = torch.load(path, weights_only=True)  # before 2026-12 the regressor lifted the bonds itself:
    raw["config"] |= {"lift_bonds": True, "network": {"space": "R3xS2-points", "hidden_dim": 8, "num_layers": 1}}
    torch.save(raw, path)
    loaded = read_checkpoint(path).build()
    assert loaded.config == model.config
    molecule = Data(pos=torch.randn(3, 3, dtype=torch.float64), x=torch.randn(3, 3, dtype=torch.float64),
                    edge_index=torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]]))
    with torch.no_grad():
        assert torch.equal(loaded(molecule), model(molecule))
