"""Every file the emulator writes goes around a symbolic link planted in its place, or refuses it; the link's
target is never touched (``store/files.py``, used by the runtime file, the state, the blob folder and moto's saves)."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.store import files
from sagemaker_emulator.store import home as homes
from sagemaker_emulator.store.blobs import BlobFolder
from sagemaker_emulator.store.files import UnsafePath, private_folder, write_atomically
from sagemaker_emulator.store.persistence import StateStore
from sagemaker_emulator.store.quarantine import Quarantine

VICTIM_TEXT = "the victim's own content\n"


@pytest.fixture
def victim(tmp_path):
    """A file another user cares about, outside every folder the emulator writes."""
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    return path


def _untouched(victim) -> bool:
    return victim.read_text() == VICTIM_TEXT and sorted(p.name for p in victim.parent.iterdir()) == ["victim.txt"]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path, victim):
    target = tmp_path / "out.json"
    target.symlink_to(victim)
    write_atomically(target, [b"mine"])
    assert not target.is_symlink() and target.read_bytes() == b"mine" and _untouched(victim)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name != "elsewhere"] == ["out.json"]  # no temporary left


def test_a_link_at_the_temporary_name_makes_the_write_fail_untouched(tmp_path, victim, monkeypatch):
    """The temporary name is random; a link planted at exactly that name is not followed (O_EXCL | O_NOFOLLOW)."""
    monkeypatch.setattr(files.secrets, "token_hex", lambda _: "0" * 16)
    target = tmp_path / "out.json"
    files.temporary_name(target).symlink_to(victim)
    with pytest.raises(FileExistsError):
        write_atomically(target, [b"mine"])
    assert not target.exists() and _untouched(victim)


def test_a_linked_folder_is_refused(tmp_path, victim):
    (tmp_path / "state").symlink_to(victim.parent)
    with pytest.raises(UnsafePath, match=re.escape(f"{tmp_path / 'state'} is a symbolic link; the emulator writes")):
        private_folder(tmp_path / "state")
    assert _untouched(victim)


def test_the_runtime_file_and_its_old_temporary_name_go_around_links(tmp_path, victim):
    home = homes.prepare(tmp_path / "home")
    (home / homes.RUNTIME_FILE).symlink_to(victim)
    (home / "emulator.tmp").symlink_to(victim)  # the fixed temporary name of earlier versions
    homes.write_runtime(home, "http://127.0.0.1:1", Credentials("AKID", "secret"))
    runtime = home / homes.RUNTIME_FILE
    assert not runtime.is_symlink() and json.loads(runtime.read_text())["secret_access_key"] == "secret"
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600 and _untouched(victim)


@pytest.mark.parametrize("name", [homes.LOCK_FILE, homes.LOG_FILE])
def test_the_lock_and_log_files_refuse_links(tmp_path, victim, name):
    home = homes.prepare(tmp_path / "home")
    (home / name).symlink_to(victim)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        if name == homes.LOCK_FILE:
            homes.ServeLock(home).acquire()
        else:
            homes.ensure(home, timeout=1)
    assert _untouched(victim)


def test_the_state_file_and_its_temporary_go_around_links(tmp_path, victim):
    store = StateStore(tmp_path / "state")
    store.load()
    store.path.symlink_to(victim)
    (store.folder / "sagemaker.tmp").symlink_to(victim)  # the fixed temporary name of earlier versions
    store.watch(lambda: {})
    store.close()
    assert json.loads(store.path.read_text())["regions"] == {} and _untouched(victim)


def test_a_linked_state_folder_is_refused(tmp_path, victim):
    (tmp_path / "state").symlink_to(victim.parent)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        StateStore(tmp_path / "state").load()
    assert _untouched(victim)


def test_a_save_cut_short_leaves_no_temporary_after_the_next_load(tmp_path):
    store = StateStore(tmp_path / "state")
    store.load()
    leftover = files.temporary_name(store.path)
    leftover.write_text("half")
    StateStore(tmp_path / "state").load()
    assert not leftover.exists()


def _blobs(folder) -> BlobFolder:
    return BlobFolder(
        folder,
        ("s3",),
        {"s3": []},
        lambda index: set(index["s3"]),
        re.compile(r"s3/.+"),
        1,
        Quarantine(folder.parent),
        "s3",
    )


@pytest.mark.parametrize("planted", ["tmp", "s3"])
def test_a_blob_folder_with_a_linked_subfolder_is_refused_and_the_target_kept(tmp_path, victim, planted):
    """The sweep of leftovers would otherwise delete every file in the folder the link points to."""
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / planted).symlink_to(victim.parent)
    with pytest.raises(UnsafePath, match=re.escape(f"{tmp_path / 'blobs' / planted} is a symbolic link")):
        _blobs(tmp_path / "blobs")
    assert _untouched(victim)


def test_blob_writes_go_around_links_at_their_folders_and_index(tmp_path, victim):
    folder = _blobs(tmp_path / "blobs")
    (folder.folder / "s3" / "ab").symlink_to(victim.parent)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        folder.write("s3/ab/object", [b"bytes"])
    (folder.folder / "index.json").symlink_to(victim)
    folder.begin()
    folder.write("s3/cd/object", [b"bytes"])
    folder.commit({"s3": ["s3/cd/object"]})
    folder.close()
    assert json.loads((folder.folder / "index.json").read_text()) == {"format": 1, "s3": ["s3/cd/object"]}
    assert (folder.folder / "s3" / "cd" / "object").read_bytes() == b"bytes" and _untouched(victim)
    assert os.listdir(folder.folder / "tmp") == []
