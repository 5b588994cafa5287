"""The shipped molecule generators: the README's (``pretrained/qm9_edm_main.pt``, 8 layers, 12 directions) loads, samples with
the Heun defaults, its molecules are as stable as documented (within the noise of a small sample) and bf16 sampling
keeps its quality; the 4-layer generator's guide (an earlier state of the same run) fits it; the main run's
training state is the documented one."""

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data

from ponita.datasets import molecule_metrics
from ponita.models import Autoguidance, read_checkpoint
from ponita.train import export_model, resume_config, sample_molecules

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"
GENERATOR = PRETRAINED / "qm9_edm_main.pt"  # the README's
EIGHT_DIRECTIONS = PRETRAINED / "qm9_edm_deep8.pt"  # the README's until 2026-12-07, still in docs/generation.md
FOUR_LAYERS, GUIDE = PRETRAINED / "qm9_edm_karras.pt", PRETRAINED / "qm9_edm_karras_guide.pt"


def test_the_readme_generator_is_the_documented_12_direction_model() -> None:
    checkpoint = read_checkpoint(GENERATOR)
    model = checkpoint.build()
    network = model.network.config
    assert model.config.objective == "karras" and (network.num_layers, network.num_ori) == (8, 12)
    assert checkpoint.metadata["global_step"] == 7124  # pretrained/README.md, docs/generation.md
    eight = read_checkpoint(EIGHT_DIRECTIONS)
    assert eight.metadata["global_step"] == 9688 and eight.build().network.config.num_ori == 8
    four = read_checkpoint(FOUR_LAYERS)
    assert four.metadata["global_step"] == 42647 and four.build().network.config.num_layers == 4


def test_its_molecules_are_mostly_stable_atoms() -> None:
    model = read_checkpoint(GENERATOR).build().eval()
    molecules = sample_molecules(model, 30, generator=torch.Generator().manual_seed(3))
    metrics = molecule_metrics(molecules)
    # ≈ 96 % atom stability over thousands of molecules (docs/generation.md); 30 molecules of ~18 atoms leave ≈ ±1.5 %
    assert metrics["atom_stability"] > 0.85


def test_bf16_sampling_denoises_as_fp32_does_and_is_reproducible() -> None:
    model = read_checkpoint(GENERATOR).build().eval()
    molecules = sample_molecules(model, 6, generator=torch.Generator().manual_seed(4), steps=20)
    batch = Batch.from_data_list([Data(pos=torch.as_tensor(m.pos, dtype=torch.float32),
                                       z=torch.tensor([(1, 6, 7, 8, 9)[t] for t in m.types])) for m in molecules])
    errors = {}
    for precision in ("fp32", "bf16"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            errors[precision] = float(model.denoising_error(batch, 0.05, torch.Generator().manual_seed(0)))
    # The preconditioning keeps the skip path c_skip·x in fp32 and scales the network's bf16 output by c_out ≈ σ:
    # at low noise the estimate is as good as in fp32 (docs/generation.md: within 0.1 % at 0.02–0.3 Å, 300 molecules).
    assert abs(errors["bf16"] - errors["fp32"]) < 0.02 * errors["fp32"], errors
    first, second = (sample_molecules(model, 2, generator=torch.Generator().manual_seed(4), steps=5,
                                      precision="bf16") for _ in range(2))
    assert all((a.pos == b.pos).all() for a, b in zip(first, second))
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        sample_molecules(model, 1, precision="bf16-mixed")


def test_the_shipped_guide_is_the_same_run_earlier_and_guides_the_generator() -> None:
    generator, guide = read_checkpoint(FOUR_LAYERS), read_checkpoint(GUIDE)
    assert guide.metadata["global_step"] == 23903 < generator.metadata["global_step"]  # docs/generation.md
    assert guide.metadata["train_config"]["model"] == generator.metadata["train_config"]["model"]
    model, weaker = generator.build().eval(), guide.build().eval()
    plain = sample_molecules(model, 4, generator=torch.Generator().manual_seed(3))
    guided = sample_molecules(model, 4, generator=torch.Generator().manual_seed(3),
                              guidance=Autoguidance(weaker, 3.0, (0.0, 0.25)))
    assert [len(m.types) for m in guided] == [len(m.types) for m in plain]  # the same sizes, other positions
    assert any(not (a.pos == b.pos).all() for a, b in zip(guided, plain))


def test_the_shipped_main_run_state_is_the_documented_12_direction_run(tmp_path: Path) -> None:
    state = PRETRAINED / "qm9_edm_main_training_state.ckpt"
    config = resume_config(state)  # what `ponita train --resume` would continue
    assert (config.model["num_layers"], config.model["p_mean"], config.model["p_std"]) == (8, -1.8, 0.8)
    checkpoint = read_checkpoint(export_model(state, tmp_path / "main.pt"))
    assert checkpoint.metadata["global_step"] == 10492  # pretrained/README.md, docs/generation.md
    network = checkpoint.build().network.config
    assert (network.num_layers, network.num_ori, network.grid) == (8, 12, "fibonacci")
