"""Tests of ponita.datasets._train_val_split."""

import pytest
import torch

from ponita.datasets import train_val_split


def test_default_split_is_950_train_50_val_disjoint_and_complete() -> None:
    frames = list(range(1000))
    train, val = train_val_split(frames)
    assert len(train) == 950 and len(val) == 50
    assert sorted(train + val) == frames
    assert train == sorted(train) and val == sorted(val)


def test_split_depends_on_seed_only() -> None:
    frames = list(range(1000))
    first = train_val_split(frames, seed=3)
    torch.manual_seed(123)
    assert train_val_split(frames, seed=3) == first
    assert train_val_split(frames, seed=4)[1] != first[1]


@pytest.mark.parametrize("num_val", [0, 10, -1])
def test_split_rejects_num_val_leaving_an_empty_part(num_val: int) -> None:
    with pytest.raises(ValueError, match=rf"num_val={num_val} must be between 1 and len\(frames\) - 1 = 9"):
        train_val_split(list(range(10)), num_val=num_val)
