r"""The ``"triton"`` backend of the spatial convolution: the four slot kernels as Triton kernels.

The slot kernels of :mod:`ponita.ops._fused_spatial_conv` (so backward and double backward
reuse them) are:

- ``_csr_conv_kernel``: one program per (node, channel tile, orientation block), channel tiles adjacent, walks the
  node's incoming edges (receiver CSR, for ``conv``) or outgoing edges (the sender order built with the
  graph, ``ReceiverCSR.sender_order``/``sender_ptr``, for ``conv_transpose``) in blocks; per block of edges ×
  orientations it forms the kernel :math:`\varphi W` with one ``tl.dot``,
  multiplies by the gathered neighbour features and sums in registers. Nothing per edge reaches
  memory, and each output row is written once, so the sum is deterministic (no atomics).
- ``_basis_grad_kernel``: per (edge block, orientation, basis tile),
  :math:`(g_{\mathrm{dst}} \odot x_{\mathrm{src}})\, W^\top` with ``tl.dot`` over channel tiles.
- ``_weight_grad_kernel``: per (basis tile, channel tile, row split), the split's part of
  :math:`\sum_{e,o} \varphi^\top (g_{\mathrm{dst}} \odot x_{\mathrm{src}})`; the splits are
  summed afterwards in a fixed order (deterministic split-K).

On a GPU the convolution's tiles (edges × orientations × channels per program) are autotuned per (O, C, B) among
``_CONV_TILES``, the gradients' among ``_BASIS_GRAD_TILES`` and ``_WEIGHT_GRAD_TILES``. A tiling fixes the order of every sum, so results are
deterministic for it; two processes whose autotuning picks different tilings round differently. Accumulation is in
float32 (float64 for float64 inputs). float32 ``tl.dot`` uses TF32 only when
``torch.backends.cuda.matmul.allow_tf32`` is set, as torch's own matmul does.

The kernels need CUDA tensors; with ``TRITON_INTERPRET=1`` set before this module is first
imported, Triton's interpreter runs them on CPU tensors (used by the tests).
"""

import os
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from ponita.ops._fused_spatial_conv import FusedKernels, FusedOps
from ponita.ops._receiver_csr import ReceiverCSR

_BLOCK_BASIS = 32  # the smallest tiles of the weight gradient, which fix its row splits
_BLOCK_CHANNELS = 32
_BLOCK_ROWS = 64


@triton.jit
def _csr_conv_kernel(
    features_ptr,  # [N, O, C], gathered at the neighbours
    basis_ptr,  # [E, O, B]
    weight_ptr,  # [B, C]
    out_ptr,  # [N, O, C]
    row_ptr_ptr,  # [N + 1], over the CSR positions
    edge_ptr,  # [E], edge id at each CSR position
    neighbour_ptr,  # [E], node whose features each CSR position gathers
    num_ori,
    channels,
    basis_dim,
    ACC_DTYPE: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_O: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # The channel tile is the fastest-varying program index: the programs of one (node, orientation block) run
    # side by side and read the same basis rows [E_i, O_block, B], which then come from cache instead of memory
    # once per channel tile. (Node × tile share grid axis 0, whose range, unlike axes 1 and 2, fits any graph.)
    # A block of BLOCK_E edges × BLOCK_O orientations is one tl.dot of BLOCK_E·BLOCK_O rows: molecules have
    # 18–37 in-edges, so orientation blocks are what lifts the rows to the 64+ that tensor cores need.
    num_channel_tiles = tl.cdiv(channels, BLOCK_C)
    node = tl.program_id(0) // num_channel_tiles
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)  # [BO]
    mask_o = offs_o < num_ori
    offs_c = (tl.program_id(0) % num_channel_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)  # [BC]
    mask_c = offs_c < channels
    start = tl.load(row_ptr_ptr + node)
    stop = tl.load(row_ptr_ptr + node + 1)
    acc = tl.zeros([BLOCK_O, BLOCK_C], dtype=ACC_DTYPE)
    for first in range(start, stop, BLOCK_E):
        positions = first + tl.arange(0, BLOCK_E)  # [BE]
        mask_e = positions < stop
        edges = tl.load(edge_ptr + positions, mask=mask_e, other=0)  # [BE]
        neighbours = tl.load(neighbour_ptr + positions, mask=mask_e, other=0)  # [BE]
        # Rows (edge, orientation), edge-major: [BE·BO]
        mask_r = tl.reshape(mask_e[:, None] & mask_o[None, :], [BLOCK_E * BLOCK_O])
        basis_rows = tl.reshape(edges[:, None] * num_ori + offs_o[None, :], [BLOCK_E * BLOCK_O])
        feature_rows = tl.reshape(neighbours[:, None] * num_ori + offs_o[None, :], [BLOCK_E * BLOCK_O])
        kernel = tl.zeros([BLOCK_E * BLOCK_O, BLOCK_C], dtype=ACC_DTYPE)
        for first_b in range(0, basis_dim, BLOCK_B):
            offs_b = first_b + tl.arange(0, BLOCK_B)  # [BB]
            mask_b = offs_b < basis_dim
            phi = tl.load(
                basis_ptr + basis_rows[:, None] * basis_dim + offs_b[None, :],
                mask=mask_r[:, None] & mask_b[None, :],
                other=0.0,
            )  # [BE·BO, BB]
            w = tl.load(
                weight_ptr + offs_b[:, None] * channels + offs_c[None, :],
                mask=mask_b[:, None] & mask_c[None, :],
                other=0.0,
            )  # [BB, BC]
            kernel = tl.dot(phi.to(DOT_DTYPE), w.to(DOT_DTYPE), kernel, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
        feats = tl.load(
            features_ptr + feature_rows[:, None] * channels + offs_c[None, :],
            mask=mask_r[:, None] & mask_c[None, :],
            other=0.0,
        )  # [BE·BO, BC]
        messages = tl.reshape(kernel * feats.to(ACC_DTYPE), [BLOCK_E, BLOCK_O, BLOCK_C])
        acc += tl.sum(messages, axis=0)  # [BO, BC]
    tl.store(
        out_ptr + (node * num_ori + offs_o)[:, None] * channels + offs_c[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=mask_o[:, None] & mask_c[None, :],
    )


# Tile shapes the GPU tries per (O, C, B) and keeps the fastest of (triton.autotune): the first is the fixed tiling
# of before (32 edges of one orientation), so tuning can only gain; the others put 64–128 rows into each tl.dot.
_CONV_TILES = [  # (BLOCK_E, BLOCK_O, BLOCK_C, num_warps)
    (32, 1, 32, 4), (16, 4, 32, 4), (32, 2, 32, 4), (16, 8, 32, 4), (16, 4, 64, 4), (32, 4, 64, 8), (8, 8, 64, 4),
]
_csr_conv_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK_E": e, "BLOCK_O": o, "BLOCK_C": c, "BLOCK_B": 32}, num_warps=w)
             for e, o, c, w in _CONV_TILES],
    key=["num_ori", "channels", "basis_dim"],
)(_csr_conv_kernel)
# Triton's interpreter (the tests, on CPU tensors) runs one tiling, with orientation blocks; tests may set others.
interpreter_conv_tiles = {"BLOCK_E": 16, "BLOCK_O": 4, "BLOCK_C": 32, "BLOCK_B": 32}


@triton.jit
def _basis_grad_kernel(
    g_ptr,  # [N, O, C], gathered at receivers
    x_ptr,  # [N, O, C], gathered at senders
    weight_ptr,  # [B, C]
    out_ptr,  # [E, O, B]
    src_ptr,  # [E]
    dst_ptr,  # [E]
    num_edges,
    num_ori,
    channels,
    basis_dim,
    ACC_DTYPE: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    edges = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)  # [BE]
    ori = tl.program_id(1)
    offs_b = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)  # [BB]
    mask_e = edges < num_edges
    mask_b = offs_b < basis_dim
    senders = tl.load(src_ptr + edges, mask=mask_e, other=0)  # [BE]
    receivers = tl.load(dst_ptr + edges, mask=mask_e, other=0)  # [BE]
    acc = tl.zeros([BLOCK_E, BLOCK_B], dtype=ACC_DTYPE)
    for first_c in range(0, channels, BLOCK_C):
        offs_c = first_c + tl.arange(0, BLOCK_C)  # [BC]
        mask = mask_e[:, None] & (offs_c < channels)[None, :]
        g = tl.load(g_ptr + (receivers[:, None] * num_ori + ori) * channels + offs_c[None, :], mask=mask, other=0.0)
        x = tl.load(x_ptr + (senders[:, None] * num_ori + ori) * channels + offs_c[None, :], mask=mask, other=0.0)
        products = (g.to(ACC_DTYPE) * x.to(ACC_DTYPE)).to(DOT_DTYPE)  # [BE, BC]
        w_t = tl.load(
            weight_ptr + offs_b[None, :] * channels + offs_c[:, None],
            mask=mask_b[None, :] & (offs_c < channels)[:, None],
            other=0.0,
        )  # [BC, BB]
        acc = tl.dot(products, w_t.to(DOT_DTYPE), acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
    tl.store(
        out_ptr + (edges[:, None] * num_ori + ori) * basis_dim + offs_b[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=mask_e[:, None] & mask_b[None, :],
    )


# The basis gradient's rows are independent edges: tiles of 64–128 of them fill tensor cores (first: the old tiling).
_BASIS_GRAD_TILES = [(32, 32, 4), (64, 32, 4), (128, 32, 8), (64, 64, 4), (128, 64, 8)]  # (BLOCK_E, BLOCK_B, num_warps)
_basis_grad_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK_E": e, "BLOCK_B": b, "BLOCK_C": 32}, num_warps=w) for e, b, w in _BASIS_GRAD_TILES],
    key=["num_ori", "channels", "basis_dim"],
)(_basis_grad_kernel)
interpreter_basis_grad_tiles = {"BLOCK_E": 32, "BLOCK_B": 32, "BLOCK_C": 32}


@triton.jit
def _weight_grad_kernel(
    g_ptr,  # [N, O, C], gathered at receivers
    x_ptr,  # [N, O, C], gathered at senders
    basis_ptr,  # [E, O, B]
    partial_ptr,  # [S, B, C], one partial sum per row split
    src_ptr,  # [E]
    dst_ptr,  # [E]
    num_rows,  # E · O
    rows_per_split,
    num_ori,
    channels,
    basis_dim,
    ACC_DTYPE: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # [BB]
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)  # [BC]
    split = tl.program_id(2)
    mask_b = offs_b < basis_dim
    mask_c = offs_c < channels
    first_row = split * rows_per_split
    last_row = tl.minimum(first_row + rows_per_split, num_rows)
    acc = tl.zeros([BLOCK_B, BLOCK_C], dtype=ACC_DTYPE)
    for first in range(first_row, last_row, BLOCK_R):
        rows = first + tl.arange(0, BLOCK_R)  # [BR], row = edge · O + orientation
        mask_r = rows < last_row
        edges = rows // num_ori
        ori = rows % num_ori
        senders = tl.load(src_ptr + edges, mask=mask_r, other=0)  # [BR]
        receivers = tl.load(dst_ptr + edges, mask=mask_r, other=0)  # [BR]
        mask = mask_r[:, None] & mask_c[None, :]
        g = tl.load(g_ptr + (receivers * num_ori + ori)[:, None] * channels + offs_c[None, :], mask=mask, other=0.0)
        x = tl.load(x_ptr + (senders * num_ori + ori)[:, None] * channels + offs_c[None, :], mask=mask, other=0.0)
        products = (g.to(ACC_DTYPE) * x.to(ACC_DTYPE)).to(DOT_DTYPE)  # [BR, BC]
        phi_t = tl.load(
            basis_ptr + rows[None, :] * basis_dim + offs_b[:, None],
            mask=mask_r[None, :] & mask_b[:, None],
            other=0.0,
        )  # [BB, BR]
        acc = tl.dot(phi_t.to(DOT_DTYPE), products, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
    tl.store(
        partial_ptr + (split * basis_dim + offs_b[:, None]) * channels + offs_c[None, :],
        acc,
        mask=mask_b[:, None] & mask_c[None, :],
    )


# The weight gradient's tl.dot has BLOCK_B rows: 64 fill tensor cores (first: the old tiling).
_WEIGHT_GRAD_TILES = [(64, 32, 32, 4), (64, 64, 32, 4), (64, 64, 64, 8), (32, 64, 32, 4), (64, 32, 64, 4)]  # (BLOCK_R, BLOCK_B, BLOCK_C, warps)
_weight_grad_tuned = triton.autotune(
    configs=[triton.Config({"BLOCK_R": r, "BLOCK_B": b, "BLOCK_C": c}, num_warps=w) for r, b, c, w in _WEIGHT_GRAD_TILES],
    key=["num_ori", "channels", "basis_dim"],
)(_weight_grad_kernel)
interpreter_weight_grad_tiles = {"BLOCK_R": 64, "BLOCK_B": 32, "BLOCK_C": 32}


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _dot_dtype(dtype: torch.dtype) -> tl.dtype:
    """``tl.dot`` operand type: the input's, except float32 for half types under the interpreter,
    whose ``tl.dot`` misreads bfloat16 operands (Triton 3.9)."""
    if dtype in (torch.bfloat16, torch.float16) and _interpreted():
        return tl.float32
    return {torch.float64: tl.float64, torch.float32: tl.float32,
            torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}[dtype]  # fmt: skip


def _precision_args(dtype: torch.dtype) -> dict:
    """The kernels' precision constants for inputs of ``dtype``."""
    return dict(
        ACC_DTYPE=tl.float64 if dtype == torch.float64 else tl.float32,
        DOT_DTYPE=_dot_dtype(dtype),
        INPUT_PRECISION=(
            "tf32" if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32 else "ieee"
        ),
    )


def _launch(tuned: triton.runtime.Autotuner, interpreter_tiles: dict, grid: Callable[[dict], tuple[int, ...]],
            args: tuple) -> None:
    """Runs an autotuned kernel on ``args`` (the first a tensor of the inputs' dtype): on a GPU with the tiling its
    tuning picks, under Triton's interpreter with ``interpreter_tiles`` (tuning would time every tiling there)."""
    precision = _precision_args(args[0].dtype)
    if _interpreted():
        tuned.fn[grid(interpreter_tiles)](*args, **precision, **interpreter_tiles)
    else:
        tuned[grid](*args, **precision)


def _check_device(*tensors: Tensor) -> None:
    if not all(t.is_cuda for t in tensors) and not _interpreted():
        raise ValueError(
            "The 'triton' spatial-conv backend needs CUDA tensors (or TRITON_INTERPRET=1 set "
            "before ponita's Triton kernels are first used); use backend='cpu' on the CPU."
        )


def _csr_conv(
    features: Tensor,
    basis: Tensor,
    weight: Tensor,
    row_ptr: Tensor,
    edge_ids: Tensor,
    neighbours: Tensor,
) -> Tensor:
    num_nodes, num_ori, channels = features.shape
    features, basis, weight = features.contiguous(), basis.contiguous(), weight.contiguous()
    _check_device(features, basis, weight)
    out = torch.empty_like(features)  # [N, O, C]
    if num_nodes == 0 or num_ori == 0 or channels == 0:
        return out

    def grid(tiles: dict) -> tuple[int, int]:
        return num_nodes * triton.cdiv(channels, tiles["BLOCK_C"]), triton.cdiv(num_ori, tiles["BLOCK_O"])

    _launch(_csr_conv_tuned, interpreter_conv_tiles, grid,
            (features, basis, weight, out, row_ptr, edge_ids, neighbours, num_ori, channels, basis.shape[2]))
    return out


def _conv(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    edge_ids = torch.arange(graph.num_edges, device=x.device)  # [E]
    return _csr_conv(x, basis, weight, graph.row_ptr, edge_ids, graph.src)


def _conv_transpose(g: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    by_sender = graph.sender_order  # [E], built with the graph: no sort and no host sync per call
    return _csr_conv(g, basis, weight, graph.sender_ptr, by_sender, graph.dst[by_sender])


def _basis_grad(g: Tensor, x: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    num_ori, channels = x.shape[1], x.shape[2]
    basis_dim = weight.shape[0]
    g, x, weight = g.contiguous(), x.contiguous(), weight.contiguous()
    _check_device(g, x, weight)
    out = x.new_empty((graph.num_edges, num_ori, basis_dim))  # [E, O, B]
    if out.numel() == 0:
        return out

    def grid(tiles: dict) -> tuple[int, int, int]:
        return triton.cdiv(graph.num_edges, tiles["BLOCK_E"]), num_ori, triton.cdiv(basis_dim, tiles["BLOCK_B"])

    _launch(_basis_grad_tuned, interpreter_basis_grad_tiles, grid,
            (g, x, weight, out, graph.src, graph.dst, graph.num_edges, num_ori, channels, basis_dim))
    return out


def _weight_grad(g: Tensor, x: Tensor, basis: Tensor, graph: ReceiverCSR) -> Tensor:
    num_ori, channels = x.shape[1], x.shape[2]
    basis_dim = basis.shape[2]
    g, x, basis = g.contiguous(), x.contiguous(), basis.contiguous()
    _check_device(g, x, basis)
    partial_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    num_rows = graph.num_edges * num_ori
    tiles = triton.cdiv(basis_dim, _BLOCK_BASIS) * triton.cdiv(channels, _BLOCK_CHANNELS)
    # Enough row splits for about 512 programs, each at least one row block long.
    num_splits = max(1, min(triton.cdiv(num_rows, _BLOCK_ROWS), triton.cdiv(512, tiles)))
    rows_per_split = triton.cdiv(triton.cdiv(num_rows, num_splits), _BLOCK_ROWS) * _BLOCK_ROWS
    partial = x.new_zeros((num_splits, basis_dim, channels), dtype=partial_dtype)  # [S, B, C]
    if num_rows > 0 and basis_dim > 0 and channels > 0:
        # The splits are fixed above, whatever the tiles: every tiling writes each partial sum once (autotuning may
        # rerun it) and the splits are summed in the same order.
        def grid(tiles: dict) -> tuple[int, int, int]:
            return triton.cdiv(basis_dim, tiles["BLOCK_B"]), triton.cdiv(channels, tiles["BLOCK_C"]), num_splits

        _launch(_weight_grad_tuned, interpreter_weight_grad_tiles, grid,
                (g, x, basis, partial, graph.src, graph.dst, num_rows, rows_per_split, num_ori, channels, basis_dim))
    return partial.sum(0).to(x.dtype)  # [B, C]


TRITON_KERNELS = FusedKernels(_conv, _conv_transpose, _basis_grad, _weight_grad)
TRITON_OPS = FusedOps(TRITON_KERNELS, "triton")  # ponita::triton_conv, ...: kept whole by torch.compile and CUDA graphs


def spatial_conv_triton(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    """Triton spatial convolution; same function as :func:`spatial_conv_reference`.

    Saves nothing of size ``[E, O, C]`` for backward; differentiable to any order.

    Args:
        x: node features on the grid (CUDA).
        basis: kernel basis of each edge and orientation, edges in ``graph`` order.
        weight: the layer's basis-to-channel weights.
        graph: receiver-sorted graph.

    Returns:
        The aggregated messages.

    Raises:
        ValueError: if the tensors are not on CUDA and Triton's interpreter is off.

    Shapes:
        x ``[N, O, C]``, basis ``[E, O, B]``, weight ``[B, C]`` → ``[N, O, C]``
    """
    return TRITON_OPS(x, basis, weight, graph)
