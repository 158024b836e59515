"""Training metrics from log lines, as SageMaker extracts them: each definition's regex, first group.

Built-in algorithms bring their own definitions (a plug-in's ``METRIC_DEFINITIONS``); a custom
image declares them in ``AlgorithmSpecification.MetricDefinitions``. ``FinalMetricDataList`` holds the last
value each definition matched; every value matched goes to CloudWatch metrics (:func:`publish`), where
``TrainingJobAnalytics`` (SDK v2 ``sagemaker.analytics``, v3 ``sagemaker.core.analytics``) reads it back.

Timestamps: the SDK asks ``GetMetricStatistics`` for the average over periods of 60 s by default, from
``TrainingStartTime`` to ``TrainingEndTime`` plus one minute, so values reported within one minute of each other
come back as one averaged row. A local epoch can take a fraction of a second, so :func:`cloudwatch_series` stamps
each value at the time it was reported, or one period after the previous value of the same metric if that is
later: a value is never stamped earlier than it happened, and later only as much as one row per value needs.
The job then reports its ``TrainingEndTime`` no earlier than one period before its last stamp, so the SDK's
window holds every stamp (``horizon``); its ``TrainingTimeInSeconds`` and ``BillableTimeInSeconds`` stay true.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

LOG = logging.getLogger(__name__)

NAMESPACE = "/aws/sagemaker/TrainingJobs"
DIMENSION = "TrainingJobName"
PERIOD_SECONDS = 60  # the SDK's METRICS_PERIOD_DEFAULT
_BATCH = 1000  # PutMetricData's limit of MetricData entries per call


@dataclass(frozen=True)
class Stamped:
    name: str
    value: float
    reported: float  # when the line was read
    stamp: float  # when CloudWatch holds it


def cloudwatch_series(series: list[tuple[str, float, float]], period: int = PERIOD_SECONDS) -> list[Stamped]:
    """Stamp ``(name, value, reported)`` for CloudWatch: each value at least ``period`` after its metric's previous."""
    last: dict[str, float] = {}
    stamped = []
    for name, value, reported in series:
        stamp = max(reported, last[name] + period) if name in last else reported
        last[name] = stamp
        stamped.append(Stamped(name, value, reported, stamp))
    return stamped


def horizon(stamped: list[Stamped], period: int = PERIOD_SECONDS) -> float | None:
    """The earliest ``TrainingEndTime`` whose SDK window (end plus one period) still holds every stamp."""
    return max(s.stamp for s in stamped) - period + 1 if stamped else None


def publish(cloudwatch, job_name: str, stamped: list[Stamped]) -> None:
    """PutMetricData each value under ``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``, as AWS does."""
    put(
        cloudwatch,
        [
            {
                "MetricName": s.name,
                "Dimensions": [{"Name": DIMENSION, "Value": job_name}],
                "Timestamp": datetime.fromtimestamp(s.stamp, UTC),
                "Value": s.value,
            }
            for s in stamped
        ],
    )


def put(cloudwatch, data: list[dict], namespace: str = NAMESPACE) -> None:
    """PutMetricData ``data`` under ``namespace``, in calls of at most the API's limit of entries."""
    for start in range(0, len(data), _BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + _BATCH])


class MetricCollector:
    """Feed it lines; :meth:`final` gives ``FinalMetricDataList`` entries."""

    def __init__(self, clock: Callable[[], float], definitions: list[dict] | None = None):
        self._now = clock
        self._patterns: dict[str, re.Pattern] = {}
        self._last: dict[str, tuple[float, float]] = {}
        self._series: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()
        self.add(definitions or [])

    def add(self, definitions: list[dict]) -> None:
        """Add ``[{"Name", "Regex"}]``; a regex that does not compile is skipped with a warning."""
        with self._lock:
            for definition in definitions:
                try:
                    self._patterns.setdefault(definition["Name"], re.compile(definition["Regex"]))
                except re.error as error:
                    LOG.warning(
                        "metric %s: regex %r does not compile: %s", definition["Name"], definition["Regex"], error
                    )

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._patterns)

    def feed(self, line: str) -> None:
        with self._lock:
            patterns = list(self._patterns.items())
        for name, pattern in patterns:
            match = pattern.search(line)
            if not match:
                continue
            try:
                value = float(match.group(1) if pattern.groups else match.group(0))
            except (ValueError, IndexError):
                continue
            if math.isfinite(value):
                with self._lock:
                    now = self._now()
                    self._last[name] = (value, now)
                    self._series.append((name, value, now))

    def final(self) -> list[dict]:
        with self._lock:
            return [{"MetricName": n, "Value": v, "Timestamp": t} for n, (v, t) in self._last.items()]

    def series(self) -> list[tuple[str, float, float]]:
        """Every value matched, in order: ``(name, value, time read)``."""
        with self._lock:
            return list(self._series)
