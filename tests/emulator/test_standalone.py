"""The emulator is installable and usable without the workshop's helpers: it never imports ``common``."""

import ast
import subprocess
import sys
from pathlib import Path

import sagemaker_emulator

PACKAGE = Path(sagemaker_emulator.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_of_the_emulator_imports_common():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "common"
        )
        for path in PACKAGE.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_emulator_restores_numpy_bool_so_its_algorithms_import_mxnet():
    code = (
        "import sys, numpy, sagemaker_emulator, mxnet; assert numpy.bool is bool; "
        "import sagemaker_emulator.algorithms.object2vec_network; assert 'common' not in sys.modules; "
        "print(mxnet.nd.ones((2,)).sum().asscalar())"
    )
    out = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2.0"
