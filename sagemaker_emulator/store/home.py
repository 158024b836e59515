"""One emulator per checkout of the workshop: its home folder, how to find it, start it in the background, stop it,
and when a newer copy of its code may replace it.

The user's folder (``SAGEMAKER_EMULATOR_HOME``, default ``<user cache>/sagemaker-emulator``) holds one home per
checkout, ``checkouts/<folder name>-<hash of its path>/``, so two clones, or a colleague's fork, each get their own
emulator: its own port, key pair, log and state. State is separated, not shared: two checkouts' code may save
different records, and each behaves as its own AWS account (one lab's cleanup never deletes what the other made).
An emulator's home (the checkout's, or any folder given as ``--home``) holds:

- ``serve.lock``: held (``flock``) by the serving process for its whole life, so a crash never leaves a
  "running" emulator behind: whoever can take the lock knows nobody serves;
- ``emulator.json`` (mode 0600): its URL, pid, key pair, code version and checkout, written once it answers, read
  by every notebook kernel that wants it (as Jupyter's runtime files are);
- ``serve.log``: what a background emulator printed; ``state/``: what it persists across restarts;
- ``kernels/``: the kernels attached to it (``busy.py``).

Kernels come and go; the emulator stays, as AWS's resources outlive a notebook. When the code it runs is no longer
the code installed (a ``git pull`` since it started), :func:`ensure` restarts it, state kept, but only once it is
idle (``busy.py``: no job running, no endpoint being made, no other kernel attached). Until then the caller gets it
as it is, with a :attr:`Running.notice` that says which code it runs, what keeps it and how to force a restart. The
next :func:`ensure` after that restarts it, not the emulator itself: a restart changes its port and key pair,
which only :func:`ensure` can hand to a kernel.

An emulator that an earlier version started at the top of the user's folder (before homes per checkout) may serve
other checkouts' kernels, which it cannot name: it is used as it is, with a notice, and never stopped from here
(``stop --all`` stops it). The first checkout that then starts its own emulator adopts its state.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.store import busy
from sagemaker_emulator.store.files import UnsafePath, open_private, write_atomically
from sagemaker_emulator.store.running import SDK_CONFIG, Running

HOME_VARIABLE = "SAGEMAKER_EMULATOR_HOME"
RUNTIME_FILE = "emulator.json"
LOCK_FILE = "serve.lock"
LOG_FILE = "serve.log"
STATE_FOLDER = "state"
CHECKOUTS = "checkouts"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def user_home() -> Path:
    """The user's folder of emulators: ``SAGEMAKER_EMULATOR_HOME``, else the user's cache folder (``XDG_CACHE_HOME``
    or ``~/.cache``) ``/sagemaker-emulator``."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).absolute() / "sagemaker-emulator"


def code_root() -> Path:
    """The checkout this code runs from: the folder that holds the ``sagemaker_emulator`` package."""
    return Path(__file__).resolve().parents[2]


def checkout_name(root: Path) -> str:
    """The name of ``root``'s home: its folder name (readable) and a hash of its whole path (unique)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.")[:40] or "checkout"
    return f"{readable}-{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"


def default_home() -> Path:
    """This checkout's emulator home: ``<user folder>/checkouts/<checkout name>``."""
    return user_home() / CHECKOUTS / checkout_name(code_root())


def emulator_homes(root: Path | None = None) -> list[Path]:
    """Every emulator home in the user's folder ``root``: each checkout's, after the folder itself when an earlier
    version served from it (its runtime file or state is at the top)."""
    root = root or user_home()
    folder = root / CHECKOUTS
    checkouts = sorted(path for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []
    earlier = (root / RUNTIME_FILE).exists() or (root / STATE_FOLDER).is_dir()
    return ([root] if earlier else []) + checkouts


class UnsafeHome(UnsafePath):
    """The home folder belongs to another user, or others may write in it: its files could be swapped or read."""


def check_home(home: Path, uid: int | None = None) -> None:
    """Refuse a home folder that ``uid`` (default: this process's user) does not own or that group or others may
    write: whoever controls it could plant links that redirect the key pair or the state.

    Raises:
        UnsafeHome: with the folder, its owner and mode, and what to do.
    """
    uid = os.geteuid() if uid is None else uid
    info = home.stat()
    problems = []
    if info.st_uid != uid:
        problems.append(f"owned by uid {info.st_uid}, not by you (uid {uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append("writable by group or others")
    if problems:
        raise UnsafeHome(
            f"Refusing the emulator home {home}: it is {' and '.join(problems)} (mode {stat.S_IMODE(info.st_mode):04o}), "
            f"and it would hold the key pair; remove it, or choose a folder of your own with --home or {HOME_VARIABLE}."
        )


def _private(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        check_home(folder)
    folder.chmod(0o700)
    return folder


def prepare(home: Path) -> Path:
    """Create the home folder, private to the user (it holds the key pair), or check that an existing one is; for a
    checkout's home, the user's folder and its ``checkouts`` folder too (whoever could write them could swap it).

    Raises:
        UnsafeHome: it exists and is another user's, or others may write in it.
    """
    if home.parent.name == CHECKOUTS:
        _private(home.parent.parent)
        _private(home.parent)
    return _private(home)


class ServeLock:
    """The lock a serving emulator holds for its life; ``acquire`` fails when another one serves this home."""

    def __init__(self, home: Path):
        self._path = prepare(home) / LOCK_FILE
        self._file = None

    def acquire(self) -> bool:
        handle = os.fdopen(open_private(self._path, os.O_RDWR | os.O_CREAT), "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _serving(home: Path) -> bool:
    """Whether some process holds ``serve.lock`` (a shared lock is refused while the serving one holds it)."""
    path = home / LOCK_FILE
    if not path.exists():
        return False
    with os.fdopen(open_private(path, os.O_RDONLY), "r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def code_version() -> str:
    """A digest of the emulator's whole package and of the codec it reads training data with, as installed now."""
    import recordio_protobuf

    digest = hashlib.sha256()
    for package in (Path(__file__).parents[1], Path(recordio_protobuf.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def write_runtime(home: Path, url: str, credentials: Credentials) -> Path:
    """Publish a serving emulator (atomically, readable by the user only)."""
    path = home / RUNTIME_FILE
    runtime = {
        "url": url,
        "pid": os.getpid(),
        "access_key_id": credentials.access_key_id,
        "secret_access_key": credentials.secret_access_key,
        "started": time.time(),
        "code": code_version(),
        "checkout": str(code_root()),
    }
    write_atomically(path, [json.dumps(runtime).encode()])
    return path


def remove_runtime(home: Path) -> None:
    (home / RUNTIME_FILE).unlink(missing_ok=True)


def find(home: Path | None = None) -> Running | None:
    """The emulator serving ``home``, or None (a runtime file left by a crash is ignored).

    Raises:
        UnsafeHome: ``home`` is another user's, or others may write in it (its runtime file cannot be trusted).
    """
    home = home or default_home()
    path = home / RUNTIME_FILE
    if not path.exists():
        return None
    check_home(home)
    if not _serving(home):
        return None
    try:
        data = json.loads(path.read_text())
        return Running(
            data["url"],
            int(data["pid"]),
            Credentials(data["access_key_id"], data["secret_access_key"]),
            home,
            float(data["started"]),
            str(data.get("code", "")),
            str(data.get("checkout", "")),
        )
    except (ValueError, KeyError, OSError):
        return None


def _emulator_environment() -> dict[str, str]:
    """The background emulator's variables: the caller's, without any AWS setting that could steer its clients."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


def ensure(home: Path | None = None, timeout: float = START_TIMEOUT_SECONDS) -> Running:
    """The emulator serving ``home`` (default: this checkout's), started in the background (detached from this
    process) if none is, and this process registered as one of its kernels.

    If it runs other code than is installed now, it is restarted (state saved and restored) when idle; when busy
    it is returned as it is. Either way its :attr:`Running.notice` says so. With the default home, an emulator an earlier
    version started for the whole user's folder is returned as it is, with a notice, if it runs.

    Raises:
        RuntimeError: it did not come up within ``timeout`` seconds; the message holds the end of its log.
    """
    home = prepare(home or default_home())
    running = find(home)
    if running is None and home == default_home():
        earlier = find(user_home())
        if earlier is not None:
            return replace(earlier, notice=_earlier_notice(earlier))
        _adopt_earlier_state(user_home(), home)
    if running is not None and running.code != code_version():
        keeping = busy.reasons(home, running)
        if keeping:
            busy.attach(home, running)
            return replace(running, notice=_kept_notice(running, keeping))
        stop(home)
        restarted = _start(home, timeout)
        busy.attach(home, restarted)
        return replace(restarted, notice=_restarted_notice(running, restarted))
    running = running or _start(home, timeout)
    busy.attach(home, running)
    return running


def _restarted_notice(before: Running, after: Running) -> str:
    return (
        f"Restarted the SageMaker emulator on the code installed now (version {after.code}; it ran version "
        f"{before.code or 'unknown'}), its state kept; it is now at {after.url}."
    )


def _kept_notice(running: Running, keeping: list[str]) -> str:
    return (
        f"The SageMaker emulator at {running.url} (pid {running.pid}) keeps running the code it started with "
        f"(version {running.code or 'unknown'}), not the code installed now (version {code_version()}), because it "
        f"is busy: {', '.join(keeping)}. Once it is idle, the next start_session() (or `python -m sagemaker_emulator "
        "start`) restarts it on the new code, its state kept. To restart it now, ending what runs in it: "
        "`python -m sagemaker_emulator stop`, then start again."
    )


def _earlier_notice(earlier: Running) -> str:
    return (
        f"Using the SageMaker emulator an earlier version of this workshop started for all checkouts, at {earlier.url} "
        f"(pid {earlier.pid}, folder {earlier.home}): it may serve other checkouts' kernels, so it is not stopped "
        "from here. When nothing runs in it, `python -m sagemaker_emulator stop --all` stops it; the next start then "
        "gives this checkout an emulator of its own, which takes over its state."
    )


def _adopt_earlier_state(root: Path, home: Path) -> None:
    """Move the state (and SDK defaults) an earlier version kept at the top of ``root`` into ``home``, if it has none:
    the first checkout to start takes it over."""
    for name in (STATE_FOLDER, SDK_CONFIG):
        if (root / name).exists() and not (home / name).exists():
            try:
                os.rename(root / name, home / name)
            except FileNotFoundError:  # another checkout took it first
                pass


def _start(home: Path, timeout: float) -> Running:
    """Start an emulator serving ``home`` from this checkout's code, and wait until it answers."""
    log = home / LOG_FILE
    with os.fdopen(open_private(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emulator", "serve", "--home", str(home.absolute()), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_emulator_environment(),
            cwd=code_root(),  # `-m` looks in the working folder first: this checkout's package, not another's
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = find(home)
        if running is not None:
            return running
        if process.poll() not in (None, 0) and not _serving(home):
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"The SageMaker emulator did not start (home {home}). The end of {log}:\n{tail}")


def stop(home: Path | None = None, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the emulator serving ``home`` (default: this checkout's; SIGTERM, then SIGKILL); False when none was
    running."""
    home = home or default_home()
    running = find(home)
    if running is None:
        return False
    try:
        os.kill(running.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _serving(home):
        time.sleep(0.1)
    if _serving(home):
        os.kill(running.pid, signal.SIGKILL)
    return True


def stop_all(root: Path | None = None) -> list[Path]:
    """Stop every emulator in the user's folder ``root`` (every checkout's, and an earlier version's); the homes of
    those that were running."""
    return [home for home in emulator_homes(root) if stop(home)]
