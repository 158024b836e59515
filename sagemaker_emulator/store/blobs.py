"""A crash-safe folder of files and the ``index.json`` that names them (``moto_store`` keeps moto's state in one).

Each file is written under ``tmp/``, fsynced and moved into place with ``os.replace``; a file the index names is
never rewritten (a changed one gets a new name); the index is replaced last, and files it no longer names are
deleted only after that. A save interrupted at any point leaves the previous index and all its files, and the
next :class:`BlobFolder` on the folder deletes the interrupted save's leftovers. An index that cannot be read is not
from an interrupted save but from damage done outside: opening the folder raises :class:`StoreCorrupt` rather than
starting empty, since the next save would then erase what is left. One process at a time holds the folder
(``flock`` on ``.lock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from sagemaker_emulator.store.files import open_private, private_folder, write_atomically


class StoreCorrupt(ValueError):
    """The folder's index cannot be read, or names a file that is not there."""


def blob_name(kind: str, *parts: str) -> str:
    """A new file name for the thing ``parts`` name: ``<kind>/<h[:2]>/<h>-<rev>``, never the name itself."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}/{digest[:2]}/{digest}-{secrets.token_hex(8)}"


class BlobFolder:
    """``folder`` held by this process: its index (``index``), and the files the next index will name.

    Args:
        folder: created if missing.
        kinds: the subfolders the files go in (the first part of their names).
        empty: the index of an empty folder.
        files_of: every file an index names.
        pattern: the only file names an index may hold (anything else means the index was tampered with).
        version: the index format this code reads (``format`` in ``index.json``).
        way_out: what to tell the user to do with a folder that cannot be read.

    Raises:
        RuntimeError: another process holds the folder.
        StoreCorrupt: the index cannot be read, or names files outside ``pattern``.
    """

    def __init__(
        self,
        folder: Path,
        kinds: tuple[str, ...],
        empty: dict,
        files_of: Callable[[dict], set[str]],
        pattern: re.Pattern,
        version: int,
        way_out: str,
    ):
        self.folder = private_folder(Path(folder))
        self._kinds, self._files_of, self._pattern = kinds, files_of, pattern
        self._version, self._way_out = version, way_out
        self._lock_file = os.fdopen(open_private(self.folder / ".lock", os.O_WRONLY | os.O_CREAT), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"{self.folder} is in use by another emulator; give this one another folder") from None
        try:
            self.index = self._read_index(empty)
        except Exception:
            self._lock_file.close()
            raise
        self._written: list[str] = []
        self._sweep()

    def _read_index(self, empty: dict) -> dict:
        path = self.folder / "index.json"
        if not path.exists():
            return empty
        try:
            index = json.loads(path.read_bytes())
            version = index.pop("format")
            if version != self._version:
                raise StoreCorrupt(
                    f"{path} has format {version!r}; this emulator reads format {self._version}: {self._way_out}."
                )
            if set(index) != set(empty):
                raise KeyError(", ".join(sorted(set(empty) ^ set(index))))
            bad = [name for name in self._files_of(index) if not self._pattern.fullmatch(name)]
        except StoreCorrupt:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            reason = f"{type(error).__name__}: {error}"
            raise StoreCorrupt(f"{path} is not a readable store index ({reason}): {self._way_out}.") from None
        if bad:
            raise StoreCorrupt(f"{path} names files outside the store's layout ({bad[0]!r}): {self._way_out}.")
        return index

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Write ``folder/name`` whole or not at all: a fsynced temporary file in ``tmp/``, then ``os.replace``.

        Raises:
            files.UnsafePath: ``tmp/`` or a folder on the way to ``name`` is a symbolic link.
        """
        target = self.folder / name
        for depth in range(len(Path(name).parts) - 1, 0, -1):  # kind/, then kind/xx/: each made here, none a link
            private_folder(target.parents[depth - 1])
        write_atomically(target, chunks, folder=private_folder(self.folder / "tmp"), durable=True)
        self._written.append(name)

    def begin(self) -> None:
        """Start a save: the files written from now on are its own until :meth:`commit` (or :meth:`abandon`)."""
        self._written = []

    def abandon(self) -> None:
        """Delete the files the unfinished save wrote; the index still names the previous ones."""
        self._discard(self._written)
        self._written = []

    def commit(self, index: dict) -> int:
        """Make ``index`` the saved state, then delete the files only the old index named; returns how many."""
        for directory in {(self.folder / name).parent for name in self._written}:
            _fsync_directory(directory)
        self.write("index.json", [json.dumps({"format": self._version, **index}).encode()])
        self._written = []  # the new index names them: no longer this save's to discard
        old, self.index = self._files_of(self.index) - self._files_of(index), index
        _fsync_directory(self.folder)
        return self._discard(old)

    def open(self, name: str):
        """A file the index names, for reading.

        Raises:
            StoreCorrupt: it is missing.
        """
        try:
            return open(self.folder / name, "rb")
        except FileNotFoundError:
            raise StoreCorrupt(f"{self.folder / 'index.json'} names {name}, which is missing.") from None

    def close(self) -> None:
        """Release the folder."""
        self._lock_file.close()

    def _discard(self, names: list[str] | set[str]) -> int:
        for name in names:
            (self.folder / name).unlink(missing_ok=True)
        return len(names)

    def _sweep(self) -> None:
        """Delete what an interrupted save left: temporary files, and files the index does not name (never what a
        symbolic link points to: a linked folder is refused, a link is removed as a link)."""
        for leftover in private_folder(self.folder / "tmp").iterdir():
            leftover.unlink()
        named = self._files_of(self.index)
        for kind in self._kinds:
            for root, _, names in os.walk(private_folder(self.folder / kind)):  # os.walk does not enter links
                for file in names:
                    path = Path(root, file)
                    if path.relative_to(self.folder).as_posix() not in named:
                        path.unlink()


def _fsync_directory(path: Path) -> None:
    """Make renames into ``path`` durable before the index that relies on them."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
