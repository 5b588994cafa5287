"""Kernels: scatter reductions, the receiver-sorted graph format, the fused spatial convolution,
:func:`require`, the value check that never waits for the device, and :func:`flush_denormals`, the
CPU mode that keeps denormal floats from slowing the kernel basis down.

Backends of :func:`spatial_conv`: ``"reference"`` (plain torch), ``"cpu"`` (chunked, fused) and,
when Triton is installed, ``"triton"`` (CUDA; its module is imported on first use).
"""

import importlib.util

from torch import Tensor

from ponita.ops._denormals import denormals_flushed, flush_denormals
from ponita.ops._receiver_csr import ReceiverCSR, receiver_csr
from ponita.ops._require import require
from ponita.ops._scatter import scatter_mean, scatter_sum
from ponita.ops._spatial_conv import (
    available_backends,
    register_backend,
    spatial_conv,
    spatial_conv_reference,
    use_backend,
)
from ponita.ops._spatial_conv_cpu import spatial_conv_cpu

register_backend("cpu", spatial_conv_cpu)


def _spatial_conv_triton(x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
    """The ``"triton"`` backend, importing Triton only when first called."""
    from ponita.ops._spatial_conv_triton import spatial_conv_triton

    return spatial_conv_triton(x, basis, weight, graph)


if importlib.util.find_spec("triton") is not None:
    register_backend("triton", _spatial_conv_triton)

__all__ = [
    "ReceiverCSR",
    "available_backends",
    "denormals_flushed",
    "flush_denormals",
    "receiver_csr",
    "register_backend",
    "require",
    "scatter_mean",
    "scatter_sum",
    "spatial_conv",
    "spatial_conv_reference",
    "use_backend",
]
