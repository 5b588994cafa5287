r"""Flushing denormal floats to zero on the CPU, for the duration of a computation.

A float32 below :math:`1.2 \cdot 10^{-38}` is *denormal*; x86 CPUs compute with such numbers through a
microcode assist that is ~100× slower than normal arithmetic. PONITA's kernel basis meets them all the
time: the GELU of the basis MLP evaluates :math:`\operatorname{erf}(x/\sqrt2)` and its derivative
:math:`e^{-x^2/2}`, whose polynomial approximations underflow into the denormal range for
:math:`|x| \gtrsim 9`–:math:`13`, a range that the cubic polynomial features of the attributes reach on
ordinary molecules. On one CPU thread the compiled energy-and-forces call of the shipped aspirin
potential takes 1.7× longer with denormals than without (2.15 against 1.26 ms, ``docs/performance.md``).

Flushing them (the CPU's FTZ and DAZ modes, :func:`torch.set_flush_denormal`) changes results only by
numbers below :math:`10^{-38}`, far below float32's resolution of any quantity the network adds them to.
The mode belongs to the calling thread; PyTorch's intra-op worker threads keep their own, so the gain
is that of single-threaded work (molecular dynamics, sampling on one core).
"""

import contextlib
from collections.abc import Iterator

import torch


def denormals_flushed() -> bool:
    """Whether the calling thread flushes denormal floats to zero now.

    Example:
        >>> with flush_denormals():
        ...     denormals_flushed()
        True
    """
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # denormal; 0 if the conversion is flushed
    return bool((tiny * 1.0)[0] == 0)  # 0 under DAZ/FTZ, 1e-39 otherwise


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Context in which the calling thread flushes denormal floats to zero (``enabled``), restored after.

    A no-op on CPUs where PyTorch cannot set the mode (:func:`torch.set_flush_denormal` returns ``False``).

    Example:
        >>> before = denormals_flushed()
        >>> with flush_denormals():
        ...     x = torch.tensor([1e-39]) * 1.0
        >>> denormals_flushed() == before
        True
    """
    previous = denormals_flushed()
    if enabled == previous:
        yield
        return
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)
