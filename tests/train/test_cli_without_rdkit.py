"""Without RDKit, every ``ponita`` command that needs it fails with one line that says what to install, before
any work: exit status 2, no traceback, no output files."""

from pathlib import Path

import pytest
import pytorch_lightning as pl

import ponita.train._edm as edm_module
import ponita.train.deploy._sampling as sampling_module
from ponita.train.cli import main

GENERATOR = Path(__file__).resolve().parents[2] / "pretrained" / "qm9_edm_quick.pt"
WATER_XYZ = "3\nwater\nO 0.0 0.0 0.0\nH 0.96 0.0 0.0\nH -0.24 0.93 0.0\n"


@pytest.fixture(autouse=True)
def no_work(no_rdkit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """RDKit hidden, and training or sampling fail the test if they start."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the missing RDKit was reported")

    monkeypatch.setattr(pl.Trainer, "fit", refuse)
    monkeypatch.setattr(sampling_module, "sample_molecules", refuse)  # ponita sample
    monkeypatch.setattr(edm_module, "sample_molecules", refuse)  # ponita test


@pytest.mark.parametrize(
    ("argv", "feature"),
    [
        ("evaluate-molecules {tmp}/water.xyz --json {tmp}/metrics.json", "EDM's validity metric"),
        (f"sample {GENERATOR} -n 2 -o {{tmp}}/mols.sdf", "an .sdf output"),
        (f"sample {GENERATOR} -n 2 -o {{tmp}}/mols.xyz --image {{tmp}}/grid.png", "--image"),
        (f"sample {GENERATOR} -n 2 -o {{tmp}}/mols.xyz --metrics", "--metrics"),
        ("data qm9 --out {tmp}/qm9", "Processing QM9"),
        ("train qm9-edm --preset quick --output {tmp}/run", "The qm9-edm task (its test metrics)"),
    ],
    ids=["evaluate-molecules", "sample-sdf", "sample-image", "sample-metrics", "data-qm9", "train-qm9-edm"],
)
def test_commands_that_need_rdkit_say_what_to_install(
    argv: str, feature: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "water.xyz").write_text(WATER_XYZ)
    monkeypatch.chdir(tmp_path)
    assert main(argv.format(tmp=tmp_path).split()) == 2
    out, err = capsys.readouterr()
    assert err == (f"ponita {argv.split()[0]}: error: {feature} needs RDKit, which is not installed: "
                   "pip install 'ponita[qm9]' (or pip install rdkit).\n")
    assert all(line.startswith("Training task") for line in out.splitlines()), out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["water.xyz"]  # no output, no run folder
