"""benchmarks/full_scale.py finds each tree it reports by its root's command line and counts its children too."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import psutil

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "full_scale.py"
spec = importlib.util.spec_from_file_location("full_scale", SCRIPT)
full_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(full_scale)

HOLD = 64 * 1024 * 1024
CHILD = f"import time; b = bytearray({HOLD}); print('ready', flush=True); time.sleep(60)"
ROOT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])"


def test_a_tree_counts_its_root_and_the_children_it_started(monkeypatch):
    marker = f"tree-of-test-{time.monotonic_ns()}"  # no other process on the machine carries it
    monkeypatch.setattr(full_scale, "TREES", {"kernel": marker})
    process = subprocess.Popen([sys.executable, "-c", ROOT, marker], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while full_scale.tree_memory()["kernel"] < HOLD and time.monotonic() < deadline:
            time.sleep(0.05)
        assert full_scale.tree_memory()["kernel"] >= HOLD
    finally:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait()
