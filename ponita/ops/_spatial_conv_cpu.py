r"""The ``"cpu"`` backend of the spatial convolution: chunked over edges, nothing ``[E, O, C]`` kept.

Each slot kernel of :mod:`ponita.ops._fused_spatial_conv` walks the receiver-sorted edges in
fixed, contiguous chunks. A chunk's kernel :math:`\varphi_e W` (or the per-edge product
:math:`g_{\mathrm{dst}(e)} \odot x_{\mathrm{src}(e)}`) is one GEMM over ``E_chunk · O`` rows, and its
temporaries stay at about ``_CHUNK_ELEMENTS`` numbers (a few MB, cache-sized). Sums over edges
use ``Tensor.index_add_`` in a fixed chunk order, which is deterministic on the CPU.

Half-precision inputs (``bfloat16``, ``float16``) run their GEMMs in that precision (the GEMM
itself accumulates in float32) and do every sum over edges or chunks in float32; outputs are
cast back to the input dtype.
"""

import torch
from torch import Tensor

from ponita.ops._fused_spatial_conv import FusedKernels, FusedOps
from ponita.ops._receiver_csr import ReceiverCSR

# Numbers in one chunk's largest temporary, [E_chunk, O, max(B, C)]: 2**19 float32 = 2 MB.
_CHUNK_ELEMENTS = 2**19


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _edge_chunks(num_edges: int, elements_per_edge: int) -> list[tuple[int, int]]:
    """Contiguous edge ranges ``(start, stop)`` of about ``_CHUNK_ELEMENTS`` numbers each."""
    size = max(1, _CHUNK_ELEMENTS // max(1, elements_per_edge))
    return [(start, min(start + size, num_edges)) for start in range(0, num_edges, size)]


def _edge_products(g: Tensor, x: Tensor, graph: ReceiverCSR, start: int, stop: int) -> Tensor:
    """``g[dst(e)] ⊙ x[src(e)]`` for the edges ``start:stop`` (multiplied in float32 for half types)."""
    g_i = g.index_select(0, graph.dst[start:stop]).to(_accumulation_dtype(x.dtype))  # [Ec, O, C]
    x_j = x.index_select(0, graph.src[start:stop])  # [Ec, O, C]
    return g_i.mul_(x_j).to(x.dtype)  # [Ec, O, C]


def _scatter_kernel_products(
    features: Tensor,
    basis: Tensor,
    weight: Tensor,
    gather_index: Tensor,
    scatter_index: Tensor,
    num_nodes: int,
) -> Tensor:
    """``out[scatter(e)] += (basis_e W) ⊙ features[gather(e)]``, chunk by chunk."""
    num_ori, channels = features.shape[1], features.shape[2]
    out = features.new_zeros(
        (num_nodes, num_ori, channels), dtype=_accumulation_dtype(features.dtype)
    )  # [N, O, C]
    for start, stop in _edge_chunks(basis.shape[0], num_ori * max(basis.shape[2], channels)):
        kernel = torch.matmul(basis[start:stop], weight)  # [Ec, O, C]
        messages = kernel.to(out.dtype).mul_(features.index_select(0, gather_index[start:stop]))
        out.index_add_(0, scatter_index[start:stop], messages)  # [N, O, C]
    return out.to(features.dtype)


def _conv(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    return _scatter_kernel_products(x, basis, weight, graph.src, graph.dst, graph.num_nodes)


def _conv_transpose(g: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    return _scatter_kernel_products(g, basis, weight, graph.dst, graph.src, graph.num_nodes)


def _basis_grad(g: Tensor, x: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    num_ori, channels = x.shape[1], x.shape[2]
    basis_dim = weight.shape[0]
    weight_t = weight.t().contiguous()  # [C, B]
    out = x.new_empty((graph.num_edges, num_ori, basis_dim))  # [E, O, B]
    for start, stop in _edge_chunks(graph.num_edges, num_ori * max(basis_dim, channels)):
        products = _edge_products(g, x, graph, start, stop)  # [Ec, O, C]
        torch.matmul(products, weight_t, out=out[start:stop])  # [Ec, O, B]
    return out


def _weight_grad(g: Tensor, x: Tensor, basis: Tensor, graph: ReceiverCSR) -> Tensor:
    num_ori, channels = x.shape[1], x.shape[2]
    basis_dim = basis.shape[2]
    out = x.new_zeros((basis_dim, channels), dtype=_accumulation_dtype(x.dtype))  # [B, C]
    for start, stop in _edge_chunks(graph.num_edges, num_ori * max(basis_dim, channels)):
        products = _edge_products(g, x, graph, start, stop)  # [Ec, O, C]
        basis_rows = basis[start:stop].reshape(-1, basis_dim)  # [Ec·O, B]
        partial = basis_rows.t() @ products.reshape(-1, channels)  # [B, C]
        out += partial
    return out.to(x.dtype)


CPU_KERNELS = FusedKernels(_conv, _conv_transpose, _basis_grad, _weight_grad)
CPU_OPS = FusedOps(CPU_KERNELS, "cpu")  # ponita::cpu_conv, ponita::cpu_conv_transpose, ...


def spatial_conv_cpu(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    """Fused CPU spatial convolution; same function as :func:`spatial_conv_reference`.

    Never materialises ``[E, O, C]`` for the whole graph and saves nothing of that size for
    backward (it recomputes per chunk); differentiable to any order.

    Args:
        x: node features on the grid.
        basis: kernel basis of each edge and orientation, edges in ``graph`` order.
        weight: the layer's basis-to-channel weights.
        graph: receiver-sorted graph.

    Returns:
        The aggregated messages.

    Shapes:
        x ``[N, O, C]``, basis ``[E, O, B]``, weight ``[B, C]`` → ``[N, O, C]``
    """
    return CPU_OPS(x, basis, weight, graph)
