import json

import numpy as np
import pytest

from common import report


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_METRICS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_NOTEBOOK", "lab-x")
    return tmp_path


def test_record_writes_the_notebooks_file_at_once(metrics_dir):
    assert report.record("rmse", np.float32(0.5)) == np.float32(0.5)
    report.record("users", np.int64(610))
    report.record("rmse", 0.25)
    assert json.loads((metrics_dir / "lab-x.json").read_text()) == {"rmse": 0.25, "users": 610}


@pytest.mark.parametrize("value", [[1, 2], None, {"a": 1}])
def test_record_refuses_values_that_are_not_scalars(metrics_dir, value):
    with pytest.raises(TypeError, match="takes a number or a string"):
        report.record("bad", value)


def test_record_refuses_an_empty_name(metrics_dir):
    with pytest.raises(ValueError, match="non-empty name"):
        report.record("", 1.0)


def test_table_gives_each_notebook_its_wall_time_then_its_metrics(metrics_dir):
    report.write_metric(report.metrics_file(metrics_dir, "lab-a"), "rmse", 0.912345)
    report.write_metric(report.metrics_file(metrics_dir, "lab-a"), report.WALL_TIME_KEY, 61.0)
    report.write_metric(report.metrics_file(metrics_dir, "lab-b"), "accuracy", -0.7)
    assert report.format_table(report.collect(metrics_dir)).splitlines() == [
        "lab-a: 61 s",
        "  rmse=0.9123",
        "lab-b: no wall time",
        "  accuracy=-0.7",
    ]


def test_table_wraps_many_metrics_between_pairs(metrics_dir):
    for i in range(30):
        report.write_metric(report.metrics_file(metrics_dir, "lab"), f"metric_{i:02d}", i / 7)
    lines = report.format_table(report.collect(metrics_dir), width=80).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) < 30 / 3
    pairs = " ".join(lines[1:]).split()
    assert pairs == [f"metric_{i:02d}={i / 7:.4g}" for i in range(30)]


def test_table_says_when_there_is_nothing():
    assert report.format_table({}) == "No notebook recorded any metrics."
