"""Settings for notebooks run as tests (nbval): local mode, results filed under build/metrics, and an emulator of
the test run's own (home under build/, fresh state, stopped at the end) rather than the user's. That emulator records
every AWS action the notebooks perform (build/actions/notebooks.jsonl), and the policy guard
(tests/aws/test_policy_guard.py) runs after the last notebook to check the committed policy grants them all; the
check of the text's expected figures (tests/docs/test_expected_figures.py) runs then too, on their recorded results."""

import os
import shutil
from pathlib import Path

import pytest

from common.settings import notebook_name
from sagemaker_emulator.iam.actions import ACTIONS_VARIABLE
from sagemaker_emulator.store import home

ROOT = Path(__file__).resolve().parent
EMULATOR_HOME = ROOT / "build" / "emulator"
ACTIONS_FILE = ROOT / "build" / "actions" / "notebooks.jsonl"
# nbval waits this long for each output message of a cell once the cell has finished (its own default, 5 s, fails
# a notebook on a busy machine while a tuner's live display is still flushing its stream of clear_output messages).
NBVAL_OUTPUT_TIMEOUT_SECONDS = 300
GUARD = "policy_guard"  # the marker of the test that needs the notebooks' recorded actions
FIGURES = "after_notebooks"  # the marker of the test that needs every notebook's recorded results
ACTIONS_KEY = pytest.StashKey[str]()


def pytest_configure(config):
    os.environ.setdefault("WORKSHOP_MODE", "local")
    os.environ.setdefault("WORKSHOP_METRICS_DIR", str(ROOT / "build" / "metrics"))
    os.environ.setdefault(home.HOME_VARIABLE, str(EMULATOR_HOME))
    for folder in (home.user_home(), home.default_home()):  # this checkout's, and one an earlier layout left
        home.stop(folder)
        shutil.rmtree(folder / home.STATE_FOLDER, ignore_errors=True)
    config.stash[ACTIONS_KEY] = os.environ.get(ACTIONS_VARIABLE) or str(ACTIONS_FILE)
    Path(config.stash[ACTIONS_KEY]).unlink(missing_ok=True)
    config.addinivalue_line("markers", f"{GUARD}: checks the actions the notebooks of this run performed")
    config.addinivalue_line("markers", f"{FIGURES}: checks the results every lab notebook recorded in this run")


def pytest_itemcollected(item):
    """Every notebook cell nbval collects waits for its output as long as a loaded machine may need."""
    if hasattr(item, "output_timeout"):
        item.output_timeout = NBVAL_OUTPUT_TIMEOUT_SECONDS


def pytest_collection_modifyitems(config, items):
    """The policy guard runs last, after every notebook; without notebooks in the run it has nothing to check and
    is deselected (a run of tests/ alone). The figures check runs last too, and only when every lab notebook ran:
    the text quotes all of them."""
    last = [item for item in items if item.get_closest_marker(GUARD) or item.get_closest_marker(FIGURES)]
    others = [item for item in items if item not in last]
    notebooks = {item.path for item in others if item.path.suffix == ".ipynb"}
    every_notebook = notebooks == set(ROOT.glob("Lab*/*.ipynb"))
    keep = [i for i in last if (every_notebook if i.get_closest_marker(FIGURES) else notebooks)]
    if len(keep) < len(last):
        config.hook.pytest_deselected(items=[item for item in last if item not in keep])
    items[:] = others + keep


def pytest_unconfigure(config):
    home.stop(home.default_home())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the notebook before nbval starts its kernel, which inherits this environment."""
    if item.path.suffix == ".ipynb":
        os.environ["WORKSHOP_NOTEBOOK"] = notebook_name(item.path)
        # Only the notebooks' emulator (started by the first notebook's kernel) records: the emulators that tests
        # start themselves must not add their actions to the record the policy guard reads.
        os.environ[ACTIONS_VARIABLE] = item.config.stash[ACTIONS_KEY]
