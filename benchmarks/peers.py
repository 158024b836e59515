"""The labs' models side by side with the libraries a learner would reach for instead, on the notebooks' own splits.

Rating RMSE on ``common.data.split_holdout(ds, seed=0)`` (Lab 1's rating split): scikit-surprise SVD and SVD++,
myfm's Bayesian factorization machine (rank 10, 200 Gibbs iterations; also with the movie's genres as extra
features), cornac MF. Top-10 on ``common.data.leave_one_out(ratings, n_negatives=99, seed=0)`` (each user's latest
movie ranked among 99 unrated ones; HR@10 and NDCG@10 from ``common.evaluation``): implicit ALS and BPR and cornac
BPR, 64 factors each, every rating an interaction; and popularity. Rankers score exactly the 100 candidates of each
user; a movie the model never saw in training scores below every movie it knows. Every peer has a fixed seed.

The project's rows are not retrained here: they are what a notebook run recorded in ``build/metrics/*.json``
(``1a-factorization-machines.json``, ``1b-deep-matrix-factorization-with-mxnet.json``, ``2-object2vec.json``), so
they are only comparable when that run used the same dataset; their seconds column is empty (the notebooks time
whole runs, printed under the table). ml-100k needs its archive cached or in ``WORKSHOP_DATA_MIRROR``; otherwise it
is skipped with a message, never downloaded.

The peers are not workshop dependencies; they live in a virtual environment of their own (myfm needs numpy 2, the
workshop's kernel pins numpy 1.26.4 for MXNet; the splits are identical under both):

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -r benchmarks/requirements-peers.txt
    /work/peers-venv/bin/pip install --no-deps -e .
    /work/peers-venv/bin/python benchmarks/peers.py [--dataset NAME ...] [--metrics [DATASET=]DIR ...]

``--metrics DIR`` reads the project's rows for every dataset from DIR (default ``build/metrics``);
``--metrics synthetic=DIR`` for one dataset only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common import data, evaluation
from common.settings import settings

DATASETS = ("ml-latest-small", "synthetic", "ml-100k")
SEED = 0
FACTORS = 64  # rankers
K = 10
NOTEBOOKS = {
    "1a": "1a-factorization-machines.json",
    "1b": "1b-deep-matrix-factorization-with-mxnet.json",
    "2": "2-object2vec.json",
}
# (task, notebook, key, row name, transform): the project's recorded results shown beside the peers.
PROJECT_ROWS = (
    ("rating RMSE", "1a", "rmse_fm_regressor", "FM regressor (Lab 1a)", None),
    ("rating RMSE", "1a", "rmse_fm_regressor_kept", "FM regressor, kept after tuning (Lab 1a)", None),
    ("rating RMSE", "1a", "rmse_fm_regressor_genres", "FM regressor + genres (Lab 1a)", None),
    ("rating RMSE", "1a", "rmse_user_movie_biases", "user + movie biases (Lab 1a baseline)", None),
    ("rating RMSE", "1b", "test_rmse_mf_biases", "MF + biases (Lab 1b)", None),
    ("rating RMSE", "1b", "test_rmse_dmf", "DMF (Lab 1b)", None),
    ("rating RMSE", "1b", "test_rmse_dmf_genres", "DMF + genres (Lab 1b)", None),
    ("rating RMSE", "2", "mse_object2vec", "Object2Vec regressor (Lab 2)", math.sqrt),
    ("HR@10", "1a", "hr_at_10_fm_implicit", "implicit FM (Lab 1a)", None),
    ("HR@10", "1b", "neumf_hr_at_10", "NeuMF (Lab 1b)", None),
    ("NDCG@10", "1a", "ndcg_at_10_fm_implicit", "implicit FM (Lab 1a)", None),
    ("NDCG@10", "1b", "neumf_ndcg_at_10", "NeuMF (Lab 1b)", None),
    ("liked accuracy", "1a", "accuracy_classifier", "FM binary classifier (Lab 1a)", None),
    ("liked accuracy", "2", "accuracy_object2vec", "Object2Vec classifier (Lab 2)", None),
)


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


def timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------------
# Rating RMSE


def surprise_predictions(algorithm, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    import surprise

    reader = surprise.Reader(rating_scale=(train["rating"].min(), train["rating"].max()))
    trainset = surprise.Dataset.load_from_df(train[["user_id", "item_id", "rating"]], reader).build_full_trainset()
    algorithm.fit(trainset)
    return np.array([algorithm.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"])])


def myfm_predictions(index: Indexed, train, test, genres) -> np.ndarray:
    import myfm

    groups = [0] * len(index.users) + [1] * len(index.items) + ([2] * genres.shape[1] if genres is not None else [])
    model = myfm.MyFMRegressor(rank=10, random_seed=SEED)
    with contextlib.redirect_stderr(io.StringIO()):  # myfm always draws a progress bar
        model.fit(index.one_hot(train, genres), train["rating"].to_numpy(), n_iter=200, grouping=groups)
    return model.predict(index.one_hot(test, genres))


def cornac_mf_predictions(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    import cornac

    model = cornac.models.MF(seed=SEED)
    model.fit(cornac.data.Dataset.from_uir(train[["user_id", "item_id", "rating"]].itertuples(index=False), seed=SEED))
    user_map, item_map = model.train_set.uid_map, model.train_set.iid_map
    mean = model.train_set.global_mean
    predictions = []
    for user, item in zip(test["user_id"], test["item_id"]):
        known_user, known_item = user in user_map, item in item_map
        predictions.append(
            model.score(user_map[user], item_map[item]) if known_user and known_item else mean
        )  # cornac's own answer for unknowns is an error; the global mean is what Surprise answers
    return np.asarray(predictions, dtype=np.float64).ravel()


def rating_rows(loaded: data.Dataset, index: Indexed) -> list[tuple]:
    import surprise

    train, test = data.split_holdout(loaded, seed=SEED)
    truth = test["rating"].to_numpy()
    genres = index.genre_matrix(loaded.items)
    peers = {
        "Surprise SVD": lambda: surprise_predictions(surprise.SVD(random_state=SEED), train, test),
        "Surprise SVD++": lambda: surprise_predictions(surprise.SVDpp(random_state=SEED), train, test),
        "myfm Bayesian FM (rank 10, 200 iters)": lambda: myfm_predictions(index, train, test, None),
        "myfm Bayesian FM + genres": lambda: myfm_predictions(index, train, test, genres),
        "cornac MF": lambda: cornac_mf_predictions(train, test),
    }
    rows = []
    for name, predict in peers.items():
        predicted, seconds = timed(predict)
        rows.append(("rating RMSE", name, evaluation.rmse(truth, predicted), seconds))
    return rows


# --------------------------------------------------------------------------------------------------------
# Top-10 on leave-one-out


def candidate_scores(index: Indexed, test, negatives, user_vectors, item_vectors, known_items) -> np.ndarray:
    """(n_users, 100) dot products, the held-out movie in column 0; unknown movies below every known one."""
    users = index.users.get_indexer(test["user_id"])
    items = index.items.get_indexer(np.column_stack([test["item_id"], negatives]).ravel()).reshape(len(test), -1)
    scores = np.einsum("uf,ucf->uc", user_vectors[users], item_vectors[items]).astype(np.float64)
    known = known_items[items]
    floor = np.where(known, scores, np.inf).min(axis=1, keepdims=True) - 1
    return np.where(known, scores, floor)


def implicit_vectors(model_name: str, interactions: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit parallelises itself; a threaded BLAS underneath only slows it
        if model_name == "als":
            model = AlternatingLeastSquares(factors=FACTORS, random_state=SEED)
        else:  # one thread: BPR's parallel SGD is not reproducible
            model = BayesianPersonalizedRanking(factors=FACTORS, random_state=SEED, num_threads=1)
        model.fit(interactions, show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def cornac_bpr_vectors(index: Indexed, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """User vectors [u, 1] and item vectors [v, b] on the shared index, so a dot product is cornac's score."""
    import cornac

    triples = train[["user_id", "item_id"]].assign(rating=1.0).itertuples(index=False)
    model = cornac.models.BPR(k=FACTORS, seed=SEED)
    model.fit(cornac.data.Dataset.from_uir(triples, seed=SEED))
    users = np.zeros((len(index.users), FACTORS + 1))
    items = np.zeros((len(index.items), FACTORS + 1))
    user_map, item_map = model.train_set.uid_map, model.train_set.iid_map
    user_rows = index.users.get_indexer(list(user_map))
    item_rows = index.items.get_indexer(list(item_map))
    users[user_rows, :FACTORS] = model.u_factors[list(user_map.values())]
    users[:, FACTORS] = 1
    items[item_rows, :FACTORS] = model.i_factors[list(item_map.values())]
    items[item_rows, FACTORS] = model.i_biases[list(item_map.values())]
    return users, items


def ranking_rows(loaded: data.Dataset, index: Indexed) -> list[tuple]:
    train, test, negatives = data.leave_one_out(loaded.ratings, n_negatives=99, seed=SEED)
    users, items = index.codes(train)
    interactions = sp.csr_matrix(
        (np.ones(len(train), np.float32), (users, items)), shape=(len(index.users), len(index.items))
    )
    known = np.bincount(items, minlength=len(index.items)) > 0
    peers = {
        "implicit ALS (64 factors)": lambda: implicit_vectors("als", interactions),
        "implicit BPR (64 factors)": lambda: implicit_vectors("bpr", interactions),
        "cornac BPR (64 factors)": lambda: cornac_bpr_vectors(index, train),
    }
    rows = []
    for name, fit in peers.items():
        (user_vectors, item_vectors), seconds = timed(fit)
        scores = candidate_scores(index, test, negatives, user_vectors, item_vectors, known)
        rows.append(("HR@10", name, evaluation.hit_rate_at_k(scores, K), seconds))
        rows.append(("NDCG@10", name, evaluation.ndcg_at_k(scores, K), seconds))
    popular, seconds = timed(evaluation.popularity_scores, train, np.column_stack([test["item_id"], negatives]))
    rows.append(("HR@10", "popularity", evaluation.hit_rate_at_k(popular, K), seconds))
    rows.append(("NDCG@10", "popularity", evaluation.ndcg_at_k(popular, K), seconds))
    return rows


# --------------------------------------------------------------------------------------------------------
# The project's recorded results and the table


def project_rows(folder: Path) -> tuple[list[tuple], list[str]]:
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
    for task, notebook, key, name, transform in PROJECT_ROWS:
        value = recorded.get(notebook, {}).get(key)
        if value is not None:
            rows.append((task, name, transform(value) if transform else value, None))
    return rows, notes


def print_table(title: str, rows: list[tuple], notes: list[str]) -> None:
    order = {task: position for position, task in enumerate(dict.fromkeys(row[0] for row in PROJECT_ROWS))}
    rows = sorted(rows, key=lambda row: order[row[0]])  # stable: project rows first within a task
    width = max(len(row[1]) for row in rows)
    print(f"\n{title}")
    print(f"{'task':<15} {'model':<{width}} {'metric':>7} {'seconds':>8}")
    for task, name, value, seconds in rows:
        print(f"{task:<15} {name:<{width}} {value:>7.4f} {'' if seconds is None else f'{seconds:8.1f}':>8}")
    for note in notes:
        print(f"  ({note})")


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
        name == data.SYNTHETIC
        or (data.SHIPPED_DIR / archive).is_file()
        or (current.data_dir / archive).is_file()
        or current.data_mirror is not None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=DATASETS, help=f"repeatable; default: {DATASETS}")
    parser.add_argument("--metrics", action="append", default=[], metavar="[DATASET=]DIR", help="recorded results")
    arguments = parser.parse_args()
    default, per_dataset = metrics_folders(arguments.metrics)
    for name in arguments.dataset or DATASETS:
        if not offline_ready(name):
            print(
                f"\n{name}: skipped, {name}.zip is neither cached nor in WORKSHOP_DATA_MIRROR (set it to a folder that holds it)"
            )
            continue
        try:
            loaded = data.load_dataset(name)
        except data.DatasetUnavailable as error:
            print(f"\n{name}: skipped, the archive could not be read ({str(error).splitlines()[0]})")
            continue
        index = Indexed(loaded.ratings)
        folder = per_dataset.get(name, default)
        project, notes = project_rows(folder)
        peers = rating_rows(loaded, index) + ranking_rows(loaded, index)
        title = (
            f"{name}: {len(loaded.ratings):,} ratings, {len(index.users):,} users, {len(index.items):,} movies; "
            f"project rows from {folder}"
        )
        print_table(title, project + peers, notes)


if __name__ == "__main__":
    main()
