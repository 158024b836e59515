"""Training metrics from log lines, as SageMaker extracts them: each definition's regex, first group.

Built-in algorithms bring their own definitions (a plug-in's ``METRIC_DEFINITIONS``); a custom
image declares them in ``AlgorithmSpecification.MetricDefinitions``. ``FinalMetricDataList`` holds the last
value each definition matched.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)


class MetricCollector:
    """Feed it lines; :meth:`final` gives ``FinalMetricDataList`` entries."""

    def __init__(self, clock: Callable[[], float], definitions: list[dict] | None = None):
        self._now = clock
        self._patterns: dict[str, re.Pattern] = {}
        self._last: dict[str, tuple[float, float]] = {}
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
                    self._last[name] = (value, self._now())

    def final(self) -> list[dict]:
        with self._lock:
            return [{"MetricName": n, "Value": v, "Timestamp": t} for n, (v, t) in self._last.items()]
