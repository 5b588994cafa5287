"""Checks of the Triton kernels on CPU tensors through Triton's interpreter.

Not collected on its own: ``test_spatial_conv_triton.py`` runs this file with pytest in a child
process with ``TRITON_INTERPRET=1``, which must be set before the kernels are first imported.
"""

import os

import pytest
import torch

from ponita.ops import receiver_csr, spatial_conv
from ponita.ops._spatial_conv_cpu import CPU_KERNELS

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("runs only in the child process of test_spatial_conv_triton.py", allow_module_level=True)
from ponita.ops._spatial_conv_triton import TRITON_KERNELS  # noqa: E402

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
