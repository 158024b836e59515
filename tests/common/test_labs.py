"""Teaching code written once: the modules written from notebooks' ``#@save`` cells, and the lab-file loader."""

import shutil
import subprocess
import sys

import pytest

from common import labs


def _notebook(*sources: str, kind: str = "code") -> dict:
    return {"cells": [{"cell_type": kind, "source": source} for source in sources]}


@pytest.mark.parametrize("export", labs.EXPORTS, ids=lambda export: export.module)
def test_each_saved_module_is_what_its_notebook_defines(export):
    assert export.module_path.read_text() == labs.render(export), (
        f"{export.module} differs from the {labs.SAVE_MARKER} cells of {export.notebook}: edit the notebook, "
        "then run python -m common.labs"
    )


def test_train_py_trains_the_notebooks_dmf():
    train = labs.load_lab_module("lab1", "train")
    assert train.DMF is sys.modules["dmf_models"].DMF


def test_marked_definitions_are_saved_in_order_without_the_marker():
    notebook = _notebook(
        "x = 1\n\ndef kept(a):  #@save\n    # a comment stays\n    return a + x\n\ndef skipped():\n    pass\n",
        "# a mention of #@save mid-line is not a marker\nclass Kept:  #@save\n    pass\n",
        "def unmarked_markdown():  #@save\n",
    )
    notebook["cells"][2]["cell_type"] = "markdown"
    assert labs.saved_definitions(notebook) == [
        "def kept(a):\n    # a comment stays\n    return a + x",
        "class Kept:\n    pass",
    ]


def test_a_marker_on_a_line_that_starts_no_definition_is_refused():
    notebook = _notebook("def f():\n    return 1  #@save\n")
    with pytest.raises(ValueError, match=r"cell 0, line 2: #@save must end the first line of a top-level class"):
        labs.saved_definitions(notebook)


def test_the_script_runs_from_a_folder_holding_only_the_job_sources(tmp_path):
    for name in ("train.py", "dmf_models.py"):
        shutil.copy(labs.lab_folder("lab1") / name, tmp_path / name)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "train.py"), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "--user_factors" in done.stdout


def test_unknown_labs_and_files_are_named():
    with pytest.raises(KeyError, match=r"unknown lab 'lab9'; the labs are \['lab1', 'lab2'\]"):
        labs.load_lab_module("lab9", "train")
    with pytest.raises(FileNotFoundError, match="Lab2 - Introduction to Object2Vec has no train.py"):
        labs.load_lab_module("lab2", "train")
