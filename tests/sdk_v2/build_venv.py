"""Build, once, the virtualenv with SageMaker Python SDK v2 that the tests in this folder run their scripts in.

It lives in ``build/sdk-v2/<hash of requirements.txt>/``, so a changed pin builds a new one and an unchanged one is
reused (CI caches ``build/sdk-v2``). ``make test`` runs this before pytest, so the download happens at install
time, never inside a test. Prints the virtualenv's python.

    .venv/bin/python tests/sdk_v2/build_venv.py
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
ROOT = Path(__file__).resolve().parents[2] / "build" / "sdk-v2"
DONE = ".complete"


def venv_dir() -> Path:
    return ROOT / hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def python() -> Path:
    """The SDK v2 virtualenv's interpreter (built or not)."""
    return venv_dir() / "bin" / "python"


def is_built() -> bool:
    return (venv_dir() / DONE).exists()


def build() -> Path:
    """Create the virtualenv unless it exists; a failed build leaves nothing that looks complete."""
    target = venv_dir()
    if is_built():
        return python()
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    (target / DONE).touch()
    return python()


if __name__ == "__main__":
    print(build())
