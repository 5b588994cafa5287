r"""The spatial convolution of PONITA with a weight-shared kernel basis, and its backends.

For every layer the kernel of each edge and orientation is a learned linear combination of the
shared kernel basis, and messages are summed at the receiver:

.. math::
    y_{i,o,c} = \sum_{e\,:\,\mathrm{dst}(e) = i} k_{e,o,c}\, x_{\mathrm{src}(e),o,c},
    \qquad k_{e,o,c} = \sum_b \varphi_{e,o,b}\, W_{b,c}

with :math:`\varphi` the kernel basis (computed once per forward pass, shared by all layers) and
:math:`W` the layer's weight. Point clouds use the same op with a single orientation (``O = 1``).

Backends compute the same function. ``reference`` is the plain-torch gather–multiply–scatter that
the others are tested against. :func:`spatial_conv` picks a backend from the argument, else from the
innermost :func:`use_backend` context, else automatically: the fused backend of the device (``"cpu"``
or ``"triton"``) when the ``[E, O, C]`` messages of one call would exceed :data:`FUSED_MIN_BYTES`
(CPU) or :data:`FUSED_MIN_BYTES_CUDA` (GPU), else ``"reference"``; under ``torch.compile``
always ``"reference"``, whose plain-torch ops the compiler fuses itself. A fused backend chosen
explicitly is a registered operator (``ponita::cpu_conv``, ``ponita::triton_conv`` and their slots, see
:class:`~ponita.ops._fused_spatial_conv.FusedOps`), which ``torch.compile`` and CUDA graphs keep whole.
"""

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ponita.ops._receiver_csr import ReceiverCSR
from ponita.ops._scatter import scatter_sum

SpatialConvFn = Callable[[Tensor, Tensor, Tensor, ReceiverCSR], Tensor]


def spatial_conv_reference(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    """Plain-torch spatial convolution; materialises ``[E, O, C]`` kernels and messages.

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
    kernel = basis @ weight  # [E, O, C]
    messages = kernel * x.index_select(0, graph.src)  # [E, O, C]; backward: index_add_, cheaper than x[src]'s index_put_
    return scatter_sum(messages, graph.dst, graph.num_nodes)  # [N, O, C]


_BACKENDS: dict[str, SpatialConvFn] = {"reference": spatial_conv_reference}
_backend_stack: list[str] = []


def register_backend(name: str, fn: SpatialConvFn) -> None:
    """Registers a spatial-convolution backend under ``name`` (used by the fused kernels)."""
    _BACKENDS[name] = fn


def available_backends() -> tuple[str, ...]:
    """Names of the registered backends, plus ``"auto"``."""
    return ("auto", *_BACKENDS)


def _check_backend(name: str) -> str:
    if name != "auto" and name not in _BACKENDS:
        raise ValueError(
            f"Unknown spatial-conv backend {name!r}; choose one of {available_backends()}."
        )
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager that selects the backend of every :func:`spatial_conv` call inside it.

    Example:
        >>> with use_backend("reference"):
        ...     pass
    """
    _backend_stack.append(_check_backend(name))
    try:
        yield
    finally:
        _backend_stack.pop()


FUSED_MIN_BYTES = 64 * 2**20
"""On the CPU, ``"auto"`` fuses only when one ``[E, O, C]`` message tensor would exceed this size.

Below it, the reference path keeps its kernels for backward and needs fewer matrix products in
force training (6 against 11 per layer for a double backward), and its tensors fit in cache anyway;
above it, memory dominates and the fused path wins (measured in ``docs/performance.md``)."""


FUSED_MIN_BYTES_CUDA = 2**30
"""On CUDA, ``"auto"`` runs the Triton kernels only when one ``[E, O, C]`` message tensor would exceed this.

On an H200 the plain-torch reference trains 1.5–2.8× faster than the Triton kernels in every measured
configuration (its gathers, GEMMs and ``index_add`` run on tensor cores and tuned library kernels)
while needing 1.7–3.4× more memory (``docs/performance.md``, GPU section). So the GPU fuses only when
memory, not speed, is what limits: above 1 GiB per message tensor a network keeps several such
tensors per layer for backward."""


def _auto_backend(x: Tensor, basis: Tensor) -> str:
    if torch.compiler.is_compiling():
        return "reference"  # plain torch, which the compiler fuses itself; sizes may be symbolic here
    fused, threshold = ("triton", FUSED_MIN_BYTES_CUDA) if x.is_cuda else ("cpu", FUSED_MIN_BYTES)
    message_bytes = basis.shape[0] * x.shape[1] * x.shape[2] * x.element_size()
    return fused if fused in _BACKENDS and message_bytes > threshold else "reference"


def spatial_conv(
    x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR, *, backend: str | None = None
) -> Tensor:
    r"""Spatial convolution with a kernel mixed from a shared basis (see the module docstring).

    Args:
        x: node features on the grid.
        basis: kernel basis :math:`\varphi` of each edge and orientation, edges in ``graph`` order.
        weight: the layer's weights :math:`W`.
        graph: receiver-sorted graph from :func:`receiver_csr`.
        backend: ``"auto"``, ``"reference"`` or a registered fused backend; ``None`` uses the
            innermost :func:`use_backend` context, else ``"auto"``.

    Returns:
        :math:`y`.

    Raises:
        ValueError: on inconsistent shapes or an unknown backend.

    Shapes:
        x ``[N, O, C]``, basis ``[E, O, B]``, weight ``[B, C]`` → ``[N, O, C]``

    Example:
        >>> from ponita.ops import receiver_csr
        >>> csr, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> spatial_conv(torch.ones(2, 1, 4), torch.ones(2, 1, 3), torch.ones(3, 4), csr).shape
        torch.Size([2, 1, 4])
    """
    if x.dim() != 3 or basis.dim() != 3 or weight.dim() != 2:
        raise ValueError(
            "spatial_conv expects x [N, O, C], basis [E, O, B] and weight [B, C]; got "
            f"{list(x.shape)}, {list(basis.shape)}, {list(weight.shape)}."
        )
    if (
        x.shape[0] != graph.num_nodes
        or basis.shape[0] != graph.num_edges
        or basis.shape[1] != x.shape[1]
        or weight.shape != (basis.shape[2], x.shape[2])
    ):
        raise ValueError(
            f"spatial_conv shapes disagree: x {list(x.shape)}, basis {list(basis.shape)}, weight "
            f"{list(weight.shape)} for a graph of {graph.num_nodes} nodes and {graph.num_edges} edges."
        )
    name = _check_backend(backend or (_backend_stack[-1] if _backend_stack else "auto"))
    if name == "auto":
        name = _auto_backend(x, basis)
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        # Under autocast every operand runs in the autocast dtype (e.g. bf16); backends then see
        # one dtype, and accumulate sums in float32 themselves.
        dtype = torch.get_autocast_dtype(device_type)
        with torch.autocast(device_type, enabled=False):
            return _BACKENDS[name](x.to(dtype), basis.to(dtype), weight.to(dtype), graph)
    return _BACKENDS[name](x, basis, weight, graph)
