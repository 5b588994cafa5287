"""Tests of the spatial convolution: reference and ``cpu`` backends, gradients to second order,
backend selection and error messages."""

import pytest
import torch

import ponita.ops._spatial_conv as spatial_conv_module
import ponita.ops._spatial_conv_cpu as cpu_module
from ponita.ops import (
    available_backends,
    receiver_csr,
    spatial_conv,
    spatial_conv_reference,
    use_backend,
)


def _graph(name: str):
    """Small graphs with the awkward cases: sinks, isolated nodes, duplicates, self-loops, no edges."""
    if name == "random":
        edge_index, num_nodes = torch.randint(0, 6, (2, 14)), 6
    elif name == "isolated_and_sources":
        # 0, 1, 2 exchange messages; 3 only sends (no incoming edges); 4 and 5 are isolated.
        edge_index, num_nodes = torch.tensor([[0, 1, 2, 3, 3, 1], [1, 2, 0, 0, 2, 0]]), 6
    elif name == "duplicates_and_self_loops":
        edge_index, num_nodes = torch.tensor([[1, 1, 0, 3, 2, 2, 0], [2, 2, 0, 3, 1, 1, 3]]), 4
    elif name == "empty":
        edge_index, num_nodes = torch.zeros(2, 0, dtype=torch.long), 4
    else:
        raise ValueError(name)
    graph, _ = receiver_csr(edge_index, num_nodes)
    return graph


GRAPHS = ["random", "isolated_and_sources", "duplicates_and_self_loops", "empty"]


def _inputs(graph, num_ori: int, channels: int, basis_dim: int, dtype=torch.float64):
    x = torch.randn(graph.num_nodes, num_ori, channels, dtype=dtype, requires_grad=True)
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, dtype=dtype, requires_grad=True)
    weight = torch.randn(basis_dim, channels, dtype=dtype, requires_grad=True)
    return x, basis, weight


@pytest.fixture(params=["cpu", "cpu_small_chunks"])
def fused_backend(request, monkeypatch) -> str:
    """The ``cpu`` backend, once as shipped and once with chunks of a few edges (many chunks)."""
    if request.param == "cpu_small_chunks":
        monkeypatch.setattr(cpu_module, "_CHUNK_ELEMENTS", 64)
    return "cpu"


def _force_pattern(backend: str, x, basis, weight, graph):
    """Output and the gradients of a force-style loss (first-order grads with create_graph)."""
    y = spatial_conv(x, basis, weight, graph, backend=backend)  # [N, O, C]
    generator = torch.Generator().manual_seed(1)

    def probe(like):  # the same numbers for every dtype
        return torch.randn(like.shape, generator=generator, dtype=torch.float64).to(like.dtype)

    loss = (y * probe(y)).sum()
    grad_x, grad_basis, grad_weight = torch.autograd.grad(loss, (x, basis, weight), create_graph=True)
    second = (
        (grad_x * probe(grad_x)).sum()
        + (grad_basis * probe(grad_basis)).sum()
        + (grad_weight**2).sum()
    )
    return (y, grad_x, grad_basis, grad_weight, *torch.autograd.grad(second, (x, basis, weight)))


@pytest.mark.parametrize("graph_name", GRAPHS)
@pytest.mark.parametrize("backend", ["reference", "cpu", "cpu_small_chunks"])
def test_spatial_conv_gradcheck_and_gradgradcheck(graph_name, backend, monkeypatch):
    if backend == "cpu_small_chunks":
        monkeypatch.setattr(cpu_module, "_CHUNK_ELEMENTS", 64)
        backend = "cpu"
    graph = _graph(graph_name)
    inputs = _inputs(graph, num_ori=2, channels=3, basis_dim=4)

    def conv(x, basis, weight):
        return spatial_conv(x, basis, weight, graph, backend=backend)

    assert torch.autograd.gradcheck(conv, inputs)
    assert torch.autograd.gradgradcheck(conv, inputs)


@pytest.mark.parametrize("graph_name", GRAPHS)
def test_spatial_conv_output_shape_and_zero_rows_without_incoming_edges(graph_name, fused_backend):
    graph = _graph(graph_name)
    x, basis, weight = _inputs(graph, num_ori=3, channels=5, basis_dim=4)
    y = spatial_conv(x, basis, weight, graph, backend=fused_backend)
    assert y.shape == (graph.num_nodes, 3, 5)
    no_incoming = graph.row_ptr[1:] == graph.row_ptr[:-1]  # [N]
    assert torch.all(y[no_incoming] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "num_nodes, num_edges, num_ori, channels, basis_dim",
    [(7, 25, 3, 5, 6), (11, 40, 1, 8, 3), (5, 30, 4, 2, 7), (30, 200, 2, 16, 9)],
)
def test_cpu_matches_reference_to_second_order(
    num_nodes, num_edges, num_ori, channels, basis_dim, dtype, fused_backend
):
    graph, _ = receiver_csr(torch.randint(0, num_nodes, (2, num_edges)), num_nodes)
    inputs = _inputs(graph, num_ori, channels, basis_dim, dtype)
    expected = _force_pattern("reference", *inputs, graph)
    actual = _force_pattern(fused_backend, *inputs, graph)
    relative = 1e-5 if dtype == torch.float32 else 1e-12  # of the largest entry: summation order
    for name, a, e in zip(["y", "dx", "dbasis", "dW", "d2x", "d2basis", "d2W"], actual, expected):
        atol = relative * float(e.detach().abs().max())
        torch.testing.assert_close(a, e, rtol=relative, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


def test_cpu_is_deterministic():
    graph, _ = receiver_csr(torch.randint(0, 20, (2, 300)), 20)
    inputs = _inputs(graph, 3, 8, 5, torch.float32)
    first = _force_pattern("cpu", *inputs, graph)
    second = _force_pattern("cpu", *inputs, graph)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_half_precision_within_one_percent_of_float64_reference(dtype):
    """Half inputs (GEMMs in that type, sums in float32) stay within 1% relative error (norm)."""
    graph, _ = receiver_csr(torch.randint(0, 40, (2, 600)), 40)
    inputs64 = _inputs(graph, 4, 32, 16)
    inputs64 = tuple(t.detach().to(dtype).double().requires_grad_(True) for t in inputs64)
    inputs_half = tuple(t.detach().to(dtype).requires_grad_(True) for t in inputs64)
    expected = _force_pattern("reference", *inputs64, graph)
    actual = _force_pattern("cpu", *inputs_half, graph)
    for name, a, e in zip(["y", "dx", "dbasis", "dW", "d2x", "d2basis", "d2W"], actual, expected):
        assert a.dtype == dtype
        error = float((a.double() - e).norm() / e.norm())
        assert error < 1e-2, f"{name}: relative error {error:.2e}"


def test_cpu_saves_no_edge_by_channel_tensor_for_backward():
    graph, _ = receiver_csr(torch.randint(0, 10, (2, 50)), 10)
    x, basis, weight = _inputs(graph, 3, 7, 5)
    saved_shapes = []

    def pack(tensor):
        if tensor.is_floating_point():  # besides the graph's index tensors ([E], [N + 1])
            saved_shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        spatial_conv(x, basis, weight, graph, backend="cpu")
    assert (50, 3, 7) not in saved_shapes
    assert sorted(saved_shapes) == sorted([tuple(x.shape), tuple(basis.shape), tuple(weight.shape)])


def test_backend_argument_and_context_manager_select_the_backend(monkeypatch):
    calls = []
    monkeypatch.setitem(
        spatial_conv_module._BACKENDS, "spy", lambda *args: calls.append("spy") or spatial_conv_reference(*args)
    )
    graph = _graph("random")
    x, basis, weight = _inputs(graph, 1, 2, 3)
    spatial_conv(x, basis, weight, graph, backend="spy")
    assert calls == ["spy"]
    with use_backend("spy"):
        spatial_conv(x, basis, weight, graph)
        with use_backend("reference"):
            spatial_conv(x, basis, weight, graph)  # innermost context wins
        spatial_conv(x, basis, weight, graph, backend="reference")  # the argument wins
    assert calls == ["spy", "spy"]


def test_auto_backend_fuses_on_the_cpu_only_above_the_memory_threshold(monkeypatch):
    calls = []
    for name in ("cpu", "reference"):
        monkeypatch.setitem(
            spatial_conv_module._BACKENDS,
            name,
            lambda *args, name=name: calls.append(name) or spatial_conv_reference(*args),
        )
    graph = _graph("random")
    inputs = _inputs(graph, 1, 2, 3)
    spatial_conv(*inputs, graph)
    monkeypatch.setattr(spatial_conv_module, "FUSED_MIN_BYTES", 0)
    spatial_conv(*inputs, graph)
    assert calls == ["reference", "cpu"]
    assert {"auto", "reference", "cpu"} <= set(available_backends())


def test_unknown_backend_raises_with_the_choices():
    graph = _graph("random")
    inputs = _inputs(graph, 1, 2, 3)
    with pytest.raises(ValueError, match=r"Unknown spatial-conv backend 'nope'; choose one of .*'cpu'"):
        spatial_conv(*inputs, graph, backend="nope")
    with pytest.raises(ValueError, match="Unknown spatial-conv backend 'nope'"):
        with use_backend("nope"):
            pass


def test_inconsistent_shapes_raise():
    graph = _graph("random")
    x, basis, weight = _inputs(graph, 2, 3, 4)
    with pytest.raises(ValueError, match="spatial_conv shapes disagree"):
        spatial_conv(x, basis, weight[:, :2], graph, backend="cpu")
    with pytest.raises(ValueError, match=r"expects x \[N, O, C\]"):
        spatial_conv(x[0], basis, weight, graph, backend="cpu")


AUTOCAST_BF16_RELATIVE = 3e-2
"""Relative error (norm) of bf16 autocast against float64 for the output and its first and second
derivatives. Autocast rounds the float32 inputs to bf16 (unit round-off 2**-8 = 3.9e-3) and every product
after them; measured on the "random" graph with the test's seed: at most 7.7e-3 (the first derivative)
and 5.8e-3 (second derivatives) for both backends, and at most 1.8e-2 over seeds 0–199."""


def _autocast_derivatives(x, basis, weight, graph, backend: str, autocast: bool) -> list[torch.Tensor]:
    """``y``, ``∂L/∂basis`` for ``L = Σ y²``, and the gradients of ``Σ ∂L/∂basis`` w.r.t. x, basis and weight."""
    x, basis, weight = (t.detach().clone().requires_grad_() for t in (x, basis, weight))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = spatial_conv(x, basis, weight, graph, backend=backend)
    loss = y.float().pow(2).sum() if autocast else y.pow(2).sum()
    (grad_basis,) = torch.autograd.grad(loss, basis, create_graph=True)
    (grad_basis.float() if autocast else grad_basis).sum().backward()
    return [y, grad_basis, x.grad, basis.grad, weight.grad]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_autocast_runs_every_backend_in_bf16_through_double_backward(backend):
    graph = _graph("random")
    x, basis, weight = (t.detach().float() for t in _inputs(graph, 2, 4, 3))
    actual = _autocast_derivatives(x, basis, weight, graph, backend, autocast=True)
    expected = _autocast_derivatives(x.double(), basis.double(), weight.double(), graph, "reference", autocast=False)
    assert actual[0].dtype == torch.bfloat16
    torch.testing.assert_close(actual[0].double(), expected[0], atol=0.1, rtol=0.05)
    for name, a, e in zip(["y", "dbasis", "d2x", "d2basis", "d2W"], actual, expected):
        assert torch.isfinite(a).all(), name
        error = float((a.detach().double() - e.detach()).norm() / e.detach().norm())
        assert error < AUTOCAST_BF16_RELATIVE, f"{name}: relative error {error:.2e}"


def test_force_style_gradients_skip_the_slots_autograd_discards(monkeypatch):
    """autograd.grad(energy, (x, basis)) with a trainable weight: the weight-gradient contraction is not run,
    and the gradients equal the reference; a full backward still runs every slot it needs."""
    from ponita.ops import _fused_spatial_conv, _spatial_conv_cpu

    calls: list[str] = []
    kernels = _spatial_conv_cpu.CPU_KERNELS

    def counted(name, kernel):
        return lambda *args: calls.append(name) or kernel(*args)

    counting = _fused_spatial_conv.FusedOps(
        _fused_spatial_conv.FusedKernels(*(counted(n, k) for n, k in zip(kernels._fields, kernels))), "counting")
    graph, _ = receiver_csr(torch.randint(0, 9, (2, 40)), 9)
    x, basis, weight = _inputs(graph, 3, 4, 5, torch.float64)

    def energy(ops):
        return ops(x, basis, weight, graph).square().sum()

    grads = torch.autograd.grad(energy(counting), (x, basis))
    assert calls == ["conv", "conv_transpose", "basis_grad"]  # no weight_grad
    expected = torch.autograd.grad(spatial_conv(x, basis, weight, graph, backend="reference").square().sum(), (x, basis))
    for a, e in zip(grads, expected):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    calls.clear()
    energy(counting).backward()
    assert sorted(calls) == ["basis_grad", "conv", "conv_transpose", "weight_grad"]


def test_torch_compile_keeps_the_fused_op_as_one_operator():
    """The fused CPU op is a registered operator: captured whole with fullgraph=True, same values and gradients."""
    graph, _ = receiver_csr(torch.randint(0, 9, (2, 40), generator=torch.Generator().manual_seed(0)), 9)
    x, basis, weight = _inputs(graph, 3, 4, 5, torch.float64)
    targets = []

    def recording_backend(graph_module, example_inputs):
        targets.extend(str(node.target) for node in graph_module.graph.nodes)
        return graph_module.forward

    def loss(x, basis, weight):
        return spatial_conv(x, basis, weight, graph, backend="cpu").square().sum()

    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True, backend=recording_backend)
    value = compiled(x, basis, weight)
    assert any("ponita.cpu_conv" in target for target in targets), targets
    expected = loss(x, basis, weight)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    compiled_grads = torch.autograd.grad(torch.compile(loss, fullgraph=True, backend="aot_eager")(x, basis, weight),
                                         (x, basis, weight))
    for a, e in zip(compiled_grads, torch.autograd.grad(expected, (x, basis, weight))):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
