"""The sandbox every container process runs in on Linux: bubblewrap (Debian's ``bubblewrap``, the tool Flatpak uses).

Jobs run user code (script mode), so a container sees the machine as a SageMaker container sees its instance: its
job folder writable (and ``/tmp``, a folder inside it), everything else read-only; the user's HOME and the
emulator's home hidden (empty tmpfs), with the code and the Python it needs bound back read-only where they lie
under them; its own ``/proc`` (``--unshare-pid``), so the kernel's and the emulator's environments and command lines
are out of sight; its own SysV IPC. The network is shared: model servers listen on loopback and every container's
AWS is the emulator on loopback. Everything the job started lives in its pid namespace, and the kernel kills all of
it when the namespace's first process ends, so a ``setsid`` daemon cannot outlive its job (``--die-with-parent``
does the same if the emulator dies).

Where ``bwrap`` is missing (macOS) or refused (a host that forbids user namespaces), the emulator says so once and
runs containers as before: sealed environment, own session, killed by process group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TOOL = "bwrap"
PROBE_TIMEOUT_SECONDS = 30.0
PRIVATE_TMP = "tmp"  # the job folder's folder that the container sees as /tmp


@dataclass(frozen=True)
class Mount:
    """One bubblewrap mount; mounts apply shortest path first, so a deeper one shows through a hidden parent."""

    path: Path
    kind: str  # "hide" (empty tmpfs), "replace" (``source`` bound there), "read" or "write" (bound as it is)
    source: Path | None = None

    def arguments(self) -> list[str]:
        if self.kind == "hide":
            return ["--tmpfs", str(self.path)]
        if self.kind == "replace":
            return ["--bind", str(self.source), str(self.path)]
        return ["--ro-bind" if self.kind == "read" else "--bind", str(self.path), str(self.path)]


_ORDER = {"hide": 0, "replace": 0, "read": 1, "write": 2}


@dataclass(frozen=True)
class Sandbox:
    """How to run a command in bubblewrap (``tool`` is the ``bwrap`` found on ``PATH``)."""

    tool: str

    def command(
        self,
        args: list[str],
        folder: Path,
        hidden: list[Path],
        writable: list[Path] = (),
        read_only: list[Path] = (),
        shm_bytes: int | None = None,
    ) -> list[str]:
        """``args`` run in the sandbox with ``folder`` (the job's) writable and seen at its own path.

        Args:
            hidden: folders to show empty (the user's HOME, the emulator's home and scratch).
            writable: further folders bound read-write (the cache of requirements' environments).
            read_only: folders inside those shown read-only (the environments already installed).
            shm_bytes: the size of the container's ``/dev/shm`` (its memory limit; shared memory counts).
        """
        tmp = folder / PRIVATE_TMP
        tmp.mkdir(parents=True, exist_ok=True)
        mounts = [Mount(Path("/tmp"), "replace", tmp)]
        mounts += [Mount(path, "hide") for path in hidden if path.is_dir() and path != Path("/")]
        # code under a hidden folder or under /tmp (a virtual environment made there) is bound back, read-only
        mounts += [Mount(path, "read") for path in code_paths() if _inside(path, [m.path for m in mounts])]
        mounts += [Mount(path, "write") for path in [folder, *writable]]
        mounts += [Mount(path, "read") for path in read_only]
        mounts.sort(key=lambda mount: (len(mount.path.parts), _ORDER[mount.kind]))
        shm = ["--size", str(shm_bytes)] if shm_bytes else []
        command = [self.tool, "--ro-bind", "/", "/", "--dev", "/dev", *shm, "--tmpfs", "/dev/shm", "--proc", "/proc"]
        for mount in mounts:
            command += mount.arguments()
        return [*command, "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--chdir", str(folder), "--", *args]


def _inside(path: Path, hidden: list[Path]) -> bool:
    """Whether ``path`` lies strictly under a hidden folder (binding a hidden folder itself would show it again)."""
    return path not in hidden and any(path.is_relative_to(folder) for folder in hidden)


def code_paths() -> list[Path]:
    """What a container must read: this interpreter and its environment, every folder on its import path."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent}
    paths.update(Path(entry) for entry in sys.path if entry)
    paths.update(Path(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry)
    return sorted(path.resolve() for path in paths if path.is_dir())


def find() -> tuple[Sandbox | None, str]:
    """The sandbox of this machine, or None and why not; a trial run with a job's options proves that ``bwrap``
    works here (an old one lacks ``--size``; a host may forbid the namespaces it needs)."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap exists only on Linux (this is {sys.platform})"
    tool = shutil.which(TOOL)
    if tool is None:
        return None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        with tempfile.TemporaryDirectory(prefix="sagemaker-emulator-sandbox-") as folder:
            trial = Sandbox(tool).command(["true"], Path(folder), [], shm_bytes=1 << 20)
            result = subprocess.run(trial, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"{tool} could not run ({error})"
    if result.returncode != 0:
        return None, f"{tool} is refused here ({result.stderr.strip() or f'exit code {result.returncode}'})"
    return Sandbox(tool), f"jobs run in a sandbox ({tool})"


def pid_namespace(pid: int) -> str | None:
    """The pid namespace of process ``pid`` (``pid:[4026532201]``), None once it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
