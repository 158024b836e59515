"""Model archives unpack inside their folder on every supported Python: the hostile archives of test_confinement.py
are refused by both ways of extracting (tarfile's ``data`` filter, where Python has it, and our own checked
extraction, which Python 3.11.0–3.11.3 use), and the same tests pass under Debian 12's own Python 3.11.2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
from test_confinement import HOSTILE_CASES, _hostile_archives, _member, tar_gz

from sagemaker_emulator.algorithms import archives

ROOT = Path(__file__).resolve().parents[2]
# The inner run gets an emulator home and an actions record of its own (the emulator's public variables).
HOME_VARIABLE, ACTIONS_VARIABLE = "SAGEMAKER_EMULATOR_HOME", "SAGEMAKER_EMULATOR_ACTIONS"
DEBIAN_PYTHON = Path("/usr/bin/python3.11")  # Debian 12's, 3.11.2: no tarfile filters
ENDPOINT_TEST = "tests/emulator/test_confinement.py::test_a_model_archive_in_tar_conventions_is_served"
EXTRACTIONS = ["checked", *(["data filter"] if archives.HAS_DATA_FILTER else [])]


@pytest.fixture(params=EXTRACTIONS)
def extraction(request, monkeypatch):
    """Each way of extracting this Python can run."""
    monkeypatch.setattr(archives, "HAS_DATA_FILTER", request.param == "data filter")
    return request.param


def _write(path: Path, members: list[tuple], modes: dict[str, int] | None = None) -> Path:
    path.write_bytes(tar_gz(members, modes))
    return path


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_a_hostile_archive_is_refused_and_nothing_lands_outside(extraction, tmp_path, outside, case):
    members, member, fault = _hostile_archives(outside)[case]
    archive = _write(tmp_path / "hostile.tar.gz", [_member("mean.json", data=b"{}"), *members])
    target = tmp_path / "model"
    target.mkdir()
    with pytest.raises(archives.UnsafeArchiveError) as caught:
        archives.extract(archive, target)
    assert str(caught.value) == f'The archive member "{member}" has {fault}, which is absolute or contains "..".'
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    assert (outside / "sentinel.txt").read_text() == "original"


def test_the_checked_extraction_writes_nothing_from_a_hostile_archive(monkeypatch, tmp_path, outside):
    monkeypatch.setattr(archives, "HAS_DATA_FILTER", False)
    members, _, _ = _hostile_archives(outside)["symlink-dotdot"]
    archive = _write(tmp_path / "hostile.tar.gz", [_member("mean.json", data=b"{}"), *members])
    target = tmp_path / "model"
    target.mkdir()
    with pytest.raises(archives.UnsafeArchiveError):
        archives.extract(archive, target)
    assert list(target.iterdir()) == []


def test_an_archive_in_tar_conventions_is_unpacked(extraction, tmp_path):
    archive = _write(
        tmp_path / "dotted.tar.gz",
        [
            _member(".", tarfile.DIRTYPE),
            _member("./mean.json", data=b'{"value": 2.5}'),
            _member("./code", tarfile.DIRTYPE),
            _member("./code/alias.json", tarfile.SYMTYPE, "data/mean.json"),  # dangling, but pointing down
            _member("./alias.json", tarfile.SYMTYPE, "mean.json"),
            _member("./copy.json", tarfile.LNKTYPE, "./mean.json"),
        ],
    )
    archives.extract(archive, tmp_path / "model")
    model = tmp_path / "model"
    assert (model / "alias.json").read_text() == (model / "copy.json").read_text() == '{"value": 2.5}'
    assert os.readlink(model / "code" / "alias.json") == "data/mean.json"


def test_ownership_is_dropped_and_modes_are_limited(extraction, tmp_path):
    members = [_member("folder", tarfile.DIRTYPE), _member("folder/run.sh"), _member("folder/notes.txt")]
    modes = {"folder": 0o777, "folder/run.sh": 0o4777, "folder/notes.txt": 0o466}
    archives.extract(_write(tmp_path / "modes.tar.gz", members, modes), tmp_path / "model")
    folder = tmp_path / "model" / "folder"
    assert {path.name: path.stat().st_mode & 0o7777 for path in (folder / "run.sh", folder / "notes.txt")} == {
        "run.sh": 0o755,
        "notes.txt": 0o644,
    }
    assert folder.stat().st_mode & 0o022 == 0
    assert {(path.stat().st_uid, path.stat().st_gid) for path in (folder, folder / "run.sh")} == {
        (os.getuid(), os.getgid())
    }


def test_a_special_file_is_refused(extraction, tmp_path):
    archive = _write(tmp_path / "fifo.tar.gz", [_member("mean.json", data=b"{}"), _member("pipe", tarfile.FIFOTYPE)])
    with pytest.raises(archives.UnsafeArchiveError, match='^The archive member "pipe" is a device, pipe or other'):
        archives.extract(archive, tmp_path / "model")


def test_a_file_that_is_no_tar_archive_is_a_tar_error(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(tarfile.ReadError):
        archives.extract(tmp_path / "model.tar.gz", tmp_path / "model")


def _python_with_our_packages(python: Path, folder: Path) -> Path:
    """A virtualenv of ``python`` that sees this interpreter's installed packages (same minor version, same ABI)."""
    subprocess.run([str(python), "-m", "venv", "--without-pip", "--clear", str(folder)], check=True)
    purelib = subprocess.run(
        [str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "workshop-packages.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return folder / "bin" / "python"


@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason=f"{DEBIAN_PYTHON} (Debian's python3.11) is not installed")
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the workshop's packages are built for another Python")
def test_extraction_and_an_endpoint_work_under_debian_python(tmp_path):
    """Debian 12's python3.11 runs this file's tests and one endpoint, with this venv's packages (no install)."""
    python = _python_with_our_packages(DEBIAN_PYTHON, tmp_path / "venv")
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        HOME_VARIABLE: str(tmp_path / "emulator"),
        ACTIONS_VARIABLE: str(tmp_path / "actions.jsonl"),
    }
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not debian_python"]
    result = subprocess.run(
        [*command, "tests/emulator/test_archives.py", ENDPOINT_TEST],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " failed" not in result.stdout and " passed" in result.stdout
