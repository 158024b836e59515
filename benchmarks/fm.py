"""The factorization-machines plug-in: speed, memory and start-up against issue 24's goals, and test quality.

Scale (issue 24, each figure printed next to its goal): a whole training job (``python -m
sagemaker_emulator.algorithms.container train``: read the RecordIO channel, one epoch, save the artifact) on
a synthetic matrix of ml-20m's shape (``common.synthetic``: 138,493 users, 26,744 movies, 20,000,263 ratings;
``--rows`` for a quick run, users scaled down to keep 20+ ratings each), num_factors 64, mini_batch_size 1000,
other knobs at their defaults: its logged records/s for the epoch (goal >= 1.5M on 2 cores), its CPU/wall ratio
(both cores busy: near 2), CPU-seconds per record and its peak RSS (goal <= 1.5 GiB), for the numpy path and the
compiled one (numba, ``fm.COMPILED_MIN_ROWS``) side by side, with their ratio; the compiled job starts with an
empty NUMBA_CACHE_DIR, as every emulator job does, and compiles its kernels before its first epoch (the seconds
it logs for that are printed). In process, one epoch per path, twice each, at the size of
ml-100k and at ``--quality-rows`` of ml-20m's shape: records/s logged and records per CPU-second of the process
(both threads), the comparison that a loaded machine distorts least; and the CPU of one epoch's shuffle, numpy's
against the compiled one (``--rows`` rows). Start-up: the CPU seconds of a tiny FM job's
container, and of an FM endpoint's model server up to its first answer (goal <= 1 s each). For scale, the real
container logs about 105,000 records/s (reference/sagemaker-fm-knn-contract.md §3.2).

Quality, on the dataset's rating split (``common.data.split_holdout``, seed 0), side by side: the FM regressor and
binary classifier (rating >= 4) with the hyperparameters recommended for Lab 1, numpy and compiled paths; the global mean, per-user mean and
regularised user+item bias baselines; scikit-surprise's BaselineOnly and SVD (default parameters) when that
package is installed (``pip install scikit-surprise``; it is not a workshop dependency). The FM regressor is also
run as a whole job (RecordIO channel read, train, artifact written) to time what a notebook waits for. The two
paths are also compared on a held-out 10% of a synthetic ml-20m-shaped matrix (``--quality-rows``, 2M by default).

    .venv/bin/python benchmarks/fm.py [--dataset ml-latest-small] [--rows 20000263] [--quality-rows 2000000]
        [--skip-scale]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import common  # noqa: F401  (numpy alias before mxnet)
from common import data, records, synthetic
from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import parse_hyperparameters
from sagemaker_emulator.algorithms.layout import create_layout

ML_20M = (138_493, 26_744, 20_000_263)
MIN_RATINGS_PER_USER = 20  # common.synthetic's floor
GOAL_RECORDS_PER_SECOND = 1_500_000
GOAL_PEAK_GIB = 1.5
GOAL_START_CPU_SECONDS = 1.0
ROOT = Path(__file__).resolve().parent.parent
RECORDIO = "application/x-recordio-protobuf"
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


NUMPY_ONLY = 1 << 62  # fm.COMPILED_MIN_ROWS that keeps every job on the numpy path


def quiet_fit(features, labels, settings, compiled_min_rows=None) -> tuple[fm.FactorizationMachine, float, str]:
    """Train with the plug-in's log lines captured; returns the model, wall seconds and the log.
    ``compiled_min_rows`` replaces ``fm.COMPILED_MIN_ROWS`` for this fit (0: compiled, ``NUMPY_ONLY``: numpy)."""
    log = io.StringIO()
    threshold = fm.COMPILED_MIN_ROWS
    fm.COMPILED_MIN_ROWS = threshold if compiled_min_rows is None else compiled_min_rows
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log):
            model = fm.fit(features, labels, settings)
    finally:
        fm.COMPILED_MIN_ROWS = threshold
    return model, time.perf_counter() - start, log.getvalue()


def container(
    *arguments: str, output=subprocess.PIPE, compiled_min_rows: int | None = None, cache: Path | None = None
) -> subprocess.Popen:
    """An algorithm container process, as the emulator starts one; ``compiled_min_rows`` replaces the plug-in's
    threshold in that process, ``cache`` is its NUMBA_CACHE_DIR (the emulator gives every job one)."""
    start = ["-m", "sagemaker_emulator.algorithms.container"]
    if compiled_min_rows is not None:
        start = [
            "-c",
            "import runpy; from sagemaker_emulator.algorithms import factorization_machines as fm; "
            f"fm.COMPILED_MIN_ROWS = {compiled_min_rows}; "
            "runpy.run_module('sagemaker_emulator.algorithms.container', run_name='__main__', alter_sys=True)",
        ]
    return subprocess.Popen(
        [sys.executable, *start, *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **({"NUMBA_CACHE_DIR": str(cache)} if cache else {})},
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def peak_rss_bytes(pid: int) -> int:
    """The process's own high-water mark (VmHWM). Not ``ru_maxrss``: that keeps the pages a child shared with
    this process before its ``exec``, gigabytes here once the data is made."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def run_job(
    root: Path, compiled_min_rows: int | None = None, cache: Path | None = None
) -> tuple[str, float, float, float]:
    """Run a training container to its end: (its log, wall seconds, CPU seconds, peak RSS in GiB)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = container(
            "train",
            "factorization-machines",
            str(root),
            output=output,
            compiled_min_rows=compiled_min_rows,
            cache=cache,
        )
        peak = 0
        while True:  # the high-water mark only grows: the last reading before the end is the peak
            with contextlib.suppress(OSError, StopIteration):
                peak = max(peak, peak_rss_bytes(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        log = output.read()
    if process.returncode:
        raise RuntimeError(f"the FM job failed ({process.returncode}):\n{log[-3000:]}")
    return log, time.perf_counter() - start, usage.ru_utime + usage.ru_stime, peak / 2**30


def job_tree(root: Path, features, labels, knobs: dict) -> Path:
    """A job folder with ``features``/``labels`` as its train channel (one RecordIO file)."""
    hyperparameters = {"feature_dim": features.shape[1], "predictor_type": "regressor", **knobs}
    layout = create_layout(root, {k: str(v) for k, v in hyperparameters.items()}, {"train": {"ContentType": RECORDIO}})
    with (layout.channel_dir("train") / "part-0.pbr").open("wb") as stream:
        records.write_records(stream, features, labels)
    return layout.root


def verdict(ok: bool) -> str:
    return "meets the goal" if ok else "MISSES the goal"


def scale(n_ratings: int) -> None:
    """A whole job on ml-20m's shape: records/s per epoch, CPU/wall, peak RSS, each against its goal."""
    n_users = min(ML_20M[0], n_ratings // MIN_RATINGS_PER_USER)
    start = time.perf_counter()
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=ML_20M[1], n_ratings=n_ratings)
    features = one_hot(ratings["user_id"].to_numpy() - 1, ratings["item_id"].to_numpy() - 1, n_users, ML_20M[1])
    labels = ratings["rating"].to_numpy(np.float32)
    del ratings
    with tempfile.TemporaryDirectory() as scratch:
        root = job_tree(Path(scratch) / "job", features, labels, THROUGHPUT_KNOBS)
        del features, labels
        prepared = time.perf_counter() - start
        results = {
            "numpy": run_job(root, compiled_min_rows=NUMPY_ONLY),
            "compiled": run_job(root, compiled_min_rows=0, cache=Path(scratch) / "numba"),
        }
    ready = float(re.search(r"compiled kernels \(numba\), ready in (\S+) s", results["compiled"][0]).group(1))
    print(
        f"ml-20m-shaped job: {n_ratings:,} ratings, {n_users:,} users + {ML_20M[1]:,} movies "
        f"(data made and written in {prepared:.0f} s); the compiled job compiled its kernels in {ready:.1f} s "
        "before its first epoch (with its own cache, as every emulator job)"
    )
    logged = {}
    for path, (log, seconds, cpu, peak) in results.items():
        logged[path] = float(re.search(r"train throughput=(\S+) records/second", log).group(1))
        print(
            f"  {path} path\n"
            f"    epoch throughput {logged[path]:>12,.0f} records/s   goal >= {GOAL_RECORDS_PER_SECOND:,}: "
            f"{verdict(logged[path] >= GOAL_RECORDS_PER_SECOND)} (x{logged[path] / AWS_THROUGHPUT:.1f} the AWS container)\n"
            f"    peak RSS         {peak:>12.2f} GiB         goal <= {GOAL_PEAK_GIB} GiB: "
            f"{verdict(peak <= GOAL_PEAK_GIB)}\n"
            f"    whole job        {seconds:>12.1f} s wall, {cpu:.1f} s CPU = {1e6 * cpu / n_ratings:.2f} CPU-us per record "
            f"({cpu / seconds:.2f} cores busy on average, reading and saving included)"
        )
    print(f"  compiled / numpy epoch throughput: x{logged['compiled'] / logged['numpy']:.2f}")


def start_up() -> None:
    """CPU seconds of a tiny FM job's container, and of an FM model server up to its first answer."""
    rng = np.random.default_rng(0)
    features = sp.random(200, 50, density=0.05, format="csr", dtype=np.float32, random_state=0)
    with tempfile.TemporaryDirectory() as scratch:
        root = job_tree(Path(scratch) / "job", features, rng.normal(size=200).astype(np.float32), {"num_factors": 4})
        _, _, job_cpu, _ = run_job(root)
        port_file = Path(scratch) / "port"
        server = container("serve", "factorization-machines", str(root / "model"), "--port-file", str(port_file))
        try:
            while not port_file.exists():
                if server.poll() is not None:
                    raise RuntimeError(f"the model server ended: {server.stdout.read()[-3000:]}")
                time.sleep(0.01)
            body = json.dumps({"instances": [{"features": features[0].toarray()[0].tolist()}]}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port_file.read_text()}/invocations",
                body,
                {"Content-Type": "application/json", "Accept": "application/json"},
            )
            with urllib.request.urlopen(request) as answer:
                answer.read()
            with open(f"/proc/{server.pid}/stat") as stat:  # utime, stime in clock ticks: fields 14 and 15
                fields = stat.read().rsplit(")", 1)[1].split()
            endpoint_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        finally:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=60)
    for what, cpu in (("tiny FM job (container)", job_cpu), ("FM endpoint, up to its first answer", endpoint_cpu)):
        print(
            f"  {what:<38} {cpu:5.2f} CPU-s   goal <= {GOAL_START_CPU_SECONDS} s: "
            f"{verdict(cpu <= GOAL_START_CPU_SECONDS)}"
        )


def throughput(name: str, n_users: int, n_items: int, n_ratings: int) -> None:
    start = time.perf_counter()
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=n_items, n_ratings=n_ratings)
    features = one_hot(ratings["user_id"].to_numpy() - 1, ratings["item_id"].to_numpy() - 1, n_users, n_items)
    labels = ratings["rating"].to_numpy(np.float32)
    del ratings
    prepared = time.perf_counter() - start
    print(f"{name}: {features.shape[0]:,} rows, {features.shape[1]:,} features (data made in {prepared:.1f} s)")
    settings = config(features.shape[1], "regressor", THROUGHPUT_KNOBS)
    per_cpu_second = {}
    for path, threshold in (("numpy", NUMPY_ONLY), ("compiled", 0), ("numpy", NUMPY_ONLY), ("compiled", 0)):
        cpu = time.process_time()  # this process's every thread: both halves of an epoch
        _, seconds, log = quiet_fit(features, labels, settings, threshold)
        cpu = time.process_time() - cpu
        logged = float(re.search(r"train throughput=(\S+) records/second", log).group(1))
        per_cpu_second[path] = max(per_cpu_second.get(path, 0.0), features.shape[0] / cpu)
        print(
            f"  {path:<8} {logged:>10,.0f} records/s logged  {features.shape[0] / cpu:>10,.0f} records per CPU-s "
            f"({1e6 * cpu / features.shape[0]:.2f} CPU-us per record, {cpu / seconds:.2f} cores busy; {seconds:.1f} s) "
            f"x{logged / AWS_THROUGHPUT:.1f} the AWS container"
        )
    print(
        f"  compiled / numpy records per CPU-s (best of two each): x{per_cpu_second['compiled'] / per_cpu_second['numpy']:.2f}"
    )


def shuffle_cost(n_rows: int) -> None:
    """CPU seconds of one epoch's shuffle of ``n_rows`` row numbers, numpy's (``Generator.shuffle``, what one-thread
    runs use) against ``fm_compiled.shuffle`` (two-thread compiled runs), best of three each: both cores wait for it."""
    from sagemaker_emulator.algorithms import fm_compiled

    fm_compiled.shuffle(np.arange(10, dtype=np.int32), 0)  # compiled or loaded from the cache before timing
    rng, best = np.random.default_rng(0), {}
    for name, shuffle in (("numpy", lambda order, _: rng.shuffle(order)), ("compiled", fm_compiled.shuffle)):
        for seed in range(3):
            order = np.arange(n_rows, dtype=np.int32)
            cpu = time.process_time()
            shuffle(order, seed)
            best[name] = min(best.get(name, np.inf), time.process_time() - cpu)
    print(
        f"\nOne epoch's shuffle of {n_rows:,} rows: numpy {best['numpy']:.2f} CPU-s, compiled {best['compiled']:.2f} "
        f"CPU-s (x{best['numpy'] / best['compiled']:.1f}); the compiled path's epoch at 1.5M records/s lasts "
        f"{n_rows / GOAL_RECORDS_PER_SECOND:.1f} s"
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
    for path, threshold in (("numpy", NUMPY_ONLY), ("compiled", 0)):
        settings = config(x_train.shape[1], "regressor", LAB1_KNOBS)
        model, seconds, _ = quiet_fit(x_train, y_train, settings, threshold)
        rows.append((f"FM regressor ({path})", rmse(model.decision(x_test), y_test), seconds))
    print(f"{'model':<28} {'test RMSE':>9} {'fit s':>7}")
    for name, value, fit_seconds in rows:
        print(f"{name:<28} {value:>9.4f} {fit_seconds:>7.1f}")
    print(
        f"FM regressor as a whole job (RecordIO read + train + test + save): "
        f"{job_seconds(x_train, y_train, x_test, y_test):.1f} s"
    )

    positive_train, positive_test = (y_train >= 4).astype(np.float32), y_test >= 4
    settings = config(x_train.shape[1], "binary_classifier", LAB1_KNOBS)
    majority = max(positive_test.mean(), 1 - positive_test.mean())
    for path, threshold in (("numpy", NUMPY_ONLY), ("compiled", 0)):
        classifier, seconds, _ = quiet_fit(x_train, positive_train, settings, threshold)
        accuracy = np.mean((classifier.decision(x_test) >= 0) == positive_test)
        print(
            f"FM binary classifier ({path}, rating >= 4): accuracy {accuracy:.4f} vs majority class {majority:.4f} "
            f"(+{accuracy - majority:.3f}; fit {seconds:.1f} s)"
        )


def synthetic_quality(n_ratings: int) -> None:
    """Test RMSE of the numpy and compiled paths (each with its threads, as a job of that size runs) on a random 10%
    of a synthetic ml-20m-shaped matrix, Lab 1's knobs but 3 epochs."""
    n_users = min(ML_20M[0], n_ratings // MIN_RATINGS_PER_USER)
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=ML_20M[1], n_ratings=n_ratings)
    features = one_hot(ratings["user_id"].to_numpy() - 1, ratings["item_id"].to_numpy() - 1, n_users, ML_20M[1])
    labels = ratings["rating"].to_numpy(np.float32)
    test = np.random.default_rng(0).random(len(labels)) < 0.1
    settings = config(features.shape[1], "regressor", {**LAB1_KNOBS, "epochs": 3})
    print(f"\nSynthetic ml-20m shape, {n_ratings:,} ratings, 10% held out, Lab 1's knobs, 3 epochs:")
    for path, threshold in (("numpy", NUMPY_ONLY), ("compiled", 0)):
        model, seconds, _ = quiet_fit(features[~test], labels[~test], settings, threshold)
        print(
            f"  FM regressor ({path:<8}) test RMSE {rmse(model.decision(features[test]), labels[test]):.4f} "
            f"(fit {seconds:.1f} s wall)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="quality dataset (default: the workshop's setting)")
    parser.add_argument("--rows", type=int, default=ML_20M[2], help="ratings of the ml-20m-shaped job")
    parser.add_argument("--skip-scale", action="store_true", help="skip the ml-20m-shaped job")
    parser.add_argument("--quality-rows", type=int, default=2_000_000, help="ratings of the synthetic quality check")
    arguments = parser.parse_args()
    if arguments.rows < 2 * MIN_RATINGS_PER_USER:
        parser.error(f"--rows must be at least {2 * MIN_RATINGS_PER_USER}")
    print("Start-up, CPU seconds:")
    start_up()
    if not arguments.skip_scale:
        scale(arguments.rows)
    print("\nOne epoch of FM training in process (num_factors 64, mini_batch_size 1000), twice per path:")
    throughput("ml-100k-sized", 943, 1682, 100_000)
    quality_users = min(ML_20M[0], arguments.quality_rows // MIN_RATINGS_PER_USER)
    throughput("ml-20m-shaped", quality_users, ML_20M[1], arguments.quality_rows)
    shuffle_cost(arguments.rows)
    quality(arguments.dataset)
    synthetic_quality(arguments.quality_rows)


if __name__ == "__main__":
    main()
