"""Settings for notebooks run as tests (nbval): local mode, and results filed under build/metrics."""
import os
from pathlib import Path

import pytest

from common.report import notebook_name

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    os.environ.setdefault("WORKSHOP_MODE", "local")
    os.environ.setdefault("WORKSHOP_METRICS_DIR", str(ROOT / "build" / "metrics"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the notebook before nbval starts its kernel, which inherits this environment."""
    if item.path.suffix == ".ipynb":
        os.environ["WORKSHOP_NOTEBOOK"] = notebook_name(item.path)
