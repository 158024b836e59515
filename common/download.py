"""Fetch a dataset archive into the cache, safely: bytes only, nothing about what the files mean.

An archive is taken from the cache when it passes its checks, otherwise from the mirror (a directory or an
http(s) URL holding the same archive names) or the official URL. Downloads go to ``<name>.part``, resume with an
HTTP Range request after a dropped connection (a server that ignores Range and answers 200 restarts the file),
retry with exponential backoff, and are renamed into place only after every checked member of the archive has
its expected line count and, where known, its SHA-256. Members are checked rather than the archive because mirrors
may re-zip archives. A verified archive gets a ``<name>.sha256`` stamp, so a later cache hit re-hashes the archive
(fast) instead of decompressing every member again (seconds for ml-20m); any change to the file voids the stamp.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from time import sleep

from tqdm import tqdm

ATTEMPTS = 4
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 30.0
CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
WAYS_OUT = (
    "To go on offline, use a dataset that needs no download: WORKSHOP_DATASET=ml-latest-small (shipped with the "
    "workshop, the default) or WORKSHOP_DATASET=synthetic. To use {archive}, set WORKSHOP_DATA_MIRROR to a directory "
    "or http(s) URL that holds it (a classroom share, say), or connect to the internet and run again."
)

logger = logging.getLogger(__name__)


class DatasetUnavailable(RuntimeError):
    """The archive is not cached and cannot be fetched (offline, refused, or failing its checks).

    Shown in a notebook as its message alone: the traceback would bury the one paragraph a learner can act on.
    """

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for how an exception is displayed (also what ``make run`` reports for the cell)."""
        return [f"DatasetUnavailable: {self}"]


@dataclass(frozen=True)
class MemberCheck:
    """What one archive member must contain: its number of lines (header included), and its SHA-256 if known."""

    lines: int
    sha256: str | None = None


class _Transient(Exception):
    """A failure worth retrying: the network dropped, the server was busy, or the bytes came out wrong."""


class _IntegrityError(_Transient):
    """The archive is unreadable or a member differs from its expected line count or SHA-256."""


def fetch(
    url: str,
    checks: Mapping[str, MemberCheck],
    cache_dir: Path,
    mirror: str | None = None,
    *,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF_SECONDS,
    timeout: float = TIMEOUT_SECONDS,
) -> Path:
    """Return the path of a verified copy of the archive at ``url`` in ``cache_dir``, fetching it if needed.

    Args:
        url: official URL; its last path segment names the archive (e.g. ``ml-100k.zip``).
        checks: member name -> expected line count and SHA-256.
        cache_dir: where archives are kept; created if missing.
        mirror: a directory or an http(s) URL holding the same archive names, used instead of ``url``.
        attempts: tries before giving up; a wait of ``backoff * 2**k`` seconds precedes try ``k + 1``.
        timeout: seconds a connection may stay silent.

    Returns:
        ``cache_dir / <archive name>``, whose members passed ``checks``.

    Raises:
        ValueError: ``attempts`` below 1.
        DatasetUnavailable: the archive is not cached and could not be fetched intact; the message says why and
            names the two ways out (a mirror, or the synthetic dataset).
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    archive = url.rstrip("/").rsplit("/", 1)[-1]
    target = Path(cache_dir) / archive
    if target.exists():
        try:
            _verify_cached(target, checks)
            return target
        except _IntegrityError as error:
            logger.warning("cached %s is damaged (%s); fetching it again", target, error)
            target.unlink()

    source = _source(url, archive, mirror)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(archive + ".part")
    error: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            if isinstance(source, Path):
                shutil.copyfile(source, part)
            else:
                _download(source, part, timeout)
            digest = _verify_members(part, checks)
        except _IntegrityError as caught:
            part.unlink(missing_ok=True)  # resuming bad bytes would keep them: start over
            error = caught
        except _Transient as caught:
            error = caught
        except urllib.error.HTTPError as caught:
            raise DatasetUnavailable(_explain(archive, source, f"HTTP {caught.code} {caught.reason}")) from caught
        else:
            os.replace(part, target)
            _write_stamp(target, digest)
            return target
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    raise DatasetUnavailable(_explain(archive, source, f"{error} (after {tries})")) from error


def _source(url: str, archive: str, mirror: str | None) -> str | Path:
    """The URL or local file to fetch from; a mirror directory must already hold the archive."""
    if mirror is None:
        return url
    if mirror.startswith(("http://", "https://")):
        return mirror.rstrip("/") + "/" + archive
    path = Path(mirror).expanduser() / archive
    if not path.is_file():
        held = sorted(p.name for p in path.parent.glob("*.zip")) if path.parent.is_dir() else []
        holds = f"it holds {', '.join(held)}" if held else "it holds no .zip archive"
        raise DatasetUnavailable(_explain(archive, path.parent, f"the mirror directory has no {archive} ({holds})"))
    return path


def _explain(archive: str, source: str | Path, reason: str) -> str:
    return f"{archive} is not cached and could not be fetched from {source}: {reason}. " + WAYS_OUT.format(
        archive=archive
    )


def _download(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (resuming from its size), or rewrite it if the server ignores Range.

    Raises:
        urllib.error.HTTPError: a status that retrying will not change (404, 403...).
        _Transient: the connection failed or dropped, or the server is busy; ``part`` keeps what arrived.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status == 200:
                offset = 0  # the server ignored Range (or there was nothing to resume): start over
            elif response.status != 206:
                raise _Transient(f"unexpected HTTP status {response.status}")
            elif not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Transient(f"server resumed at the wrong place ({response.headers.get('Content-Range')})")
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length is not None else None
            received = offset
            with (
                open(part, "ab" if offset else "wb") as out,
                tqdm(
                    total=expected,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=_archive_name(part),
                    disable=False,
                ) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        error.close()  # it holds the response's connection
        if error.code == 416:  # nothing left to send from our offset: the .part is stale or overlong
            part.unlink()
            raise _Transient("HTTP 416: the partial file did not match the server's; restarting") from error
        if error.code in RETRYABLE_HTTP_STATUS:
            raise _Transient(f"HTTP {error.code} {error.reason}") from error
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise _Transient(f"{type(error).__name__}: {getattr(error, 'reason', error)}") from error
    if expected is not None and received < expected:
        raise _Transient(f"connection dropped after {received} of {expected} bytes")


def _verify_cached(path: Path, checks: Mapping[str, MemberCheck]) -> None:
    """Accept a cached archive whose hash matches its stamp, else check its members and stamp it."""
    stamp = _stamp_path(path)
    if stamp.exists() and stamp.read_text().strip() == _sha256_file(path):
        return
    _write_stamp(path, _verify_members(path, checks))


def _verify_members(path: Path, checks: Mapping[str, MemberCheck]) -> str:
    """Check each member's line count and SHA-256 (the zip CRCs come free); return the archive's own SHA-256."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member, check in checks.items():
                try:
                    info = archive.getinfo(member)
                except KeyError:
                    raise _IntegrityError(f"{_archive_name(path)} has no member {member}") from None
                lines, digest = _count_and_hash(archive, info)
                if lines != check.lines:
                    raise _IntegrityError(f"{member} has {lines} lines, expected {check.lines}")
                if check.sha256 is not None and digest != check.sha256:
                    raise _IntegrityError(f"{member} has sha256 {digest}, expected {check.sha256}")
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise _IntegrityError(f"{_archive_name(path)} is not a readable zip archive ({error})") from error
    return _sha256_file(path)


def _archive_name(path: Path) -> str:
    return path.name.removesuffix(".part")


def _count_and_hash(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, str]:
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with archive.open(info) as member:
        while chunk := member.read(CHUNK_BYTES):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n"), digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_stamp(path: Path, digest: str) -> None:
    stamp = _stamp_path(path)
    temporary = stamp.with_name(stamp.name + ".tmp")
    temporary.write_text(digest + "\n")
    os.replace(temporary, stamp)
