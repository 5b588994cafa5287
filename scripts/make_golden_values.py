r"""Writes ``tests/data/golden_values.pt``: today's outputs of small fixed networks, for regression tests.

The file pins what :class:`ponita.Ponita` (every space in :data:`ponita.SPACES`) and
:class:`ponita.models.PonitaPotential` compute *now*, so that a rewrite of the core can be checked
against it number for number (``tests/test_golden_values.py``, tolerance ``1e-12`` in float64).

**Regenerate this file only on purpose.** Its whole value is that it does *not* follow the code: if
``tests/test_golden_values.py`` fails, the outputs changed, and that is a bug unless the change was
meant (a deliberate change of the function a network computes, e.g. a new normalisation). Only
then regenerate, from the repository root::

    .venv/bin/python scripts/make_golden_values.py

and commit the new file together with the change that caused it, saying in the commit message and in
``CHANGELOG.md`` which outputs changed and why. Never regenerate to make a failing test pass without
understanding the failure. A refactoring that renames parameters should convert the stored state
dicts (keeping the stored outputs), not regenerate them.

Contents (``torch.load(path, weights_only=True)``)::

    {
        "format": 1,
        "torch_version": str,                     # the torch that wrote the file (information only)
        "ponita": {                               # one entry per space in ponita.SPACES
            space: {
                "config": dict,                   # dataclasses.asdict(model.config): Ponita(**config)
                "state_dict": dict[str, Tensor],  # parameters float32 (exact), buffers as in the model
                "inputs": dict[str, Tensor],      # pos, x, batch; vec, ori, rot, kernel_condition where used
                "scalar": Tensor,                 # [9, 1]
                "vector": Tensor,                 # [9, V, n]
            },
        },
        "potential": {
            "config": dict,                       # PonitaPotential.from_config(PotentialConfig(**config))
            "state_dict": dict[str, Tensor],      # parameters float32 (exact), buffers as in the model
            "inputs": dict[str, Tensor],          # z, pos, batch of the first 3 bundled ethanol test frames
            "energy": Tensor,                     # [3]
            "forces": Tensor,                     # [27, 3]
        },
    }

Every network is float64 and run with the ``"reference"`` spatial-convolution backend. Its weights
are the seeded initialisation plus seeded noise of standard deviation 0.1 on *every* parameter, so
that parameters initialised to zero or one (biases, layer scales) also shape the outputs, rounded to
float32 numbers: they are stored as float32 without loss, which halves the file, and the network
still computes in float64. The inputs are two graphs of 4 and 5 nodes, fully connected with
self-loops except where ``radius`` is set. All tensors of one dtype are views of one storage (one
zip record each), which keeps the file under 200 KB.
"""

import dataclasses
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

import ponita
from ponita import Ponita
from ponita.datasets import load_rmd17
from ponita.geometry import random_rotation
from ponita.models import PonitaPotential
from ponita.ops import use_backend

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden_values.pt"
F64 = torch.float64
GRAPH_SIZES = (4, 5)
BUNDLES = ("R2xS1", "R3xS2", "SE2", "SE3")
# Options beyond the common ones, so that more of the code is pinned: a kernel condition, a radius
# (cutoff window), a non-separable bundle.
EXTRA_OPTIONS = {
    "R3xS2": dict(kernel_condition_dim=1),
    "R3": dict(radius=2.5),
    "R2xS1": dict(separable=False),
    "SE3-points": dict(layer_scale=0.5),
}
POTENTIAL_ARGUMENTS = dict(
    atomic_numbers=[1, 6, 8],
    # Small reference energies and a scale ≠ 1 keep the energies of order one, so 1e-12 is a
    # meaningful absolute tolerance, and a wrongly applied scale shows.
    reference_energies={1: -0.25, 6: -1.5, 8: -2.0},
    scale=1.5,
    network=dict(hidden_dim=8, num_layers=2, num_ori=4, space="R3xS2"),
)


def _dim(space: str) -> int:
    return int(space[2]) if space.startswith("SE") else int(space[1])


def _perturb_parameters(model: torch.nn.Module, seed: int) -> None:
    """Adds seeded noise (std 0.1) to every parameter, then rounds it to a float32 number.

    The noise keeps parameters initialised to zero or one (biases, layer scales) from being trivial.
    Float32-representable weights are stored as float32 at no loss (half the file size) and are
    exact again after ``load_state_dict`` into the float64 network, which computes in float64.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
            parameter.copy_(parameter.float())


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with parameters as float32 (exact, see :func:`_perturb_parameters`), buffers as they are."""
    parameters = {name for name, _ in model.named_parameters()}
    state = {}
    for key, value in model.state_dict().items():
        if key in parameters:
            assert torch.equal(value.float().to(value.dtype), value), key
            value = value.float()
        state[key] = value.clone()
    return state


def _pack(values: object) -> object:
    """The same nested structure, with all tensors of one dtype viewing one flat tensor.

    ``torch.save`` writes one record per storage; a few hundred small tensors would cost about 250
    bytes of zip overhead each. Views of a few shared storages keep the file small.
    """
    tensors: list[torch.Tensor] = []

    def collect(node: object) -> None:
        if isinstance(node, torch.Tensor):
            tensors.append(node)
        elif isinstance(node, dict):
            for child in node.values():
                collect(child)

    collect(values)
    dtypes = {tensor.dtype for tensor in tensors}
    flat = {dtype: torch.cat([t.reshape(-1) for t in tensors if t.dtype == dtype]) for dtype in dtypes}
    offsets = dict.fromkeys(flat, 0)

    def replace(node: object) -> object:
        if isinstance(node, torch.Tensor):
            start = offsets[node.dtype]
            offsets[node.dtype] += node.numel()
            return flat[node.dtype][start : start + node.numel()].view(node.shape)
        if isinstance(node, dict):
            return {key: replace(child) for key, child in node.items()}
        return node

    return replace(values)


def ponita_config(space: str) -> dict:
    """The Ponita arguments of the golden network for ``space``."""
    vectors = int(space not in ("R2", "R3"))
    options = dict(
        input_dim=2, hidden_dim=8, num_layers=2, basis_dim=8, output_dim=1, output_dim_vec=vectors,
        input_dim_vec=vectors, task_level="node", space=space,
    )  # fmt: skip
    if space in BUNDLES:
        options["num_ori"] = 6
    options.update(EXTRA_OPTIONS.get(space, {}))
    return options


def ponita_inputs(space: str, config: ponita.PonitaConfig, seed: int) -> dict[str, torch.Tensor]:
    """Two graphs of 4 and 5 nodes with every input field ``space`` reads."""
    generator = torch.Generator().manual_seed(seed)
    dim, num_nodes = _dim(space), sum(GRAPH_SIZES)
    inputs = dict(
        pos=torch.randn(num_nodes, dim, generator=generator, dtype=F64),
        x=torch.randn(num_nodes, config.input_dim, generator=generator, dtype=F64),
        batch=torch.repeat_interleave(torch.arange(len(GRAPH_SIZES)), torch.tensor(GRAPH_SIZES)),
    )
    if config.input_dim_vec:
        inputs["vec"] = torch.randn(num_nodes, config.input_dim_vec, dim, generator=generator, dtype=F64)
    if space in ("R2xS1-points", "R3xS2-points"):
        ori = torch.randn(num_nodes, dim, generator=generator, dtype=F64)
        inputs["ori"] = ori / ori.norm(dim=-1, keepdim=True)
    if space in ("SE2-points", "SE3-points"):
        inputs["rot"] = torch.stack([random_rotation(dim, generator) for _ in range(num_nodes)])
    if config.kernel_condition_dim:
        inputs["kernel_condition"] = torch.rand(num_nodes, config.kernel_condition_dim, generator=generator, dtype=F64)
    return inputs


def golden_ponita(space: str, seed: int) -> dict:
    torch.manual_seed(seed)
    model = Ponita(**ponita_config(space)).to(F64)
    _perturb_parameters(model, seed)
    inputs = ponita_inputs(space, model.config, seed)
    with use_backend("reference"), torch.no_grad():
        scalar, vector = model(Data(**inputs))
    return dict(
        config=dataclasses.asdict(model.config),
        state_dict=_state_dict(model),
        inputs=inputs,
        scalar=scalar,
        vector=vector,
    )


def golden_potential(seed: int) -> dict:
    torch.manual_seed(seed)
    arguments = POTENTIAL_ARGUMENTS
    model = PonitaPotential(
        arguments["atomic_numbers"], arguments["reference_energies"], arguments["scale"], **arguments["network"]
    ).to(F64)
    model.eval()
    _perturb_parameters(model, seed)
    batch = Batch.from_data_list(load_rmd17("ethanol", "test")[:3])
    inputs = dict(z=batch.z, pos=batch.pos, batch=batch.batch)
    with use_backend("reference"):
        energy, forces = model(Data(**inputs))
    return dict(
        config=dict(arguments),
        state_dict=_state_dict(model),
        inputs=inputs,
        energy=energy.detach(),
        forces=forces.detach(),
    )


def make_golden_values() -> dict:
    return dict(
        format=1,
        torch_version=str(torch.__version__),
        ponita={space: golden_ponita(space, seed=index) for index, space in enumerate(ponita.SPACES)},
        potential=golden_potential(seed=100),
    )


def main() -> None:
    values = make_golden_values()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_pack(values), OUTPUT)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
