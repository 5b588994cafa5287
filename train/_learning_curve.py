"""A learning-curve plot from Lightning's CSV log."""

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from ._probe import PROBE_FILE, read_probes  # noqa: E402

_PROBE_BOOKKEEPING = ("train_hours", "epoch", "step", "probe_seconds")


def plot_learning_curve(log_dir: str | Path, path: str | Path, metrics: dict[str, str]) -> Path:
    """Plots the training loss and the validation metrics per epoch (log scale), and the task's probes against
    training hours if the run logged any (``probe.csv``, see :class:`~ponita.train.ProbeCallback`), and saves a PNG.

    Args:
        log_dir: the folder of the ``metrics*.csv`` files written by Lightning's ``CSVLogger`` (one per
            resumed part of a run; later epochs override earlier ones).
        path: the PNG to write.
        metrics: validation metrics, name (logged as ``val/<name>``) → label, as a task's ``metrics``.

    Returns:
        ``path``.
    """
    curves = [("train/loss", "training loss", 0), *((f"val/{name}", label, 1) for name, label in metrics.items())]
    series: dict[str, dict[int, float]] = {key: {} for key, _, _ in curves}
    files = sorted(Path(log_dir).glob("metrics-*.csv"), key=lambda p: int(p.stem.split("-")[1]))
    for metrics_csv in [*files, Path(log_dir) / "metrics.csv"]:
        if not metrics_csv.is_file():
            continue
        with open(metrics_csv, newline="") as file:
            for row in csv.DictReader(file):
                for key in series:
                    if row.get(key) and row.get("epoch"):
                        series[key][int(float(row["epoch"]))] = float(row[key])
    probes = read_probes(Path(log_dir) / PROBE_FILE)
    measures = [key for key in (probes[0] if probes else {}) if key not in _PROBE_BOOKKEEPING]
    columns = max(2, min(3, len(measures)))  # the two epoch panels on the first row, the probes below
    rows = 1 + math.ceil(len(measures) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for axis in grid[0, 2:]:
        axis.set_visible(False)
    for axis in grid.flat[columns + len(measures):]:
        axis.set_visible(False)
    axes = [grid[0, 0], grid[0, 1], *grid.flat[columns:columns + len(measures)]]
    for key, label, panel in curves:
        if series[key]:
            epochs = sorted(series[key])
            axes[panel].plot([epoch + 1 for epoch in epochs], [series[key][e] for e in epochs], label=label)
    for axis, title in zip(axes, ("training loss", "validation (EMA weights)")):
        axis.set(xlabel="epoch", yscale="log", title=title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    for axis, key in zip(axes[2:], measures):  # the task's probes against hours of training steps
        rows = [row for row in probes if key in row]
        axis.plot([row["train_hours"] for row in rows], [row[key] for row in rows], marker="o")
        axis.set(xlabel="hours of training steps", title=f"probe: {key.replace('_', ' ')} (EMA weights)")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)
