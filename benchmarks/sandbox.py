"""What the jobs' sandbox (bubblewrap, ``sagemaker_emulator/jobs/sandbox.py``) costs, against no sandbox in the same run.

- process start: ``python -c pass`` in the sandbox a container gets, and bare (the added milliseconds per start);
- job start: CreateTrainingJob → Completed for the tests' no-op algorithm on a 3-row CSV;
- InvokeEndpoint latency (p50, p99), one request at a time, to a model server in the sandbox and to one without;
- the memory guard: one sample of a sandboxed model server's processes (what it does 20 times a second per job).
Two emulators run side by side, one with ``Supervisor(use_sandbox=False)``; the measurements alternate between them,
so a busy machine slows both alike. The figures are printed, and the ratio of each pair.

    .venv/bin/python benchmarks/sandbox.py [--starts 20] [--jobs 3] [--invocations 300]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from emulator_setup import client, deploy, invoke_seconds, prepare, start, train

from sagemaker_emulator.jobs import sandbox
from sagemaker_emulator.jobs.memory_guard import MemoryGuard
from sagemaker_emulator.jobs.process import Supervisor

BUCKET = "benchmark"


def process_start(tool: sandbox.Sandbox, starts: int) -> tuple[list[float], list[float]]:
    """Seconds to run ``python -c pass`` (sandboxed, bare), alternating."""
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        wrapped = tool.command([sys.executable, "-c", "pass"], Path(folder), [Path.home()])
        bare = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {"sandboxed": [], "bare": []}
        for _ in range(starts):
            for name, command in (("sandboxed", wrapped), ("bare", bare)):
                start = time.perf_counter()
                subprocess.run(command, check=True)
                times[name].append(time.perf_counter() - start)
    return times["sandboxed"], times["bare"]


def job_seconds(sm, name: str) -> float:
    begin = time.perf_counter()
    train(sm, name, BUCKET)
    return time.perf_counter() - begin


def guard_sample_ms(emulator, samples: int) -> tuple[float, int]:
    """Median milliseconds of one memory sample of the emulator's (one) live model server, and its processes."""
    child = emulator.services.supervisor.live()[0]
    guard = MemoryGuard(1 << 40, child.processes, child.shared_folders, child.kill)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        _, count = guard.measure()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), count


def _pair(label: str, unit: str, sandboxed: float, bare: float) -> None:
    print(f"{label:<38} sandboxed {sandboxed:8.2f} {unit}   bare {bare:8.2f} {unit}   ratio {sandboxed / bare:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--invocations", type=int, default=300)
    args = parser.parse_args()
    tool, why = sandbox.find()
    if tool is None:
        sys.exit(f"No sandbox to measure: {why}")
    boxed = start()
    bare = start()
    bare.services.supervisor = Supervisor(use_sandbox=False)
    try:
        sandboxed_starts, bare_starts = process_start(tool, args.starts)
        _pair(
            "process start (python -c pass), median",
            "ms",
            *(statistics.median(t) * 1000 for t in (sandboxed_starts, bare_starts)),
        )
        clients = {}
        for name, emulator in (("boxed", boxed), ("bare", bare)):
            prepare(emulator, BUCKET)
            clients[name] = client(emulator, "sagemaker"), client(emulator, "sagemaker-runtime")
        jobs: dict[str, list[float]] = {"boxed": [], "bare": []}
        for run in range(args.jobs):
            for name, (sm, _) in clients.items():
                jobs[name].append(job_seconds(sm, f"bench-{run}"))
        _pair(
            "training job create → Completed, median",
            "s ",
            statistics.median(jobs["boxed"]),
            statistics.median(jobs["bare"]),
        )
        for sm, _ in clients.values():
            deploy(sm, "bench")
        latencies: dict[str, list[float]] = {"boxed": [], "bare": []}
        for _, runtime in clients.values():
            for _ in range(20):
                invoke_seconds(runtime, "bench")
        for _ in range(args.invocations):
            for name, (_, runtime) in clients.items():
                latencies[name].append(invoke_seconds(runtime, "bench") * 1000)
        for percentile in (50, 99):
            _pair(
                f"invoke latency p{percentile} ({args.invocations} requests)",
                "ms",
                *(float(np.percentile(latencies[name], percentile)) for name in ("boxed", "bare")),
            )
        sandboxed_sample, sandboxed_count = guard_sample_ms(boxed, 200)
        bare_sample, bare_count = guard_sample_ms(bare, 200)
        print(
            f"memory guard, one sample (median):     sandboxed {sandboxed_sample:.2f} ms ({sandboxed_count} processes, "
            f"the tree of its pid namespace)   bare {bare_sample:.2f} ms ({bare_count} processes, process tree)"
        )
    finally:
        boxed.stop()
        bare.stop()


if __name__ == "__main__":
    main()
