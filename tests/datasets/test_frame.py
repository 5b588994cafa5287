"""Tests of ponita.datasets._frame."""

import numpy as np
import torch

from ponita.datasets._frame import make_frame


def test_make_frame_fields_have_documented_shapes_and_dtypes() -> None:
    frame = make_frame(np.array([8, 1, 1], dtype=np.uint8), np.ones((3, 3)), -2.5, np.zeros((3, 3)))
    assert frame.z.shape == (3,) and frame.z.dtype == torch.long
    assert frame.pos.shape == (3, 3) and frame.pos.dtype == torch.float64
    assert frame.energy.shape == (1,) and frame.energy.dtype == torch.float64
    assert frame.forces.shape == (3, 3) and frame.forces.dtype == torch.float64
    assert frame.num_nodes == 3
