"""Tests for common.peers on hand-made peers files: reading, picking the best peer per metric, the sentence, and
the errors a wrong file or figure gets."""

import json
import math

import pytest

from common import peers


def row(model, metric, value, standard_error, dataset="synthetic"):
    return {
        "dataset": dataset,
        "split": "leave_one_out(n_negatives=99, seed=0)" if metric != "RMSE" else "split_holdout(seed=0)",
        "task": "rating" if metric == "RMSE" else "top-10",
        "model": model,
        "library": "lib 1.0",
        "metric": metric,
        "value": value,
        "standard_error": standard_error,
        "settings": {"factors": 8},
        "tuning": {"budget": 16, "validation": "split_holdout(train, seed=1)"},
        "date": "2026-12-06",
    }


ROWS = [
    row("SVD", "RMSE", 0.90, 0.006),
    row("Bayesian FM", "RMSE", 0.85, 0.006),
    row("ALS", "HR@10", 0.70, 0.015),
    row("popularity", "HR@10", 0.60, 0.016),
    row("ALS", "NDCG@10", 0.45, 0.012),
    row("ALS", "HR@10", 0.55, 0.020, dataset="ml-latest-small"),
]


@pytest.fixture
def peers_file(tmp_path):
    path = tmp_path / "peers.json"
    path.write_text(json.dumps({"rows": ROWS}))
    return path


def test_load_reads_every_row(peers_file):
    rows = peers.load(peers_file)
    assert len(rows) == len(ROWS)
    assert rows[1].model == "Bayesian FM" and rows[1].value == 0.85 and rows[1].settings == {"factors": 8}
    assert rows[1].tuning["budget"] == 16


def test_best_is_lowest_rmse_and_highest_hit_rate(peers_file):
    rows = peers.load(peers_file)
    assert peers.best(rows, "synthetic", "RMSE").model == "Bayesian FM"
    assert peers.best(rows, "synthetic", "HR@10").model == "ALS"
    assert peers.best(rows, "ml-latest-small", "HR@10").value == 0.55


def test_values_are_best_first(peers_file):
    rows = peers.load(peers_file)
    assert list(peers.values(rows, "synthetic", "RMSE")) == ["Bayesian FM", "SVD"]
    assert peers.values(rows, "synthetic", "HR@10") == {"ALS": 0.70, "popularity": 0.60}


def test_how_tuned_names_the_settings_and_the_budget(peers_file):
    best = peers.best(peers.load(peers_file), "synthetic", "RMSE")
    assert peers.how_tuned(best) == "factors=8, chosen among 16 settings on split_holdout(train, seed=1)"
    untuned = peers.Peer(**{**vars(best), "settings": {}, "tuning": {"method": "nothing to tune", "budget": 0}})
    assert peers.how_tuned(untuned) == "no settings (nothing to tune)"


def test_comparison_counts_standard_errors_of_the_difference(peers_file):
    best = peers.best(peers.load(peers_file), "synthetic", "HR@10")
    # gap 0.75 - 0.70 = 0.05; spread sqrt(0.02^2 + 0.015^2) = 0.025: 2.0 standard errors
    assert peers.comparison("implicit FM", 0.75, 0.02, best) == (
        "implicit FM's HR@10 (0.7500 ± 0.0200) is 0.0500 above the best tuned peer, ALS (0.7000 ± 0.0150): "
        "about 2.0 standard errors, better."
    )
    assert peers.comparison("NeuMF", 0.68, 0.02, best).endswith(
        "is 0.0200 below the best tuned peer, ALS (0.7000 ± 0.0150): about 0.8 standard errors, within the noise."
    )


def test_comparison_of_an_error_metric_calls_lower_better(peers_file):
    best = peers.best(peers.load(peers_file), "synthetic", "RMSE")
    below = peers.comparison("FM", 0.80, 0.006, best)
    assert "0.0500 below" in below and f"about {0.05 / math.hypot(0.006, 0.006):.1f} standard errors, better" in below
    assert peers.comparison("FM", 0.90, 0.006, best).endswith("worse.")
    assert peers.comparison("FM", 0.85, 0.006, best) == (
        "FM's RMSE (0.8500 ± 0.0060) equals the best tuned peer, Bayesian FM (0.8500 ± 0.0060)."
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("FM", float("nan"), 0.01), "value must be a finite number, got nan"),
        (("FM", "0.8", 0.01), "value must be a finite number, got '0.8'"),
        (("FM", 0.8, -0.01), "standard_error must be >= 0, got -0.01"),
        (("FM", 0.8, None), "standard_error must be a finite number, got None"),
    ],
)
def test_comparison_rejects_bad_figures(peers_file, arguments, message):
    best = peers.best(peers.load(peers_file), "synthetic", "RMSE")
    with pytest.raises(ValueError, match=message):
        peers.comparison(*arguments, best)


def test_comparison_needs_a_scale():
    peer = peers.Peer(**{field: value for field, value in row("ALS", "HR@10", 0.7, 0.0).items() if field != "date"})
    with pytest.raises(ValueError, match="both standard errors are 0"):
        peers.comparison("FM", 0.8, 0.0, peer)


def test_unknown_dataset_or_metric_names_what_there_is(peers_file):
    rows = peers.load(peers_file)
    with pytest.raises(ValueError, match=r"no peer measured 'RMSE' on 'ml-100k'; the file has \[\('ml-latest-small'"):
        peers.best(rows, "ml-100k", "RMSE")


def test_missing_file_says_what_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks/peers.py writes it"):
        peers.load(tmp_path / "peers.json")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "is not JSON"),
        (json.dumps([ROWS[0]]), "has no list of rows under 'rows'"),
        (json.dumps({"rows": [ROWS[0], {"model": "x"}]}), r"row 1 lacks \['dataset'"),
        (json.dumps({"rows": [{**ROWS[0], "metric": "MAE"}]}), r"row 0 has metric 'MAE'; known: \['HR@10'"),
    ],
)
def test_a_wrong_file_is_refused(tmp_path, text, message):
    path = tmp_path / "peers.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        peers.load(path)


def test_markdown_table_puts_each_dataset_in_a_column_and_the_best_in_bold(peers_file):
    table = peers.markdown_table(peers.load(peers_file)).splitlines()
    assert table[0] == "| metric | peer | `ml-latest-small` | `synthetic` |"
    assert "| RMSE | Bayesian FM |  | **0.850 ± 0.006** |" in table
    assert "| RMSE | SVD |  | 0.900 ± 0.006 |" in table
    assert "| HR@10 | ALS | **0.550 ± 0.020** | **0.700 ± 0.015** |" in table
    assert table.index("| RMSE | Bayesian FM |  | **0.850 ± 0.006** |") < table.index(
        "| RMSE | SVD |  | 0.900 ± 0.006 |"
    )


def test_readme_section_names_the_best_peer_and_how_it_was_tuned(peers_file):
    section = peers.readme_section(peers.load(peers_file))
    assert "- `synthetic`, RMSE: Bayesian FM (lib 1.0), factors=8, chosen among 16 settings on " in section
    assert "- `ml-latest-small`, RMSE" not in section  # no row, no line


def test_render_readme_replaces_only_the_marked_block(peers_file):
    rows = peers.load(peers_file)
    text = f"intro\n{peers.README_START}\nstale\n{peers.README_END}\noutro\n"
    rendered = peers.render_readme(text, rows)
    assert rendered == f"intro\n{peers.README_START}\n{peers.readme_section(rows)}\n{peers.README_END}\noutro\n"
    assert peers.render_readme(rendered, rows) == rendered


@pytest.mark.parametrize(
    "text",
    ["no markers", f"{peers.README_END}\n{peers.README_START}", f"{peers.README_START}\n{peers.README_START}"],
)
def test_render_readme_needs_its_markers(peers_file, text):
    with pytest.raises(ValueError, match="the README needs one"):
        peers.render_readme(text, peers.load(peers_file))


def test_main_rewrites_the_readme(peers_file, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{peers.README_START}\n{peers.README_END}\n")
    peers.main(["--peers", str(peers_file), "--readme", str(readme)])
    assert peers.readme_section(peers.load(peers_file)) in readme.read_text()
