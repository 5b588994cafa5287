"""Statistics for the data-dependent rescaling of kernel weights, identical on every process."""

import torch
import torch.distributed as dist
from torch import Tensor


def global_std(x: Tensor) -> Tensor:
    """Standard deviation of all entries of ``x``, pooled over every process of a distributed run.

    Sums, sums of squares and counts are all-reduced when ``torch.distributed`` is initialised, so
    every rank gets the same value and a calibration with it gives identical weights everywhere.

    Shapes:
        ``[*]`` → ``[]``

    Example:
        >>> float(global_std(torch.tensor([1.0, 3.0])))
        1.0
    """
    count = torch.tensor(float(x.numel()), dtype=x.dtype, device=x.device)  # on x's device, as all_reduce needs
    stats = torch.stack([x.sum(), x.pow(2).sum(), count])  # [3]
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(stats)
    total, total_squared, count = stats.unbind()
    mean = total / count
    return (total_squared / count - mean**2).clamp(min=0.0).sqrt()


def rescale_(weight: Tensor, target_std: Tensor, current_std: Tensor) -> None:
    """Multiplies ``weight`` in place by ``target_std / current_std`` (skipped if ``current_std`` is 0)."""
    if current_std > 0:
        weight.mul_(target_std / current_std)
