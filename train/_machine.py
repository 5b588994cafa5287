"""Choices that depend on the machine a run lands on: the precision behind ``precision: auto``, what the run header
says, and a benchmark of the precisions on this machine (``ponita bench precision``).

A preset tuned on one CPU can be a trap on the next: a bf16 matrix product is ≈ 3× faster than fp32 on a CPU
with native bf16 (AVX-512-BF16, AMX) and ≈ 30× *slower* on one without (AVX2 only: most laptops and many
cloud CPUs), where PyTorch emulates it. ``precision: auto`` therefore measures instead of guessing: it
times a small bf16 and fp32 matrix product on the threads the run will use and picks bf16 only where
it is clearly the faster one. On CUDA it picks bf16 where the device supports it.
"""

import ctypes
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

BF16_MIN_SPEEDUP = 1.25
"""``precision: auto`` on a CPU picks bf16 when a bf16 GEMM is at least this much faster than fp32 (the
non-GEMM work of a step gains nothing, and autocast adds casts)."""

_GEMM_SHAPE = (1024, 128, 128)  # rows × inner × outer: a layer's GEMM at the width of the CPU presets
_SPEEDUPS: dict[tuple[int, int], float] = {}  # (threads, repeats) → measured speed-up, once per process


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run trains in and why (printed in the run header, stored in the model's protocol).

    Attributes:
        precision: a Lightning precision, ``"32-true"``, ``"64-true"`` or ``"bf16-mixed"``.
        reason: why, in words (e.g. the measured bf16 speed-up).
    """

    precision: str
    reason: str

    def __str__(self) -> str:
        return f"{self.precision} ({self.reason})"


def choose_precision(requested: str, accelerator: str = "auto") -> PrecisionChoice:
    """The precision to train in: ``requested`` itself, or for ``"auto"`` the fastest safe one on this machine.

    ``"auto"`` gives ``"bf16-mixed"`` on a CUDA device that supports bf16 and on a CPU where a bf16 GEMM
    runs at least :data:`BF16_MIN_SPEEDUP` times faster than fp32 (:func:`cpu_bf16_speedup`), and
    ``"32-true"`` otherwise.

    Args:
        requested: the config's ``precision``.
        accelerator: the config's ``accelerator`` (``"auto"``: CUDA when available, as Lightning does).

    Example:
        >>> choose_precision("32-true").precision
        '32-true'
    """
    if requested != "auto":
        return PrecisionChoice(requested, "set in the config")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16-mixed", f"auto: {torch.cuda.get_device_name()} supports bf16")
        return PrecisionChoice("32-true", "auto: the GPU has no bf16")
    speedup = cpu_bf16_speedup(torch.get_num_threads())
    flags = cpu_bf16_flags()
    flags = f"CPU flags: {', '.join(flags)}" if flags else "the CPU has no avx512_bf16 or amx_bf16"
    measured = f"bf16 GEMM {speedup:.2f}× the speed of fp32 on {torch.get_num_threads()} thread(s); {flags}"
    if speedup >= BF16_MIN_SPEEDUP:
        return PrecisionChoice("bf16-mixed", f"auto: {measured}")
    return PrecisionChoice("32-true", f"auto: {measured}")


def cpu_bf16_speedup(num_threads: int, repeats: int = 7) -> float:
    """fp32 time / bf16 time of one ``1024×128 @ 128×128`` matrix product on ``num_threads`` CPU threads.

    The median of ``repeats`` interleaved timings after a warm-up (about 20 ms in all on a CPU with native
    bf16, 0.2 s without); measured once per process and thread count.
    """
    if (num_threads, repeats) not in _SPEEDUPS:
        _SPEEDUPS[num_threads, repeats] = _measure_bf16_speedup(num_threads, repeats)
    return _SPEEDUPS[num_threads, repeats]


def _measure_bf16_speedup(num_threads: int, repeats: int) -> float:
    rows, inner, outer = _GEMM_SHAPE
    generator = torch.Generator().manual_seed(0)
    a32 = torch.randn(rows, inner, generator=generator)
    b32 = torch.randn(inner, outer, generator=generator)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        timings: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
        for repeat in range(repeats + 1):
            for a, b in ((a32, b32), (a16, b16)):
                start = time.perf_counter()
                torch.mm(a, b)
                if repeat > 0:  # the first round warms up caches and oneDNN's kernel selection
                    timings[a.dtype].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(timings[torch.float32]) / statistics.median(timings[torch.bfloat16])


def cpu_bf16_flags() -> list[str]:
    """The CPU's native-bf16 flags (``avx512_bf16``, ``amx_bf16``) from ``/proc/cpuinfo``; empty where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    words = set(text.split("\n\n")[0].split())
    return [flag for flag in ("avx512_bf16", "amx_bf16") if flag in words]


def machine_summary(num_threads: int | None = None) -> str:
    """One line on the machine: CPU model, cores, PyTorch's CPU capability, bf16 flags, threads (and the GPU)."""
    model = _cpu_model() or platform.processor() or platform.machine()
    capability = torch.backends.cpu.get_cpu_capability()
    flags = ", ".join(cpu_bf16_flags()) or "no avx512_bf16/amx_bf16"
    threads = num_threads if num_threads is not None else torch.get_num_threads()
    text = f"{model}, {os.cpu_count()} cores ({flags}), PyTorch CPU kernels {capability}, {threads} thread(s)"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt parameters of glibc's malloc.h
_GLIBC_MAX_MMAP_THRESHOLD = 32 * 2**20  # the largest value glibc accepts on 64-bit systems


def reuse_freed_memory() -> bool:
    """Asks glibc's ``malloc`` to keep freed blocks for reuse instead of handing them back to the system.

    By default glibc serves every block over its (adaptive) threshold with a fresh ``mmap`` and unmaps it when
    freed, so every large temporary of a step — ``[E, O, C]`` kernels and messages, tens of MB each — comes
    back as new pages that the kernel must fault in and zero: 0.25–0.3 s of system time per aspirin training
    step of the paper configuration (≈ 280,000 page faults). Raising the thresholds (``mallopt``) makes such
    blocks come from the heap and stay there: 6× fewer faults, and the step up to 16 % faster
    (``docs/performance.md``). glibc caps the mmap threshold at 32 MB, so blocks above it (the QM9
    generator's ``[E, O, C]`` tensors at batch 64 or 100) are also kept off ``mmap`` (``M_MMAP_MAX = 0``):
    its training step 1.8× and sampling 1.4× faster on an AVX2 host where a third to a half of the time went
    to faulting pages in.
    The process keeps its peak memory instead of returning it between steps. ``ponita``'s commands call this
    at start; in a script of your own, call it first. Returns ``False`` (and changes nothing) where the C
    library is not glibc.
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    return (bool(mallopt(_M_MMAP_THRESHOLD, _GLIBC_MAX_MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
            and bool(mallopt(_M_MMAP_MAX, 0)))
