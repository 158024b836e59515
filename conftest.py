"""Settings for notebooks run as tests (nbval): local mode, results filed under build/metrics, and an emulator of
the test run's own (home under build/, fresh state, stopped at the end) rather than the user's. That emulator records
every AWS action the notebooks perform (build/actions/notebooks.jsonl), and the policy guard
(tests/aws/test_policy_guard.py) runs after the last notebook to check the committed policy grants them all."""

import os
import shutil
from pathlib import Path

import pytest

from common.session import notebook_name
from sagemaker_emulator import home
from sagemaker_emulator.actions import ACTIONS_VARIABLE

ROOT = Path(__file__).resolve().parent
EMULATOR_HOME = ROOT / "build" / "emulator"
ACTIONS_FILE = ROOT / "build" / "actions" / "notebooks.jsonl"
# nbval waits this long for each output message of a cell once the cell has finished (its own default, 5 s, fails
# a notebook on a busy machine while a tuner's live display is still flushing its stream of clear_output messages).
NBVAL_OUTPUT_TIMEOUT_SECONDS = 300
GUARD = "policy_guard"  # the marker of the test that needs the notebooks' recorded actions
ACTIONS_KEY = pytest.StashKey[str]()


def pytest_configure(config):
    os.environ.setdefault("WORKSHOP_MODE", "local")
    os.environ.setdefault("WORKSHOP_METRICS_DIR", str(ROOT / "build" / "metrics"))
    os.environ.setdefault(home.HOME_VARIABLE, str(EMULATOR_HOME))
    home.stop(Path(os.environ[home.HOME_VARIABLE]))
    shutil.rmtree(Path(os.environ[home.HOME_VARIABLE]) / "state", ignore_errors=True)
    config.stash[ACTIONS_KEY] = os.environ.get(ACTIONS_VARIABLE) or str(ACTIONS_FILE)
    Path(config.stash[ACTIONS_KEY]).unlink(missing_ok=True)
    config.addinivalue_line("markers", f"{GUARD}: checks the actions the notebooks of this run performed")


def pytest_itemcollected(item):
    """Every notebook cell nbval collects waits for its output as long as a loaded machine may need."""
    if hasattr(item, "output_timeout"):
        item.output_timeout = NBVAL_OUTPUT_TIMEOUT_SECONDS


def pytest_collection_modifyitems(config, items):
    """The policy guard runs last, after every notebook; without notebooks in the run it has nothing to check and
    is deselected (a run of tests/ alone)."""
    guards = [item for item in items if item.get_closest_marker(GUARD)]
    others = [item for item in items if not item.get_closest_marker(GUARD)]
    if any(item.path.suffix == ".ipynb" for item in others):
        items[:] = others + guards
    elif guards:
        config.hook.pytest_deselected(items=guards)
        items[:] = others


def pytest_unconfigure(config):
    home.stop(Path(os.environ[home.HOME_VARIABLE]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the notebook before nbval starts its kernel, which inherits this environment."""
    if item.path.suffix == ".ipynb":
        os.environ["WORKSHOP_NOTEBOOK"] = notebook_name(item.path)
        # Only the notebooks' emulator (started by the first notebook's kernel) records: the emulators that tests
        # start themselves must not add their actions to the record the policy guard reads.
        os.environ[ACTIONS_VARIABLE] = item.config.stash[ACTIONS_KEY]
