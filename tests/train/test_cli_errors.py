"""Bad inputs to every ``ponita`` command: exit status 2, a one-line message naming the culprit, no partial output.

Each case runs ``ponita.train.cli.main`` in a fresh working folder (``tmp_path``) and checks that

* the command fails with exit status 2: ``main`` returns 2, or argparse raises ``SystemExit(2)`` for a
  bad flag or choice;
* stderr holds no traceback and its last line is one ``ponita ...: error: ...`` message naming the
  offending file or value;
* nothing was written or removed: no trajectory, JSON file or run folder, and no change to the working
  folder or to the input files.

Errors must be found before work starts: training (``Trainer.fit``), dynamics (``run_md``) and testing
(``_test_record``) are replaced by guards that fail the case, so no case trains, integrates or evaluates
anything even when the command misbehaves.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import ponita.train.deploy._molecular_dynamics as molecular_dynamics
import ponita.train._run as run_module
from ponita.datasets import bundled_data_dir
from ponita.models import PonitaPotential, save_model
from ponita.train.cli import main


@dataclass(frozen=True)
class Case:
    """One bad command line.

    Attributes:
        argv: the arguments; ``{name}`` placeholders are filled from :func:`_paths`.
        names: what the message (the last non-empty stderr line) must contain, e.g. the bad file or value.
        absent: paths (placeholders allowed) that must not exist afterwards, e.g. the trajectory.
        argparse: whether argparse reports the error (``SystemExit(2)``, usage lines before the message).
        avoid: what the message must not say (e.g. advice that is wrong for this input).
        announces: the error can only show while the data is read, after ``ponita train`` announced the
            run on stdout; otherwise stdout must stay empty.
        setup: files created in the working folder first, ``(relative path, text)``; a path ending in ``/``
            is a folder.
    """

    argv: tuple[str, ...]
    names: tuple[str, ...]
    absent: tuple[str, ...] = ()
    argparse: bool = False
    avoid: tuple[str, ...] = ()
    announces: bool = False
    setup: tuple[tuple[str, str], ...] = ()


def case(id: str, argv: str, names: str | tuple[str, ...], absent: tuple[str, ...] = (), **options: object) -> object:
    """A ``pytest.param`` of a :class:`Case` with a readable id; ``argv`` is split on spaces."""
    names = (names,) if isinstance(names, str) else names
    return pytest.param(Case(tuple(argv.split()), names, absent, **options), id=id)


MD = ("{out}",)  # ponita md must leave no trajectory behind
JSON = ("{json}",)  # ponita test must write no JSON file
RUN = ("{run}",)  # ponita train / demo must not create the run folder
OLD_RUN = (("old/checkpoints/last.ckpt", "not really a checkpoint"), ("old/notes.txt", "keep me"))
PROJECT = (("project/config.yaml", "name: my project\n"), ("project/src/main.py", "print('keep me')\n"))
TINY = "hidden_dim=8 num_layers=1 num_ori=4 basis_dim=8 max_epochs=1 num_val=996 num_threads=null compile_step=false"

CASES = [
    # ponita md: unreadable structures.
    case("md-garbage-structure", "md {ckpt} --structure {garbage_xyz} --out {out}", "{garbage_xyz}", MD),
    case("md-missing-structure", "md {ckpt} --structure {inputs}/nowhere.xyz --out {out}", "{inputs}/nowhere.xyz", MD),
    case("md-empty-structure", "md {ckpt} --structure {empty_xyz} --out {out}", "{empty_xyz}", MD),
    case("md-structure-is-a-folder", "md {ckpt} --structure {inputs} --out {out}", "{inputs}", MD,
         avoid=("does not exist",)),
    case("md-structure-unknown-element", "md {ckpt} --structure {iron_xyz} --out {out}", "[26]", MD),
    # ponita md: unreadable potentials.
    case("md-truncated-checkpoint", "md {truncated} --structure {water_xyz} --out {out}", "{truncated}", MD),
    case("md-foreign-checkpoint", "md {foreign} --structure {water_xyz} --out {out}", "{foreign}", MD),
    case("md-text-checkpoint", "md {text_ckpt} --structure {water_xyz} --out {out}", "{text_ckpt}", MD,
         avoid=("will likely succeed",)),
    case("md-missing-checkpoint", "md {inputs}/none.pt --structure {water_xyz} --out {out}", "{inputs}/none.pt", MD),
    case("md-checkpoint-unknown-config-field", "md {bad_config} --structure {water_xyz} --out {out}", "{bad_config}",
         MD),
    case("md-checkpoint-missing-weights", "md {no_weights} --structure {water_xyz} --out {out}", "{no_weights}", MD),
    # ponita md: bad numbers, data and destinations.
    case("md-negative-temperature", "md {ckpt} --structure {water_xyz} --temperature -5 --out {out}", "-5", MD),
    case("md-infinite-temperature", "md {ckpt} --structure {water_xyz} --temperature inf --out {out}", "inf", MD),
    case("md-zero-steps", "md {ckpt} --structure {water_xyz} --steps 0 --out {out}", "--steps", MD),
    case("md-zero-timestep", "md {ckpt} --structure {water_xyz} --timestep 0 --out {out}", "--timestep", MD),
    case("md-infinite-timestep", "md {ckpt} --structure {water_xyz} --timestep inf --out {out}", "inf", MD),
    case("md-steps-not-a-number", "md {ckpt} --structure {water_xyz} --steps many --out {out}", "many", MD,
         argparse=True),
    case("md-frame-out-of-range", "md {ckpt} --from-data ethanol --frame 5000 --out {out}", "5000", MD),
    case("md-from-data-missing-file", "md {ckpt} --from-data aspirin --out {out}", "aspirin", MD),
    case("md-from-data-unknown-molecule", "md {ckpt} --from-data water --out {out}", "water", MD, argparse=True),
    case("md-out-in-missing-folder", "md {ckpt} --structure {water_xyz} --out {tmp}/nofolder/traj.xyz",
         "{tmp}/nofolder/traj.xyz", ("{tmp}/nofolder",)),
    case("md-out-is-a-folder", "md {ckpt} --structure {water_xyz} --out {inputs}", "{inputs}"),
    # ponita bench md: the same structure checks, and its own numbers and destination.
    case("bench-md-missing-checkpoint", "bench md {inputs}/none.pt --structure {water_xyz}", "{inputs}/none.pt"),
    case("bench-md-unknown-element", "bench md {ckpt} --structure {iron_xyz}", "[26]"),
    case("bench-md-zero-steps", "bench md {ckpt} --structure {water_xyz} --steps 0", "--steps"),
    case("bench-md-zero-frames", "bench md {ckpt} --structure {water_xyz} --frames 0", "--frames"),
    case("bench-md-json-is-a-folder", "bench md {ckpt} --structure {water_xyz} --json {inputs}", "{inputs}"),
    case("bench-md-unknown-mode", "bench md {ckpt} --structure {water_xyz} --modes fast", "fast", argparse=True),
    # ponita test: unreadable checkpoints.
    case("test-truncated-checkpoint", "test {truncated} --json {json}", "{truncated}", JSON),
    case("test-foreign-checkpoint", "test {foreign} --json {json}", "{foreign}", JSON),
    case("test-text-checkpoint", "test {text_ckpt} --json {json}", "{text_ckpt}", JSON,
         avoid=("will likely succeed",)),
    case("test-missing-checkpoint", "test {inputs}/none.pt --json {json}", "{inputs}/none.pt", JSON),
    case("test-checkpoint-is-a-folder", "test {inputs} --json {json}", "{inputs}", JSON, avoid=("does not exist",)),
    case("test-checkpoint-without-task", "test {taskless} --json {json}", "{taskless}", JSON),
    case("test-incomplete-checkpoint", "test {format_only} --json {json}", "{format_only}", JSON),
    case("test-checkpoint-stale-train-config", "test {stale} --json {json}", "{stale}", JSON),
    # ponita test: bad options.
    case("test-split-7", "test {ckpt} --split 7 --json {json}", "7", JSON),
    case("test-split-2-missing-data", "test {ckpt} --split 2 --json {json}", "test_02", JSON),
    case("test-batch-size-0", "test {ckpt} --batch-size 0 --json {json}", ("--batch-size", "0"), JSON),
    case("test-negative-rotations", "test {ckpt} --rotations -1 --json {json}", "-1", JSON),
    case("test-unknown-option", "test {ckpt} --molcule ethanol --json {json}", "--molcule", JSON, argparse=True),
    case("test-unknown-molecule", "test {ckpt} --molecule water --json {json}", "water", JSON, argparse=True),
    case("test-json-in-missing-folder", "test {ckpt} --json {tmp}/nofolder/scores.json",
         "{tmp}/nofolder/scores.json", ("{tmp}/nofolder",)),
    case("test-json-is-a-folder", "test {ckpt} --json {inputs}", "{inputs}"),
    # ponita train md17: config keys and values.
    case("train-unknown-key", "train md17 --output {run} hiden_dim=8", "hiden_dim", RUN),
    case("train-badly-typed-value", "train md17 --output {run} lr=fast", ("lr", "fast"), RUN),
    case("train-override-without-equals", "train md17 --output {run} lr", "'lr'", RUN),
    case("train-unknown-preset", "train md17 --preset huge --output {run}", "huge", RUN, argparse=True),
    case("train-precision-16", "train md17 --output {run} precision=16", "16", RUN),
    case("train-unknown-molecule", "train md17 --output {run} molecule=water", "water", RUN),
    case("train-fixed-model-field", "train md17 --output {run} model.input_dim=3", "model.input_dim", RUN),
    case("train-ema-decay-1.5", "train md17 --output {run} ema_decay=1.5", ("ema_decay", "1.5"), RUN),
    case("train-split-0-flag", "train md17 --output {run} --split 0", ("split", "0"), RUN),
    case("train-devices-0-flag", "train md17 --output {run} --devices 0", ("devices", "0"), RUN),
    case("train-infinite-lr", f"train md17 --preset quick --output {{run}} {TINY} lr=.inf", ("lr", "inf"), RUN),
    # ponita train md17: config files, checkpoints, data and run folders.
    case("train-missing-config", "train md17 --config {inputs}/none.yaml --output {run}", "{inputs}/none.yaml", RUN),
    case("train-config-not-a-mapping", "train md17 --config {list_yaml} --output {run}", "{list_yaml}", RUN),
    case("train-config-invalid-yaml", "train md17 --config {bad_yaml} --output {run}", "{bad_yaml}", RUN),
    case("train-config-of-another-task", "train md17 --config {nbody_yaml} --output {run}", ("{nbody_yaml}", "nbody"),
         RUN),
    case("train-config-is-a-folder", "train md17 --config {inputs} --output {run}", "{inputs}", RUN,
         avoid=("does not exist",)),
    case("train-resume-missing", "train md17 --resume {inputs}/none.ckpt --output {run}", "{inputs}/none.ckpt", RUN),
    case("train-resume-garbage", "train md17 --resume {text_ckpt} --output {run}", "{text_ckpt}", RUN),
    case("train-resume-model-file", "train md17 --resume {ckpt} --output {run}", "{ckpt}", RUN),
    case("train-split-2-missing-data", "train md17 --preset quick --split 2 --output {run}", "train_02", RUN,
         announces=True),
    case("train-output-is-a-file", "train md17 --preset quick --output {tmp}/old/notes.txt", "{tmp}/old/notes.txt",
         announces=True, setup=OLD_RUN),
    case("train-output-holds-a-run", "train md17 --preset quick --output {tmp}/old", "--resume", announces=True,
         setup=OLD_RUN),
    case("train-init-from-missing", "train md17 --preset quick --output {run} init_from={inputs}/none.pt",
         "{inputs}/none.pt", RUN, announces=True),
    case("train-init-from-misfit", "train md17 --preset quick --output {run} init_from={ckpt}", ("{ckpt}", "num_ori"),
         RUN, announces=True),
    case("train-pause-after-0", "train md17 --output {run} --pause-after 0", ("--pause-after", "'0'"), RUN,
         argparse=True),
    case("train-no-task", "train", "ponita train TASK"),
    case("train-unknown-task", "train nosuchtask --output {run}", "nosuchtask", RUN, argparse=True),
    # ponita demo.
    case("demo-unknown-key", "demo --output {run} hiden_dim=8", "hiden_dim", RUN),
    case("demo-badly-typed-value", "demo --output {run} max_epochs=two", ("max_epochs", "two"), RUN),
    case("demo-output-holds-a-run", "demo --output {tmp}/old", "{tmp}/old", announces=True, setup=OLD_RUN),
    case("demo-output-foreign-folder", "demo --output {tmp}/project", "{tmp}/project", announces=True, setup=PROJECT),
]


class WorkStarted(Exception):
    """Raised by the guards: the command started training, dynamics or testing before finding the error."""


@pytest.fixture(autouse=True)
def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def guard(what: str):
        def refuse(*args: object, **kwargs: object) -> None:
            raise WorkStarted(f"{what} started before the error was found")
        return refuse

    monkeypatch.setattr(pl.Trainer, "fit", guard("training"))
    monkeypatch.setattr(molecular_dynamics, "run_md", guard("molecular dynamics"))
    monkeypatch.setattr(molecular_dynamics, "benchmark_md", guard("benchmarking"))
    monkeypatch.setattr(run_module, "_test_record", guard("testing"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good and bad input files, shared by the cases (they must leave it unchanged)."""
    folder = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    model = PonitaPotential([1, 6, 8], {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}, 1000.0,
                            hidden_dim=8, num_layers=1, num_ori=4)
    options = {"molecule": "ethanol", "split": 1, "data_dir": None, "num_val": 50}
    train_config = {"task": "md17", "task_options": options}
    ckpt = save_model(model, folder / "potential.pt", task="md17", train_config=train_config, protocol="tiny protocol")
    save_model(model, folder / "taskless.pt")
    raw = torch.load(ckpt, weights_only=True)
    torch.save({**raw, "config": {**raw["config"], "renamed_option": 1}}, folder / "bad_config.pt")
    torch.save({**raw, "state_dict": {}}, folder / "no_weights.pt")
    torch.save({"format": raw["format"]}, folder / "format_only.pt")
    stale = {**train_config, "removed_field": 1}
    torch.save({**raw, "metadata": {**raw["metadata"], "train_config": stale}}, folder / "stale.pt")
    (folder / "truncated.pt").write_bytes(ckpt.read_bytes()[:100])
    torch.save({"a": 1}, folder / "foreign.pt")
    (folder / "text.pt").write_text("This is a plain text file, not a checkpoint.\n")
    (folder / "garbage.xyz").write_bytes(b"q8 #!x\x7f zz 3.1.4\nlorem ipsum ] [ dolor\n\x01\x02 sit amet 17 atoms?\n")
    (folder / "empty.xyz").write_text("")
    (folder / "water.xyz").write_text("3\nwater\nO 0.0 0.0 0.0\nH 0.96 0.0 0.0\nH -0.24 0.93 0.0\n")
    (folder / "iron.xyz").write_text("2\niron hydride\nFe 0.0 0.0 0.0\nH 1.6 0.0 0.0\n")
    (folder / "list.yaml").write_text("- lr: 1.0e-3\n- hidden_dim: 8\n")
    (folder / "bad.yaml").write_text("lr: [1.0e-3\nhidden_dim: {8\n")
    (folder / "nbody.yaml").write_text("task: nbody\nlr: 1.0e-3\n")
    return folder


def _paths(inputs: Path, tmp: Path) -> dict[str, str]:
    files = ["potential.pt", "taskless.pt", "bad_config.pt", "no_weights.pt", "format_only.pt", "stale.pt",
             "truncated.pt", "foreign.pt", "garbage.xyz", "empty.xyz", "water.xyz", "iron.xyz", "list.yaml",
             "bad.yaml", "nbody.yaml"]
    paths = {name.replace(".", "_").removesuffix("_pt"): str(inputs / name) for name in files}
    return {**paths, "ckpt": str(inputs / "potential.pt"), "text_ckpt": str(inputs / "text.pt"),
            "inputs": str(inputs), "tmp": str(tmp), "out": str(tmp / "traj.xyz"), "json": str(tmp / "scores.json"),
            "run": str(tmp / "run")}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``folder`` with its size (0 for folders) and modification time."""
    snapshot = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            stat = path.stat()
            snapshot[str(path.relative_to(folder))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return snapshot


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_fails_with_one_line_and_no_output(
    bad: Case, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _paths(inputs, tmp_path)
    argv = [arg.format(**paths) for arg in bad.argv]
    for relative, text in bad.setup:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    monkeypatch.chdir(tmp_path)  # default outputs (traj.xyz, runs/...) would land here
    before = _snapshot(tmp_path), _snapshot(inputs)
    try:
        status = main(argv)
    except SystemExit as error:
        assert bad.argparse, f"argparse rejected {argv} (exit {error.code}); expected main to return 2"
        assert error.code == 2
    except WorkStarted as error:
        removed = sorted(set(before[0]) - set(_snapshot(tmp_path)))
        pytest.fail(f"main({argv}): {error}" + (f"; it had removed {removed}" if removed else ""))
    except Exception as error:  # noqa: BLE001 - the console script would print a traceback
        pytest.fail(f"main({argv}) raised {type(error).__name__} (a traceback): {str(error)[:300]}")
    else:
        assert not bad.argparse, f"expected argparse to reject {argv}, main returned {status}"
        assert status == 2, f"main({argv}) returned {status}"
    out, err = capsys.readouterr()

    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no error message on stderr"
    message = lines[-1]
    assert message.startswith("ponita") and ": error: " in message, message
    if not bad.argparse:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    for name in bad.names:
        assert name.format(**paths) in message, f"{name.format(**paths)!r} not named in: {message}"
    for wrong in bad.avoid:
        assert wrong not in message, f"misleading message ({wrong!r}): {message}"
    if bad.announces:
        assert all(line.startswith(("Training task", "Demo:")) for line in out.splitlines() if line.strip()), out
    else:
        assert out == "", f"the command printed before failing:\n{out}"

    for path in bad.absent:
        assert not Path(path.format(**paths)).exists(), f"{path.format(**paths)} was left behind"
    after = _snapshot(tmp_path), _snapshot(inputs)
    assert after[0] == before[0], f"the working folder changed: {sorted(set(after[0]) ^ set(before[0]))}"
    assert after[1] == before[1], "the input files changed"


def test_the_cases_cover_every_command() -> None:
    commands = {param.values[0].argv[0] for param in CASES}
    assert commands == {"md", "bench", "test", "train", "demo"} and len(CASES) >= 24


def test_the_bundled_data_has_only_ethanol_split_1() -> None:
    """The data-file cases rely on this (``--split 2``, ``--from-data aspirin``)."""
    assert sorted(path.name for path in bundled_data_dir().glob("rmd17_*.npz")) == [
        "rmd17_ethanol_test_01.npz", "rmd17_ethanol_train_01.npz"
    ]
