"""Settings for notebooks run as tests (nbval): local mode, results filed under build/metrics, and an emulator of
the test run's own (home under build/, fresh state, stopped at the end) rather than the user's."""

import os
import shutil
from pathlib import Path

import pytest

from common.session import notebook_name
from sagemaker_emulator import home

ROOT = Path(__file__).resolve().parent
EMULATOR_HOME = ROOT / "build" / "emulator"


def pytest_configure(config):
    os.environ.setdefault("WORKSHOP_MODE", "local")
    os.environ.setdefault("WORKSHOP_METRICS_DIR", str(ROOT / "build" / "metrics"))
    os.environ.setdefault(home.HOME_VARIABLE, str(EMULATOR_HOME))
    home.stop(Path(os.environ[home.HOME_VARIABLE]))
    shutil.rmtree(Path(os.environ[home.HOME_VARIABLE]) / "state", ignore_errors=True)


def pytest_unconfigure(config):
    home.stop(Path(os.environ[home.HOME_VARIABLE]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the notebook before nbval starts its kernel, which inherits this environment."""
    if item.path.suffix == ".ipynb":
        os.environ["WORKSHOP_NOTEBOOK"] = notebook_name(item.path)
