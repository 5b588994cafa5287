"""Whole networks compute the same numbers with the ``reference`` and the ``cpu`` spatial-conv backends.

``tests/ops/test_spatial_conv.py`` compares the backends op by op; here the comparison is end to end,
through everything around the op: a :class:`ponita.Ponita` on the R³×S² fibre bundle, on the lifted
R³×S² point cloud and on the SE(3) bundle, and a :class:`ponita.models.PonitaPotential`. For each we
compare the forward outputs, the forces (−∂E/∂pos) and the parameter gradients of a force-training
loss (a double backward), in float64 to ``1e-10``, on graphs with the awkward cases: a node with no
incoming edge, self-loops given in ``data.edge_index``, and a radius graph. A spy checks that each
run really went through the backend it names. Under ``torch.autocast("cpu", dtype=torch.bfloat16)``
the ``cpu`` backend is compared with the float64 reference within a bound derived from bf16's
precision (see :data:`BF16_UNIT_ROUNDOFF`).
"""

import copy

import pytest
import torch
from torch_geometric.data import Data

import ponita.ops._spatial_conv as spatial_conv_module
import ponita.ops._spatial_conv_cpu as cpu_module
from ponita import Ponita
from ponita.graph import radius_graph
from ponita.models import PonitaPotential
from ponita.ops import available_backends, use_backend

F64 = torch.float64
ATOL = 1e-10
NETWORKS = {
    "R3xS2": dict(space="R3xS2", num_ori=6),
    "R3xS2-lifted": dict(space="R3xS2-lifted"),
    "SE3": dict(space="SE3", num_ori=6),
}
# The potential reads only z, pos and batch and builds its own graph (it never reads data.edge_index),
# so it runs on the isolated-node and radius cases; the radius case has self-loops (self_loops=True).
GRAPHS = ("isolated_node", "self_loops_in_edge_index", "radius_graph")
POTENTIAL_GRAPHS = ("isolated_node", "radius_graph")
NAMES = ("scalar", "vector", "forces")


def test_cpu_backend_is_registered_on_every_cpu_install() -> None:
    """``ponita.ops`` registers ``cpu`` unconditionally (only ``triton`` depends on an install)."""
    assert {"reference", "cpu"} <= set(available_backends())


@pytest.fixture
def backend_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the backends that :func:`ponita.ops.spatial_conv` dispatched to, in order."""
    calls: list[str] = []
    for name in ("reference", "cpu"):
        original = spatial_conv_module._BACKENDS[name]

        def spy(*args: torch.Tensor, name: str = name, original=original) -> torch.Tensor:
            calls.append(name)
            return original(*args)

        monkeypatch.setitem(spatial_conv_module._BACKENDS, name, spy)
    return calls


@pytest.fixture(params=["one_chunk", "many_chunks"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``cpu`` backend as shipped (these graphs fit in one chunk) and with chunks of a few edges."""
    if request.param == "many_chunks":
        monkeypatch.setattr(cpu_module, "_CHUNK_ELEMENTS", 64)
    return request.param


def _graph(name: str) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Positions (plus edges where given) and the network options of one graph case."""
    generator = torch.Generator().manual_seed(GRAPHS.index(name))
    if name == "isolated_node":
        # Four points within 1 of each other and one 10 away: with radius 1 and no self-loops,
        # node 4 has no incoming edge at all.
        pos = torch.cat([0.5 * torch.rand(4, 3, generator=generator, dtype=F64), torch.full((1, 3), 10.0, dtype=F64)])
        return dict(pos=pos), dict(radius=1.0, self_loops=False)
    if name == "self_loops_in_edge_index":
        # Self-loops on 0, 2 and 5; node 5 receives only its self-loop, node 4 only sends.
        pos = torch.randn(6, 3, generator=generator, dtype=F64)
        edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 0, 2, 5, 3], [1, 0, 2, 3, 1, 2, 0, 2, 5, 0]])
        return dict(pos=pos, edge_index=edge_index), dict()
    if name == "radius_graph":
        pos = 1.2 * torch.randn(8, 3, generator=generator, dtype=F64)
        return dict(pos=pos), dict(radius=1.5, self_loops=True)
    raise ValueError(name)


def test_graph_cases_contain_the_awkward_cases() -> None:
    """Preconditions of the comparisons below: the cases are what their names say."""
    isolated, options = _graph("isolated_node")
    edges = radius_graph(isolated["pos"], options["radius"], torch.zeros(5, dtype=torch.long), self_loops=False)
    assert not (edges[1] == 4).any() and (edges[1] == 0).any()
    loops = _graph("self_loops_in_edge_index")[0]["edge_index"]
    assert int((loops[0] == loops[1]).sum()) == 3
    pos, options = _graph("radius_graph")
    edges = radius_graph(pos["pos"], options["radius"], torch.zeros(8, dtype=torch.long), self_loops=True)
    assert 8 < edges.shape[1] < 64  # self-loops plus some, not all, pairs


def _ponita(network: str, graph: str) -> tuple[Ponita, Data]:
    fields, options = _graph(graph)
    torch.manual_seed(1)
    model = Ponita(
        input_dim=2, hidden_dim=8, num_layers=2, basis_dim=8, output_dim=1, output_dim_vec=1, input_dim_vec=1,
        task_level="node", **NETWORKS[network], **options,
    ).to(F64)  # fmt: skip
    _randomise(model)
    num_nodes = fields["pos"].shape[0]
    data = Data(**fields, x=torch.randn(num_nodes, 2, dtype=F64), vec=torch.randn(num_nodes, 1, 3, dtype=F64))
    return model, data


def _potential(graph: str) -> tuple[PonitaPotential, Data]:
    fields, options = _graph(graph)
    torch.manual_seed(2)
    reference_energies = {1: -0.25, 6: -1.5, 8: -2.0}
    model = PonitaPotential(
        [1, 6, 8], reference_energies, 1.5, hidden_dim=8, num_layers=2, num_ori=4, space="R3xS2", **options
    ).to(F64)
    _randomise(model)
    z = torch.tensor([6, 6, 8, 1, 1, 1, 1, 8][: fields["pos"].shape[0]])
    return model.train(), Data(z=z, pos=fields["pos"])


def _randomise(model: torch.nn.Module) -> None:
    """Seeded noise on every parameter, so that zero-initialised biases take part too."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))


def _ponita_results(model: Ponita, data: Data) -> dict[str, torch.Tensor]:
    """Outputs, forces of E = Σ scalar, and parameter gradients of a force-and-vector loss."""
    pos = data.pos.detach().clone().requires_grad_(True)
    scalar, vector = model(Data(**{**data.to_dict(), "pos": pos}))
    (gradient,) = torch.autograd.grad(scalar.sum(), pos, create_graph=True)
    forces = -gradient  # [N, 3]
    generator = torch.Generator().manual_seed(3)
    target_forces = torch.randn(forces.shape, generator=generator, dtype=F64)
    target_vector = torch.randn(vector.shape, generator=generator, dtype=F64)
    loss = (forces.double() - target_forces).pow(2).mean() + (vector.double() - target_vector).pow(2).mean()
    return _with_parameter_gradients(model, loss, dict(scalar=scalar, vector=vector, forces=forces))


def _potential_results(model: PonitaPotential, data: Data) -> dict[str, torch.Tensor]:
    """Energies, forces, and parameter gradients of an energy-and-force loss."""
    energy, forces = model(data)  # training mode: forces keep their graph
    generator = torch.Generator().manual_seed(4)
    target_forces = torch.randn(forces.shape, generator=generator, dtype=F64)
    loss = (forces.double() - target_forces).pow(2).mean() + (energy + 7.0).pow(2).mean()
    return _with_parameter_gradients(model, loss, dict(scalar=energy, forces=forces))


def _with_parameter_gradients(model: torch.nn.Module, loss: torch.Tensor, results: dict) -> dict[str, torch.Tensor]:
    names, parameters = zip(*model.named_parameters())
    gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
    for name, gradient in zip(names, gradients):
        if gradient is not None:
            results[f"grad {name}"] = gradient
    return {key: value.detach() for key, value in results.items()}


def _run(results_fn, model: torch.nn.Module, data: Data, backend: str, calls: list[str]) -> dict[str, torch.Tensor]:
    calls.clear()
    with use_backend(backend):
        results = results_fn(model, data)
    assert calls and set(calls) == {backend}, f"expected only {backend!r} calls, got {sorted(set(calls))}"
    return results


def _assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    assert sum(key.startswith("grad ") for key in expected) > 5  # the loss reaches the network's weights
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0.0, atol=ATOL, msg=lambda m, k=key: f"{k}: {m}")


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("network", NETWORKS)
def test_ponita_outputs_forces_and_force_loss_gradients_agree_between_backends(
    network: str, graph: str, chunking: str, backend_calls: list[str]
) -> None:
    model, data = _ponita(network, graph)
    expected = _run(_ponita_results, model, data, "reference", backend_calls)
    actual = _run(_ponita_results, model, data, "cpu", backend_calls)
    _assert_same(actual, expected)


@pytest.mark.parametrize("graph", POTENTIAL_GRAPHS)
def test_potential_energy_forces_and_force_loss_gradients_agree_between_backends(
    graph: str, chunking: str, backend_calls: list[str]
) -> None:
    model, data = _potential(graph)
    expected = _run(_potential_results, model, data, "reference", backend_calls)
    actual = _run(_potential_results, model, data, "cpu", backend_calls)
    _assert_same(actual, expected)


def test_backend_comparison_detects_a_cpu_backend_off_by_one_part_in_1e7(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a relative error of 1e-7 in the op (float32 roundoff) fails the comparison above.

    The network damps an error of the op (1e-7 there moves the forces by about 1e-9), so ``ATOL``
    resolves relative errors of the op down to about 1e-8; the backends actually differ by < 1e-14.
    """
    model, data = _ponita("R3xS2", "radius_graph")
    with use_backend("reference"):
        expected = _ponita_results(model, data)
    original = spatial_conv_module._BACKENDS["cpu"]
    monkeypatch.setitem(spatial_conv_module._BACKENDS, "cpu", lambda *args: original(*args) * (1.0 + 1e-7))
    with use_backend("cpu"):
        actual = _ponita_results(model, data)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        _assert_same(actual, expected)


def test_isolated_node_has_exactly_zero_force_in_both_backends(backend_calls: list[str]) -> None:
    """The node without incoming edges gets zero forces and identical outputs from both backends."""
    model, data = _ponita("R3xS2", "isolated_node")
    for backend in ("reference", "cpu"):
        results = _run(_ponita_results, model, data, backend, backend_calls)
        assert torch.equal(results["forces"][4], torch.zeros(3, dtype=F64))
        assert torch.isfinite(results["scalar"]).all()


# --- bf16 -------------------------------------------------------------------------------------------

BF16_UNIT_ROUNDOFF = 2.0**-8
"""Unit roundoff u of bfloat16 (8 significant bits, 7 stored): one rounding errs by at most u relatively.

A forward pass rounds to bf16 at each autocast matrix product on its longest path: the kernel
basis MLP (2), the embedding (1), per layer the spatial conv, the fibre conv and the ConvNeXt MLP
(4 per layer, 2 layers) and the readout (1), so ``FORWARD_DEPTH = 12``. Relative errors of chained
products add to first order, so the forward outputs are within ``FORWARD_DEPTH · u ≈ 4.7e-2`` of the
exact ones, for a well-conditioned function. The forces are a backward pass through the same chain,
``2 · FORWARD_DEPTH · u ≈ 9.4e-2``; the parameter gradients of the force loss a double backward,
``3 · FORWARD_DEPTH · u ≈ 0.14``. Errors are norm-wise, and the gradients are taken as one vector
over all parameters (the direction of a training step): single small tensors such as a bias
gradient are sums over nodes that largely cancel, and their relative errors (up to 0.2 measured)
say nothing about the backend. Measured on the radius graph: at most 1.2e-2 for every quantity.
"""
FORWARD_DEPTH = 12
BF16_BOUNDS = {"forward": FORWARD_DEPTH, "forces": 2 * FORWARD_DEPTH, "gradients": 3 * FORWARD_DEPTH}


def _relative_errors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, float]:
    """Norm-wise relative errors of the outputs, the forces and the whole parameter gradient."""

    def error(a: torch.Tensor, e: torch.Tensor) -> float:
        return float((a.double() - e).norm() / e.norm())

    errors = {key: error(actual[key], expected[key]) for key in expected if not key.startswith("grad ")}
    gradients = [key for key in expected if key.startswith("grad ")]
    errors["gradients"] = error(
        torch.cat([actual[key].flatten() for key in gradients]),
        torch.cat([expected[key].flatten() for key in gradients]),
    )
    return errors


def _bf16_bound(key: str) -> float:
    kind = key if key in ("forces", "gradients") else "forward"
    return BF16_BOUNDS[kind] * BF16_UNIT_ROUNDOFF


@pytest.mark.parametrize("model_name", [*NETWORKS, "potential"], ids=lambda name: f"{name}-radius_graph")
def test_cpu_backend_under_bf16_autocast_is_within_the_bf16_error_bound_of_float64_reference(
    model_name: str, backend_calls: list[str]
) -> None:
    """Also: the ``cpu`` backend loses no more than the reference does under the same autocast."""
    if model_name == "potential":
        model, data = _potential("radius_graph")
        results_fn = _potential_results
    else:
        model, data = _ponita(model_name, "radius_graph")
        results_fn = _ponita_results
    expected = _run(results_fn, model, data, "reference", backend_calls)
    model32 = copy.deepcopy(model).float()  # autocast casts float32 operands to bf16, not float64 ones
    data32 = Data(**{key: (value.float() if value.is_floating_point() else value) for key, value in data.items()})
    bf16 = {}
    for backend in ("cpu", "reference"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16[backend] = _relative_errors(_run(results_fn, model32, data32, backend, backend_calls), expected)
    for key, error in bf16["cpu"].items():
        bound = _bf16_bound(key)
        assert error < bound, f"{key}: relative error {error:.2e} above the bf16 bound {bound:.2e}"
        reference_error = bf16["reference"][key]
        no_worse = 2 * reference_error + BF16_UNIT_ROUNDOFF
        assert error < no_worse, f"{key}: cpu in bf16 errs {error:.2e}, the reference in bf16 {reference_error:.2e}"
