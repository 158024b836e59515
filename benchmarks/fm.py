"""The factorization-machines plug-in: training throughput, and test quality against a peer library and baselines.

Throughput: one epoch of the plug-in's training (num_factors 64, mini_batch_size 1000, other knobs at their
defaults) on one-hot user+item rows of synthetic ratings the size of ml-100k and of ml-20m. For scale, the real
container logs about 105,000 records/s (reference/sagemaker-fm-knn-contract.md §3.2).

Quality, on the dataset's rating split (``common.data.split_holdout``, seed 0), side by side: the FM regressor and
binary classifier (rating >= 4) with the hyperparameters recommended for Lab 1; the global mean, per-user mean and
regularised user+item bias baselines; scikit-surprise's BaselineOnly and SVD (default parameters) when that
package is installed (``pip install scikit-surprise``; it is not a workshop dependency). The FM regressor is also
run as a whole job (RecordIO channel read, train, artifact written) to time what a notebook waits for.

    .venv/bin/python benchmarks/fm.py [--dataset ml-latest-small] [--skip-20m]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

import common  # noqa: F401  (numpy alias before mxnet)
from common import data, records, synthetic
from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import parse_hyperparameters
from sagemaker_emulator.algorithms.layout import create_layout

SIZES = {"ml-100k-sized": (943, 1682, 100_000), "ml-20m-sized": (138_493, 26_744, 20_000_000)}
THROUGHPUT_KNOBS = {"num_factors": 64, "mini_batch_size": 1000, "epochs": 1}
LAB1_KNOBS = {  # found on ml-latest-small (10 held-out ratings per user); bias knobs at their defaults
    "num_factors": 64,
    "epochs": 10,
    "mini_batch_size": 500,
    "linear_lr": 0.01,
    "factors_lr": 0.001,
    "linear_wd": 0.0002,
    "factors_wd": 0.0002,
}
AWS_THROUGHPUT = 105_000


def one_hot(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Rows with a 1 in column ``user`` and in column ``n_users + item`` (0-based codes)."""
    n = len(users)
    indices = np.column_stack([users, n_users + items]).ravel()
    indptr = np.arange(0, 2 * n + 1, 2)
    return sp.csr_matrix((np.ones(2 * n, np.float32), indices, indptr), shape=(n, n_users + n_items))


def config(feature_dim: int, predictor_type: str, knobs: dict) -> dict:
    raw = {"feature_dim": feature_dim, "predictor_type": predictor_type, **knobs}
    return parse_hyperparameters(fm.HYPERPARAMETERS, {name: str(value) for name, value in raw.items()})


def quiet_fit(features, labels, settings) -> tuple[fm.FactorizationMachine, float, str]:
    """Train with the plug-in's log lines captured; returns the model, wall seconds and the log."""
    log = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(log):
        model = fm.fit(features, labels, settings)
    return model, time.perf_counter() - start, log.getvalue()


def throughput(name: str, n_users: int, n_items: int, n_ratings: int) -> None:
    start = time.perf_counter()
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=n_items, n_ratings=n_ratings)
    features = one_hot(ratings["user_id"].to_numpy() - 1, ratings["item_id"].to_numpy() - 1, n_users, n_items)
    labels = ratings["rating"].to_numpy(np.float32)
    del ratings
    prepared = time.perf_counter() - start
    _, seconds, log = quiet_fit(features, labels, config(features.shape[1], "regressor", THROUGHPUT_KNOBS))
    logged = float(re.search(r"train throughput=(\S+) records/second", log).group(1))
    print(
        f"{name:<14} {features.shape[0]:>11,} rows  {features.shape[1]:>7,} features  "
        f"{logged:>10,.0f} records/s logged  {features.shape[0] / seconds:>10,.0f} records/s wall  "
        f"({seconds:.1f} s; data made in {prepared:.1f} s)  x{logged / AWS_THROUGHPUT:.1f} the AWS container"
    )


def rmse(predicted, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - truth) ** 2)))


def bias_baseline(train_users, train_items, ratings, test_users, test_items, reg=10.0, sweeps=10) -> np.ndarray:
    """mu + b_u + b_i, fitted by alternating regularised averages (the classic baseline predictor)."""
    mu = ratings.mean()
    user_bias = np.zeros(train_users.max() + 1)
    item_bias = np.zeros(max(train_items.max(), test_items.max()) + 1)
    user_count = np.bincount(train_users, minlength=len(user_bias))
    item_count = np.bincount(train_items, minlength=len(item_bias))
    for _ in range(sweeps):
        residual = ratings - mu - user_bias[train_users]
        item_bias = np.bincount(train_items, residual, len(item_bias)) / (item_count + reg)
        residual = ratings - mu - item_bias[train_items]
        user_bias = np.bincount(train_users, residual, len(user_bias)) / (user_count + reg)
    return mu + user_bias[test_users] + item_bias[test_items]


def surprise_rows(train: pd.DataFrame, test: pd.DataFrame) -> list[tuple[str, float, float]]:
    try:
        import surprise
    except ImportError:
        print("scikit-surprise is not installed: peer-library rows skipped (pip install scikit-surprise)")
        return []
    frame = train[["user_id", "item_id", "rating"]]
    trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    rows = []
    for name, algorithm in (
        ("surprise BaselineOnly", surprise.BaselineOnly(verbose=False)),
        ("surprise SVD", surprise.SVD(random_state=0)),
    ):
        start = time.perf_counter()
        algorithm.fit(trainset)
        predicted = [algorithm.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"])]
        rows.append((name, rmse(predicted, test["rating"].to_numpy()), time.perf_counter() - start))
    return rows


def job_seconds(features, labels, test_features, test_labels) -> float:
    """Wall time of the plug-in's whole job: read the RecordIO channels, train, score the test set, save."""
    with tempfile.TemporaryDirectory() as root:
        raw = {"feature_dim": features.shape[1], "predictor_type": "regressor", **LAB1_KNOBS}
        layout = create_layout(
            root,
            {k: str(v) for k, v in raw.items()},
            {c: {"ContentType": "application/x-recordio-protobuf"} for c in ("train", "test")},
        )
        for channel, (x, y) in {"train": (features, labels), "test": (test_features, test_labels)}.items():
            with (layout.channel_dir(channel) / "data.pbr").open("wb") as stream:
                records.write_records(stream, x, y)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fm.train(layout, parse_hyperparameters(fm.HYPERPARAMETERS, layout.hyperparameters()))
        return time.perf_counter() - start


def quality(dataset: str | None) -> None:
    loaded = data.load_dataset(dataset)
    train, test = data.split_holdout(loaded, seed=0)
    users = pd.Index(np.union1d(train["user_id"], test["user_id"]))
    items = pd.Index(np.union1d(train["item_id"], test["item_id"]))
    train_u, train_i = users.get_indexer(train["user_id"]), items.get_indexer(train["item_id"])
    test_u, test_i = users.get_indexer(test["user_id"]), items.get_indexer(test["item_id"])
    y_train, y_test = train["rating"].to_numpy(np.float32), test["rating"].to_numpy(np.float64)
    x_train = one_hot(train_u, train_i, len(users), len(items))
    x_test = one_hot(test_u, test_i, len(users), len(items))
    print(
        f"\n{loaded.name}: {len(train):,} train / {len(test):,} test ratings, "
        f"{len(users):,} users + {len(items):,} items = {x_train.shape[1]:,} one-hot features"
    )

    user_mean = np.bincount(train_u, y_train, len(users)) / np.maximum(np.bincount(train_u, minlength=len(users)), 1)
    rows = [
        ("global mean", rmse(np.full(len(test), y_train.mean()), y_test), 0.0),
        ("per-user mean", rmse(user_mean[test_u], y_test), 0.0),
    ]
    start = time.perf_counter()
    rows.append(
        (
            "user+item biases (reg 10)",
            rmse(bias_baseline(train_u, train_i, y_train, test_u, test_i), y_test),
            time.perf_counter() - start,
        )
    )
    rows += surprise_rows(train, test)
    model, seconds, _ = quiet_fit(x_train, y_train, config(x_train.shape[1], "regressor", LAB1_KNOBS))
    rows.append(("FM regressor (plug-in)", rmse(model.decision(x_test), y_test), seconds))
    print(f"{'model':<28} {'test RMSE':>9} {'fit s':>7}")
    for name, value, fit_seconds in rows:
        print(f"{name:<28} {value:>9.4f} {fit_seconds:>7.1f}")
    print(
        f"FM regressor as a whole job (RecordIO read + train + test + save): "
        f"{job_seconds(x_train, y_train, x_test, y_test):.1f} s"
    )

    positive_train, positive_test = (y_train >= 4).astype(np.float32), y_test >= 4
    settings = config(x_train.shape[1], "binary_classifier", LAB1_KNOBS)
    classifier, seconds, _ = quiet_fit(x_train, positive_train, settings)
    accuracy = np.mean((classifier.decision(x_test) >= 0) == positive_test)
    majority = max(positive_test.mean(), 1 - positive_test.mean())
    print(
        f"FM binary classifier (rating >= 4): accuracy {accuracy:.4f} vs majority class {majority:.4f} "
        f"(+{accuracy - majority:.3f}; fit {seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="quality dataset (default: the workshop's setting)")
    parser.add_argument("--skip-20m", action="store_true", help="time only the ml-100k-sized data")
    arguments = parser.parse_args()
    print("One epoch of FM training (num_factors 64, mini_batch_size 1000):")
    for name, size in SIZES.items():
        if name == "ml-20m-sized" and arguments.skip_20m:
            continue
        throughput(name, *size)
    quality(arguments.dataset)


if __name__ == "__main__":
    main()
