"""Lab 1's deep matrix factorization notebook at two scales: training throughput, and what ml-20m needs.

The models (MF with biases, DMF 16/32 factors with a 64-64 MLP, NeuMF 64 factors with a 64-32-16 MLP, and the
16-factor NeuMF the notebook used before, all with row-sparse embedding gradients), the batch generator (a numpy
permutation per epoch, NDArrays sliced from it) and the negative sampler are the notebook's own, imported from
``dmf_models.py`` (its ``#@save`` cells); the training steps are the notebook's.
Data: ``common.synthetic`` ratings the size of ml-100k (943 users x 1,682 movies x 100,000) and of ml-20m (138,493 x
26,744 x 20,000,263); ml-20m itself is not downloaded.

For each size it prints, side by side: samples/s per model (a bounded number of batches after a warm-up, so the
20M epoch time is an extrapolation), the seconds per epoch that implies (NeuMF's epoch is 5 samples per
positive: the positive and 4 negatives), and the data steps the notebook runs before training (one
``split_holdout``, id encoding, one ``leave_one_out``, one epoch of negative sampling) with the peak resident
memory of the process during each.

    .venv/bin/python benchmarks/dmf.py [--skip-20m] [--batches 300]
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from contextlib import contextmanager

import common  # noqa: F401  (numpy alias before mxnet)

# isort: split
import mxnet as mx
import numpy as np
import pandas as pd
from mxnet import autograd, gluon

from common import data, synthetic
from common.labs import load_lab_module

# The notebook's models, batches and negative sampler, from the module its #@save cells are written to.
models = load_lab_module("lab1", "dmf_models")
DMF, MF, NeuMF, batches, sample_negatives = models.DMF, models.MF, models.NeuMF, models.batches, models.sample_negatives

SIZES = {"ml-100k-sized": (943, 1682, 100_000), "ml-20m-sized": (138_493, 26_744, 20_000_263)}
RATING_BATCH, NCF_BATCH, NEGATIVES = 1024, 4096, 4
LARGE_BATCH = 25_000  # the original workshop's batch size for ml-20m
NCF_LARGE_BATCH = 65_536  # the notebook's suggestion for NeuMF on ml-20m
WARMUP = 20


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


@contextmanager
def measured(log: list, step: str):
    """Time a step and sample the process's resident memory every 20 ms while it runs."""
    peak, done = [rss_mb()], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    log.append((step, seconds, max(peak + [rss_mb()])))


def throughput(net, arrays, loss_fn, batch_size, max_batches) -> float:
    """Samples per second of Adam training steps, over at most ``max_batches`` batches after a warm-up."""
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.001})
    rng, seen, start = np.random.default_rng(0), 0, None
    for step, (u, i, y) in enumerate(batches(arrays, batch_size, rng)):
        if step == WARMUP:
            mx.nd.waitall()
            start, seen = time.perf_counter(), 0
        with autograd.record():
            loss = loss_fn(net(u, i), y)
        loss.backward()
        trainer.step(u.shape[0])
        seen += u.shape[0]
        if step >= WARMUP + max_batches:
            break
    mx.nd.waitall()
    return seen / (time.perf_counter() - start)


def run(name: str, n_users: int, n_items: int, n_ratings: int, max_batches: int) -> None:
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=n_items, n_ratings=n_ratings)
    steps = [("synthetic ratings in memory", 0.0, rss_mb())]
    with measured(steps, "split_holdout (10 per user)"):
        train, _ = data.split_holdout(ratings, seed=0)
    with measured(steps, "ids to int32 rows, float32 ratings"):
        user_index, item_index = pd.Index(np.unique(ratings.user_id)), pd.Index(np.unique(ratings.item_id))
        fit = (
            user_index.get_indexer(train.user_id).astype(np.int32),
            item_index.get_indexer(train.item_id).astype(np.int32),
            train.rating.to_numpy(np.float32),
        )
    del train
    with measured(steps, "leave_one_out (99 negatives)"):
        loo_train, _, _ = data.leave_one_out(ratings, seed=0)
    pos_users = user_index.get_indexer(loo_train.user_id).astype(np.int32)
    pos_items = item_index.get_indexer(loo_train.item_id).astype(np.int32)
    del loo_train
    with measured(steps, f"one epoch of negatives ({NEGATIVES} per positive)"):
        seen = np.unique(pos_users.astype(np.int64) * n_items + pos_items)
        neg_users, neg_items = sample_negatives(pos_users, NEGATIVES, seen, n_items, np.random.default_rng(0))
        implicit = (
            np.r_[pos_users, neg_users],
            np.r_[pos_items, neg_items],
            np.r_[np.ones(len(pos_users)), np.zeros(len(neg_users))].astype(np.float32),
        )
    del neg_users, neg_items, seen

    mu = float(fit[2].mean())
    runs = [
        ("MF + biases, 32 factors", lambda: MF(n_users, n_items, 32, mu), fit, gluon.loss.L2Loss(), RATING_BATCH),
        (
            "DMF 16/32, MLP 64-64",
            lambda: DMF(n_users, n_items, 16, 32, [64, 64], mu),
            fit,
            gluon.loss.L2Loss(),
            RATING_BATCH,
        ),
        *(
            (
                f"NeuMF {factors}, MLP 64-32-16",
                lambda factors=factors: NeuMF(n_users, n_items, factors, [64, 32, 16]),
                implicit,
                gluon.loss.SigmoidBinaryCrossEntropyLoss(),
                NCF_BATCH,
            )
            for factors in (64, 16)
        ),
    ]
    if n_ratings > 1_000_000:
        runs += [
            (f"{label}, large batch", make, arrays, loss, NCF_LARGE_BATCH if "NeuMF" in label else LARGE_BATCH)
            for label, make, arrays, loss, _ in runs
        ]
    print(
        f"\n{name}: {n_users:,} users x {n_items:,} movies, {n_ratings:,} ratings "
        f"({len(fit[2]):,} to fit, {len(implicit[2]):,} implicit samples per epoch)"
    )
    print(f"  {'model':<40} {'batch':>6} {'samples/s':>11} {'s/epoch':>9}")
    for label, make, arrays, loss, batch in runs:
        mx.random.seed(0)
        rate = throughput(make(), arrays, loss, batch, max_batches)
        print(f"  {label:<40} {batch:>6,} {rate:>11,.0f} {len(arrays[2]) / rate:>9,.1f}", flush=True)
    print(f"  {'data step':<52} {'seconds':>8} {'peak RSS (MB)':>14}")
    for step, seconds, peak in steps:
        print(f"  {step:<52} {seconds:>8.1f} {peak:>14,.0f}")
    print(
        f"  training arrays: {sum(a.nbytes for a in fit) / 1e6:,.0f} MB ratings, "
        f"{sum(a.nbytes for a in implicit) / 1e6:,.0f} MB implicit samples"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-20m", action="store_true", help="only the ml-100k-sized run")
    parser.add_argument("--batches", type=int, default=300, help="timed batches per model (after a warm-up)")
    args = parser.parse_args()
    started = time.perf_counter()
    for name, (n_users, n_items, n_ratings) in SIZES.items():
        if name == "ml-20m-sized" and args.skip_20m:
            continue
        run(name, n_users, n_items, n_ratings, args.batches)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s, peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:,.0f} MB (includes generating the data)"
    )


if __name__ == "__main__":
    main()
