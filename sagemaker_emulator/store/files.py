"""The emulator's own files, written so that no symbolic link planted in their place can redirect them.

Run by root, or in a folder another user can write, ``open(path, "w")`` follows a link someone else put at ``path``
and writes (the key pair, the state) wherever it points. So a file is written under a fresh random name, created
with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600: the creation fails rather than follow anything there), then
renamed over its target with ``os.replace``, which replaces a link at the target instead of writing through it; and
the folders written into are made here and refused if they are links.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMPORARY_SUFFIX = ".tmp"


class UnsafePath(RuntimeError):
    """A path the emulator would write through is not its own: a symbolic link, or a folder others control."""


def private_folder(path: Path) -> Path:
    """``path`` as a folder (created with mode 0700 if missing), refused if it is a symbolic link or not a folder.

    Raises:
        UnsafePath: it is a symbolic link or a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
        raise UnsafePath(f"{path} is {kind}; the emulator writes only into folders of its own: remove it.")
    return path


def temporary_name(path: Path, folder: Path | None = None) -> Path:
    """A fresh, unguessable name for the temporary twin of ``path``, in ``folder`` (default: beside it)."""
    return Path(folder or Path(path).parent) / f".{Path(path).name}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}"


def write_atomically(path: Path, chunks: Iterable[bytes], *, folder: Path | None = None, durable: bool = False):
    """Write ``path`` whole or not at all, mode 0600, never through a symbolic link.

    The bytes go to a new file made with ``O_EXCL | O_NOFOLLOW`` in ``folder`` (default: the target's folder; it
    must be on the same file system), fsynced if ``durable``, then renamed over ``path``; a link at ``path`` is
    replaced, its target untouched.
    """
    temporary = temporary_name(path, folder)
    descriptor = os.open(temporary, CREATE, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_private(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened with ``flags`` (created 0600 with ``O_CREAT``), never through a link.

    Raises:
        UnsafePath: ``path`` is a symbolic link.
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if os.path.islink(path):
            message = f"{path} is a symbolic link; the emulator does not write through links: remove it."
            raise UnsafePath(message) from error
        raise
