"""Confinement of local paths built from what a caller sent: S3 keys, manifest entries, channel names, archives.

On AWS each job has a container of its own, and an object lands at its key (relative to the channel's prefix)
inside ``/opt/ml/input/data/<channel>``. Here the job folder sits in the user's own file system, so a path from a
request is only used when it is a sequence of plain names that stays inside its folder, symlinks resolved.
Anything else raises ``JobInputError`` naming it (the job fails with ``ClientError: ...``), before a byte is written:

- empty (a manifest entry ``""``): it names the folder itself;
- absolute or with an empty segment (``prefix//etc/x``, ``a//b``): joining would leave the folder, or fold two
  keys into one file;
- a ``.`` or ``..`` segment: it names no file of its own, it climbs or folds keys together;
- a segment longer than ``NAME_MAX`` bytes (UTF-8), or a NUL character: no file system can hold it.

Backslashes, spaces and other characters are kept as they are: on POSIX they are ordinary file-name characters.

Model archives follow tar's conventions instead: see :mod:`sagemaker_emulator.algorithms.archives`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sagemaker_emulator.errors import JobInputError

NAME_MAX = 255  # bytes per path segment on ext4, XFS, tmpfs and APFS


def _fault(relative: str) -> str | None:
    """Why ``relative`` is not a sequence of plain names, or None."""
    if not relative:
        return "is empty"
    if "\x00" in relative:
        return "contains a NUL character"
    if relative.startswith("/"):
        return "is absolute"
    for segment in relative.split("/"):
        if segment in ("", ".", ".."):
            return f'has a "{segment}" segment' if segment else "has an empty segment"
        if len(segment.encode()) > NAME_MAX:
            return f"has a segment longer than {NAME_MAX} bytes"
    return None


def confined(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, once ``relative`` is plain names that resolve inside ``root`` (symlinks followed).

    Args:
        root: the folder the path must stay in.
        relative: the path from the request.
        what: names its source in the error, e.g. ``'S3 object "s3://b/k"'``.

    Raises:
        JobInputError: the path is refused; the message names ``what`` and the path.
    """
    fault = _fault(relative)
    target = root / relative
    if fault is None and not Path(os.path.realpath(target)).is_relative_to(os.path.realpath(root)):
        fault = "resolves outside its folder"
    if fault is not None:
        raise JobInputError(
            f'{what} cannot be placed inside its local folder: the path "{relative}" {fault}. Every segment between '
            f"slashes must be a file name (not empty, . or .., at most {NAME_MAX} bytes)."
        )
    return target
