"""Checks of the Triton kernels on CPU tensors through Triton's interpreter.

Not collected on its own: ``test_spatial_conv_triton.py`` runs this file with pytest in a child
process with ``TRITON_INTERPRET=1``, which must be set before the kernels are first imported.
"""

import importlib
import os

import pytest
import torch

from ponita.ops import receiver_csr, spatial_conv
from ponita.ops._spatial_conv_cpu import CPU_KERNELS

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("runs only in the child process of test_spatial_conv_triton.py", allow_module_level=True)
from ponita.ops._spatial_conv_triton import TRITON_KERNELS  # noqa: E402

triton_backend = importlib.import_module("ponita.ops._spatial_conv_triton")  # (ponita.ops has a function of that name)

GRAPHS = {
    # name: (edge index, N, O, C, B)
    "random": (torch.randint(0, 5, (2, 12), generator=torch.Generator().manual_seed(0)), 5, 3, 4, 5),
    "isolated_duplicates_self_loops": (torch.tensor([[0, 0, 1, 2, 2], [1, 1, 1, 0, 2]]), 5, 2, 3, 2),
    "empty": (torch.zeros(2, 0, dtype=torch.long), 3, 2, 3, 4),
    # a hub with 40 incoming edges (two edge blocks), two channel and basis tiles, three row splits
    "hub_and_tiles": (torch.stack([torch.arange(40) % 3, torch.zeros(40, dtype=torch.long)]), 3, 5, 33, 34),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("graph_name", list(GRAPHS))
def test_triton_slot_kernels_match_cpu_kernels(graph_name, dtype):
    edge_index, num_nodes, num_ori, channels, basis_dim = GRAPHS[graph_name]
    graph, _ = receiver_csr(edge_index, num_nodes)
    g, x = torch.randn(2, num_nodes, num_ori, channels, dtype=torch.float64).to(dtype)
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, dtype=torch.float64).to(dtype)
    weight = torch.randn(basis_dim, channels, dtype=torch.float64).to(dtype)
    operands = {"g": g, "x": x, "basis": basis, "weight": weight}
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    for slot, name in enumerate(["g", "x", "basis", "weight"]):
        args = [value for key, value in operands.items() if key != name]
        actual = TRITON_KERNELS[slot](*args, graph)
        expected = CPU_KERNELS[slot](*args, graph)
        assert actual.shape == expected.shape and actual.dtype == dtype
        scale = max([1.0, *expected.double().abs().flatten().tolist()])
        torch.testing.assert_close(actual.double(), expected.double(), rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("tiles", [(32, 1, 32), (4, 2, 32), (2, 8, 16)], ids=["one_orientation", "uneven", "wide"])
def test_every_convolution_tiling_matches_the_cpu_kernels(tiles, monkeypatch):
    # The GPU autotunes among tilings; each must give the same sums. Five orientations leave a partial orientation
    # block for the blocks of 2 and 8, the hub's 40 in-edges several edge blocks, 33 channels a partial channel tile.
    block_e, block_o, block_c = tiles
    monkeypatch.setattr(triton_backend, "interpreter_conv_tiles",
                        {"BLOCK_E": block_e, "BLOCK_O": block_o, "BLOCK_C": block_c, "BLOCK_B": 32})
    edge_index, num_nodes, num_ori, channels, basis_dim = GRAPHS["hub_and_tiles"]
    graph, _ = receiver_csr(edge_index, num_nodes)
    g, x = torch.randn(2, num_nodes, num_ori, channels, dtype=torch.float64)
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, dtype=torch.float64)
    weight = torch.randn(basis_dim, channels, dtype=torch.float64)
    for slot, args in ((0, (basis, weight)), (1, (basis, weight))):  # conv (receivers) and conv_transpose (senders)
        features = x if slot == 0 else g
        torch.testing.assert_close(TRITON_KERNELS[slot](features, *args, graph), CPU_KERNELS[slot](features, *args, graph),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tiles", [(64, 64), (128, 32)])
def test_every_basis_gradient_tiling_matches_the_cpu_kernel(tiles, monkeypatch):
    monkeypatch.setattr(triton_backend, "interpreter_basis_grad_tiles",
                        {"BLOCK_E": tiles[0], "BLOCK_B": tiles[1], "BLOCK_C": 32})
    edge_index, num_nodes, num_ori, channels, basis_dim = GRAPHS["hub_and_tiles"]
    graph, _ = receiver_csr(edge_index, num_nodes)
    g, x = torch.randn(2, num_nodes, num_ori, channels, dtype=torch.float64)
    weight = torch.randn(basis_dim, channels, dtype=torch.float64)
    torch.testing.assert_close(TRITON_KERNELS.basis_grad(g, x, weight, graph), CPU_KERNELS.basis_grad(g, x, weight, graph),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tiles", [(32, 64, 64), (64, 64, 32)])
def test_every_weight_gradient_tiling_matches_the_cpu_kernel(tiles, monkeypatch):
    monkeypatch.setattr(triton_backend, "interpreter_weight_grad_tiles",
                        {"BLOCK_R": tiles[0], "BLOCK_B": tiles[1], "BLOCK_C": tiles[2]})
    edge_index, num_nodes, num_ori, channels, basis_dim = GRAPHS["hub_and_tiles"]
    graph, _ = receiver_csr(edge_index, num_nodes)
    g, x = torch.randn(2, num_nodes, num_ori, channels, dtype=torch.float64)
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, dtype=torch.float64)
    torch.testing.assert_close(TRITON_KERNELS.weight_grad(g, x, basis, graph), CPU_KERNELS.weight_grad(g, x, basis, graph),
                               rtol=1e-12, atol=1e-12)


def test_the_gpu_tilings_start_with_the_fixed_ones_and_reach_64_rows():
    conv, basis_grad = triton_backend._CONV_TILES, triton_backend._BASIS_GRAD_TILES
    weight_grad = triton_backend._WEIGHT_GRAD_TILES
    # the tilings of before come first: tuning can only gain
    assert conv[0] == (32, 1, 32, 4) and basis_grad[0] == (32, 32, 4) and weight_grad[0] == (64, 32, 32, 4)
    assert sum(e * o >= 64 for e, o, _, _ in conv) >= 5 and sum(e >= 64 for e, _, _ in basis_grad) >= 4
    assert sum(b >= 64 for _, b, _, _ in weight_grad) >= 3


def test_triton_gradcheck_and_gradgradcheck():
    edge_index, num_nodes, num_ori, channels, basis_dim = GRAPHS["random"]
    graph, _ = receiver_csr(edge_index, num_nodes)
    x = torch.randn(num_nodes, num_ori, channels, dtype=torch.float64, requires_grad=True)
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(basis_dim, channels, dtype=torch.float64, requires_grad=True)

    def conv(x, basis, weight):
        return spatial_conv(x, basis, weight, graph, backend="triton")

    assert torch.autograd.gradcheck(conv, (x, basis, weight), fast_mode=True)
    assert torch.autograd.gradgradcheck(conv, (x, basis, weight), fast_mode=True)
