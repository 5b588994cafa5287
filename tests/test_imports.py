"""The core never imports the zoo (R1), every public name is importable (R16), and optional or heavy
dependencies (RDKit, e3nn) are imported only where they are used."""

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


@pytest.mark.parametrize("module_name", CORE)
def test_public_names_are_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert all(not name.startswith("_") or name == "__version__" for name in module.__all__)


def _imported_in_a_fresh_interpreter(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_every_package_imports_without_rdkit() -> None:
    # RDKit is optional (the qm9 extra): only the functions that need it import it, when called.
    code = f"import sys\nsys.modules['rdkit'] = None\nimport {', '.join(CORE + ZOO)}\nprint('ok')\n"
    assert _imported_in_a_fresh_interpreter(code) == "ok"


def test_importing_the_packages_imports_neither_e3nn_nor_rdkit() -> None:
    # e3nn is needed only by SphericalTensorReadout (l = 2 readouts), which imports it when it is built;
    # RDKit only by the molecule functions, when called.
    code = f"import sys\nimport {', '.join(CORE + ZOO)}\nprint(sorted({{'e3nn', 'rdkit'}} & set(sys.modules)))\n"
    assert _imported_in_a_fresh_interpreter(code) == "[]"
