"""Ragged ranges: the repeat-interleave arithmetic that enumerates variable-length segments."""

import torch
from torch import Tensor


def segment_starts(counts: Tensor) -> Tensor:
    """Where each segment starts in a flat array that holds the segments one after another.

    Args:
        counts: the length of each segment, non-negative integers.

    Returns:
        The exclusive cumulative sum of ``counts``.

    Shapes:
        counts ``[S]`` → ``[S]``

    Example:
        >>> segment_starts(torch.tensor([2, 0, 3]))
        tensor([0, 2, 2])
    """
    return torch.cumsum(counts, 0) - counts  # [S]


def ragged_arange(counts: Tensor, total: int | None = None) -> tuple[Tensor, Tensor]:
    """Enumerates ``range(counts[s])`` for every segment ``s``, as one flat array.

    Element ``t`` of the output belongs to segment ``segment[t]`` and is its ``local[t]``-th element.
    Segments are listed in order, and each one from ``0`` to ``counts[s] - 1``.

    Args:
        counts: the length of each segment, non-negative integers.
        total: ``counts.sum()`` when the caller knows it on the host; otherwise it is read from the device
            (one host synchronisation).

    Returns:
        ``(segment, local)``, both of length ``T = counts.sum()``.

    Shapes:
        counts ``[S]`` → ``([T], [T])``

    Example:
        >>> ragged_arange(torch.tensor([2, 0, 3]))
        (tensor([0, 0, 2, 2, 2]), tensor([0, 1, 0, 1, 2]))
    """
    total = int(counts.sum()) if total is None else total
    segment = torch.repeat_interleave(
        torch.arange(counts.numel(), device=counts.device), counts, output_size=total
    )  # [T]
    local = torch.arange(total, device=counts.device) - segment_starts(counts)[segment]  # [T]
    return segment, local
