"""The memory guard's sampling (jobs/memory_guard.py): the costly PSS read only near the limit.

Killing a job over its limit, as AWS does, is tested end to end in ``test_resource_guards.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from sagemaker_emulator.jobs import memory_guard
from sagemaker_emulator.jobs.memory_guard import MemoryGuard, process_memory, resident_memory


def test_the_resident_set_bounds_the_pss_from_above_and_is_0_for_a_gone_process():
    block = bytearray(64 << 20)  # 64 MiB of pages of this process's own
    pss, _ = process_memory(os.getpid())
    assert resident_memory(os.getpid()) >= pss >= len(block)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert resident_memory(gone.pid) == 0


def _guard(limit: int) -> tuple[MemoryGuard, threading.Event]:
    """A guard of this test process's memory, and the event its kill sets."""
    killed = threading.Event()
    return MemoryGuard(limit, lambda: [os.getpid()], lambda: [], killed.set), killed


@pytest.fixture
def pss_reads(monkeypatch) -> list[int]:
    """Each PSS read the guard makes, counted."""
    reads: list[int] = []

    def counted(pid: int) -> tuple[int, int]:
        reads.append(pid)
        return process_memory(pid)

    monkeypatch.setattr(memory_guard, "process_memory", counted)
    monkeypatch.setattr(memory_guard, "POLL_SECONDS", 0.005)
    return reads


def test_far_below_the_limit_the_guard_never_walks_the_page_tables(pss_reads):
    guard, killed = _guard(1 << 50)
    guard.start()
    time.sleep(0.2)  # about 40 samples
    guard.stop()
    assert pss_reads == [] and not killed.is_set()


def test_past_the_resident_bound_the_guard_reads_the_pss_and_kills_over_the_limit(pss_reads):
    guard, killed = _guard(1 << 20)
    guard.start()
    assert killed.wait(10)
    guard.stop()
    assert pss_reads and guard.exceeded.startswith("the job's 1 processes used ")
