"""benchmarks/peers_search.py: the settings each peer is scored with, and the fits that score them."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers_search.py"
spec = importlib.util.spec_from_file_location("peers_search", SCRIPT)
peers_search = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers_search)

DEFAULTS = {"rank": 10, "n_iter": 200}


def test_candidates_are_the_defaults_then_the_same_draws_on_every_run():
    settings = peers_search.candidates("myfm Bayesian FM", DEFAULTS)
    assert len(settings) == peers_search.BUDGET and settings[0] == DEFAULTS
    assert settings == peers_search.candidates("myfm Bayesian FM", DEFAULTS)
    assert all(draw["rank"] in (4, 8, 16, 24, 32) and 50 <= draw["n_iter"] <= 350 for draw in settings[1:])


def test_groups_without_a_curve_fit_each_setting_once():
    settings = [{"k": 10, "max_iter": 20}, {"k": 10, "max_iter": 30}]
    assert peers_search.groups(settings, None) == [(settings[0], [], [0]), (settings[1], [], [1])]


def test_groups_along_a_curve_fit_each_setting_of_the_other_knobs_once():
    settings = [{"rank": 8, "n_iter": 200}, {"rank": 4, "n_iter": 60}, {"rank": 8, "n_iter": 90}]
    assert peers_search.groups(settings, "n_iter") == [({"rank": 8}, [200, 90], [0, 2]), ({"rank": 4}, [60], [1])]


def test_groups_cover_every_setting_exactly_once():
    settings = peers_search.candidates("myfm Bayesian FM + genres", DEFAULTS)
    fits = peers_search.groups(settings, "n_iter")
    assert sorted(position for _, _, positions in fits for position in positions) == list(range(len(settings)))
    assert len(fits) == len({setting["rank"] for setting in settings})


def test_an_unknown_range_kind_is_named():
    with pytest.raises(ValueError, match="unknown range kind 'uniform' for k"):
        peers_search.draw({"k": ("uniform", 1, 2)}, peers_search.np.random.default_rng(0))
