"""benchmarks/expected_spread.py's table: one row per distinct expect tag, its margin the closer call over every run."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "expected_spread.py"
spec = importlib.util.spec_from_file_location("expected_spread", SCRIPT)
expected_spread = importlib.util.module_from_spec(spec)
spec.loader.exec_module(expected_spread)

TEXTS = {
    "README.md": "Expect 0.83 <!-- expect 2-o2v:mse 0.82..0.85 --> and 0.70 <!-- expect 2-o2v:accuracy 0.69..0.71 -->.",
    "notebook cell 40": "Expect 0.83 <!-- expect 2-o2v:mse 0.82..0.85 --> and 0.9 <!-- expect 1a:rmse 0.8..1.0 -->.",
}


@pytest.fixture
def rows(monkeypatch):
    monkeypatch.setattr(expected_spread, "sources", lambda root: TEXTS)
    runs = [{"2-o2v": {"mse": 0.826, "accuracy": 0.70}}, {"2-o2v": {"mse": 0.846}}]
    return {row[0]: row for row in expected_spread.spread_rows(runs, {"2-o2v"})}


def test_a_tag_quoted_in_two_places_is_one_row_listing_both(rows):
    assert rows["2-o2v:mse"][3:] == ([0.826, 0.846], pytest.approx(0.004), ["README.md", "notebook cell 40"])


def test_a_metric_some_run_did_not_record_has_no_margin(rows):
    assert rows["2-o2v:accuracy"][4] == float("-inf")


def test_tags_of_notebooks_that_did_not_run_are_left_out(rows):
    assert set(rows) == {"2-o2v:mse", "2-o2v:accuracy"}
