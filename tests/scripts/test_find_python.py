"""scripts/find_python picks the interpreter `make` builds .venv with, or says in one sentence what to install.

Fake interpreters on a PATH of their own stand for what Debian 12, Ubuntu 22.04/24.04 and macOS give.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "find_python"
INSTALL = "(Debian/Ubuntu: sudo apt install python3.11 python3.11-venv; macOS: brew install python@3.12)"


def _fake_pythons(folder: Path, versions: dict[str, tuple[str, bool]]) -> str:
    """Name → (version, has venv) as shell scripts answering find_python's two questions; returns a PATH."""
    folder.mkdir()
    for name, (version, has_venv) in versions.items():
        path = folder / name
        path.write_text(f'#!/bin/sh\ncase "$2" in *ensurepip*) exit {0 if has_venv else 1};; esac\necho {version}\n')
        path.chmod(0o755)
    return str(folder)


def _find(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(SCRIPT), *args], env={"PATH": path}, capture_output=True, text=True)


@pytest.mark.parametrize(
    "versions, chosen",
    [
        ({"python3.11": ("3.11.2", True), "python3": ("3.11.2", True)}, "python3.11"),  # Debian 12
        ({"python3.11": ("3.11.0", True), "python3": ("3.10.12", True)}, "python3.11"),  # Ubuntu 22.04 + python3.11
        ({"python3.12": ("3.12.3", True), "python3": ("3.12.3", True)}, "python3.12"),  # Ubuntu 24.04
        ({"python3.13": ("3.13.1", True), "python3.12": ("3.12.8", True)}, "python3.12"),  # macOS, Homebrew
        ({"python3": ("3.12.3", True)}, "python3"),
    ],
)
def test_the_first_python_3_11_or_3_12_with_venv_is_chosen(tmp_path, versions, chosen):
    path = _fake_pythons(tmp_path / "bin", versions)
    result = _find(path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}/{chosen}\n", "")


def test_an_interpreter_given_is_the_only_one_considered(tmp_path):
    path = _fake_pythons(tmp_path / "bin", {"python3.11": ("3.11.2", True), "python3.12": ("3.12.3", True)})
    assert _find(path, "python3.12").stdout == f"{path}/python3.12\n"


@pytest.mark.parametrize("version", ["3.10.12", "3.13.1"])  # Ubuntu 22.04's python3; Homebrew's today
def test_another_python_names_the_version_found_and_the_one_to_install(tmp_path, version):
    path = _fake_pythons(tmp_path / "bin", {"python3": (version, True)})
    result = _find(path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Found Python {version} ({path}/python3), but the workshop needs Python 3.11 or 3.12: install one {INSTALL} "
        "and run make again.\n"
    )


def test_a_python_without_its_venv_module_names_the_package(tmp_path):
    path = _fake_pythons(tmp_path / "bin", {"python3.11": ("3.11.2", False), "python3": ("3.11.2", False)})
    result = _find(path)
    assert (result.returncode, result.stderr) == (
        1,
        f"Python 3.11.2 ({path}/python3.11) cannot create a virtualenv: install its venv module (Debian/Ubuntu: sudo "
        "apt install python3.11-venv) and run make again.\n",
    )


def test_no_python_at_all_is_said_so(tmp_path):
    result = _find(_fake_pythons(tmp_path / "bin", {}))
    assert (result.returncode, result.stderr) == (
        1,
        f"Found no Python 3 on the PATH, but the workshop needs Python 3.11 or 3.12: install one {INSTALL} and run "
        "make again.\n",
    )
