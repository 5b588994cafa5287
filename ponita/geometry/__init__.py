"""Geometry: deterministic orientation grids and bi-invariant point-pair attributes (pure functions)."""

from ponita.geometry._grids import (
    fibonacci_grid_s2,
    grid_s1,
    grid_so2,
    grid_so3,
    POLYHEDRON_SIZES,
    polyhedron_grid_s2,
    repulsion_grid_s2,
    rotation_group,
)
from ponita.geometry._rotations import axis_angle_to_matrix, quaternion_to_matrix, random_rotation
from ponita.geometry._invariants import (
    NORM_EPS,
    invariants_r2s1_fibre_bundle,
    invariants_r2s1_fibre_bundle_full,
    invariants_r2s1_point_cloud,
    invariants_r3s2_fibre_bundle,
    invariants_r3s2_fibre_bundle_full,
    invariants_r3s2_point_cloud,
    invariants_rn,
    invariants_se_fibre_bundle,
    invariants_se_point_cloud,
    relative_positions,
    safe_norm,
)

__all__ = [
    "NORM_EPS",
    "axis_angle_to_matrix",
    "fibonacci_grid_s2",
    "grid_s1",
    "grid_so2",
    "grid_so3",
    "invariants_r2s1_fibre_bundle",
    "invariants_r2s1_fibre_bundle_full",
    "invariants_r2s1_point_cloud",
    "invariants_r3s2_fibre_bundle",
    "invariants_r3s2_fibre_bundle_full",
    "invariants_r3s2_point_cloud",
    "invariants_rn",
    "invariants_se_fibre_bundle",
    "invariants_se_point_cloud",
    "POLYHEDRON_SIZES",
    "polyhedron_grid_s2",
    "quaternion_to_matrix",
    "random_rotation",
    "relative_positions",
    "repulsion_grid_s2",
    "rotation_group",
    "safe_norm",
]
