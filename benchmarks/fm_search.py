"""Search Lab 1a's FM settings on a validation split, then report the held-out test once, to compare with peers.

The emulator's Factorization Machines plug-in is trained in-process on exactly the notebook's data: its one-hot
columns (users of the ratings, then every movie), its shuffled rating split ``split_holdout(ds, seed=0)`` and its
implicit-feedback set (every leave-one-out training rating a positive, ``negatives`` unrated movies per rating
drawn once). Choices are made on validation only: for ratings ``split_holdout(train, seed=1)`` (as Lab 1b
carves it), for top-10 ``leave_one_out(loo_train, n_negatives=99, seed=1)``. The search is coordinate descent
over the real algorithm's documented hyperparameters (reference/sagemaker-fm-knn-contract.md §2), starting from
the notebook's settings; one training run gives the validation curve of every epoch count. The chosen setting is
then retrained on the whole training split with the chosen epoch count and scored on test.

    .venv/bin/python benchmarks/fm_search.py [--dataset ml-latest-small] [--task rmse|top10] [--passes 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

import common  # noqa: F401  (numpy alias before mxnet)
from common import data, evaluation
from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import ClientError, parse_hyperparameters

SEED = 0
MAX_EPOCHS = {"rmse": 20, "top10": 12}  # the longest run looked at; validation picks the epoch
LAB1_RATING = {  # notebook 1a's regressor_hyperparameters (without epochs)
    "num_factors": 128,
    "mini_batch_size": 500,
    "linear_lr": 0.01,
    "factors_lr": 0.001,
    "linear_wd": 0.0002,
    "factors_wd": 0.00005,
    "factors_init_sigma": 0.01,
}
LAB1_IMPLICIT = {  # notebook 1a's implicit_hyperparameters and implicit_negatives (drawn uniformly over rated movies)
    "num_factors": 128,
    "mini_batch_size": 500,
    "linear_lr": 0.02,
    "factors_lr": 0.005,
    "linear_wd": 0.0002,
    "factors_wd": 0.00005,
    "negatives": 8,
    "negative_sampling_power": 0.0,  # negatives drawn by (a movie's ratings) ** power: 0 uniform, as up to 5.5M ratings
}
LAB1_EPOCHS = {"rmse": 6, "top10": 7}
RATING_GRID = {  # kept small so a search fits in minutes on 2 cores; each run stays near a minute
    "factors_wd": (0.00002, 0.0001),  # larger decays (0.001-0.01) zero the factors: ~ the bias baseline
    "factors_lr": (0.0005, 0.002),
    "linear_wd": (0.00005,),
    "num_factors": (16, 64),
    "mini_batch_size": (200, 1000),
}
# Top-10, checked again on 2026-12-06 (--passes 0: the notebook's settings, validation picking the epochs, up to 12):
# validation chose 12 epochs on ml-latest-small and 11 on synthetic; refitted, their test figures were within one
# standard error of the notebook's 7 epochs on ml-latest-small (HR@10 0.7295 / NDCG@10 0.4767 against 0.7246 / 0.4723)
# and below them on synthetic (0.7094 / 0.4846 against 0.7116 / 0.5001), so the notebook keeps 7.
IMPLICIT_GRID = {
    "negatives": (1, 2, 4, 16),
    "negative_sampling_power": (1.0,),  # in proportion to the ratings (the popularity scheme)
    "factors_wd": (0.00002, 0.0001),
    "factors_lr": (0.003, 0.01),
    "num_factors": (64,),
}


class Columns:
    """The notebook's one-hot layout: users of the ratings, then every movie of the items table."""

    def __init__(self, loaded: data.Dataset):
        self.users = pd.Index(np.unique(loaded.ratings["user_id"]))
        self.items = pd.Index(loaded.items["item_id"])

    def rows(self, users, items) -> sp.csr_matrix:
        n = len(users)
        columns = np.column_stack([self.users.get_indexer(users), len(self.users) + self.items.get_indexer(items)])
        shape = (n, len(self.users) + len(self.items))
        return sp.csr_matrix((np.ones(2 * n, np.float32), columns.ravel(), np.arange(0, 2 * n + 1, 2)), shape=shape)


def settings(features: sp.csr_matrix, predictor_type: str, knobs: dict, epochs: int) -> dict:
    raw = {k: v for k, v in knobs.items() if k not in ("negatives", "negative_sampling_power")}
    raw.update(feature_dim=features.shape[1], predictor_type=predictor_type, epochs=epochs)
    return parse_hyperparameters(fm.HYPERPARAMETERS, {name: str(value) for name, value in raw.items()})


def curve(features, labels, config, score) -> list[float]:
    """Validation score after each epoch of one run of ``fm.fit``; a run that diverges keeps the epochs before it
    (NaN when there are none, which a comparison never prefers)."""
    scores = []
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            fm.fit(features, labels, config, after_epoch=lambda model: scores.append(score(model)))
        except ClientError:
            pass
    return scores or [math.nan]


def quiet_fit(features, labels, config):
    with contextlib.redirect_stdout(io.StringIO()):
        return fm.fit(features, labels, config)


def descend(start: dict, grid: dict, evaluate, better, passes: int) -> tuple[dict, int, float]:
    """Coordinate descent: each knob in turn over its grid, keeping the best (knobs, epochs, score) seen."""
    best_knobs = dict(start)
    best_epochs, best_score = evaluate(best_knobs)
    print(f"start {best_knobs}: {best_score:.4f} at {best_epochs} epochs")
    for _ in range(passes):
        for name, values in grid.items():
            for value in values:
                if value == best_knobs.get(name):
                    continue
                knobs = {**best_knobs, name: value}
                started = time.perf_counter()
                epochs, score = evaluate(knobs)
                mark = "*" if better(score, best_score) else " "
                print(f" {mark} {name}={value}: {score:.4f} at {epochs} epochs ({time.perf_counter() - started:.0f} s)")
                if better(score, best_score):
                    best_knobs, best_epochs, best_score = knobs, epochs, score
    return best_knobs, best_epochs, best_score


def rating_search(loaded: data.Dataset, passes: int) -> None:
    columns = Columns(loaded)
    train, test = data.split_holdout(loaded, seed=SEED)
    train = train.sample(frac=1, random_state=SEED).reset_index(drop=True)
    fit_part, valid = data.split_holdout(train, seed=SEED + 1)
    x_fit, x_valid = columns.rows(fit_part.user_id, fit_part.item_id), columns.rows(valid.user_id, valid.item_id)
    y_fit, y_valid = fit_part.rating.to_numpy(np.float32), valid.rating.to_numpy(np.float64)

    def evaluate(knobs):
        config = settings(x_fit, "regressor", knobs, MAX_EPOCHS["rmse"])
        rmses = curve(x_fit, y_fit, config, lambda model: evaluation.rmse(y_valid, model.decision(x_valid)))
        best = int(np.argmin(rmses))
        return best + 1, rmses[best]

    print(f"\n{loaded.name} rating RMSE: fit {len(fit_part):,}, validation {len(valid):,}, test {len(test):,}")
    knobs, epochs, valid_rmse = descend(LAB1_RATING, RATING_GRID, evaluate, lambda a, b: a < b, passes)
    x_train, x_test = columns.rows(train.user_id, train.item_id), columns.rows(test.user_id, test.item_id)
    for name, chosen, chosen_epochs in (("notebook", LAB1_RATING, LAB1_EPOCHS["rmse"]), ("chosen", knobs, epochs)):
        started = time.perf_counter()
        config = settings(x_train, "regressor", chosen, chosen_epochs)
        model = quiet_fit(x_train, train.rating.to_numpy(np.float32), config)
        seconds = time.perf_counter() - started
        test_rmse = evaluation.rmse(test.rating.to_numpy(), model.decision(x_test))
        print(f"{name}: {chosen}, epochs {chosen_epochs}: test RMSE {test_rmse:.4f} (train {seconds:.0f} s)")
    print(f"chosen validation RMSE {valid_rmse:.4f}")


def implicit_rows(columns: Columns, train: pd.DataFrame, negatives: int, power: float, rng) -> tuple:
    """Every rating a positive, plus ``negatives`` unrated movies per rating drawn among the rated movies with
    probabilities proportional to their number of ratings ** ``power`` (0: uniform, drawn as the notebook does),
    shuffled; as in the notebook, negatives are drawn once."""
    users = columns.users.get_indexer(train.user_id)
    items = columns.items.get_indexer(train.item_id)
    watched = users.astype(np.int64) * len(columns.items) + items
    draw_users = np.repeat(users, negatives)
    rated, counts = np.unique(items, return_counts=True)
    weights = counts**power
    draw_items = rng.choice(rated, size=len(draw_users), p=None if power == 0 else weights / weights.sum())
    unseen = ~np.isin(draw_users.astype(np.int64) * len(columns.items) + draw_items, watched)
    all_users = np.concatenate([users, draw_users[unseen]])
    all_items = np.concatenate([items, draw_items[unseen]])
    labels = np.concatenate([np.ones(len(users)), np.zeros(unseen.sum())]).astype(np.float32)
    order = rng.permutation(len(labels))
    return columns.rows(columns.users[all_users[order]], columns.items[all_items[order]]), labels[order]


def ranker(columns: Columns, held_out: pd.DataFrame, negatives: np.ndarray):
    """Score function: w_i + V_u·V_i over each user's 100 candidates (held-out movie first), as the notebook."""
    users = columns.users.get_indexer(held_out.user_id)
    candidates = len(columns.users) + columns.items.get_indexer(
        np.column_stack([held_out.item_id, negatives]).ravel()
    ).reshape(len(held_out), -1)

    def scores(model) -> np.ndarray:
        return model.w[candidates] + np.einsum("uf,ucf->uc", model.v[users], model.v[candidates])

    return scores


def top10(scores: np.ndarray) -> tuple[float, float]:
    return evaluation.hit_rate_at_k(scores, 10), evaluation.ndcg_at_k(scores, 10)


def top10_search(loaded: data.Dataset, passes: int) -> None:
    columns = Columns(loaded)
    loo_train, loo_test, loo_negatives = data.leave_one_out(loaded.ratings, n_negatives=99, seed=SEED)
    loo_fit, valid, valid_negatives = data.leave_one_out(loo_train, n_negatives=99, seed=SEED + 1)
    valid_scores = ranker(columns, valid, valid_negatives)

    def evaluate(knobs):
        x, y = implicit_rows(
            columns, loo_fit, knobs["negatives"], knobs["negative_sampling_power"], np.random.default_rng(SEED)
        )
        config = settings(x, "binary_classifier", knobs, MAX_EPOCHS["top10"])
        sums = curve(x, y, config, lambda model: sum(top10(valid_scores(model))))  # HR@10 + NDCG@10: both rows
        best = int(np.argmax(sums))
        return best + 1, sums[best]

    print(f"\n{loaded.name} top-10 (validation: HR@10 + NDCG@10 of the fit part's latest ratings)")
    knobs, epochs, valid_sum = descend(LAB1_IMPLICIT, IMPLICIT_GRID, evaluate, lambda a, b: a > b, passes)
    test_scores = ranker(columns, loo_test, loo_negatives)
    for name, chosen, chosen_epochs in (("notebook", LAB1_IMPLICIT, LAB1_EPOCHS["top10"]), ("chosen", knobs, epochs)):
        started = time.perf_counter()
        rng = np.random.default_rng(SEED)
        x, y = implicit_rows(columns, loo_train, chosen["negatives"], chosen["negative_sampling_power"], rng)
        model = quiet_fit(x, y, settings(x, "binary_classifier", chosen, chosen_epochs))
        scores = test_scores(model)
        print(
            f"{name}: {chosen}, epochs {chosen_epochs}: test HR@10 {evaluation.hit_rate_at_k(scores, 10):.4f} "
            f"± {evaluation.hit_rate_standard_error(scores, 10):.4f}, NDCG@10 {evaluation.ndcg_at_k(scores, 10):.4f} "
            f"± {evaluation.ndcg_standard_error(scores, 10):.4f} (one standard error over users; "
            f"train {time.perf_counter() - started:.0f} s)"
        )
    print(f"chosen validation HR@10 + NDCG@10 {valid_sum:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--task", choices=("rmse", "top10"), action="append")
    parser.add_argument("--passes", type=int, default=1, help="rounds of coordinate descent")
    arguments = parser.parse_args()
    loaded = data.load_dataset(arguments.dataset)
    for task in arguments.task or ("rmse", "top10"):
        (rating_search if task == "rmse" else top10_search)(loaded, arguments.passes)


if __name__ == "__main__":
    main()
