"""Checking tensor values without making the host wait for the device."""

from collections.abc import Callable

import torch
from torch import Tensor


def require(condition: Tensor, message: str, detail: Callable[[], str] | None = None) -> None:
    """Raises ``ValueError`` unless the boolean scalar ``condition`` holds, without a host sync.

    The check is ``torch._assert_async``: on the CPU it runs at once and a failure becomes
    ``ValueError(detail() if detail else message)`` (``detail`` may read tensors to name the culprit;
    it runs only on failure). On CUDA the assertion runs on the device and never stalls the host;
    a failure surfaces at the next synchronising call as a ``RuntimeError`` carrying ``message`` and,
    like PyTorch's own device-side index checks, leaves the CUDA context unusable for the process (check
    suspicious input on the CPU first when that matters). Under
    ``torch.compile`` it is captured into the graph (no graph break) and fails with ``RuntimeError``.

    Args:
        condition: a boolean tensor with one element.
        message: what was wrong and what to do about it.
        detail: builds a more specific message on the CPU's failure path.

    Example:
        >>> require(torch.tensor(True), "never raised")
        >>> require(torch.isfinite(torch.tensor([1.0, float("nan")])).all(), "x holds NaN")
        Traceback (most recent call last):
            ...
        ValueError: x holds NaN
    """
    if torch.compiler.is_compiling() or condition.is_cuda:
        torch._assert_async(condition, message)
        return
    try:
        torch._assert_async(condition, message)
    except RuntimeError:
        raise ValueError(detail() if detail is not None else message) from None
