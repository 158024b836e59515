"""The lab folders' own files, for the tests, benchmarks and tools outside them.

A lab folder's name has spaces ("Lab1 - Introduction to Factorization Machines"), so its modules cannot be imported
by name from outside: :func:`load_lab_module` loads one from its file, with the folder on ``sys.path`` as the
notebook and a script-mode job see it (:func:`load_file` does the same for a script outside any package).

Teaching code is written once (d2l's ``#@save``): a class or function a notebook teaches, and that a script-mode
``train.py`` or a benchmark also needs, is defined in the notebook's cell with ``#@save`` at the end of its first
line. ``python -m common.labs`` writes the marked definitions, in notebook order, to the module next to the
notebook that :data:`EXPORTS` names; ``tests/common/test_labs.py`` fails while the module and the notebook
differ. The module sits in the lab folder, so a job's ``source_dir`` uploads it with ``train.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from common.settings import REPOSITORY

LABS = {"lab1": "Lab1 - Introduction to Factorization Machines", "lab2": "Lab2 - Introduction to Object2Vec"}
SAVE_MARKER = "#@save"


@dataclass(frozen=True)
class Export:
    """A module written from a notebook's ``#@save`` definitions: the imports they need, then the definitions."""

    lab: str
    notebook: str
    module: str
    imports: str

    @property
    def notebook_path(self) -> Path:
        return lab_folder(self.lab) / self.notebook

    @property
    def module_path(self) -> Path:
        return lab_folder(self.lab) / self.module


MXNET_IMPORTS = """import numpy as np

# mxnet 1.9.1 still refers to numpy.bool, which numpy removed in 1.24; restore the alias as it used to be
# (the workshop's `common` package does the same) before importing mxnet: this module also runs in a job.
if "bool" not in vars(np):
    np.bool = bool

import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402
"""

EXPORTS = (Export("lab1", "1b - Deep Matrix Factorization with MXNet.ipynb", "dmf_models.py", MXNET_IMPORTS),)


def lab_folder(lab: str) -> Path:
    """The folder of ``lab`` (``"lab1"``, ``"lab2"``).

    Raises:
        KeyError: an unknown lab; the message lists the known ones.
    """
    if lab not in LABS:
        raise KeyError(f"unknown lab {lab!r}; the labs are {sorted(LABS)}")
    return REPOSITORY / LABS[lab]


def load_lab_module(lab: str, name: str, module_name: str | None = None) -> ModuleType:
    """A fresh copy of the module ``<lab folder>/<name>.py``, named ``module_name`` (default ``<lab>_<name>``).

    The lab folder is put on ``sys.path`` first, as the notebook and a script-mode job have it, so the module's
    own imports of its neighbours (``from dmf_models import DMF``, ``import lambda_function``) work.

    Raises:
        KeyError: an unknown lab.
        FileNotFoundError: the lab folder has no ``<name>.py``.
    """
    folder = lab_folder(lab)
    path = folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{LABS[lab]} has no {name}.py")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return load_file(path, module_name or f"{lab}_{name}")


def load_file(path: Path, module_name: str) -> ModuleType:
    """A fresh copy of the module in ``path`` (a script outside any package, such as ``images/demo_screenshot.py``),
    not registered in ``sys.modules``, so each caller gets its own."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_definitions(notebook: dict) -> list[str]:
    """The source of every top-level class or function whose first line ends with ``#@save``, in the order of the
    notebook's code cells, with the marker removed.

    Raises:
        ValueError: a line ending with the marker that does not start a top-level ``class`` or ``def`` (a marker
            put on the wrong line would otherwise be lost without a word).
    """
    found = []
    for number, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "code" or SAVE_MARKER not in source:
            continue
        lines = source.splitlines()
        starts = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                starts[node.lineno] = node.end_lineno
        for index, line in enumerate(lines, start=1):
            if not line.rstrip().endswith(SAVE_MARKER):
                continue
            if index not in starts:
                raise ValueError(
                    f"cell {number}, line {index}: {SAVE_MARKER} must end the first line of a top-level class or "
                    f"def, found {line.strip()!r}"
                )
            block = lines[index - 1 : starts[index]]
            block[0] = block[0].rstrip()[: -len(SAVE_MARKER)].rstrip()
            found.append("\n".join(block))
    return found


def render(export: Export) -> str:
    """The module ``export`` describes, as ``python -m common.labs`` writes it (formatted by ruff)."""
    notebook = json.loads(export.notebook_path.read_text())
    definitions = saved_definitions(notebook)
    if not definitions:
        raise ValueError(f"{export.notebook} has no cell marked {SAVE_MARKER}")
    header = (
        f'"""The definitions of notebook "{export.notebook}" marked ``{SAVE_MARKER}``, written here by\n'
        "``python -m common.labs``: edit them in the notebook, then run that command again. Script-mode jobs and\n"
        'the benchmarks import them from this file."""\n\n'
    )
    text = header + export.imports + "\n\n" + "\n\n\n".join(definitions) + "\n"
    return _ruff_format(text, export.module_path)


def _ruff_format(text: str, path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ruff could not format {path.name} (pip install -r requirements-dev.txt): {done.stderr}")
    return done.stdout


def main() -> int:
    """``python -m common.labs``: write every module of :data:`EXPORTS` from its notebook."""
    for export in EXPORTS:
        export.module_path.write_text(render(export))
        print(f"wrote {export.module_path.relative_to(REPOSITORY)} from {export.notebook}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
