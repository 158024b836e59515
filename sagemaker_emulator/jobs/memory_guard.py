"""A training job's memory counted as its instance counts it: every process of the job, shared memory included.

A SageMaker container is killed when all of its processes together exceed the instance's memory. The container's
``RLIMIT_DATA`` (``algorithms/container.py``) limits one process's private memory and fails an allocation at once,
but two children of 2.5 GiB each, or a 4.5 GiB shared mapping (``MAP_SHARED`` is not private), passed a 4 GiB
limit. So the emulator also samples the job's whole tree: the proportional set size (PSS, from
``/proc/<pid>/smaps_rollup``) of each of its processes, which counts a page shared by n of them 1/n in each and
shared memory mappings in full, and what the sandbox's ``/dev/shm`` holds (itself capped at the limit). Over the
limit, the whole job is killed, and its FailureReason is SageMaker's out-of-memory one.

Reading a PSS walks the process's page tables (24 ms for a 2.3 GB Object2Vec job: at 20 samples a second, a third
of a core in kernel time, taken from the job it watches), so each sample first adds up the resident set sizes
(``/proc/<pid>/statm``, 0.01 ms), which are never below the PSS, and reads the PSS only when they pass the limit.

cgroup v2 (``memory.max`` on a cgroup of the job's own) would let the kernel do this exactly; it needs a delegated
cgroup v2 tree, which the machines this was built on lack (cgroup v1 in a container), so it is not used yet.
Off Linux, a process's resident set size stands in for its PSS (``psutil``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

POLL_SECONDS = 0.05  # between two samples: at 2 GB/s of fresh pages a job overshoots by about 100 MB at most
_KIB = 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_memory(pid: int) -> tuple[int, int]:
    """(bytes of memory process ``pid`` holds, the part of them that is shared memory); (0, 0) once it is gone.

    On Linux the PSS and its ``Pss_Shmem`` part; elsewhere the resident set size, with no part known as shared.
    """
    if not sys.platform.startswith("linux"):
        try:
            return psutil.Process(pid).memory_info().rss, 0
        except psutil.Error:
            return 0, 0
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                name, _, rest = line.partition(b":")
                if name in (b"Pss", b"Pss_Shmem"):
                    fields[name] = int(rest.split()[0]) * _KIB
    except (OSError, ValueError, IndexError):
        return 0, 0
    return fields.get(b"Pss", 0), fields.get(b"Pss_Shmem", 0)


def resident_memory(pid: int) -> int:
    """Bytes of process ``pid`` that are in memory (its resident set size), 0 once it is gone: never less than its
    PSS, and read in constant time (the kernel keeps the count; it may lag by a few hundred KiB)."""
    if not sys.platform.startswith("linux"):
        return process_memory(pid)[0]
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def folder_usage(folder: Path) -> int:
    """Bytes used on the file system of ``folder`` (a tmpfs, whose files are memory); 0 when it cannot be read."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 0
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


class MemoryGuard:
    """Samples a job's memory in a thread of its own; beyond ``limit`` bytes it calls ``kill`` once.

    Args:
        processes: the job's processes now (a sandbox's pid namespace, else the tree under its first process).
        shared_folders: tmpfs folders of the job's own whose contents count too (the sandbox's ``/dev/shm``).
    """

    def __init__(
        self,
        limit: int,
        processes: Callable[[], list[int]],
        shared_folders: Callable[[], list[Path]],
        kill: Callable[[], None],
    ):
        self.limit = limit
        self.exceeded: str | None = None  # what the job used when it was killed, for its FailureReason
        self._processes = processes
        self._shared_folders = shared_folders
        self._kill = kill
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="memory-guard", daemon=True)

    def start(self) -> MemoryGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def measure(self) -> tuple[int, int]:
        """(bytes the job uses, how many processes it has).

        A file in ``/dev/shm`` that a process maps shows in both its PSS and the folder's usage, so the shared part
        counts once, as the larger of the two (PyTorch's data loaders share batches that way).
        """
        pids = self._processes()
        sizes = [process_memory(pid) for pid in pids]
        mapped_shared = sum(shared for _, shared in sizes)
        in_folders = sum(map(folder_usage, self._shared_folders()))
        used = sum(total for total, _ in sizes) - mapped_shared + max(mapped_shared, in_folders)
        return used, len(pids)

    def surely_within(self) -> bool:
        """Whether the job's resident sets and shared folders together, an upper bound of :meth:`measure`'s figure
        read in constant time, are within the limit."""
        bound = sum(map(resident_memory, self._processes())) + sum(map(folder_usage, self._shared_folders()))
        return bound <= self.limit

    def _watch(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            if self.surely_within():
                continue
            used, count = self.measure()
            if used > self.limit:
                self.exceeded = (
                    f"the job's {count} processes used {used / (1 << 20):,.0f} MiB of memory (shared memory "
                    f"included), so all of them were killed"
                )
                self._kill()
                return
