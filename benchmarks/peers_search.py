"""How each peer of ``benchmarks/peers.py`` is tuned: its ranges, the budget, and a seeded random search.

Fair to the labs: our models' settings were chosen on validation splits carved from the training data, with at
most 15 settings per model (Object2Vec's regressor, ``object2vec_search.py``; NeuMF got 14, Lab 1a's FM 10 and 11,
Lab 1b's rating models 12). Every peer gets BUDGET = 16 settings on the same carving Lab 1's searches use: the
library's defaults, then 15 draws from its ranges below (seeded, so a rerun draws the same settings). Iteration
counts are part of the ranges, as our searches picked their epoch counts on validation too. Popularity has no
setting to tune.

Ranges: ``("choice", values)`` draws one value; ``("int", low, high)`` an integer, both ends included;
``("log", low, high)`` a number uniform on a log scale, rounded to 3 significant digits.
SVD++'s factors stop at 20 and myfm's rank at 16 (their iterations at 30 and 300) to keep the whole benchmark
under 20 minutes on 2 cores: on ml-latest-small (2026-12-06) a fit took about 29 CPU seconds for SVD++, 6-10 for
myfm, 1-5 for every other peer; both datasets took about 1,540 CPU seconds, so about 13 minutes with two fits
side by side on a quiet machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

BUDGET = 16  # settings per peer and dataset: the defaults and BUDGET - 1 random draws
SEED = 0

SPACES = {
    "Surprise SVD": {
        "n_factors": ("choice", (10, 20, 50, 100, 200)),
        "n_epochs": ("int", 10, 60),
        "lr_all": ("log", 0.002, 0.02),
        "reg_all": ("log", 0.005, 0.2),
    },
    "Surprise SVD++": {
        "n_factors": ("choice", (5, 10, 20)),
        "n_epochs": ("int", 10, 30),
        "lr_all": ("log", 0.002, 0.02),
        "reg_all": ("log", 0.005, 0.2),
    },
    "myfm Bayesian FM": {"rank": ("choice", (4, 8, 16)), "n_iter": ("int", 100, 300)},
    "myfm Bayesian FM + genres": {"rank": ("choice", (4, 8, 16)), "n_iter": ("int", 100, 300)},
    "cornac MF": {
        "k": ("choice", (10, 20, 50, 100)),
        "max_iter": ("int", 20, 200),
        "learning_rate": ("log", 0.002, 0.05),
        "lambda_reg": ("log", 0.001, 0.1),
    },
    "implicit ALS": {
        "factors": ("choice", (16, 32, 64, 128)),
        "regularization": ("log", 0.001, 1.0),
        "alpha": ("log", 0.5, 50.0),
        "iterations": ("int", 5, 30),
    },
    "implicit BPR": {
        "factors": ("choice", (16, 32, 64, 128)),
        "learning_rate": ("log", 0.003, 0.1),
        "regularization": ("log", 0.0001, 0.05),
        "iterations": ("int", 50, 400),
    },
    "cornac BPR": {
        "k": ("choice", (16, 32, 64, 128)),
        "max_iter": ("int", 50, 400),
        "learning_rate": ("log", 0.003, 0.1),
        "lambda_reg": ("log", 0.0001, 0.05),
    },
}


def draw(space: dict, rng: np.random.Generator) -> dict:
    """One setting from a space of ranges."""
    setting = {}
    for name, (kind, *bounds) in space.items():
        if kind == "choice":
            setting[name] = bounds[0][int(rng.integers(len(bounds[0])))]
        elif kind == "int":
            setting[name] = int(rng.integers(bounds[0], bounds[1] + 1))
        elif kind == "log":
            value = math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))
            setting[name] = float(f"{value:.3g}")  # three digits: easy to read and to type into a notebook
        else:
            raise ValueError(f"unknown range kind {kind!r} for {name}; expected choice, int or log")
    return setting


def candidates(peer: str, defaults: dict, budget: int = BUDGET, seed: int = SEED) -> list[dict]:
    """The defaults, then ``budget - 1`` draws from the peer's space; the same list on every run."""
    rng = np.random.default_rng([seed, *peer.encode()])
    return [dict(defaults)] + [draw(SPACES[peer], rng) for _ in range(budget - 1)]


def describe(space: dict) -> dict:
    """The ranges as the JSON file and the table state them."""
    return {
        name: list(bounds[0]) if kind == "choice" else f"{kind} [{bounds[0]:g}, {bounds[1]:g}]"
        for name, (kind, *bounds) in space.items()
    }


def _timed(function: Callable, *args) -> tuple:
    """Run one fit single-threaded (the search runs fits side by side) and return (value, CPU seconds)."""
    started = time.process_time()
    with threadpool_limits(1):
        value = function(*args)
    return value, time.process_time() - started


def search(
    objective: Callable[[dict], float], settings: Sequence[dict], lower_is_better: bool, jobs: int
) -> tuple[int, list[float], float]:
    """Score every setting on validation, ``jobs`` at a time; (index of the best, scores, CPU seconds of all fits).

    The first best wins a tie, so the defaults stay chosen unless a draw beats them."""
    results = Parallel(n_jobs=jobs)(delayed(_timed)(objective, setting) for setting in settings)
    scores = [score for score, _ in results]
    best = int(np.argmin(scores) if lower_is_better else np.argmax(scores))
    return best, scores, sum(seconds for _, seconds in results)


def run_once(function: Callable, *args) -> tuple:
    """The final fit on the whole training split: (value, CPU seconds)."""
    return _timed(function, *args)
