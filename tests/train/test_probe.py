"""The training-time probe: fires every interval of training-step time, appends rows, resumes its clock."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import pytest
from torch import nn

from ponita.train import _probe
from ponita.train._learning_curve import plot_learning_curve
from ponita.train._probe import ProbeCallback, read_probes


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_run(calls: list) -> tuple[SimpleNamespace, SimpleNamespace]:
    task = SimpleNamespace(probe=lambda model: calls.append(model.training) or {"quality": float(len(calls))})
    module = SimpleNamespace(ema=nn.Linear(1, 1), task=task)
    trainer = SimpleNamespace(is_global_zero=True, current_epoch=0, global_step=0)
    return trainer, module


def _steps(callback: ProbeCallback, trainer, module, clock: _Clock, count: int, seconds: float) -> None:
    for _ in range(count):
        callback.on_train_batch_start(trainer, module, None, 0)
        clock.now += seconds
        trainer.global_step += 1
        callback.on_train_batch_end(trainer, module, None, None, 0)
        clock.now += 100.0  # time outside training steps (validation, data) does not count


def test_probes_fire_every_interval_of_training_step_time_in_eval_mode(monkeypatch, tmp_path) -> None:
    clock = _Clock()
    monkeypatch.setattr(_probe.time, "perf_counter", clock)
    calls: list = []
    trainer, module = _fake_run(calls)
    callback = ProbeCallback(every_minutes=1.0, path=tmp_path / "logs" / "probe.csv")
    _steps(callback, trainer, module, clock, count=25, seconds=10.0)  # 250 s of steps: probes at 60, 120, 180, 240 s
    rows = read_probes(tmp_path / "logs" / "probe.csv")
    assert [row["step"] for row in rows] == [6, 12, 18, 24]
    assert [round(row["train_hours"] * 3600) for row in rows] == [60, 120, 180, 240]
    assert [row["quality"] for row in rows] == [1.0, 2.0, 3.0, 4.0] and calls == [False] * 4
    assert module.ema.training  # the model's mode is restored


def test_a_resumed_callback_continues_the_clock_and_the_file(monkeypatch, tmp_path) -> None:
    clock = _Clock()
    monkeypatch.setattr(_probe.time, "perf_counter", clock)
    calls: list = []
    trainer, module = _fake_run(calls)
    path = tmp_path / "probe.csv"
    first = ProbeCallback(2.0, path)
    _steps(first, trainer, module, clock, count=15, seconds=10.0)  # 150 s: one probe at 120 s
    second = ProbeCallback(2.0, path)
    second.load_state_dict(first.state_dict())
    _steps(second, trainer, module, clock, count=10, seconds=10.0)  # to 250 s: one more at 240 s
    assert [round(row["train_hours"] * 3600) for row in read_probes(path)] == [120, 240]


def test_interval_must_be_positive_and_the_curve_gets_probe_panels(tmp_path) -> None:
    with pytest.raises(ValueError, match="every_minutes must be > 0"):
        ProbeCallback(0.0, tmp_path / "p.csv")
    (tmp_path / "probe.csv").write_text("train_hours,epoch,step,probe_seconds,molecule_stability\n0.5,0,10,2.0,0.1\n"
                                        "1.0,1,20,2.0,0.2\n")
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss,val/loss\n0,10,1.0,\n0,10,,0.9\n")
    with_probes = plt.imread(plot_learning_curve(tmp_path, tmp_path / "curve.png", {"loss": "val loss"}))
    (tmp_path / "probe.csv").unlink()
    without = plt.imread(plot_learning_curve(tmp_path, tmp_path / "plain.png", {"loss": "val loss"}))
    assert without.shape[:2] == (400, 1000) and with_probes.shape[:2] == (800, 1000)  # a second row for the probe
