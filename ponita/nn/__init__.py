"""Layers: invariant embeddings, PONITA convolutions, the ConvNeXt block, lifting and readouts."""

from ponita.nn._convnext_block import ConvNextBlock
from ponita.nn._fibre_bundle_conv import FibreBundleConv
from ponita.nn._gelu import GELU
from ponita.nn._kernel_basis import KernelBasis
from ponita.nn._kernel_inputs import KernelInputs
from ponita.nn._lifting import lift_scalars, lift_vectors
from ponita.nn._point_cloud_conv import PointCloudConv
from ponita.nn._polynomial_cutoff import PolynomialCutoff
from ponita.nn._polynomial_features import PolynomialFeatures
from ponita.nn._readout import SphericalTensorReadout, scalar_readout, vector_readout

__all__ = [
    "ConvNextBlock",
    "FibreBundleConv",
    "GELU",
    "KernelBasis",
    "KernelInputs",
    "PointCloudConv",
    "PolynomialCutoff",
    "PolynomialFeatures",
    "SphericalTensorReadout",
    "lift_scalars",
    "lift_vectors",
    "scalar_readout",
    "vector_readout",
]
