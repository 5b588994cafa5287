"""The one argument every PONITA convolution takes besides its features."""

from typing import NamedTuple

from torch import Tensor

from ponita.ops import ReceiverCSR


class KernelInputs(NamedTuple):
    """Kernel bases and graph of one forward pass, computed once and shared by every layer.

    Both convolutions (:class:`PointCloudConv`, :class:`FibreBundleConv`) and :class:`ConvNextBlock`
    take ``(x, kernel_inputs)``, so a network passes the same value to every layer whatever its space.

    Attributes:
        basis: spatial kernel basis, edges in ``graph`` order: ``[E, B]`` on point clouds, ``[E, O, B]``
            on separable fibre bundles, ``[E, O, O, B]`` on non-separable ones.
        graph: the receiver-sorted graph (:func:`ponita.ops.receiver_csr`).
        fibre_basis: basis over pairs of grid elements ``[O, O, B]`` of a separable fibre bundle, else
            ``None``.
    """

    basis: Tensor
    graph: ReceiverCSR
    fibre_basis: Tensor | None = None
