"""Shared test configuration: every test starts from a fixed seed; ``no_rdkit`` hides RDKit."""

import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


@pytest.fixture
def no_rdkit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes ``import rdkit`` fail as if RDKit were not installed (also when a test imported it before)."""
    for name in [name for name in sys.modules if name == "rdkit" or name.startswith("rdkit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rdkit", None)
