"""Speed of the object2vec plug-in: Lab 2's settings at ml-20m's shape, pairs/s per encoder, a whole reference job.

Part ``lab`` (issue 24: goal 100k pairs/s) trains one epoch at Lab 2's quick regressor settings (pooled_embedding
both sides, enc_dim and mlp_dim 256, one ReLU layer, dropout 0.5, MSE, adam 0.002, batches of 512, row_sparse
embeddings) on ``common.synthetic`` ratings of ml-20m's shape (138,493 users, 26,744 movies; ``--pairs`` of them,
20,000,263 by default), three times, side by side: the emulator's numpy step (what such a job runs now, two Hogwild
threads), its Gluon step (what it ran before, still used by other networks), and a bare Gluon loop of the same
network written as a textbook would (``nn.Dropout``, a loss block, ``trainer.step``). It prints pairs/s (wall) and
pairs per CPU-second of each, the MSE of both emulator steps on held-out pairs, the ratios, the goal, and the
minutes an ml-20m epoch takes at that rate. Part ``quality`` trains the same settings on ml-latest-small with the
notebook's splits, both emulator steps, and prints the validation MSE of every epoch.
Part ``encoders`` times ``train_epoch`` (no file I/O) on random sequence pairs for each encoder type. Part
``reference`` runs a full job (``create_layout`` + ``train``) with AWS's MovieLens reference hyperparameters
(contract §7.1: pooled_embedding both sides, enc_dim 1024, mlp_dim 256, one tanh layer, MSE, adam 0.001, batch 64,
early stopping 3 / 0.01) on ``common.synthetic`` ratings (943 users, 1682 movies, 100k ratings) with 10 ratings per
user held out, and prints the wall time, epochs, and validation MSE against the per-user-mean baseline.

    .venv/bin/python benchmarks/object2vec.py [--part lab|quality|encoders|reference ...] [--pairs 20000263]
        [--quality-epochs 8] [--encoder-pairs 4096] [--epochs 20] [--batch 64] [--storage dense] [--enc-dim 1024]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import common  # noqa: F401  (numpy alias before mxnet)

# isort: split
import mxnet as mx
import numpy as np
import pandas as pd
from mxnet import autograd, gluon
from mxnet.gluon import nn

from common import data, records, synthetic
from sagemaker_emulator.algorithms import object2vec
from sagemaker_emulator.algorithms.layout import create_layout
from sagemaker_emulator.algorithms.object2vec_data import Side, encode_side
from sagemaker_emulator.algorithms.object2vec_network import (
    Object2VecNetwork,
    TrainingGraph,
    build_network,
    native_bfloat16,
)
from sagemaker_emulator.algorithms.object2vec_numpy import LookupTrainer
from sagemaker_emulator.algorithms.object2vec_training import (
    Pairs,
    make_trainer,
    predict,
    scores,
    train_epoch,
    train_epoch_lookup,
)

ML_20M = {"users": 138_493, "movies": 26_744, "ratings": 20_000_263}
GOAL = 100_000  # pairs/s, issue 24
HELD_OUT = 50_000  # pairs of the lab part's quality check, drawn with the training pairs, never trained on
ENCODER_SETUP = {  # a mid-sized text-like task: 20k-token vocabulary, sequences of 1-40 tokens
    "enc0_vocab_size": "20000",
    "enc0_max_seq_len": "40",
    "enc1_network": "enc0",
    "enc_dim": "512",
    "enc0_token_embedding_dim": "128",
    "mlp_dim": "256",
    "mlp_layers": "1",
    "mini_batch_size": "256",
    "output_layer": "softmax",
}
# dense Adam updates all 2 x 20k x 128 embedding weights at every step; row_sparse only the batch's rows
ENCODER_RUNS = (
    ("pooled_embedding", "dense"),
    ("pooled_embedding", "row_sparse"),
    ("hcnn", "row_sparse"),
    ("bilstm", "row_sparse"),
)
REFERENCE = {  # contract §7.1, "Rating regression"
    "_kvstore": "device",
    "_num_gpus": "auto",
    "_num_kv_servers": "auto",
    "bucket_width": "0",
    "early_stopping_patience": "3",
    "early_stopping_tolerance": "0.01",
    "enc0_cnn_filter_width": "3",
    "enc0_layers": "auto",
    "enc0_max_seq_len": "1",
    "enc0_network": "pooled_embedding",
    "enc0_token_embedding_dim": "300",
    "enc1_layers": "auto",
    "enc1_max_seq_len": "1",
    "enc1_network": "pooled_embedding",
    "enc1_token_embedding_dim": "300",
    "enc_dim": "1024",
    "epochs": "20",
    "learning_rate": "0.001",
    "mini_batch_size": "64",
    "mlp_activation": "tanh",
    "mlp_dim": "256",
    "mlp_layers": "1",
    "num_classes": "2",
    "optimizer": "adam",
    "output_layer": "mean_squared_error",
}
LAB = {  # Lab 2's quick_regressor on top of its regressor_reference (the notebook's parameters cell)
    **REFERENCE,
    "enc_dim": "256",
    "mlp_dim": "256",
    "mlp_activation": "relu",
    "mini_batch_size": "512",
    "learning_rate": "0.002",
    "token_embedding_storage_type": "row_sparse",
    "dropout": "0.5",
    "enc0_vocab_size": str(ML_20M["users"]),
    "enc1_vocab_size": str(ML_20M["movies"]),
}


def random_pairs(n: int, hp: dict, seed: int = 0) -> Pairs:
    rng = np.random.default_rng(seed)
    vocab, longest = hp["enc0_vocab_size"], hp["enc0_max_seq_len"]
    lengths = rng.integers(1, longest + 1, (2, n))
    sides = tuple(
        encode_side(
            [ids.tolist() for ids in np.split(rng.integers(0, vocab, k.sum()), np.cumsum(k)[:-1])],
            side,
            longest,
            vocab,
            str,
        )
        for side, k in enumerate(lengths)
    )
    return Pairs(sides, rng.integers(0, 2, n).astype(np.float32))


class BareNetwork(gluon.HybridBlock):
    """Lab 2's network for one-token sides as a textbook writes it: lookups, comparator, MLP with nn.Dropout."""

    def __init__(self, hp: dict):
        super().__init__()
        sparse, dim, rate = hp["token_embedding_storage_type"] == "row_sparse", hp["enc_dim"], hp["dropout"]
        with self.name_scope():
            self.users = nn.Embedding(hp["enc0_vocab_size"], dim, sparse_grad=sparse)
            self.movies = nn.Embedding(hp["enc1_vocab_size"], dim, sparse_grad=sparse)
            self.dropout = nn.Dropout(rate)
            self.mlp = nn.HybridSequential()
            self.mlp.add(nn.Dense(hp["mlp_dim"], activation=hp["mlp_activation"], in_units=4 * dim))
            self.mlp.add(nn.Dropout(rate), nn.Dense(1, in_units=hp["mlp_dim"]))

    def hybrid_forward(self, F, users, movies):
        e0 = self.dropout(F.reshape(self.users(users), shape=(0, -1)))
        e1 = self.dropout(F.reshape(self.movies(movies), shape=(0, -1)))
        return self.mlp(F.concat(e0 * e1, e0, e1, F.abs(e0 - e1), dim=1))


def bare_loop(hp: dict) -> tuple[Callable[[Pairs], None], None]:
    """A fresh bare network and trainer; the function trains one epoch over pairs in their order (no shuffle)."""
    net = BareNetwork(hp)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": hp["learning_rate"]}, kvstore=None)
    loss_function = gluon.loss.L2Loss(weight=2.0)
    size = hp["mini_batch_size"]

    def epoch(pairs: Pairs) -> None:
        users, movies, labels = (mx.nd.array(a) for a in (*(side.tokens for side in pairs.sides), pairs.labels))
        total = mx.nd.zeros(1)
        for start in range(0, len(pairs), size):
            batch = slice(start, start + size)
            with autograd.record():
                loss = loss_function(net(users[batch], movies[batch]), labels[batch])
            loss.backward()
            trainer.step(loss.shape[0])
            total += loss.sum()
        total.wait_to_read()

    return epoch, None


def regressor(hp: dict, mean: float | None) -> Object2VecNetwork:
    """A fresh network; with ``mean``, its output starts from that rating as a job's does (``run_training``)."""
    network = build_network(hp)
    if mean is not None:
        network.output.bias.set_data(mx.nd.array([mean]))
    return network


def gluon_loop(hp: dict, mean: float | None = None) -> tuple[Callable[[Pairs], None], Object2VecNetwork]:
    """The Gluon graph and trainer a job built before issue 24's numpy step (and still builds for other networks);
    the function runs ``train_epoch`` once."""
    network = regressor(hp, mean)
    graph = TrainingGraph(network, softmax=False, bfloat16=native_bfloat16())
    graph.hybridize(static_alloc=True)
    trainer, rng = make_trainer(network, hp), np.random.default_rng(0)
    return lambda pairs: train_epoch(graph, trainer, pairs, hp, rng), network


def lookup_loop(hp: dict, mean: float | None = None) -> tuple[Callable[[Pairs], None], Object2VecNetwork]:
    """What a job at Lab 2's settings runs now: ``train_epoch_lookup`` (numpy steps), parameters written back."""
    network = regressor(hp, mean)
    trainer, rng = LookupTrainer(network, hp), np.random.default_rng(0)

    def epoch(pairs: Pairs) -> None:
        train_epoch_lookup(trainer, pairs, hp, rng)
        trainer.write_back()

    return epoch, network


def ml20m_pairs(n: int) -> Pairs:
    """``n`` (user, movie, rating) pairs of ``common.synthetic`` data of ml-20m's shape, in a random order."""
    sizes = {"n_users": ML_20M["users"], "n_items": ML_20M["movies"]}
    ratings, _ = synthetic.generate(seed=0, **sizes, n_ratings=max(n, 20 * ML_20M["users"]))
    chosen = ratings.sample(n=n, random_state=0)
    sides = (
        Side(ids.reshape(-1, 1).astype(np.float32), np.ones(n, dtype=np.float32))
        for ids in (chosen.user_id.to_numpy() - 1, chosen.item_id.to_numpy() - 1)
    )
    return Pairs(tuple(sides), chosen.rating.to_numpy(dtype=np.float32))


def lab_throughput(n_pairs: int) -> None:
    with redirect_stdout(StringIO()):
        hp = object2vec.resolve_hyperparameters(LAB)
    everything = ml20m_pairs(n_pairs + HELD_OUT)
    pairs, held_out = (
        Pairs(tuple(side.take(part) for side in everything.sides), everything.labels[part])
        for part in (slice(0, n_pairs), slice(n_pairs, None))
    )
    warm_up = Pairs(tuple(side.take(slice(0, 8192)) for side in pairs.sides), pairs.labels[:8192])
    print(
        f"Lab 2's quick regressor on {n_pairs:,} pairs of ml-20m's shape ({ML_20M['users']:,} users, "
        f"{ML_20M['movies']:,} movies), one epoch each after a warm-up, side by side; MSE on {HELD_OUT:,} held-out pairs"
    )
    rates = {}
    loops = (("emulator numpy step", lookup_loop), ("emulator Gluon step", gluon_loop), ("bare Gluon loop", bare_loop))
    for name, loop in loops:
        epoch, network = loop(hp)
        epoch(warm_up)  # graph build and first allocations
        mx.nd.waitall()
        wall, cpu = time.perf_counter(), time.process_time()
        epoch(pairs)
        mx.nd.waitall()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates[name] = n_pairs / wall
        quality = ""
        if network is not None:
            mse = scores(predict(network, *held_out.sides), held_out.labels, softmax=False)["mean_squared_error"]
            quality = f", held-out MSE {mse:.4f}"
        print(
            f"  {name:<21} {rates[name]:>9,.0f} pairs/s ({n_pairs / cpu:>9,.0f} per CPU-second), "
            f"{ML_20M['ratings'] / rates[name] / 60:.1f} min per ml-20m epoch{quality}"
        )
    fast = rates["emulator numpy step"]
    print(
        f"  numpy step / Gluon step: {fast / rates['emulator Gluon step']:.2f}x; numpy step / bare loop: "
        f"{fast / rates['bare Gluon loop']:.2f}x; goal {GOAL:,} pairs/s: {fast / GOAL:.0%}"
    )


def lab_quality(epochs: int) -> None:
    """Lab 2's quick regressor on ml-latest-small with the notebook's splits: validation MSE of both steps."""
    ds = data.load_dataset("ml-latest-small")
    rest, _ = data.split_holdout(ds, seed=0)
    train, validation = data.split_holdout(rest, seed=0)
    users, movies = pd.Index(np.unique(ds.ratings.user_id)), pd.Index(ds.items.item_id)

    def pairs(frame: pd.DataFrame) -> Pairs:
        tokens = (users.get_indexer(frame.user_id), movies.get_indexer(frame.item_id))
        sides = (Side(ids.reshape(-1, 1).astype(np.float32), np.ones(len(frame), np.float32)) for ids in tokens)
        return Pairs(tuple(sides), frame.rating.to_numpy(dtype=np.float32))

    with redirect_stdout(StringIO()):
        hp = object2vec.resolve_hyperparameters(
            {**LAB, "enc0_vocab_size": str(len(users)), "enc1_vocab_size": str(len(movies))}
        )
    train_pairs, validation_pairs = pairs(train), pairs(validation)
    print(
        f"Lab 2's quick regressor on ml-latest-small ({len(train):,} train / {len(validation):,} validation ratings), "
        f"validation MSE after each of {epochs} epochs"
    )
    for name, loop in (("emulator numpy step", lookup_loop), ("emulator Gluon step", gluon_loop)):
        mx.random.seed(0)
        epoch, network = loop(hp, float(train_pairs.labels.mean()))
        errors = []
        for _ in range(epochs):
            epoch(train_pairs)
            outputs = predict(network, *validation_pairs.sides)
            errors.append(scores(outputs, validation_pairs.labels, softmax=False)["mean_squared_error"])
        print(
            f"  {name:<21} best {min(errors):.4f} (epoch {int(np.argmin(errors))}): "
            + " ".join(f"{error:.4f}" for error in errors)
        )


def encoder_throughput(n_pairs: int) -> None:
    print(f"Training throughput on {n_pairs} random pairs, {ENCODER_SETUP}")
    for network, storage in ENCODER_RUNS:
        with redirect_stdout(StringIO()):
            hp = object2vec.resolve_hyperparameters(
                {**ENCODER_SETUP, "enc0_network": network, "token_embedding_storage_type": storage}
            )
        net = build_network(hp)
        graph = TrainingGraph(net, softmax=True, bfloat16=native_bfloat16())
        graph.hybridize(static_alloc=True)
        trainer = make_trainer(net, hp)
        rng = np.random.default_rng(0)
        train_epoch(graph, trainer, random_pairs(min(n_pairs, 1024), hp, 1), hp, rng)  # warm-up: graph build
        _, throughput = train_epoch(graph, trainer, random_pairs(n_pairs, hp), hp, rng)
        print(f"  {network:<17} layers={hp['enc0_layers']}  {storage:<10} {throughput:>9,.0f} pairs/s")


def reference_job(epochs: int, batch: int, storage: str, enc_dim: int) -> None:
    ratings, _ = synthetic.generate(seed=0)
    train, validation = data.split_holdout(ratings, seed=0)
    hp = {
        **REFERENCE,
        "epochs": str(epochs),
        "mini_batch_size": str(batch),
        "token_embedding_storage_type": storage,
        "enc_dim": str(enc_dim),
        "enc0_vocab_size": str(ratings.user_id.max() + 1),
        "enc1_vocab_size": str(ratings.item_id.max() + 1),
    }
    with tempfile.TemporaryDirectory() as folder:
        channels = {name: {"ContentType": "application/jsonlines"} for name in ("train", "validation")}
        layout = create_layout(Path(folder), hp, channels)
        for name, frame in (("train", train.sample(frac=1.0, random_state=0)), ("validation", validation)):
            with open(layout.channel_dir(name) / f"{name}.jsonl", "w") as out:
                records.write_jsonlines_pairs(
                    out, frame.user_id.to_numpy(), frame.item_id.to_numpy(), frame.rating.to_numpy()
                )
        log = StringIO()
        started = time.perf_counter()
        with redirect_stdout(log):
            object2vec.train(layout, hp)
        seconds = time.perf_counter() - started
    text = log.getvalue()
    mse = [float(v) for v in re.findall(r"validation mean_squared_error <loss>=(\S+)", text)]
    throughput = [float(v) for v in re.findall(r"train throughput=(\S+) records", text)]
    user_mean = train.groupby("user_id").rating.mean()
    baseline = np.mean((validation.rating - validation.user_id.map(user_mean)) ** 2)
    print(
        f"Reference regression job ({len(train)} train / {len(validation)} validation ratings, "
        f"enc_dim {enc_dim}, batch {batch}, {storage})"
    )
    print(
        f"  wall time {seconds:.1f} s for {len(mse)} epochs ({seconds / len(mse):.1f} s/epoch incl. validation), "
        f"{np.mean(throughput):,.0f} records/s"
    )
    print(f"  best validation MSE {min(mse):.4f} (epoch {int(np.argmin(mse))}); per-user-mean baseline {baseline:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("lab", "quality", "encoders", "reference"), action="append")
    parser.add_argument("--pairs", type=int, default=ML_20M["ratings"], help="pairs of the lab comparison")
    parser.add_argument("--encoder-pairs", type=int, default=4096, help="pairs per encoder-throughput epoch")
    parser.add_argument("--quality-epochs", type=int, default=8, help="epochs of the quality part (Lab 2's: 8)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--storage", choices=("dense", "row_sparse"), default="dense")
    parser.add_argument("--enc-dim", type=int, default=1024)
    args = parser.parse_args()
    if args.pairs < 8192:
        parser.error(f"--pairs must be at least 8192 (one warm-up epoch's worth), got {args.pairs}")
    mx.random.seed(0)
    parts = args.part or ["lab", "quality", "encoders", "reference"]
    if "lab" in parts:
        lab_throughput(args.pairs)
    if "quality" in parts:
        lab_quality(args.quality_epochs)
    if "encoders" in parts:
        encoder_throughput(args.encoder_pairs)
    if "reference" in parts:
        reference_job(args.epochs, args.batch, args.storage, args.enc_dim)


if __name__ == "__main__":
    main()
