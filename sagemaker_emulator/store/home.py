"""One emulator per user and machine: its home folder, how to find it, start it in the background and stop it.

The home (``SAGEMAKER_EMULATOR_HOME``, default ``<user cache>/sagemaker-emulator``) holds:

- ``serve.lock``: held (``flock``) by the serving process for its whole life, so a crash never leaves a
  "running" emulator behind: whoever can take the lock knows nobody serves;
- ``emulator.json`` (mode 0600): its URL, pid, key pair and code version, written once it answers, read by every
  notebook kernel that wants it (as Jupyter's runtime files are);
- ``serve.log``: what a background emulator printed;
- ``state/``: what it persists across restarts; ``scratch/``: job folders, removed on exit, swept at start.

Kernels come and go; the emulator stays, as AWS's resources outlive a notebook. When the code it runs is not the
code installed now (a ``git pull`` since it started), :func:`ensure` restarts it; its state is kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.store.files import UnsafePath, open_private, write_atomically

HOME_VARIABLE = "SAGEMAKER_EMULATOR_HOME"
RUNTIME_FILE = "emulator.json"
LOCK_FILE = "serve.lock"
LOG_FILE = "serve.log"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def default_home() -> Path:
    """``SAGEMAKER_EMULATOR_HOME``, else the user's cache folder (``XDG_CACHE_HOME`` or ``~/.cache``)."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sagemaker-emulator"


@dataclass(frozen=True)
class Running:
    """A serving emulator as its runtime file describes it."""

    url: str
    pid: int
    credentials: Credentials
    home: Path
    started: float
    code: str = ""  # code_version() of the process serving

    def exports(self, region: str) -> str:
        """The shell lines that point boto3 and the SageMaker SDK at this emulator."""
        keys = self.credentials
        host = urlparse(self.url).hostname
        return "\n".join(
            [
                f"export AWS_ENDPOINT_URL={self.url}",
                f"export AWS_ACCESS_KEY_ID={keys.access_key_id} AWS_SECRET_ACCESS_KEY={keys.secret_access_key}",
                f"export AWS_DEFAULT_REGION={region}",
                f"export SAGEMAKER_USER_CONFIG_OVERRIDE={sdk_config(self.home)}",
                # behind a proxy, loopback must bypass it (added to what the shell already has)
                f'export NO_PROXY="${{NO_PROXY:+$NO_PROXY,}}{host}" no_proxy="${{no_proxy:+$no_proxy,}}{host}"',
            ]
        )


def sdk_config(home: Path) -> Path:
    """The SDK config file for this emulator: telemetry off (its HTTPS call ignores the endpoint variables)."""
    return home / "sagemaker-config.yaml"


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


def prepare(home: Path) -> Path:
    """Create the home folder, private to the user (it holds the key pair), or check that an existing one is.

    Raises:
        UnsafeHome: it exists and is another user's, or others may write in it.
    """
    home.parent.mkdir(parents=True, exist_ok=True)
    try:
        home.mkdir(mode=0o700)
    except FileExistsError:
        check_home(home)
    home.chmod(0o700)
    return home


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
    """A digest of the emulator's source and of the codec it reads training data with, as installed now."""
    import recordio_protobuf

    digest = hashlib.sha256()
    for package in (Path(__file__).parent, Path(recordio_protobuf.__file__).parent):
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
        )
    except (ValueError, KeyError, OSError):
        return None


def _emulator_environment() -> dict[str, str]:
    """The background emulator's variables: the caller's, without any AWS setting that could steer its clients."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


def ensure(home: Path | None = None, timeout: float = START_TIMEOUT_SECONDS) -> Running:
    """The emulator serving ``home``, started in the background (detached from this process) if none is, or
    restarted if it runs other code than is installed now (its state is saved and restored; running jobs fail).

    Raises:
        RuntimeError: it did not come up within ``timeout`` seconds; the message holds the end of its log.
    """
    home = prepare(home or default_home())
    running = find(home)
    if running is not None and running.code == code_version():
        return running
    if running is not None:
        stop(home)
    log = home / LOG_FILE
    with os.fdopen(open_private(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emulator", "serve", "--home", str(home), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_emulator_environment(),
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
    """Stop the emulator serving ``home`` (SIGTERM, then SIGKILL); False when none was running."""
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
