"""Every figure the text tells a reader to expect matches this run's recorded results (tests/docs/expected_figures.py
describes the tags). The check of the values runs after the notebooks, like the policy guard (root conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from expected_figures import check_markdown, check_values, sources

from common import report

ROOT = Path(__file__).resolve().parents[2]
METRICS = "1a-factorization-machines:rmse_fm_regressor"


def test_every_expected_figure_in_the_text_is_tagged():
    problems = [problem for where, text in sources(ROOT).items() for problem in check_markdown(where, text)[1]]
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.after_notebooks
def test_every_expected_figure_matches_this_run():
    metrics = report.collect(Path(os.environ["WORKSHOP_METRICS_DIR"]))
    problems = []
    for where, text in sources(ROOT).items():
        problems += check_values(where, check_markdown(where, text)[0], metrics)
    assert not problems, "\n".join(map(str, problems))


def test_an_untagged_figure_in_an_expect_sentence_is_reported():
    _, problems = check_markdown("x", "Expect an RMSE of about 0.89 on this run.")
    assert [p.why for p in problems] == ["0.89 is neither in an expect tag's range nor quoted"]


def test_a_tagged_and_a_quoted_figure_pass_and_their_tag_is_returned():
    text = (
        f"Expect about 0.89 <!-- expect {METRICS} 0.87..0.90 --> and 70% "
        "<!-- expect 1a:share 0.65..0.75 --> here, against 0.704 on ml-100k <!-- quoted ml-100k: 0.704 -->."
    )
    expects, problems = check_markdown("x", text)
    assert not problems and [(e.metric, e.low) for e in expects] == [("rmse_fm_regressor", 0.87), ("share", 0.65)]


def test_a_figure_outside_its_tag_range_is_reported():
    _, problems = check_markdown("x", f"Expect 0.95 <!-- expect {METRICS} 0.87..0.90 -->.")
    assert len(problems) == 1 and "0.95" in problems[0].why


def test_an_escaped_dollar_is_a_price_not_math():
    _, problems = check_markdown("x", r"Expect \$0.20 for the jobs and \$0.05 for the endpoint.")
    assert [p.why.split()[0] for p in problems] == ["0.20", "0.05"]


def test_figures_in_math_code_and_sentences_without_expect_are_not_checked():
    text = "The learning rate is `0.001`, $w_0 = 0.5$. Dropout 0.5 helps.\n\nExpect more users."
    assert check_markdown("x", text) == ([], [])


def test_a_malformed_tag_is_reported():
    _, problems = check_markdown("x", "Expect 0.9 <!-- expect rmse 0.8 -->.")
    assert any(p.why == "malformed tag" for p in problems)


def test_expected_results_tables_are_checked_except_quoted_and_assert_columns():
    table = (
        "## Expected results\n\n| result | ml-latest-small | synthetic (quoted, 2026-12-06) | checked by |\n"
        "|---|---|---|---|\n"
        f"| RMSE | 0.886 <!-- expect {METRICS} 0.87..0.90 --> | 0.751 | < biases − 0.01 |\n"
        "| accuracy | 0.71 | 0.74 | |\n"
    )
    expects, problems = check_markdown("x", table)
    assert len(expects) == 1 and [p.why for p in problems] == ["0.71 is neither in an expect tag's range nor quoted"]


def test_a_value_outside_its_range_or_missing_from_the_run_is_reported():
    expects, _ = check_markdown("x", f"Expect 0.89 <!-- expect {METRICS} 0.87..0.90 -->.")
    assert check_values("x", expects, {"1a-factorization-machines": {"rmse_fm_regressor": 0.88}}) == []
    [outside] = check_values("x", expects, {"1a-factorization-machines": {"rmse_fm_regressor": 0.93}})
    [missing] = check_values("x", expects, {})
    assert "outside" in outside.why and "no such metric" in missing.why
