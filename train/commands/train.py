"""``ponita train TASK``: train a task's model, then test it; ``ponita test``: test a model file on its test data."""

import argparse
import json
import time
from pathlib import Path

from .._config import config_changes, load_config, preset_names
from .._task import task_class, tasks
from ._common import (
    EpochPrinter,
    UsageError,
    add_flags,
    check_output,
    flag_overrides,
    positive_float,
    print_paths,
    print_test,
)

_SHARED_TRAIN_FLAGS = {
    "--output": ("output", {"help": "run folder"}),
    "--devices": ("devices", {"type": int, "help": "devices per node"}),
    "--num-nodes": ("num_nodes", {"type": int, "help": "nodes"}),
    "--strategy": ("strategy", {"help": "auto, ddp or ddp_spawn"}),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``train`` (one subcommand per task, or ``--list``) and ``test``."""
    train = commands.add_parser("train", help="train a task's model", description="Train a task's model, then test it.")
    train.add_argument("--list", action="store_true", help="list the tasks and their presets")
    train.set_defaults(handler=_list_tasks)
    task_parsers = train.add_subparsers(dest="task", metavar="TASK")
    for name, cls in sorted(tasks().items()):
        sub = task_parsers.add_parser(
            name, help=(cls.__doc__ or name).splitlines()[0],
            description=f"{(cls.__doc__ or name).splitlines()[0]} Fields are set by the preset, then --config, then "
            "KEY=VALUE overrides (e.g. lr=1e-3 model.hidden_dim=64; bare names work when unambiguous).",
        )
        presets = preset_names(name)
        sub.add_argument("--preset", default=cls.default_preset, choices=presets,
                         help=f"config preset (default: {cls.default_preset})")
        sub.add_argument("--config", help="YAML file of config fields, applied after the preset")
        sub.add_argument("--resume", help="Lightning checkpoint (e.g. RUN/checkpoints/last.ckpt) to continue")
        sub.add_argument("--pause-after", type=positive_float, metavar="MINUTES",
                         help="stop after this many minutes of this sitting and write last.ckpt (no test); "
                         "--resume it later. Unlike max_time_minutes, the schedule is unchanged. Ctrl-C or "
                         "SIGTERM pause the same way at any time")
        add_flags(sub, {**_SHARED_TRAIN_FLAGS, **cls.train_flags})
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
        sub.set_defaults(handler=_train, flags={**_SHARED_TRAIN_FLAGS, **cls.train_flags})

    test = commands.add_parser(
        "test", help="test a model file written by `ponita train` on its task's test data",
        description="Test a model file on its task's test data. The task and what it was trained on come from "
        "the file; `ponita test CKPT --help` lists the options for that file's task.",
        epilog="\n".join(f"{name} options: {', '.join(cls.test_flags) or 'none'}"
                         for name, cls in sorted(tasks().items())),
    )
    test.add_argument("checkpoint", help="model file written by `ponita train` (e.g. potential.pt)")
    test.add_argument("options", nargs=argparse.REMAINDER, help="--json FILE, --batch-size N and the task's options")
    test.set_defaults(handler=_test)


def _list_tasks(args: argparse.Namespace) -> int:
    if not args.list:
        raise UsageError("name a task (`ponita train TASK`); `ponita train --list` lists them.")
    for name, cls in sorted(tasks().items()):
        print(f"{name:10s} {(cls.__doc__ or '').splitlines()[0]}")
        for preset in preset_names(name):
            default = "  (default)" if preset == cls.default_preset else ""
            print(f"{'':10s}   --preset {preset}{default}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .._run import resume_config, train

    overrides = flag_overrides(args, args.flags) + list(args.overrides)
    if args.resume:
        stored = resume_config(args.resume)
        if stored.task != args.task:
            raise UsageError(f"{args.resume} is a checkpoint of task {stored.task!r}; "
                             f"use `ponita train {stored.task}`.")
        config = load_config(stored.task, overrides=overrides, base=stored.as_dict())  # the file is read once
        changes = config_changes(stored, config)
        print(f"Resuming {args.resume} with its stored config"
              + ("".join(f"\n  changed: {change}" for change in changes) if changes else " unchanged"), flush=True)
    else:
        config = load_config(args.task, args.preset, args.config, overrides)
    check_output(config.output)
    print(f"Training task {config.task} → {config.output}", flush=True)
    start = time.time()
    result = train(config, resume=args.resume, callbacks=[EpochPrinter()], pause_after_minutes=args.pause_after)
    if result.paused:
        print(f"\nPaused after {time.time() - start:.0f} s. Continue with:\n  ponita train {config.task} "
              f"--resume {result.last_checkpoint}", flush=True)
        return 0
    if result.model is None:  # a non-zero rank of a distributed run
        return 0
    print(f"\nTrained in {time.time() - start:.0f} s.")
    if result.test_metrics is not None:
        print_test(task_class(config.task), result.test_metrics)
    print_paths(result)
    return 0


def _test(args: argparse.Namespace) -> int:
    from ponita.models import read_checkpoint

    from .._run import test_checkpoint

    checkpoint = read_checkpoint(args.checkpoint)
    if checkpoint.task is None:
        raise UsageError(f"{args.checkpoint} records no task; it was not written by `ponita train`.")
    cls = task_class(checkpoint.task)
    parser = argparse.ArgumentParser(prog=f"ponita test {args.checkpoint}", description=f"Test a {cls.name} model.")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--batch-size", type=int, help="samples per forward pass (default: as in training)")
    parser.add_argument("--artefacts", help="folder for the task's output files, e.g. plots (default: none)")
    add_flags(parser, cls.test_flags)
    options = parser.parse_args(args.options)
    if options.json is not None and (Path(options.json).is_dir() or not Path(options.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {options.json} must be a file in an existing folder.")
    if options.batch_size is not None and options.batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {options.batch_size}.")
    overrides = flag_overrides(options, cls.test_flags)
    record = test_checkpoint(checkpoint, overrides, options.batch_size, options.artefacts)
    print_test(cls, record)
    if options.json:
        Path(options.json).write_text(json.dumps(record, indent=2))
        print(f"Results written to {options.json}")
    return 0
