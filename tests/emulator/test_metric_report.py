"""The container's report of its metric definitions: written whole, and read only when whole.

A report read half written once left a training job's metrics undefined for the rest of the job, so a tuning job
counted a Completed trial's objective as Failed (seen on a loaded machine).
"""

from __future__ import annotations

import json
import threading

from sagemaker_emulator.algorithms.container import _write_whole
from sagemaker_emulator.jobs.training import reported_metric_definitions

DEFINITIONS = [{"Name": f"metric:{i}", "Regex": f"#metric{i}: ([0-9.]+)"} for i in range(200)]


def test_a_missing_or_half_written_report_is_not_read_yet(tmp_path):
    report = tmp_path / "container-report.json"
    assert reported_metric_definitions(report) is None
    report.write_text("")
    assert reported_metric_definitions(report) is None
    whole = json.dumps({"metric_definitions": DEFINITIONS})
    report.write_text(whole[: len(whole) // 2])
    assert reported_metric_definitions(report) is None
    report.write_text(whole)
    assert reported_metric_definitions(report) == DEFINITIONS


def test_a_reader_never_sees_the_report_half_written(tmp_path):
    report = tmp_path / "container-report.json"
    text = json.dumps({"metric_definitions": DEFINITIONS})
    _write_whole(report, text)
    seen: list = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(reported_metric_definitions(report))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(300):
        _write_whole(report, text)
    done.set()
    reader.join()
    assert seen and all(definitions == DEFINITIONS for definitions in seen)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["container-report.json"]
