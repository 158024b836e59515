"""The root conftest.py gives every notebook cell nbval collects a long wait for its outputs (nbval's own is 5 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.labs import load_file

ROOT = Path(__file__).resolve().parents[2]
# The collecting run gets an emulator home and an actions record of its own (the emulator's public variables).
HOME_VARIABLE, ACTIONS_VARIABLE = "SAGEMAKER_EMULATOR_HOME", "SAGEMAKER_EMULATOR_ACTIONS"
NOTEBOOK = "Lab2 - Introduction to Object2Vec/2 - Object2Vec.ipynb"
REPORTER = """
def pytest_collection_finish(session):
    print("output timeouts:", sorted({item.output_timeout for item in session.items}))
"""


def test_every_collected_notebook_cell_waits_the_conftest_timeout(tmp_path):
    root_conftest = load_file(ROOT / "conftest.py", "root_conftest")
    (tmp_path / "timeout_reporter.py").write_text(REPORTER)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        HOME_VARIABLE: str(tmp_path / "emulator"),
        ACTIONS_VARIABLE: str(tmp_path / "actions.jsonl"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "timeout_reporter", NOTEBOOK],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"output timeouts: [{root_conftest.NBVAL_OUTPUT_TIMEOUT_SECONDS}]" in result.stdout
