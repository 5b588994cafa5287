"""The data files shipped inside the ponita package (rMD17 ethanol, split 1; see ``data/README.md``)."""

from pathlib import Path


def bundled_data_dir() -> Path:
    """Returns the folder of the data bundled with ``ponita.datasets``.

    It holds ``rmd17_ethanol_train_01.npz`` and ``rmd17_ethanol_test_01.npz`` (CC0, from
    https://github.com/andersx/rmd17-npz), enough for the tests and the demo without a download.

    Returns:
        The absolute path of the ``data`` folder next to this module.

    Example:
        >>> sorted(path.name for path in bundled_data_dir().glob("*.npz"))
        ['rmd17_ethanol_test_01.npz', 'rmd17_ethanol_train_01.npz']
    """
    return Path(__file__).resolve().parent / "data"
