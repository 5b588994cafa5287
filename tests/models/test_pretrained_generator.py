"""The README's molecule generator (``pretrained/qm9_edm_karras.pt``): loads, samples with the Heun defaults, and
its molecules are as stable as documented (within the noise of a small sample)."""

from pathlib import Path

import torch

from ponita.datasets import molecule_metrics
from ponita.models import read_checkpoint
from ponita.train import sample_molecules

GENERATOR = Path(__file__).resolve().parents[2] / "pretrained" / "qm9_edm_karras.pt"


def test_the_readme_generator_is_the_documented_karras_model() -> None:
    checkpoint = read_checkpoint(GENERATOR)
    model = checkpoint.build()
    assert model.config.objective == "karras"
    assert checkpoint.metadata["global_step"] == 42647  # pretrained/README.md, docs/generation.md


def test_its_molecules_are_mostly_stable_atoms() -> None:
    model = read_checkpoint(GENERATOR).build().eval()
    molecules = sample_molecules(model, 30, generator=torch.Generator().manual_seed(3))
    metrics = molecule_metrics(molecules)
    # ≈ 96 % atom stability over thousands of molecules (docs/generation.md); 30 molecules of ~18 atoms leave ≈ ±1.5 %
    assert metrics["atom_stability"] > 0.85
