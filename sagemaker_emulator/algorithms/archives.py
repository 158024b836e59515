"""Unpack a tar archive (a ``model.tar.gz``) with every member confined to its folder, on any Python from 3.11.0.

tarfile's ``filter=`` argument and its ``data`` filter arrived in Python 3.11.4 (Debian 12 ships 3.11.2), and that
filter alone can be escaped before 3.11.13 / 3.12.11 (CVE-2025-4517: its ``realpath`` check stops following links
once a path exceeds PATH_MAX). So every member passes our own rule first, which holds on any version: its name and
link target are relative and free of ``..`` (``./model.json``, common in tar files, is fine), so links only ever
point down and no chain of links can climb out; devices and pipes are refused. Then the ``data`` filter runs where
Python has it; where it does not, its remaining effects are applied by hand: ownership dropped, high mode bits and
group/other write bits cleared.

No import from the rest of the package, so the notebooks use it too (``common.archives``).
"""

from __future__ import annotations

import copy
import os
import tarfile
from pathlib import Path

HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.11.4 and later


class UnsafeArchiveError(tarfile.TarError):
    """A member that could land outside the folder, or a special file; the message names the member."""


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member whose name or link target is absolute or has ``..``, or that is not a file, folder or link.

    Raises:
        UnsafeArchiveError: naming the member and what is wrong with it.
    """
    paths = {"name": member.name}
    if member.issym() or member.islnk():
        paths["link target"] = member.linkname
    for kind, path in paths.items():
        if path.startswith("/") or ".." in path.split("/"):
            raise UnsafeArchiveError(
                f'The archive member "{member.name}" has the {kind} "{path}", which is absolute or contains "..".'
            )
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f'The archive member "{member.name}" is a device, pipe or other special file.')


def _checked_data_filter(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo:
    check_member(member)
    return tarfile.data_filter(member, destination)


def _as_data(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of ``member`` owned by whoever extracts it, with the modes the ``data`` filter would give it."""
    data = copy.copy(member)
    data.uid, data.gid, data.uname, data.gname = os.getuid(), os.getgid(), "", ""
    if member.isdir():
        data.mode = 0o755
    elif not member.issym():
        mode = member.mode & 0o755
        data.mode = (mode if mode & 0o100 else mode & ~0o111) | 0o600
    return data


def extract(archive: str | Path, destination: str | Path) -> None:
    """Unpack the tar file ``archive`` (compressed or not) into the folder ``destination``.

    Raises:
        UnsafeArchiveError: a member breaks the rule above; on Python without the ``data`` filter nothing has been
            written yet, with it the members before the refused one may have been.
        tarfile.TarError, OSError, EOFError: the file is not a readable tar archive.
    """
    with tarfile.open(archive) as tar:
        if HAS_DATA_FILTER:
            tar.extractall(destination, filter=_checked_data_filter)
            return
        members = tar.getmembers()
        for member in members:
            check_member(member)
        tar.extractall(destination, members=[_as_data(member) for member in members], numeric_owner=True)
