"""Kernels: scatter reductions, the receiver-sorted graph format and the fused spatial convolution."""

from ponita.ops._receiver_csr import ReceiverCSR, receiver_csr
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

__all__ = [
    "ReceiverCSR",
    "available_backends",
    "receiver_csr",
    "register_backend",
    "scatter_mean",
    "scatter_sum",
    "spatial_conv",
    "spatial_conv_cpu",
    "spatial_conv_reference",
    "use_backend",
]
