"""Speed of the object2vec plug-in: training pairs/s per encoder, and a whole regression job on ml-100k-sized data.

Part 1 times ``train_epoch`` (no file I/O) on random sequence pairs for each encoder type. Part 2 runs a full job
(``create_layout`` + ``train``) with AWS's MovieLens reference hyperparameters (contract §7.1: pooled_embedding
both sides, enc_dim 1024, mlp_dim 256, one tanh layer, MSE, adam 0.001, batch 64, early stopping 3 / 0.01) on
``common.synthetic`` ratings (943 users, 1682 movies, 100k ratings) with 10 ratings per user held out, and prints
the wall time, epochs, and validation MSE against the per-user-mean baseline.

    .venv/bin/python benchmarks/object2vec.py [--pairs 4096] [--epochs 20] [--batch 64] [--storage dense]
        [--enc-dim 1024] [--skip-encoders]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import common  # noqa: F401  (numpy alias before mxnet)

# isort: split
import mxnet as mx
import numpy as np
from mxnet import gluon

from common import data, records, synthetic
from sagemaker_emulator.algorithms import object2vec
from sagemaker_emulator.algorithms.layout import create_layout
from sagemaker_emulator.algorithms.object2vec_data import encode_side
from sagemaker_emulator.algorithms.object2vec_network import build_network
from sagemaker_emulator.algorithms.object2vec_training import Pairs, make_trainer, train_epoch

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


def encoder_throughput(n_pairs: int) -> None:
    print(f"Training throughput on {n_pairs} random pairs, {ENCODER_SETUP}")
    for network, storage in ENCODER_RUNS:
        with redirect_stdout(StringIO()):
            hp = object2vec.resolve_hyperparameters(
                {**ENCODER_SETUP, "enc0_network": network, "token_embedding_storage_type": storage}
            )
        net = build_network(hp)
        net.hybridize(static_alloc=True)
        trainer = make_trainer(net, hp)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        rng = np.random.default_rng(0)
        train_epoch(net, trainer, loss, random_pairs(min(n_pairs, 1024), hp, 1), hp, rng)  # warm-up: graph build
        _, throughput = train_epoch(net, trainer, loss, random_pairs(n_pairs, hp), hp, rng)
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
    parser.add_argument("--pairs", type=int, default=4096, help="pairs per encoder-throughput epoch")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--storage", choices=("dense", "row_sparse"), default="dense")
    parser.add_argument("--enc-dim", type=int, default=1024)
    parser.add_argument("--skip-encoders", action="store_true")
    args = parser.parse_args()
    mx.random.seed(0)
    if not args.skip_encoders:
        encoder_throughput(args.pairs)
    reference_job(args.epochs, args.batch, args.storage, args.enc_dim)


if __name__ == "__main__":
    main()
