"""The labs' models side by side with the libraries a learner would reach for instead, each peer tuned as ours were.

Rating RMSE on ``common.data.split_holdout(ds, seed=0)`` (Lab 1's rating split): scikit-surprise SVD and SVD++,
myfm's Bayesian factorization machine (also with the movie's genres as extra features), cornac MF. Top-10 on
``common.data.leave_one_out(ratings, n_negatives=99, seed=0)`` (each user's latest movie ranked among 99 unrated
ones; HR@10 and NDCG@10 from ``common.evaluation``): implicit ALS and BPR and cornac BPR, every rating an
interaction; and popularity. Rankers score exactly the 100 candidates of each user; a movie the model never saw in
training scores below every movie it knows.

Each peer's settings are chosen on the validation split Lab 1's searches carve from the training data
(``split_holdout(train, seed=1)``; ``leave_one_out(train, n_negatives=99, seed=1)``), by validation RMSE or HR@10 +
NDCG@10, among ``peers_search.BUDGET`` settings (budget and ranges in ``benchmarks/peers_search.py``); the test split
is then scored once. The validation fits of every peer and dataset go to one pool of worker processes, heaviest
first, and the chosen settings' test fits to another, so no core waits while a peer's last fit runs; myfm scores
every iteration count drawn for a rank off one chain (``peers_search.groups``). Standard errors: per rating for RMSE (delta method), per user for HR@10 and NDCG@10
(``common.evaluation``). Every fit is seeded and single-threaded, so a rerun gives the same figures.

The results go to ``benchmarks/peers.json`` (the rows of the datasets run replace theirs; the others stay), the one
source the notebooks and the README read them from (``common.peers``). The table beside them also shows the
project's rows recorded by a notebook run in ``build/metrics/*.json`` (``1a-factorization-machines.json``,
``1b-deep-matrix-factorization-with-mxnet.json``, ``2-object2vec.json``), comparable only when that run used the
same dataset; they are not written to the JSON file. ml-100k needs its archive cached or in
``WORKSHOP_DATA_MIRROR``; otherwise it is skipped with a message, never downloaded.

The peers are not workshop dependencies; they live in a virtual environment of their own (myfm needs numpy 2, the
workshop's kernel pins numpy 1.26.4 for MXNet; the splits are identical under both):

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -r benchmarks/requirements-peers.txt
    PYTHONPATH=. /work/peers-venv/bin/python benchmarks/peers.py [--dataset NAME ...] [--jobs 2]
        [--metrics [DATASET=]DIR ...] [--output benchmarks/peers.json]

``--metrics DIR`` reads the project's rows for every dataset from DIR (default ``build/metrics``);
``--metrics synthetic=DIR`` for one dataset only. ``--jobs`` runs that many fits side by side. The file also keeps
each run's wall and CPU seconds and the load average around it (``runs``); on an idle machine the wall time is
about the CPU seconds divided by ``--jobs``, which the last line prints.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import platform
import resource
import time
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import peers_search  # benchmarks/peers_search.py: ranges, budget, the random search
import scipy.sparse as sp
from joblib.externals.loky import get_reusable_executor

from common import data, evaluation
from common.settings import settings

DATASETS = ("ml-latest-small", "synthetic", "ml-100k")
SEED = 0
K = 10
MYFM_BURN_IN = 5  # myfm keeps the last n_iter - 5 samples (n_iter >= 10): the first five are its burn-in
# The order the fits go to the workers: heaviest first (CPU per fit measured 2026-12-06), so that the last fits to
# finish are short ones and both cores stay busy to the end.
HEAVIEST_FIRST = (
    "Surprise SVD++",
    "myfm Bayesian FM + genres",
    "myfm Bayesian FM",
    "cornac BPR",
    "implicit BPR",
    "Surprise SVD",
    "cornac MF",
    "implicit ALS",
)
OUTPUT = Path(__file__).with_name("peers.json")
SPLITS = {"rating": "split_holdout(seed=0)", "top-10": "leave_one_out(n_negatives=99, seed=0)"}
STANDARD_ERRORS = {"rating": "delta method over the test ratings", "top-10": "per user over the test users"}
RANKING_METRICS = (
    ("HR@10", evaluation.hit_rate_at_k, evaluation.hit_rate_standard_error),
    ("NDCG@10", evaluation.ndcg_at_k, evaluation.ndcg_standard_error),
)
TUNING = {
    "rating": ("split_holdout(train, seed=1)", "validation RMSE (lower is better)"),
    "top-10": ("leave_one_out(train, n_negatives=99, seed=1)", "validation HR@10 + NDCG@10 (higher is better)"),
}
NOTEBOOKS = {
    "1a": "1a-factorization-machines.json",
    "1b": "1b-deep-matrix-factorization-with-mxnet.json",
    "2": "2-object2vec.json",
}
# (metric, notebook, key, row name, transform): the project's recorded results shown beside the peers.
PROJECT_ROWS = (
    ("RMSE", "1a", "rmse_fm_regressor", "FM regressor (Lab 1a)", None),
    ("RMSE", "1a", "rmse_fm_regressor_kept", "FM regressor, kept after tuning (Lab 1a)", None),
    ("RMSE", "1a", "rmse_fm_regressor_genres", "FM regressor + genres (Lab 1a)", None),
    ("RMSE", "1a", "rmse_user_movie_biases", "user + movie biases (Lab 1a baseline)", None),
    ("RMSE", "1b", "test_rmse_mf_biases", "MF + biases (Lab 1b)", None),
    ("RMSE", "1b", "test_rmse_dmf", "DMF (Lab 1b)", None),
    ("RMSE", "1b", "test_rmse_dmf_genres", "DMF + genres (Lab 1b)", None),
    ("RMSE", "2", "mse_object2vec", "Object2Vec regressor (Lab 2)", math.sqrt),
    ("HR@10", "1a", "hr_at_10_fm_implicit", "implicit FM (Lab 1a)", None),
    ("HR@10", "1b", "neumf_hr_at_10", "NeuMF (Lab 1b)", None),
    ("NDCG@10", "1a", "ndcg_at_10_fm_implicit", "implicit FM (Lab 1a)", None),
    ("NDCG@10", "1b", "neumf_ndcg_at_10", "NeuMF (Lab 1b)", None),
    ("liked accuracy", "1a", "accuracy_classifier", "FM binary classifier (Lab 1a)", None),
    ("liked accuracy", "2", "accuracy_object2vec", "Object2Vec classifier (Lab 2)", None),
)
METRIC_ORDER = ("RMSE", "HR@10", "NDCG@10", "liked accuracy")


class Indexed:
    """Users and items of a ratings frame as 0-based row numbers, shared by every model of one dataset."""

    def __init__(self, ratings: pd.DataFrame):
        self.users = pd.Index(np.unique(ratings["user_id"]))
        self.items = pd.Index(np.unique(ratings["item_id"]))

    def codes(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.users.get_indexer(frame["user_id"]), self.items.get_indexer(frame["item_id"])

    def one_hot(self, frame: pd.DataFrame, genres: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """User one-hot | item one-hot [| the item's genres, each row summing to 1]."""
        users, items = self.codes(frame)
        n = len(frame)
        blocks = [
            sp.csr_matrix((np.ones(n), (np.arange(n), users)), shape=(n, len(self.users))),
            sp.csr_matrix((np.ones(n), (np.arange(n), items)), shape=(n, len(self.items))),
        ]
        if genres is not None:
            blocks.append(genres[items])
        return sp.hstack(blocks, format="csr")

    def genre_matrix(self, items: pd.DataFrame) -> sp.csr_matrix:
        """(n_items, n_genres) with 1/|genres| in each of a movie's genres."""
        genres = items.set_index("item_id")["genres"].reindex(self.items)
        genres = genres.map(lambda value: value if isinstance(value, list) and value else ["(no genres listed)"])
        names = pd.Index(sorted({name for names in genres for name in names}))
        rows = np.repeat(np.arange(len(genres)), genres.map(len).to_numpy())
        columns = names.get_indexer([name for names in genres for name in names])
        weights = np.repeat(1 / genres.map(len).to_numpy(), genres.map(len).to_numpy())
        return sp.csr_matrix((weights, (rows, columns)), shape=(len(genres), len(names)))


@dataclass(frozen=True)
class Peer:
    """One library model: where it comes from, its settings before tuning, and how it answers one split."""

    name: str
    distribution: str  # the PyPI name, for its version
    defaults: dict  # the first setting the search scores
    answer: object  # (setting, split) -> rating predictions, or (n_users, 100) candidate scores
    along: str | None = None  # an iteration count the search reads off one fit's curve (peers_search.groups)
    curve: object = None  # (setting, split, counts) -> the answer after each count, from one fit


@dataclass(frozen=True)
class RatingSplit:
    train: pd.DataFrame
    held: pd.DataFrame


@dataclass(frozen=True)
class RankingSplit:
    train: pd.DataFrame
    held: pd.DataFrame
    negatives: np.ndarray
    interactions: sp.csr_matrix  # (n_users, n_items) of the train part, on the dataset's index
    known: np.ndarray  # items seen in the train part

    @classmethod
    def of(cls, index: Indexed, train: pd.DataFrame, held: pd.DataFrame, negatives: np.ndarray) -> RankingSplit:
        users, items = index.codes(train)
        interactions = sp.csr_matrix(
            (np.ones(len(train), np.float32), (users, items)), shape=(len(index.users), len(index.items))
        )
        return cls(train, held, negatives, interactions, np.bincount(items, minlength=len(index.items)) > 0)


# --------------------------------------------------------------------------------------------------------
# Rating RMSE


def surprise_predictions(kind: str, setting: dict, split: RatingSplit) -> np.ndarray:
    import surprise

    train = split.train
    reader = surprise.Reader(rating_scale=(train["rating"].min(), train["rating"].max()))
    trainset = surprise.Dataset.load_from_df(train[["user_id", "item_id", "rating"]], reader).build_full_trainset()
    extra = {"cache_ratings": True} if kind == "SVDpp" else {}  # a speed-up only: same figures
    algorithm = getattr(surprise, kind)(**setting, **extra, random_state=SEED)
    algorithm.fit(trainset)
    return np.array([algorithm.predict(u, i).est for u, i in zip(split.held["user_id"], split.held["item_id"])])


def myfm_fit(index: Indexed, genres, rank: int, split: RatingSplit, n_iter: int, **options):
    import myfm

    groups = [0] * len(index.users) + [1] * len(index.items) + ([2] * genres.shape[1] if genres is not None else [])
    model = myfm.MyFMRegressor(rank=rank, random_seed=SEED)
    with contextlib.redirect_stderr(io.StringIO()):  # myfm always draws a progress bar
        model.fit(
            index.one_hot(split.train, genres),
            split.train["rating"].to_numpy(),
            n_iter=n_iter,
            grouping=groups,
            **options,
        )
    return model


def myfm_predictions(index: Indexed, genres, setting: dict, split: RatingSplit) -> np.ndarray:
    return myfm_fit(index, genres, setting["rank"], split, setting["n_iter"]).predict(index.one_hot(split.held, genres))


def myfm_curve(index: Indexed, genres, setting: dict, split: RatingSplit, counts: list[int]) -> list[np.ndarray]:
    """What a fit of each of ``counts`` iterations predicts, from one chain of ``max(counts)``.

    myfm predicts the mean of its samples past the burn-in; the chain is the same whatever its length (same seed),
    so the running mean of the samples is exactly what a shorter fit predicts (checked bit for bit, 2026-12-07)."""
    held = index.one_hot(split.held, genres)
    total, answers = np.zeros(held.shape[0]), {}

    def callback(iteration, fm, hyper, history):
        nonlocal total
        if iteration >= MYFM_BURN_IN:
            total = total + fm.predict_score(held, [])
        if iteration + 1 in counts:
            answers[iteration + 1] = total / (iteration + 1 - MYFM_BURN_IN)
        return False, None

    myfm_fit(index, genres, setting["rank"], split, max(counts), n_kept_samples=1, callback=callback)
    return [answers[count] for count in counts]


def cornac_mf_predictions(setting: dict, split: RatingSplit) -> np.ndarray:
    import cornac

    model = cornac.models.MF(**setting, num_threads=1, seed=SEED)  # one thread: parallel SGD is not reproducible
    triples = split.train[["user_id", "item_id", "rating"]].itertuples(index=False)
    model.fit(cornac.data.Dataset.from_uir(triples, seed=SEED))
    user_map, item_map = model.train_set.uid_map, model.train_set.iid_map
    mean = model.train_set.global_mean
    predictions = []
    for user, item in zip(split.held["user_id"], split.held["item_id"]):
        known_user, known_item = user in user_map, item in item_map
        predictions.append(
            model.score(user_map[user], item_map[item]) if known_user and known_item else mean
        )  # cornac's own answer for unknowns is an error; the global mean is what Surprise answers
    return np.asarray(predictions, dtype=np.float64).ravel()


def rating_peers(index: Indexed, genres: sp.csr_matrix) -> list[Peer]:
    return [
        Peer(
            "Surprise SVD",
            "scikit-surprise",
            {"n_factors": 100, "n_epochs": 20, "lr_all": 0.005, "reg_all": 0.02},
            lambda setting, split: surprise_predictions("SVD", setting, split),
        ),
        Peer(
            "Surprise SVD++",
            "scikit-surprise",
            {"n_factors": 20, "n_epochs": 20, "lr_all": 0.007, "reg_all": 0.02},
            lambda setting, split: surprise_predictions("SVDpp", setting, split),
        ),
        Peer(
            "myfm Bayesian FM",
            "myfm",
            {"rank": 10, "n_iter": 200},  # myfm has no default rank: the settings of this table before tuning
            lambda setting, split: myfm_predictions(index, None, setting, split),
            "n_iter",
            lambda setting, split, counts: myfm_curve(index, None, setting, split, counts),
        ),
        Peer(
            "myfm Bayesian FM + genres",
            "myfm",
            {"rank": 10, "n_iter": 200},
            lambda setting, split: myfm_predictions(index, genres, setting, split),
            "n_iter",
            lambda setting, split, counts: myfm_curve(index, genres, setting, split, counts),
        ),
        Peer(
            "cornac MF",
            "cornac",
            {"k": 10, "max_iter": 20, "learning_rate": 0.01, "lambda_reg": 0.02},
            cornac_mf_predictions,
        ),
    ]


# --------------------------------------------------------------------------------------------------------
# Top-10 on leave-one-out


def candidate_scores(index: Indexed, split: RankingSplit, user_vectors, item_vectors) -> np.ndarray:
    """(n_users, 100) dot products, the held-out movie in column 0; unknown movies below every known one."""
    users = index.users.get_indexer(split.held["user_id"])
    items = index.items.get_indexer(np.column_stack([split.held["item_id"], split.negatives]).ravel())
    items = items.reshape(len(split.held), -1)
    scores = np.einsum("uf,ucf->uc", user_vectors[users], item_vectors[items]).astype(np.float64)
    known = split.known[items]
    floor = np.where(known, scores, np.inf).min(axis=1, keepdims=True) - 1
    return np.where(known, scores, floor)


def implicit_scores(index: Indexed, model_name: str, setting: dict, split: RankingSplit) -> np.ndarray:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    kind = AlternatingLeastSquares if model_name == "als" else BayesianPersonalizedRanking
    model = kind(**setting, num_threads=1, random_state=SEED)  # one thread: BPR's parallel SGD is not reproducible
    model.fit(split.interactions, show_progress=False)
    return candidate_scores(index, split, np.asarray(model.user_factors), np.asarray(model.item_factors))


def cornac_bpr_scores(index: Indexed, setting: dict, split: RankingSplit) -> np.ndarray:
    """cornac's score u·v + b as a dot product of [u, 1] and [v, b] on the shared index."""
    import cornac

    triples = split.train[["user_id", "item_id"]].assign(rating=1.0).itertuples(index=False)
    model = cornac.models.BPR(**setting, num_threads=1, seed=SEED)
    model.fit(cornac.data.Dataset.from_uir(triples, seed=SEED))
    factors = setting["k"]
    users = np.zeros((len(index.users), factors + 1))
    items = np.zeros((len(index.items), factors + 1))
    user_map, item_map = model.train_set.uid_map, model.train_set.iid_map
    user_rows = index.users.get_indexer(list(user_map))
    item_rows = index.items.get_indexer(list(item_map))
    users[user_rows, :factors] = model.u_factors[list(user_map.values())]
    users[:, factors] = 1
    items[item_rows, :factors] = model.i_factors[list(item_map.values())]
    items[item_rows, factors] = model.i_biases[list(item_map.values())]
    return candidate_scores(index, split, users, items)


def ranking_peers(index: Indexed) -> list[Peer]:
    return [
        Peer(
            "implicit ALS",
            "implicit",
            {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15},  # 64 factors, as before tuning
            lambda setting, split: implicit_scores(index, "als", setting, split),
        ),
        Peer(
            "implicit BPR",
            "implicit",
            {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
            lambda setting, split: implicit_scores(index, "bpr", setting, split),
        ),
        Peer(
            "cornac BPR",
            "cornac",
            {"k": 64, "max_iter": 100, "learning_rate": 0.001, "lambda_reg": 0.01},
            lambda setting, split: cornac_bpr_scores(index, setting, split),
        ),
    ]


# --------------------------------------------------------------------------------------------------------
# Tuning on validation, then the test split once


def score(task: str, split, answer) -> float:
    """Validation RMSE (rating) or HR@10 + NDCG@10 (top-10); a diverged fit scores worst."""
    if task == "rating":
        return evaluation.rmse(split.held["rating"].to_numpy(), answer) if np.isfinite(answer).all() else math.inf
    if not np.isfinite(answer).all():
        return -math.inf
    return evaluation.hit_rate_at_k(answer, K) + evaluation.ndcg_at_k(answer, K)


@dataclass(frozen=True)
class Study:
    """One peer to tune on one dataset: its validation and test splits and the settings it is scored with."""

    dataset: str
    task: str
    peer: Peer
    validation: object
    test: object

    @property
    def settings(self) -> list[dict]:
        return peers_search.candidates(self.peer.name, self.peer.defaults)

    def scores(self, setting: dict, counts: list) -> list[float]:
        """Validation scores of one fit: of ``setting``, or of each count of ``peer.along`` on its curve."""
        if self.peer.along is None:
            return [score(self.task, self.validation, self.peer.answer(setting, self.validation))]
        answers = self.peer.curve(setting, self.validation, counts)
        return [score(self.task, self.validation, answer) for answer in answers]

    def weight(self, setting: dict, counts: list) -> tuple:
        """Sort key, heaviest first: the peer's place in HEAVIEST_FIRST, then its sizes times its iterations."""
        sizes = [value for value in setting.values() if isinstance(value, int)] + ([max(counts)] if counts else [])
        return HEAVIEST_FIRST.index(self.peer.name), -math.prod(sizes)


@dataclass(frozen=True)
class Outcome:
    """A peer tuned, then fitted once on the whole training split: what all its rows share."""

    model: str
    library: str
    settings: dict
    tuning: dict
    cpu_seconds: float  # search + final fit
    wall_seconds: float  # of its own fits, one after another: what it would take alone on one core


def tune(studies: list[Study], jobs: int) -> list[tuple[Outcome, object]]:
    """Every study's validation fits in one pool, then every chosen setting's fit on the test split in another, each
    heaviest first; (outcome, the chosen setting's answer on the test split) per study."""
    plans = [(study, study.settings) for study in studies]  # (study, settings tried)
    fits = [
        (number, setting, counts, positions)
        for number, (study, tried) in enumerate(plans)
        for setting, counts, positions in peers_search.groups(tried, study.peer.along)
    ]
    fits.sort(key=lambda fit: studies[fit[0]].weight(fit[1], fit[2]))
    done = peers_search.run(
        [partial(studies[n].scores, setting, counts) for n, setting, counts, _ in fits], jobs, "validation"
    )
    scores = [[math.nan] * len(tried) for _, tried in plans]
    cost = [[0.0, 0.0, 0] for _ in studies]  # CPU, wall, fits
    for (number, _, _, positions), (values, cpu, wall) in zip(fits, done):
        for position, value in zip(positions, values):
            scores[number][position] = value
        cost[number][0] += cpu
        cost[number][1] += wall
        cost[number][2] += 1
    chosen = [  # the first best wins a tie, so the defaults stay unless a draw beats them
        int(np.argmin(values) if study.task == "rating" else np.argmax(values))
        for study, values in zip(studies, scores)
    ]
    order = sorted(range(len(studies)), key=lambda n: studies[n].weight(plans[n][1][chosen[n]], []))
    finals = peers_search.run(
        [partial(studies[n].peer.answer, plans[n][1][chosen[n]], studies[n].test) for n in order], jobs, "test"
    )
    answers = dict(zip(order, finals))
    results = []
    for number, (study, tried) in enumerate(plans):
        best, values = chosen[number], scores[number]
        answer, final_cpu, final_wall = answers[number]
        cpu, wall, fit_count = cost[number]
        split, criterion = TUNING[study.task]
        method = f"the defaults, then {len(tried) - 1} seeded random draws from the ranges"
        if study.peer.along:
            method += f"; one fit per setting of the other knobs scores every {study.peer.along} on its curve"
        tuning = {
            "method": method,
            "budget": len(tried),
            "fits": fit_count,
            "ranges": peers_search.describe(peers_search.SPACES[study.peer.name]),
            "defaults": study.peer.defaults,
            "validation": split,
            "criterion": criterion,
            "validation_score": round(values[best], 6),
            "validation_score_of_defaults": round(values[0], 6),
        }
        library = f"{study.peer.distribution} {metadata.version(study.peer.distribution)}"
        outcome = Outcome(study.peer.name, library, tried[best], tuning, cpu + final_cpu, wall + final_wall)
        print(
            f"  {study.dataset} {study.peer.name}: chose {tried[best]} (validation {values[best]:.4f}; defaults "
            f"{values[0]:.4f}), {len(tried)} settings in {fit_count} fits, CPU {outcome.cpu_seconds:.0f} s",
            flush=True,
        )
        results.append((outcome, answer))
    return results


def row(dataset: str, task: str, outcome: Outcome, metric: str, value: float, error: float) -> dict:
    return {
        "dataset": dataset,
        "split": SPLITS[task],
        "task": task,
        "model": outcome.model,
        "library": outcome.library,
        "metric": metric,
        "value": round(value, 6),
        "standard_error": round(error, 6),
        "standard_error_method": STANDARD_ERRORS[task],
        "settings": outcome.settings,
        "tuning": outcome.tuning,
        "cpu_seconds": round(outcome.cpu_seconds, 1),
        "wall_seconds": round(outcome.wall_seconds, 1),
        "date": datetime.date.today().isoformat(),
    }


@dataclass(frozen=True)
class Prepared:
    """One dataset's splits and the studies of its peers."""

    loaded: data.Dataset
    index: Indexed
    rating_test: pd.DataFrame
    ranking_test: tuple  # (train, test, negatives) of the leave-one-out split
    studies: list[Study]


def prepare(loaded: data.Dataset) -> Prepared:
    """The validation carving and the test split of both tasks, and a study per peer."""
    index = Indexed(loaded.ratings)
    train, test = data.split_holdout(loaded, seed=SEED)
    fit_part, valid = data.split_holdout(train, seed=SEED + 1)
    validation, final = RatingSplit(fit_part, valid), RatingSplit(train, test)
    print(f"{loaded.name} rating: fit {len(fit_part):,}, validation {len(valid):,}, test {len(test):,}")
    studies = [
        Study(loaded.name, "rating", peer, validation, final)
        for peer in rating_peers(index, index.genre_matrix(loaded.items))
    ]
    rank_train, rank_test, negatives = data.leave_one_out(loaded.ratings, n_negatives=99, seed=SEED)
    fit_part, valid, valid_negatives = data.leave_one_out(rank_train, n_negatives=99, seed=SEED + 1)
    validation = RankingSplit.of(index, fit_part, valid, valid_negatives)
    final = RankingSplit.of(index, rank_train, rank_test, negatives)
    print(
        f"{loaded.name} top-10: fit {len(fit_part):,}, validation users {len(valid):,}, test users {len(rank_test):,}"
    )
    studies += [Study(loaded.name, "top-10", peer, validation, final) for peer in ranking_peers(index)]
    return Prepared(loaded, index, test, (rank_train, rank_test, negatives), studies)


def dataset_rows(prepared: Prepared, results: list[tuple[Outcome, object]]) -> list[dict]:
    """The rows of one dataset from its studies' results (in the order of ``prepared.studies``), and popularity."""
    name, truth = prepared.loaded.name, prepared.rating_test["rating"].to_numpy()
    rows = []
    for study, (outcome, answer) in zip(prepared.studies, results):
        if study.task == "rating":
            rmse, error = evaluation.rmse(truth, answer), evaluation.rmse_standard_error(truth, answer)
            rows.append(row(name, "rating", outcome, "RMSE", rmse, error))
    answers = [
        (outcome, answer) for study, (outcome, answer) in zip(prepared.studies, results) if study.task != "rating"
    ]
    started, cpu_started = time.perf_counter(), time.process_time()
    train, test, negatives = prepared.ranking_test
    popular = evaluation.popularity_scores(train, np.column_stack([test["item_id"], negatives]))
    untuned = {"method": "nothing to tune", "budget": 0}
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - started
    answers.append((Outcome("popularity", "common.evaluation", {}, untuned, cpu, wall), popular))
    return rows + [
        row(name, "top-10", outcome, metric, measure(scores, K), spread(scores, K))
        for outcome, scores in answers
        for metric, measure, spread in RANKING_METRICS
    ]


# --------------------------------------------------------------------------------------------------------
# The project's recorded results, the table and the file


def project_rows(folder: Path) -> tuple[list[dict], list[str]]:
    """Rows from a notebook run's metrics files, and notes on what was missing or how long each notebook ran."""
    recorded, notes = {}, []
    for notebook, file_name in NOTEBOOKS.items():
        path = folder / file_name
        if path.is_file():
            recorded[notebook] = json.loads(path.read_text())
            if "wall_time_s" in recorded[notebook]:
                notes.append(f"notebook {notebook} ran {recorded[notebook]['wall_time_s']:.0f} s in all")
        else:
            notes.append(f"no {path}: notebook {notebook}'s rows left out")
    rows = []
    for metric, notebook, key, name, transform in PROJECT_ROWS:
        value = recorded.get(notebook, {}).get(key)
        if value is not None:
            rows.append({"metric": metric, "model": name, "value": transform(value) if transform else value})
    return rows, notes


def how_tuned(entry: dict) -> str:
    tuning = entry.get("tuning")
    if tuning is None:
        return "recorded by a notebook run (searched in benchmarks/*_search.py)"
    if not tuning["budget"]:
        return tuning["method"]
    return f"{tuning['budget']} settings on {tuning['validation']}"


def print_table(title: str, rows: list[dict], notes: list[str]) -> None:
    rows = sorted(rows, key=lambda entry: METRIC_ORDER.index(entry["metric"]))  # stable: project rows first
    width = max(len(entry["model"]) for entry in rows)
    print(f"\n{title}")
    print(f"{'metric':<14} {'model':<{width}} {'value':>7} {'± s.e.':>7} {'CPU s':>6}  tuned")
    for entry in rows:
        error = entry.get("standard_error")
        cpu = entry.get("cpu_seconds")
        print(
            f"{entry['metric']:<14} {entry['model']:<{width}} {entry['value']:>7.4f} "
            f"{'' if error is None else f'{error:.4f}':>7} {'' if cpu is None else f'{cpu:.0f}':>6}  {how_tuned(entry)}"
        )
    for note in notes:
        print(f"  ({note})")
    print("chosen settings:")
    for entry in rows:
        if entry.get("settings") and entry["metric"] != "NDCG@10":
            print(f"  {entry['model']}: {entry['settings']}")


def write_results(path: Path, rows: list[dict], run: dict) -> None:
    """Replace the rows (and the run) of the datasets just run in the file and keep the others."""
    kept, runs = [], []
    if path.is_file():
        document = json.loads(path.read_text())
        kept = [entry for entry in document["rows"] if entry["dataset"] not in run["datasets"]]
        runs = [entry for entry in document.get("runs", []) if not set(entry["datasets"]) & set(run["datasets"])]
    document = {
        "about": "Peers of the labs, each tuned on validation; written by benchmarks/peers.py, read by common.peers.",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "runs": runs + [run],
        "rows": kept + rows,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def metrics_folders(options: list[str]) -> tuple[Path, dict[str, Path]]:
    default, per_dataset = Path("build/metrics"), {}
    for option in options:
        name, separator, folder = option.rpartition("=")
        if separator:
            per_dataset[name] = Path(folder)
        else:
            default = Path(folder)
    return default, per_dataset


def offline_ready(name: str) -> bool:
    """Shipped, generated, cached or mirrored: a benchmark never reaches the internet for a dataset on its own."""
    current = settings()
    archive = f"{name}.zip"
    return (
        name in data.SYNTHETIC_SIZES
        or (data.SHIPPED_DIR / archive).is_file()
        or (current.data_dir / archive).is_file()
        or current.data_mirror is not None
    )


def cpu_seconds() -> float:
    """CPU time of this process and of the search's worker processes, which are ended first so that it counts."""
    get_reusable_executor().shutdown(wait=True)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=DATASETS, help=f"repeatable; default: {DATASETS}")
    parser.add_argument("--metrics", action="append", default=[], metavar="[DATASET=]DIR", help="recorded results")
    parser.add_argument("--jobs", type=int, default=2, help="fits side by side (default 2: two cores)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"results file (default {OUTPUT})")
    arguments = parser.parse_args()
    if arguments.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {arguments.jobs}")
    default, per_dataset = metrics_folders(arguments.metrics)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    prepared = []
    for name in arguments.dataset or DATASETS:
        if not offline_ready(name):
            print(
                f"\n{name}: skipped, {name}.zip is neither cached nor in WORKSHOP_DATA_MIRROR (set it to a folder that holds it)"
            )
            continue
        try:
            prepared.append(prepare(data.load_dataset(name)))
        except data.DatasetUnavailable as error:
            print(f"\n{name}: skipped, the archive could not be read ({str(error).splitlines()[0]})")
    studies = [study for one in prepared for study in one.studies]
    print(f"\ntuning {len(studies)} peers on validation ({peers_search.BUDGET} settings each), then the test once")
    results = tune(studies, arguments.jobs)
    rows, first = [], 0
    for one in prepared:
        peers = dataset_rows(one, results[first : first + len(one.studies)])
        first += len(one.studies)
        rows += peers
        folder = per_dataset.get(one.loaded.name, default)
        project, notes = project_rows(folder)
        title = (
            f"{one.loaded.name}: {len(one.loaded.ratings):,} ratings, {len(one.index.users):,} users, "
            f"{len(one.index.items):,} movies; project rows from {folder}; CPU s = search + final fit"
        )
        print_table(title, project + peers, notes)
    wall, cpu = time.perf_counter() - started, cpu_seconds()
    run = {
        "datasets": [one.loaded.name for one in prepared],
        "jobs": arguments.jobs,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "date": datetime.date.today().isoformat(),
    }
    if prepared:
        write_results(arguments.output, rows, run)
        print(f"\nwrote {arguments.output} ({', '.join(run['datasets'])})")
    print(
        f"all: wall {wall:.0f} s at load {load_before:.1f} to {os.getloadavg()[0]:.1f}; CPU of this process and its "
        f"workers {cpu:.0f} s, so about {cpu / arguments.jobs / 60:.1f} min of wall on {arguments.jobs} idle cores"
    )


if __name__ == "__main__":
    main()
