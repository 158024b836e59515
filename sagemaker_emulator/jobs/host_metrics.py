"""A job's instance metrics, as SageMaker publishes them for each host: CPUUtilization and MemoryUtilization.

AWS puts them in CloudWatch under the job's namespace (``/aws/sagemaker/TrainingJobs``), dimension ``Host`` =
``<job>/algo-<i>``, one datum a minute: CPUUtilization is the sum over the instance's cores (0-400% on 4 vCPUs),
MemoryUtilization a percentage of its memory (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html,
"SageMaker AI job metrics"). Here a host is a process tree, sampled every :data:`SAMPLE_SECONDS`: its CPU seconds
(user + system, of its live processes and of the children they reaped), which a loaded machine hardly changes while
it stretches the wall seconds, and every :data:`MEMORY_EVERY` samples its memory (``memory_guard.process_memory``;
the samples in between repeat it). A host that ends on its own (a
training container) is read once more as it ends (``ChildProcess.exit_cpu``), so a job shorter than one
interval still counts its CPU time.

Each period's datum is a statistic set of one sample per second of the host's run: ``SampleCount`` its seconds,
``Sum`` its CPU seconds x 100, so ``Average`` is the period's utilization and ``Sum`` / 100 the CPU seconds that
``common.costs`` prices. DiskUtilization is not published: a job's folder shares this machine's disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from sagemaker_emulator.jobs.memory_guard import process_memory
from sagemaker_emulator.jobs.metrics import PERIOD_SECONDS

DIMENSION = "Host"
SAMPLE_SECONDS = 0.25
MEMORY_EVERY = 4  # samples from one memory reading to the next: a PSS read walks the page tables (24 ms at 2.3 GB)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used by ``pids`` and by the children they reaped (a reaped child's time moves to its parent)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass(frozen=True)
class Sample:
    at: float  # the clock's seconds
    cpu: float  # the host's CPU seconds so far
    memory: int  # bytes held now


@dataclass(frozen=True)
class Period:
    """One period of a host's run: ``seconds`` of it, ``cpu`` seconds used, utilizations (percent) seen."""

    start: float
    seconds: float
    cpu: float
    cpu_percents: tuple[float, ...]
    memory_percents: tuple[float, ...]


def periods(samples: list[Sample], memory_limit: int, period: int = PERIOD_SECONDS) -> list[Period]:
    """The samples cut into periods of ``period`` seconds from the first; each interval counts in the period where
    it ends. The CPU seconds never go down (a process that ended before its parent reaped it shows in neither).

    Raises:
        ValueError: ``memory_limit`` (bytes) is not positive.
    """
    if memory_limit <= 0:
        raise ValueError(f"memory_limit must be a positive number of bytes, not {memory_limit!r}.")
    cut: dict[int, list[tuple[float, float, float]]] = {}
    cpu_before = 0.0  # what the host used before the first sample (a model server loading its model) counts too
    for before, after in zip(samples, samples[1:], strict=False):
        seconds = after.at - before.at
        cpu = max(0.0, after.cpu - cpu_before)
        cpu_before = max(cpu_before, after.cpu)
        index = int((after.at - samples[0].at) // period)
        cut.setdefault(index, []).append((seconds, cpu, 100.0 * after.memory / memory_limit))
    found = []
    for index, intervals in sorted(cut.items()):
        seconds = sum(s for s, _, _ in intervals)
        found.append(
            Period(
                samples[0].at + index * period,
                seconds,
                sum(c for _, c, _ in intervals),
                tuple(100.0 * c / s for s, c, _ in intervals if s > 0),
                tuple(m for _, _, m in intervals),
            )
        )
    return found


def metric_data(host: str, found: list[Period]) -> list[dict]:
    """PutMetricData entries: per period, CPUUtilization and MemoryUtilization as statistic sets (see the module)."""
    data = []
    for p in found:
        samples = max(p.seconds, 1e-3)
        timestamp = datetime.fromtimestamp(p.start, UTC)
        for name, total, values in (
            ("CPUUtilization", 100.0 * p.cpu, p.cpu_percents or (100.0 * p.cpu / samples,)),
            ("MemoryUtilization", samples * _mean(p.memory_percents), p.memory_percents or (0.0,)),
        ):
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": DIMENSION, "Value": host}],
                    "Timestamp": timestamp,
                    "StatisticValues": {
                        "SampleCount": samples,
                        "Sum": total,
                        "Minimum": min(values),
                        "Maximum": max(values),
                    },
                    "Unit": "Percent",
                }
            )
    return data


def _mean(values: tuple[float, ...]) -> float:
    return sum(values) / len(values) if values else 0.0


class HostMeter:
    """Samples one host's process tree in a thread of its own from :meth:`start` to :meth:`stop`.

    Args:
        processes: the host's processes now (``ChildProcess.processes``).
        clock: seconds since the epoch (the emulator's clock), for the periods' timestamps.
        exit_cpu: the host's CPU seconds read as it ended (``ChildProcess.exit_cpu``), or None: counted at
            :meth:`stop` where the samples saw less (a host that ended between two samples).
    """

    def __init__(
        self,
        processes: Callable[[], list[int]],
        clock: Callable[[], float],
        exit_cpu: Callable[[], float | None] = lambda: None,
    ):
        self._processes = processes
        self._now = clock
        self._exit_cpu = exit_cpu
        self._samples: list[Sample] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="host-meter", daemon=True)

    def start(self) -> HostMeter:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop sampling, with a last sample if the host still runs (a transform job's model server); returns the
        samples."""
        if not self._stopped.is_set():
            self._stopped.set()
            if self._thread.is_alive():
                self._thread.join()
            self._sample(only_if_running=True)
            ended, last = self._exit_cpu(), self._samples[-1]
            if ended is not None and ended > last.cpu:
                self._samples.append(Sample(max(self._now(), last.at + SAMPLE_SECONDS), ended, last.memory))
        return list(self._samples)

    def _sample(self, only_if_running: bool = False) -> None:
        pids = self._processes()
        if only_if_running and not pids:
            return
        if len(self._samples) % MEMORY_EVERY == 0 or only_if_running:
            memory = sum(process_memory(pid)[0] for pid in pids)
        else:
            memory = self._samples[-1].memory
        self._samples.append(Sample(self._now(), cpu_seconds(pids), memory))

    def _watch(self) -> None:
        while not self._stopped.wait(SAMPLE_SECONDS):
            self._sample()
