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


def test_table_lists_every_notebook_with_wall_time_first(metrics_dir):
    report.write_metric(report.metrics_file(metrics_dir, "lab-a"), "rmse", 0.912345)
    report.write_metric(report.metrics_file(metrics_dir, "lab-a"), report.WALL_TIME_KEY, 61.0)
    report.write_metric(report.metrics_file(metrics_dir, "lab-b"), "accuracy", 0.7)
    lines = report.format_table(report.collect(metrics_dir)).splitlines()
    assert lines[0].split() == ["notebook", "metric", "value"]
    assert [line.split() for line in lines[2:]] == [
        ["lab-a", "wall_time_s", "61"],
        ["lab-a", "rmse", "0.9123"],
        ["lab-b", "accuracy", "0.7"],
    ]


def test_table_says_when_there_is_nothing():
    assert report.format_table({}) == "No notebook recorded any metrics."
