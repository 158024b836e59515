"""How each peer of ``benchmarks/peers.py`` is tuned: its ranges, the budget, and a seeded random search.

Fair to the labs: our models' settings were chosen on validation splits carved from the training data. Settings
scored per model, counted in the searches' code: Lab 1a's FM regressor 10 and implicit FM 11 (``fm_search.py``: the
notebook's, then one pass of coordinate descent over RATING_GRID, IMPLICIT_GRID), Lab 1b's rating models 12 in all
and NeuMF 25 (``dmf_search.py``: RATING_SETTINGS; NCF_SETTINGS, 14 in rounds 1-3 and 11 in round 4), Object2Vec's
regressor 15 and classifier 10 (``object2vec_search.py``'s CANDIDATES). Every peer gets BUDGET = 26 settings, more
than the largest of these, on the same carving Lab 1's searches use: the library's defaults, then 25 draws from its
ranges below (seeded, so a rerun draws the same settings). Iteration counts are part of a peer's setting, as our
searches picked their epoch counts on validation too (read off each run's curve). Popularity has nothing to tune.

Ranges: ``("choice", values)`` draws one value; ``("int", low, high)`` an integer, both ends included;
``("log", low, high)`` a number uniform on a log scale, rounded to 3 significant digits. Where a search chose a value
at or next to an edge, the range now goes further on that side (defaults stay the first setting). After the first
search (16 settings, 2026-12-06): myfm's rank to 24 and its iterations to [50, 350], cornac MF's k to 200, implicit ALS's factors down
to 8, regularization up to 10, iterations down to 2, cornac BPR's iterations up to 500. After the second (26
settings, 2026-12-06: cornac MF k = 200 on both datasets, myfm + genres rank 24 on ml-latest-small, implicit BPR's
learning rate 0.00128 and 281 of its 300 iterations on synthetic): cornac MF's k to 400, myfm's rank to 32,
implicit BPR's learning rate down to 0.0003 and its iterations back to 400; after the third (synthetic, 2026-12-07:
myfm + genres rank 32, 343 of 350 iterations) its rank to 48 and iterations to 450. 128 factors, never chosen, left implicit
ALS, BPR and cornac BPR. SVD++ keeps [5, 20] factors and [10, 30] epochs although synthetic chose 20 and 29: it is
half of the benchmark's CPU time (a fit costs about k x epochs, 29 CPU seconds on ml-latest-small), 40 factors and
40 epochs would double that, and it sets no comparison: myfm without genres beat it on validation by 0.02 and 0.05
RMSE (ml-latest-small, synthetic).

Time. Fits do not wait for each other: ``peers.py`` hands every validation fit of every peer and dataset to one pool,
heaviest first, and the test fits to another, so on an idle machine the wall time is the CPU time over the workers.
myfm's fits read every iteration count drawn for a rank off one chain (``groups``): 26 settings scored by 6 or 7
fits, 40% of the CPU they took when each setting was its own fit, with the same scores. Both datasets, run
2026-12-07 on a quiet 2-core machine (load 4.7 falling to 2.0, ``--jobs 2``): 1,088 s of wall (18.1 minutes, within
issue 23's 20), 2,162 CPU seconds, SVD++ 1,027 of them. Chosen at an edge in that run: myfm + genres on synthetic,
441 of its 450 iterations (a Bayesian FM's average of posterior samples keeps gaining slowly with more of them; 600
would cost about 150 CPU seconds more, about 19.4 minutes in all), and SVD++ on synthetic as above.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

BUDGET = 26  # settings per peer and dataset: the defaults and BUDGET - 1 random draws
SEED = 0
PROGRESS_EVERY = 10  # fits between two progress lines

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
    "myfm Bayesian FM": {"rank": ("choice", (4, 8, 16, 24, 32)), "n_iter": ("int", 50, 350)},
    "myfm Bayesian FM + genres": {"rank": ("choice", (4, 8, 16, 24, 32, 48)), "n_iter": ("int", 50, 450)},
    "cornac MF": {
        "k": ("choice", (10, 20, 50, 100, 200, 400)),
        "max_iter": ("int", 20, 200),
        "learning_rate": ("log", 0.002, 0.05),
        "lambda_reg": ("log", 0.001, 0.1),
    },
    "implicit ALS": {
        "factors": ("choice", (8, 16, 32, 64)),
        "regularization": ("log", 0.001, 10.0),
        "alpha": ("log", 0.5, 50.0),
        "iterations": ("int", 2, 30),
    },
    "implicit BPR": {
        "factors": ("choice", (16, 32, 64)),
        "learning_rate": ("log", 0.0003, 0.1),
        "regularization": ("log", 0.0001, 0.05),
        "iterations": ("int", 20, 400),
    },
    "cornac BPR": {
        "k": ("choice", (16, 32, 64)),
        "max_iter": ("int", 50, 500),
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


def groups(settings: Sequence[dict], along: str | None) -> list[tuple[dict, list, list[int]]]:
    """The fits that score ``settings``: (setting, values of ``along``, positions in ``settings``) per fit.

    A peer that can be read off its training curve (``along``: its iteration count) needs one fit per setting of the
    other knobs, run to the largest count drawn: the score after n iterations of that fit is exactly the score of a
    fit run for n (the same seeded chain), so every one of the settings is still scored, at a fraction of the cost.
    """
    if along is None:
        return [(setting, [], [position]) for position, setting in enumerate(settings)]
    fits: dict[tuple, tuple[dict, list, list[int]]] = {}
    for position, setting in enumerate(settings):
        base = {name: value for name, value in setting.items() if name != along}
        entry = fits.setdefault(tuple(sorted(base.items())), (base, [], []))
        entry[1].append(setting[along])
        entry[2].append(position)
    return list(fits.values())


def _timed(function: Callable) -> tuple:
    """Run one fit single-threaded (fits run side by side): (value, CPU seconds, wall seconds)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        value = function()
    return value, time.process_time() - cpu_started, time.perf_counter() - started


def run(functions: Sequence[Callable], jobs: int, what: str) -> list[tuple]:
    """Call every function, ``jobs`` at a time in worker processes, in the order given (heaviest first keeps both
    cores busy to the end); (value, CPU seconds, wall seconds) of each, in that order. Prints its progress."""
    started, results = time.perf_counter(), []
    calls = Parallel(n_jobs=jobs, return_as="generator")(delayed(_timed)(function) for function in functions)
    for done, result in enumerate(calls, 1):
        results.append(result)
        if done % PROGRESS_EVERY == 0 or done == len(functions):
            cpu = sum(seconds for _, seconds, _ in results)
            print(
                f"  {what}: {done}/{len(functions)} fits, CPU {cpu:.0f} s, wall {time.perf_counter() - started:.0f} s"
            )
    return results
