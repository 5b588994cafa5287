"""The ``ponita`` command: the top-level parser and the entry point; the subcommands are in :mod:`.commands`.

Subcommands: ``train <task>``, ``test``, ``md``, ``bench``, ``data``, ``sample``, ``evaluate-molecules``, ``demo``.
Every command checks its arguments before it starts work, reports a bad argument or an unreadable file
as one line on stderr with exit status 2, and leaves no partial output behind.
"""

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from ponita.datasets._rdkit import MissingDependencyError

from ._machine import reuse_freed_memory
from .commands import COMMANDS
from .commands._common import UsageError

__all__ = ["UsageError", "main"]

# Warnings of our dependencies about their own dependencies: nothing a user of `ponita` can act on.
_THIRD_PARTY_WARNINGS = (
    r"`torch\.jit\.script` is (deprecated|not supported)",  # e3nn and torch_geometric script modules
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",    # Lightning's pytree helpers on torch ≥ 2.10
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ponita`` console script; returns the exit status."""
    for message in _THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    parser = _parser()
    args = parser.parse_args(argv)
    reuse_freed_memory()  # large temporaries from the heap instead of fresh, zeroed pages (docs/performance.md)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("ponita.datasets").setLevel(logging.INFO)  # progress of first-use data processing
    try:
        return args.handler(args)
    except (ValueError, OSError, MissingDependencyError) as error:
        print(f"ponita {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponita", description="PONITA: SE(n)-equivariant models, trained and used.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
