"""Child processes (algorithm containers, model servers) and the supervisor that can end them all.

Each child runs in the sandbox (``sandbox.py``: its job folder writable, HOME hidden, a pid namespace of its own)
when this machine has one, else in a session of its own. Stopping follows SageMaker's contract: SIGTERM to the
job's processes first, so the algorithm can save its model, then SIGKILL to all of them after a grace period (AWS
allows 120 s; the emulator's grace is configurable); in the sandbox, ending its namespace ends every process the
job started, ``setsid`` daemons included.

Every child is sealed as a SageMaker container is (:func:`sealed_environment`): its AWS is this emulator, never
the user's account, and a training job's memory is limited to its instance type's (:func:`memory_limit`), counted
over all of its processes (``memory_guard.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import psutil

from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE
from sagemaker_emulator.jobs import sandbox
from sagemaker_emulator.jobs.memory_guard import MemoryGuard
from sagemaker_emulator.loopback import bypass_proxies
from sagemaker_emulator.store.home import default_home

LOG = logging.getLogger(__name__)

CONTAINER_MODULE = "sagemaker_emulator.algorithms.container"


# A container starts from a clean environment, as on SageMaker: none of the host's variables (WORKSHOP_*,
# credentials, AWS_PROFILE, endpoint settings, the kernel's settings) reach a job or its log. Only what running
# Python here needs passes through; HOME and every AWS_* variable come from sealed_environment instead.
INHERITED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "OMP_NUM_THREADS",
    PLUGINS_VARIABLE,  # plug-ins registered outside the package (the tests' mean-regressor): see algorithms/registry
)


class Host(Protocol):
    """What a child needs from the emulator (``state.Services`` is one): its URL, its key pair, its supervisor."""

    url: str
    credentials: object  # ``auth.Credentials``: ``as_environment()`` gives the container its key pair
    supervisor: Supervisor


def container_environment() -> dict[str, str]:
    """The host variables a child process keeps; the job's ``Environment`` and the sealed variables go on top."""
    env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("MXNET_")})
    return env


def sealed_environment(services: Host, region: str, home: Path) -> dict[str, str]:
    """The AWS a container sees: this emulator's endpoint and session key, its job's region, a private HOME.

    On SageMaker a container's AWS calls go to the job's region with the execution role's credentials; here
    they go to the emulator, signed with its key. The user's ``~/.aws`` (and any profile, session token or
    endpoint variable) must not be found, or a script's plain ``boto3.client("s3")`` would use real credentials
    against real AWS: so HOME is ``home`` (created here, with empty ``.aws/config`` and ``.aws/credentials``
    that the config variables name), and instance metadata, the last place botocore looks, is switched off.
    ``PYTHONUSERBASE`` keeps packages installed with ``pip install --user`` importable under the new HOME.
    """
    aws = home / ".aws"
    aws.mkdir(parents=True, exist_ok=True)
    for name in ("config", "credentials"):
        (aws / name).touch()
    return {
        "HOME": str(home),
        "PYTHONUSERBASE": site.getuserbase(),
        "AWS_ENDPOINT_URL": services.url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **services.credentials.as_environment(),
        "AWS_CONFIG_FILE": str(aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


GIB = 1 << 30
# A training job gets its instance type's memory, but at most this share of the machine's, so that one job
# cannot starve the notebook, the emulator and the system of memory (a p3.2xlarge's 61 GiB on a 16 GiB laptop).
MACHINE_MEMORY_SHARE = 0.75

# Memory (GiB) of common ml.* instance types, as AWS's instance type pages list it. Any other type gets the cap.
INSTANCE_MEMORY_GIB = {
    "ml.t3.medium": 4,
    "ml.t3.large": 8,
    "ml.t3.xlarge": 16,
    "ml.t3.2xlarge": 32,
    "ml.m4.xlarge": 16,
    "ml.m4.2xlarge": 32,
    "ml.m4.4xlarge": 64,
    "ml.m4.10xlarge": 160,
    "ml.m4.16xlarge": 256,
    "ml.m5.large": 8,
    "ml.m5.xlarge": 16,
    "ml.m5.2xlarge": 32,
    "ml.m5.4xlarge": 64,
    "ml.m5.12xlarge": 192,
    "ml.m5.24xlarge": 384,
    "ml.c4.xlarge": 7.5,
    "ml.c4.2xlarge": 15,
    "ml.c4.4xlarge": 30,
    "ml.c4.8xlarge": 60,
    "ml.c5.xlarge": 8,
    "ml.c5.2xlarge": 16,
    "ml.c5.4xlarge": 32,
    "ml.c5.9xlarge": 72,
    "ml.c5.18xlarge": 144,
    "ml.r5.large": 16,
    "ml.r5.xlarge": 32,
    "ml.r5.2xlarge": 64,
    "ml.p2.xlarge": 61,
    "ml.p2.8xlarge": 488,
    "ml.p2.16xlarge": 732,
    "ml.p3.2xlarge": 61,
    "ml.p3.8xlarge": 244,
    "ml.p3.16xlarge": 488,
    "ml.g4dn.xlarge": 16,
    "ml.g4dn.2xlarge": 32,
    "ml.g5.xlarge": 16,
    "ml.g5.2xlarge": 32,
}


@dataclass(frozen=True)
class MemoryLimit:
    """A training job's memory limit, and where the number comes from (for its log and its FailureReason)."""

    bytes: int
    note: str  # "8 GiB, the memory of an ml.m5.large"


def gib(size: float) -> str:
    """Bytes as GiB for messages: ``8 GiB``, ``17.4 GiB``."""
    return f"{size / GIB:.1f}".removesuffix(".0") + " GiB"


def machine_memory() -> int:
    """This machine's physical memory in bytes (Linux and macOS)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit(instance_type: str, override: int | None = None, machine: int | None = None) -> MemoryLimit:
    """The memory a training job on ``instance_type`` may use here.

    Args:
        instance_type: the job's ``ResourceConfig.InstanceType``.
        override: ``Limits.training_memory_bytes``, which replaces the rule (tests lower it).
        machine: this machine's memory in bytes; :func:`machine_memory` when omitted.
    """
    known = INSTANCE_MEMORY_GIB.get(instance_type)
    has = f"an {instance_type} has {gib(known * GIB)}" if known else f"the emulator lacks {instance_type}'s memory"
    if override is not None:
        return MemoryLimit(override, f"{gib(override)}, set by the emulator's Limits.training_memory_bytes ({has})")
    machine = machine or machine_memory()
    cap = int(machine * MACHINE_MEMORY_SHARE)
    if known and known * GIB <= cap:
        return MemoryLimit(int(known * GIB), f"{gib(known * GIB)}, the memory of an {instance_type}")
    share = f"{gib(cap)}, {MACHINE_MEMORY_SHARE:.0%} of this machine's {gib(machine)} ({has})"
    return MemoryLimit(cap, share + ("; a larger instance type cannot raise it here" if known else ""))


class ChildProcess:
    """One child whose stdout and stderr come back merged, line by line, on :attr:`stdout`.

    ``region`` and ``home`` are required so that no caller can start a child that sees the user's AWS: the
    child's environment is the host's basics, then ``env`` (a job's ``Environment``), then
    :func:`sealed_environment`, which the job cannot override. ``cwd`` is the job's folder: in the sandbox, the
    only one it may write to, with ``writable`` (more folders it may write to, except ``read_only`` folders inside
    them). With ``memory``, the job's
    processes together may use that much (:class:`MemoryGuard`); :attr:`out_of_memory` then says what they used.
    """

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None,
        *,
        services: Host,
        region: str,
        home: Path,
        memory: MemoryLimit | None = None,
        writable: list[Path] = (),
        read_only: list[Path] = (),
    ):
        child_env = {**container_environment(), **(env or {}), **sealed_environment(services, region, home)}
        child_env.update(bypass_proxies(child_env, services.url))  # a job's own HTTP_PROXY never sees the emulator
        child_env["PYTHONUNBUFFERED"] = "1"
        self._supervisor = services.supervisor
        self.sandbox = services.supervisor.sandbox()
        if self.sandbox is not None:
            hidden = [Path.home(), default_home(), services.workdir]
            shm = memory.bytes if memory else None
            args = self.sandbox.command(args, cwd, [p.resolve() for p in hidden], list(writable), list(read_only), shm)
            child_env["TMPDIR"] = "/tmp"  # the job folder's own tmp, mounted there
        else:  # the same folder by name: a temporary file outlives a killed job no more than the job folder does
            tmp = Path(cwd) / sandbox.PRIVATE_TMP
            tmp.mkdir(parents=True, exist_ok=True)
            child_env["TMPDIR"] = str(tmp)
        self._namespace: tuple[int, str] | None = None  # (first process, pid namespace) of the sandbox
        self._pidfd: int | None = None
        self._lock = threading.RLock()  # the memory guard's thread and the runner's both look and kill
        self.popen = services.supervisor.spawn(
            partial(
                subprocess.Popen,
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
        )
        self.stdout = self.popen.stdout
        self.exit_cpu: float | None = None  # CPU seconds of the job's whole tree, read as its first process ends
        self._guard = None
        if memory is not None:
            self._guard = MemoryGuard(memory.bytes, self.processes, self.shared_folders, self.kill).start()
        services.supervisor.adopt(self)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self._exited(0) else None

    @property
    def out_of_memory(self) -> str | None:
        """What the job used when the memory guard killed it; None if it did not."""
        return self._guard.exceeded if self._guard is not None else None

    def wait(self, timeout: float | None = None) -> int | None:
        return self.popen.wait() if self._exited(timeout) else None

    def _exited(self, timeout: float | None) -> bool:
        """Whether the first process has ended, waiting up to ``timeout`` seconds (None: until it does) without
        reaping it: until it is reaped, it still holds the CPU seconds of the processes it reaped, which
        :attr:`exit_cpu` keeps (a job shorter than one of the host meter's samples would otherwise show none)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.popen.returncode is None:
            flags = os.WEXITED | os.WNOWAIT | (0 if deadline is None else os.WNOHANG)
            try:
                ended = os.waitid(os.P_PID, self.popen.pid, flags)
            except ChildProcessError:  # reaped by another thread since the check
                return True
            if ended is not None:
                if self.exit_cpu is None:
                    self.exit_cpu = _cpu_seconds(self.popen.pid)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.05, remaining))
        return True

    def _find_namespace(self) -> tuple[int, str] | None:
        """The sandbox's first process (``bwrap``'s child, pid 1 inside) and its pid namespace, once it exists.

        A pidfd holds on to that process, so that killing it can never reach another one that got its pid later.
        """
        with self._lock:
            if self._namespace is None and self.sandbox is not None and self.popen.poll() is None:
                self._look_for_namespace()
            return self._namespace

    def _look_for_namespace(self) -> None:
        ours = sandbox.pid_namespace(os.getpid())
        try:
            children = psutil.Process(self.popen.pid).children()
        except psutil.Error:
            return
        for child in children:
            try:
                handle = os.pidfd_open(child.pid)
            except OSError:
                continue
            namespace = sandbox.pid_namespace(child.pid)
            if namespace is not None and namespace != ours:
                self._namespace, self._pidfd = (child.pid, namespace), handle
                return
            os.close(handle)

    def processes(self) -> list[int]:
        """The job's processes: its first process and all its descendants; in the sandbox, everything in its pid
        namespace, which is its first process's tree (an orphan there is adopted by that process, pid 1)."""
        if self.sandbox is not None:
            found = self._find_namespace()
            return process_tree(found[0]) if found else []
        return process_tree(self.popen.pid)

    def shared_folders(self) -> list[Path]:
        found = self._find_namespace()
        return [Path(f"/proc/{found[0]}/root/dev/shm")] if found else []

    def signal(self, signum: int) -> None:
        """``signum`` to the job: in the sandbox to each of its processes (``bwrap`` itself would die of a SIGTERM
        and take the job with it before it saved anything), else to its session's process group."""
        if signum == signal.SIGKILL:
            self.kill()
            return
        if self.sandbox is not None:
            found = self._find_namespace()
            for pid in self.processes():
                if found is None or pid != found[0]:
                    _kill(pid, signum)
            return
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL to every process of the job; in the sandbox, ending its first process ends its whole namespace."""
        with self._lock:
            if self._find_namespace() is not None and self._pidfd is not None:
                try:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            elif self.sandbox is None:
                for pid in self.processes():  # descendants that left its process group (setsid) too
                    _kill(pid, signal.SIGKILL)
            if self.popen.poll() is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def terminate(self, grace_seconds: float) -> int:
        """SIGTERM, then SIGKILL if the child is still running after ``grace_seconds``; returns the exit code.

        Outside the sandbox, what the job left in its process group is killed too once its first process ended
        (in the sandbox, the kernel has already ended the namespace with its first process).
        """
        if self.returncode is None:
            self.signal(signal.SIGTERM)
            if self.wait(grace_seconds) is None:
                self.kill()
        code = self.wait()
        if self.sandbox is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._close()
        return code

    def _close(self) -> None:
        if self._guard is not None:
            self._guard.stop()
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        self._supervisor.release(self)

    def reap(self) -> None:
        self._close()


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and of the children it reaped; None once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system + times.children_user + times.children_system


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants; on Linux from each thread's ``/proc/<pid>/task/<tid>/children``, which reads
    only the tree (psutil's ``children(recursive=True)`` reads every process of the machine: 30 ms, not 1)."""
    if not sys.platform.startswith("linux"):
        try:
            return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
        except psutil.Error:
            return []
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        tree.append(current)
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return tree


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def container_command(*args: str) -> list[str]:
    return [sys.executable, "-m", CONTAINER_MODULE, *args]


class Supervisor:
    """Every live child of one emulator, so that stopping or resetting the emulator leaves none behind."""

    def __init__(self, use_sandbox: bool = True):
        self._children: set[ChildProcess] = set()
        self._lock = threading.Lock()
        self._sandbox: tuple[sandbox.Sandbox | None, str] | None = None
        if not use_sandbox:  # the benchmark's reference, and tests whose model servers share a file with them
            self._sandbox = None, "turned off"
        # bwrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that started it ends, and jobs and
        # model servers are started from threads that end long before them: one thread that lives as long as the
        # emulator starts them all.
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="child-starter")

    def spawn(self, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        """``start()`` run on the supervisor's own thread; returns the process it started."""
        return self._starter.submit(start).result()

    def sandbox(self) -> sandbox.Sandbox | None:
        """This machine's sandbox, looked for once per emulator; the log says once which way jobs run."""
        with self._lock:
            if self._sandbox is None:
                self._sandbox = sandbox.find()
                found, why = self._sandbox
                if found is None:
                    LOG.warning("Jobs and model servers run without a sandbox: %s. They can read your files.", why)
                else:
                    LOG.info("Jobs and model servers: %s.", why)
            return self._sandbox[0]

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
                child.signal(signal.SIGTERM)
        for child in children:
            child.terminate(grace_seconds)
