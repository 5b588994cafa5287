"""A seeded train/validation split of a list of frames."""

from collections.abc import Sequence
from typing import TypeVar

import torch

T = TypeVar("T")


def train_val_split(frames: Sequence[T], num_val: int = 50, seed: int = 0) -> tuple[list[T], list[T]]:
    """Splits frames into train and validation sets by a seeded random permutation.

    The rMD17 protocol used with ponita trains on 950 of the 1000 frames of a train split and validates on
    the other 50 (the default). The same ``frames`` and ``seed`` always give the same split, whatever the
    global torch seed. Both parts keep the original order of ``frames``.

    Args:
        frames: The frames to split (any sequence).
        num_val: How many frames go to the validation set; between 1 and ``len(frames) - 1``.
        seed: Seed of the permutation.

    Returns:
        ``(train, val)`` with ``len(frames) - num_val`` and ``num_val`` items; they do not overlap.

    Raises:
        ValueError: If ``num_val`` leaves no training or no validation frame.

    Example:
        >>> train, val = train_val_split(list(range(1000)))
        >>> len(train), len(val), set(train).isdisjoint(val)
        (950, 50, True)
    """
    if not 0 < num_val < len(frames):
        raise ValueError(
            f"num_val={num_val} must be between 1 and len(frames) - 1 = {len(frames) - 1} so that both the "
            "train and the validation set are non-empty."
        )
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(len(frames), generator=generator)  # [len(frames)]
    is_val = torch.zeros(len(frames), dtype=torch.bool)  # [len(frames)]
    is_val[permutation[:num_val]] = True
    train = [frame for frame, val in zip(frames, is_val.tolist()) if not val]
    val = [frame for frame, val in zip(frames, is_val.tolist()) if val]
    return train, val
