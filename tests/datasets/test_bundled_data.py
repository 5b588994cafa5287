"""Tests of ponita.datasets._bundled_data."""

from ponita.datasets import bundled_data_dir


def test_bundled_data_dir_holds_ethanol_split_and_readme() -> None:
    names = sorted(path.name for path in bundled_data_dir().iterdir())
    assert names == ["README.md", "rmd17_ethanol_test_01.npz", "rmd17_ethanol_train_01.npz"]
