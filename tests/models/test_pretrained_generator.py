"""The README's molecule generator (``pretrained/qm9_edm_karras.pt``): loads, samples with the Heun defaults, and
its molecules are as stable as documented (within the noise of a small sample); its guide (an earlier state of the
same run) fits it."""

from pathlib import Path

import torch

from ponita.datasets import molecule_metrics
from ponita.models import Autoguidance, read_checkpoint
from ponita.train import export_model, resume_config, sample_molecules

GENERATOR = Path(__file__).resolve().parents[2] / "pretrained" / "qm9_edm_karras.pt"
GUIDE = GENERATOR.with_name("qm9_edm_karras_guide.pt")


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


def test_the_shipped_guide_is_the_same_run_earlier_and_guides_the_generator() -> None:
    generator, guide = read_checkpoint(GENERATOR), read_checkpoint(GUIDE)
    assert guide.metadata["global_step"] == 23903 < generator.metadata["global_step"]  # docs/generation.md
    assert guide.metadata["train_config"]["model"] == generator.metadata["train_config"]["model"]
    model, weaker = generator.build().eval(), guide.build().eval()
    plain = sample_molecules(model, 4, generator=torch.Generator().manual_seed(3))
    guided = sample_molecules(model, 4, generator=torch.Generator().manual_seed(3),
                              guidance=Autoguidance(weaker, 3.0, (0.0, 0.25)))
    assert [len(m.types) for m in guided] == [len(m.types) for m in plain]  # the same sizes, other positions
    assert any(not (a.pos == b.pos).all() for a, b in zip(guided, plain))


def test_the_shipped_main_run_state_is_the_documented_8_layer_run(tmp_path: Path) -> None:
    state = GENERATOR.with_name("qm9_edm_deep8_training_state.ckpt")
    config = resume_config(state)  # what `ponita train --resume` would continue
    assert (config.model["num_layers"], config.model["p_mean"], config.model["p_std"]) == (8, -1.8, 0.8)
    checkpoint = read_checkpoint(export_model(state, tmp_path / "deep8.pt"))
    assert checkpoint.metadata["global_step"] == 9688  # pretrained/README.md, docs/generation.md
    assert checkpoint.build().network.config.num_layers == 8
