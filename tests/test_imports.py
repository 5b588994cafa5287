"""The core never imports the zoo (R1), and every public name is importable (R16)."""

import importlib
import subprocess
import sys

import pytest

CORE = ("ponita", "ponita.geometry", "ponita.graph", "ponita.nn", "ponita.ops", "ponita.testing")
ZOO = ("ponita.models", "ponita.datasets", "ponita.train")


def test_core_does_not_import_the_zoo() -> None:
    code = (
        "import sys\n"
        f"import {', '.join(CORE)}\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[:2] in {[z.split('.') for z in ZOO]!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the core imported zoo modules: {result.stdout.strip()}"


@pytest.mark.parametrize("module_name", CORE[:-1])
def test_public_names_are_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert all(not name.startswith("_") or name == "__version__" for name in module.__all__)
