"""A crash-safe folder of files and the ``index.json`` that names them (``moto_store`` keeps moto's state in one).

Each file is written under ``tmp/``, fsynced and moved into place with ``os.replace``; a file the index names is
never rewritten (a changed one gets a new name); the index is replaced last, and files it no longer names are
deleted only after that. A save interrupted at any point leaves the previous index and all its files, and the
next :class:`BlobFolder` on the folder deletes the interrupted save's leftovers. An index that cannot be read (or
that a newer emulator wrote) is not from an interrupted save but from damage done outside: the index and every file
are moved into the quarantine (``store/quarantine.py``) and the folder starts empty, so the next save cannot erase
them and the emulator still starts. One process at a time holds the folder (``flock`` on ``.lock``).

Each file's SHA-256 is computed as it is written (:meth:`BlobFolder.write` returns it, for the index) and checked,
with its size, when it is read back (:meth:`BlobFolder.open`), so a file cut short or changed is never taken for the
real thing. SHA-256 rather than CRC32C: it is in the standard library (no new dependency), the folder already names
files by it, and it runs at over 1 GB/s, far faster than moto takes the bytes back.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from sagemaker_emulator.store.files import open_private, private_folder, write_atomically
from sagemaker_emulator.store.quarantine import Quarantine


class StoreCorrupt(ValueError):
    """The folder's index cannot be read, or a file it names is missing, cut short or changed."""


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
        version: the index format this code writes (``format`` in ``index.json``); it reads this one and older ones,
            whose missing top-level entries get ``empty``'s.
        quarantine: where an index that cannot be read goes, with every file (then the folder starts empty).
        what: what the folder holds, in words, for the quarantine's report.

    Raises:
        RuntimeError: another process holds the folder.
    """

    def __init__(
        self,
        folder: Path,
        kinds: tuple[str, ...],
        empty: dict,
        files_of: Callable[[dict], set[str]],
        pattern: re.Pattern,
        version: int,
        quarantine: Quarantine,
        what: str,
    ):
        self.folder = private_folder(Path(folder))
        self._kinds, self._files_of, self._pattern = kinds, files_of, pattern
        self._version = version
        self._lock_file = os.fdopen(open_private(self.folder / ".lock", os.O_WRONLY | os.O_CREAT), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"{self.folder} is in use by another emulator; give this one another folder") from None
        try:
            try:
                self.index = self._read_index(empty)
            except StoreCorrupt as error:
                kept = [self.folder / "index.json", *(self.folder / kind for kind in kinds)]
                quarantine.lose(what, str(error), paths=kept, name=self.folder.name)
                self.index = copy.deepcopy(empty)
        except Exception:
            self._lock_file.close()
            raise
        self._written: list[str] = []
        self._sweep()

    def _read_index(self, empty: dict) -> dict:
        path = self.folder / "index.json"
        if not path.exists():
            return copy.deepcopy(empty)
        try:
            index = json.loads(path.read_bytes())
            version = index.pop("format")
            if not isinstance(version, int) or version > self._version:
                raise StoreCorrupt(
                    f"index.json has format {version!r}, and this emulator reads formats up to {self._version}: a "
                    "newer emulator saved it; start that one to get it back"
                )
            index = {key: index.get(key, copy.deepcopy(default)) for key, default in empty.items()}
            bad = [name for name in self._files_of(index) if not self._pattern.fullmatch(name)]
        except StoreCorrupt:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StoreCorrupt(f"index.json is not a readable store index ({type(error).__name__}: {error})") from None
        if bad:
            raise StoreCorrupt(f"index.json names files outside the store's layout ({bad[0]!r})")
        return index

    def write(self, name: str, chunks: Iterable[bytes]) -> str:
        """Write ``folder/name`` whole or not at all: a fsynced temporary file in ``tmp/``, then ``os.replace``;
        returns the SHA-256 (hex) of what it wrote.

        Raises:
            files.UnsafePath: ``tmp/`` or a folder on the way to ``name`` is a symbolic link.
        """
        target = self.folder / name
        for depth in range(len(Path(name).parts) - 1, 0, -1):  # kind/, then kind/xx/: each made here, none a link
            private_folder(target.parents[depth - 1])
        digest = hashlib.sha256()

        def hashed() -> Iterable[bytes]:
            for chunk in chunks:
                digest.update(chunk)
                yield chunk

        write_atomically(target, hashed(), folder=private_folder(self.folder / "tmp"), durable=True)
        self._written.append(name)
        return digest.hexdigest()

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

    def open(self, name: str, sha256: str | None = None, size: int | None = None) -> BinaryIO:
        """A file the index names, for reading, checked first against the ``size`` and ``sha256`` it was saved with
        (each when known: an index of format 1 holds no checksum).

        Raises:
            StoreCorrupt: it is missing, or its size or checksum is not the saved one.
        """
        try:
            file = open(self.folder / name, "rb")  # the caller closes it
        except FileNotFoundError:
            raise StoreCorrupt(f"its file {name} is missing") from None
        try:
            actual = os.fstat(file.fileno()).st_size
            if size is not None and actual != size:
                raise StoreCorrupt(f"its file {name} holds {actual} bytes, not the {size} it was saved with")
            if sha256 is not None and hashlib.file_digest(file, "sha256").hexdigest() != sha256:
                raise StoreCorrupt(f"its file {name} does not match the SHA-256 it was saved with")
            file.seek(0)
        except BaseException:
            file.close()
            raise
        return file

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
