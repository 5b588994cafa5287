"""A plot of N-body forecasts: true trajectories, the input frame, the true and the predicted future positions."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from torch import Tensor  # noqa: E402

from ponita.datasets import NBodySimulations  # noqa: E402
from ponita.datasets._nbody import NBODY_INPUT_FRAME, NBODY_TARGET_FRAME  # noqa: E402


def plot_nbody_predictions(simulations: NBodySimulations, predicted: Tensor, path: str | Path) -> Path:
    """One panel per system (x–y projection): each particle's path over all 49 frames, its position at the
    input frame (circle), its true (square) and predicted (cross) position at the target frame.

    Args:
        simulations: the systems (``loc`` ``[S, 49, 3, 5]``).
        predicted: predicted target-frame positions ``[S, 5, 3]``.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    count = len(simulations)
    figure, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
    for index, axis in enumerate(axes[0]):
        loc = simulations.loc[index]  # [49, 3, 5]
        for particle in range(loc.shape[-1]):
            color = f"C{particle}"
            axis.plot(loc[:, 0, particle], loc[:, 1, particle], color=color, alpha=0.35, linewidth=1)
            axis.plot(*loc[NBODY_INPUT_FRAME, :2, particle], "o", color=color, markersize=4)
            axis.plot(*loc[NBODY_TARGET_FRAME, :2, particle], "s", color=color, markersize=6, fillstyle="none")
            axis.plot(*predicted[index, particle, :2].numpy(), "x", color=color, markersize=7)
        axis.set(title=f"test system {index}", xlabel="x", ylabel="y", aspect="equal")
    figure.suptitle(f"frame {NBODY_INPUT_FRAME} (o) → frame {NBODY_TARGET_FRAME}: true (□), predicted (×)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)
