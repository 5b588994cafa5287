"""Machine-dependent choices: ``precision: auto`` picks bf16 only where it is fast, and says why; time budgets end annealed."""

import math
import subprocess
import sys

import pytest
import torch

from ponita.datasets import load_rmd17
from ponita.models import read_checkpoint
from ponita.train import choose_precision, cpu_bf16_speedup, fit, load_config, machine_summary
from ponita.train import _machine
from ponita.train._md17 import MD17Task

TINY = ["compile_step=false", "optimizer=adam", "ema_decay=0.5", "hidden_dim=8", "num_layers=1", "num_ori=4",
        "basis_dim=8", "batch_size=2", "warmup_epochs=0", "accelerator=cpu", "num_threads=1", "test_batch_size=10"]


def test_explicit_precisions_are_kept() -> None:
    for precision in ("32-true", "64-true", "bf16-mixed"):
        choice = choose_precision(precision, "cpu")
        assert (choice.precision, choice.reason) == (precision, "set in the config")


@pytest.mark.parametrize("speedup, expected", [(3.1, "bf16-mixed"), (1.3, "bf16-mixed"), (1.1, "32-true"),
                                               (0.03, "32-true")])
def test_auto_on_a_cpu_picks_bf16_only_where_its_gemms_are_faster(monkeypatch, speedup, expected) -> None:
    monkeypatch.setattr(_machine, "cpu_bf16_speedup", lambda threads: speedup)
    monkeypatch.setattr(_machine, "cpu_bf16_flags", lambda: ["avx512_bf16"] if speedup > 1 else [])
    choice = choose_precision("auto", "cpu")
    assert choice.precision == expected
    assert f"{speedup:.2f}×" in choice.reason and choice.reason.startswith("auto: ")
    assert ("CPU flags: avx512_bf16" in choice.reason) == (speedup > 1)
    assert str(choice) == f"{expected} ({choice.reason})"


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_cuda_follows_the_devices_bf16_support(monkeypatch, bf16, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Test GPU")
    monkeypatch.setattr(_machine, "cpu_bf16_speedup", lambda threads: pytest.fail("a CUDA run must not time the CPU"))
    assert choose_precision("auto", "auto").precision == expected
    assert choose_precision("auto", "gpu").precision == expected


def test_cpu_speedup_is_a_measured_positive_ratio_and_leaves_the_thread_count_alone() -> None:
    threads = torch.get_num_threads()
    speedup = cpu_bf16_speedup(1, repeats=3)
    assert math.isfinite(speedup) and speedup > 0
    assert torch.get_num_threads() == threads
    assert f"{torch.backends.cpu.get_cpu_capability()}" in machine_summary(1) and "1 thread(s)" in machine_summary(1)


def test_the_presets_that_said_bf16_now_say_auto() -> None:
    assert load_config("md17", "quick-large").precision == "auto"
    assert load_config("qm9-edm", "quick").precision == "auto"
    assert load_config("md17", "quick", overrides=["precision=bf16-mixed"]).precision == "bf16-mixed"


def test_every_time_capped_preset_ends_annealed() -> None:
    from ponita.train import preset_names, tasks

    for task in tasks():
        for preset in preset_names(task):
            config = load_config(task, preset)
            if config.max_time_minutes is not None:
                assert config.lr_horizon == "time", f"{task} {preset}"


def test_auto_precision_is_recorded_in_the_models_protocol(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(_machine, "cpu_bf16_speedup", lambda threads: 0.03)  # as on an AVX2-only CPU
    frames = load_rmd17("ethanol", "train")[:6]
    task = MD17Task(load_config("md17", "quick", overrides=[*TINY, "max_epochs=1", "max_time_minutes=null",
                                                            "lr_horizon=epochs", "precision=auto",
                                                            f"output={tmp_path}"]))
    result = fit(task, frames[:4], frames[4:6], protocol="tiny")
    protocol = read_checkpoint(result.model).metadata["protocol"]
    assert protocol.startswith("tiny; trained in 32-true (auto: bf16 GEMM 0.03× the speed of fp32")
    assert read_checkpoint(result.model).dtype == "float32"


def test_a_time_capped_run_that_stops_early_ends_at_the_final_learning_rate(tmp_path) -> None:
    frames = load_rmd17("ethanol", "train")[:8]
    task = MD17Task(load_config("md17", "quick", overrides=[*TINY, "max_epochs=100000", "max_time_minutes=0.05",
                                                            "lr_horizon=time", "precision=32-true", "lr=1e-3",
                                                            f"output={tmp_path}"]))
    result = fit(task, frames[:6], frames[6:8])
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    assert 0 < state["epoch"] < 1000  # stopped by the 3 seconds, not by max_epochs
    assert state["optimizer_states"][0]["param_groups"][0]["lr"] < 1e-3 * 1e-2


_PAGE_FAULTS_OF_REUSE = """
import resource, sys, torch
from ponita.train import reuse_freed_memory
if sys.argv[1] == "tuned" and not reuse_freed_memory():
    print("skip"); sys.exit()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(16 * 2**20).sum()  # a 64 MB block, above glibc's largest mmap threshold (32 MB)
before = faults()
for _ in range(10):
    torch.ones(16 * 2**20).sum()
print((faults() - before) / (16 * 2**20 * 4 / 4096))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_reuse_freed_memory_serves_blocks_above_32_mb_from_the_heap() -> None:
    """Without it each 64 MB temporary is a fresh mmap whose 16,384 pages fault in again; with it, none do."""
    runs = {mode: subprocess.run([sys.executable, "-c", _PAGE_FAULTS_OF_REUSE, mode], capture_output=True,
                                 text=True, check=True).stdout.strip() for mode in ("default", "tuned")}
    if runs["tuned"] == "skip":
        pytest.skip("the C library is not glibc")
    assert float(runs["default"]) > 5.0  # block-sized page faults, about one block's worth per allocation
    assert float(runs["tuned"]) < 0.5
