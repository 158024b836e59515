"""Child processes (algorithm containers, model servers) and the supervisor that can end them all.

Each child runs in its own session so that stopping it reaches everything it started. Stopping follows
SageMaker's contract: SIGTERM first, so the algorithm can save its model, then SIGKILL after a grace period
(AWS allows 120 s; the emulator's grace is configurable).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

CONTAINER_MODULE = "sagemaker_emulator.algorithms.container"


# A container starts from a clean environment, as on SageMaker: none of the host's variables (WORKSHOP_*,
# credentials, the kernel's settings) reach a job or its log. Only what running Python here needs passes through.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "OMP_NUM_THREADS",
                       "AWS_REGION", "AWS_DEFAULT_REGION")


def container_environment() -> dict[str, str]:
    """The variables a child process starts with (before the job's own Environment is added)."""
    env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("MXNET_")})
    return env


class ChildProcess:
    """One child whose stdout and stderr come back merged, line by line, on :attr:`stdout`."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None, supervisor: "Supervisor"):
        child_env = container_environment()
        child_env.update(env or {})
        child_env["PYTHONUNBUFFERED"] = "1"
        self._supervisor = supervisor
        self.popen = subprocess.Popen(
            args,
            cwd=str(cwd),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self.stdout = self.popen.stdout
        supervisor.adopt(self)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self, grace_seconds: float) -> int:
        """SIGTERM, then SIGKILL if the child is still running after ``grace_seconds``; returns the exit code."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            if self.wait(grace_seconds) is None:
                self._signal(signal.SIGKILL)
        code = self.popen.wait()
        self._supervisor.release(self)
        return code

    def reap(self) -> None:
        self._supervisor.release(self)


def container_command(*args: str) -> list[str]:
    return [sys.executable, "-m", CONTAINER_MODULE, *args]


class Supervisor:
    """Every live child of one emulator, so that stopping or resetting the emulator leaves none behind."""

    def __init__(self):
        self._children: set[ChildProcess] = set()
        self._lock = threading.Lock()

    def adopt(self, child: ChildProcess) -> None:
        with self._lock:
            self._children.add(child)

    def release(self, child: ChildProcess) -> None:
        with self._lock:
            self._children.discard(child)

    def live(self) -> list[ChildProcess]:
        with self._lock:
            return [child for child in self._children if child.returncode is None]

    def stop_all(self, grace_seconds: float = 2.0) -> None:
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.returncode is None:
                child._signal(signal.SIGTERM)
        for child in children:
            child.terminate(grace_seconds)
