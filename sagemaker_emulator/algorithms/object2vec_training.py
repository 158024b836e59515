"""Object2Vec's training loop: channels → arrays, epochs with negative sampling, early stopping, metric lines.

Choices where the public contract is silent: early stopping follows the validation loss (MSE, or cross-entropy
for softmax), or the training loss when there is no validation channel; an epoch counts as an improvement when
its loss beats the best so far by more than ``early_stopping_tolerance``; the saved model and the test scores
use the epoch with the lowest loss, and so do the job's final validation metrics: that epoch's ``#quality_metric``
lines are logged again, with its epoch number, after training, since a job reports each metric's last logged
value (API_FinalHyperParameterTuningJobObjectiveMetric: "the latest objective metric emitted"). Negative sampling pairs every training record's in0 with the in1 of
``negative_sampling_rate`` other records drawn uniformly, label 0, drawn afresh each epoch. Runs are seeded.

Speed (issue 24, ``benchmarks/object2vec.py --part lab``): one optimizer step per ``mini_batch_size`` pairs, as
documented, so a step's fixed cost cannot be spread over larger internal batches. Jobs whose sides are one token
each with row_sparse Adam (Lab 2's) train without Gluon (:func:`train_epoch_lookup`, :mod:`object2vec_numpy`):
Gluon's 4.3 CPU-ms of fixed cost per step is gone, and two Hogwild threads keep both cores busy. Other networks
train in Gluon, the MLP's matrix products in bfloat16 on CPUs that have it (:class:`TrainingGraph`). Dropout masks
come from numpy rather than MXNet's per-element Dropout in both.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from threadpoolctl import threadpool_limits

from sagemaker_emulator.algorithms.base import ClientError, log
from sagemaker_emulator.algorithms.layout import CURRENT_HOST, JobLayout
from sagemaker_emulator.algorithms.object2vec_data import (
    RecordError,
    Side,
    encode_side,
    parse_labels,
    read_jsonlines_chunks,
    read_pretrained_embeddings,
)
from sagemaker_emulator.algorithms.object2vec_network import (
    Object2VecNetwork,
    TrainingGraph,
    build_network,
    load_model,
    native_bfloat16,
    save_model,
)
from sagemaker_emulator.algorithms.object2vec_numpy import LookupTrainer
from sagemaker_emulator.algorithms.paths import confined
from sagemaker_emulator.errors import JobInputError

SEED = 0
EVALUATION_BATCH = 4096
# Epochs of at least this many pairs train in HOGWILD_THREADS threads (train_epoch_lookup); Lab 2's ml-latest-small
# job has about 100k, the tests' jobs a few thousand (kept reproducible).
HOGWILD_MIN_PAIRS, HOGWILD_THREADS = 50_000, 2


@dataclass(frozen=True)
class Pairs:
    """A channel's records: both sides and the labels."""

    sides: tuple[Side, Side]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_channel(layout: JobLayout, channel: str, hp: dict) -> Pairs | None:
    """A channel's records as arrays, or None when the job has no such channel.

    Raises:
        ClientError: a malformed line, a missing or out-of-range label, an id outside the vocabulary, or an
            empty train channel.
    """
    files = layout.channel_files(channel)
    if not files:
        if channel == "train":
            raise ClientError("No training data found: channel 'train' has no files (expected application/jsonlines)")
        return None
    classes = hp["num_classes"] if hp["output_layer"] == "softmax" else None
    chunks = []
    try:
        for records, where in read_jsonlines_chunks(files, layout.data_dir):
            sides = tuple(
                encode_side(
                    [record.get(f"in{side}") for record in records],
                    side,
                    hp[f"enc{side}_max_seq_len"],
                    hp[f"enc{side}_vocab_size"],
                    where,
                )
                for side in (0, 1)
            )
            chunks.append(Pairs(sides, parse_labels(records, classes, where)))
        if not chunks:
            raise RecordError(f"no records found in channel '{channel}' (expected one JSON object per line)")
    except RecordError as error:
        raise ClientError(str(error)) from None
    sides = tuple(Side.concatenate([chunk.sides[side] for chunk in chunks]) for side in (0, 1))
    return Pairs(sides, np.concatenate([chunk.labels for chunk in chunks]))


def epoch_pairs(data: Pairs, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled (in0 record index, in1 record index, label) for one epoch, with ``rate`` negatives per record."""
    n = len(data)
    first = second = np.arange(n)
    labels = data.labels
    if rate:
        anchors = np.repeat(first, rate)
        partners = rng.integers(0, n - 1, size=anchors.size)
        partners += partners >= anchors  # never the record itself
        first, second = np.concatenate([first, anchors]), np.concatenate([second, partners])
        labels = np.concatenate([labels, np.zeros(anchors.size, dtype=np.float32)])
    order = rng.permutation(first.size)
    return first[order], second[order], labels[order]


def plan_batches(
    lengths0: np.ndarray, lengths1: np.ndarray, size: int, bucket_width: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """An order of the epoch's pairs and its batches as (start, stop, in0 width, in1 width).

    Each batch is cut to its longest record on each side, so short records do not pay for the channel's
    longest. With ``bucket_width`` the pairs are grouped by length (buckets of that width, shuffled within)
    and the batches are then visited in random order.
    """
    order = np.arange(lengths0.size)
    if bucket_width:
        order = np.argsort((np.maximum(lengths0, lengths1) - 1) // bucket_width, kind="stable")
    starts = np.arange(0, order.size, size)
    widths = [np.maximum.reduceat(lengths[order], starts).astype(int) for lengths in (lengths0, lengths1)]
    visits = rng.permutation(starts.size) if bucket_width else np.arange(starts.size)
    stops = np.minimum(starts + size, order.size)
    return order, [(starts[i], stops[i], widths[0][i], widths[1][i]) for i in visits]


def _arrays(side0: Side, side1: Side, *rest: np.ndarray) -> list[mx.nd.NDArray]:
    return [mx.nd.array(a) for a in (side0.tokens, side0.lengths, side1.tokens, side1.lengths, *rest)]


def predict(network: Object2VecNetwork, side0: Side, side1: Side) -> np.ndarray:
    """The network's outputs (logits or values) for many pairs, in evaluation batches."""
    outputs = []
    for start in range(0, len(side0.lengths), EVALUATION_BATCH):
        part = slice(start, start + EVALUATION_BATCH)
        outputs.append(network(*_arrays(side0.take(part), side1.take(part))).asnumpy())
    return np.concatenate(outputs)


def embed(network: Object2VecNetwork, side: int, encoded: Side) -> np.ndarray:
    """One side's encodings (enc_dim wide) for many records, in evaluation batches."""
    encoder = network.encoder(side)
    return np.concatenate(
        [
            encoder(
                mx.nd.array(encoded.tokens[start : start + EVALUATION_BATCH]),
                mx.nd.array(encoded.lengths[start : start + EVALUATION_BATCH]),
            ).asnumpy()
            for start in range(0, len(encoded.lengths), EVALUATION_BATCH)
        ]
    )


def scores(outputs: np.ndarray, labels: np.ndarray, softmax: bool) -> dict[str, float]:
    """The metrics of one pass: mean_squared_error, or accuracy and cross_entropy (natural log)."""
    if not softmax:
        return {"mean_squared_error": float(np.mean((outputs[:, 0] - labels) ** 2))}
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    classes = labels.astype(np.int64)
    return {
        "accuracy": float(np.mean(outputs.argmax(axis=1) == classes)),
        "cross_entropy": float(-np.mean(log_probabilities[np.arange(len(classes)), classes])) + 0.0,  # no "-0"
    }


def _quality_lines(channel: str, metrics: dict[str, float], epoch: int | None) -> None:
    at = "" if epoch is None else f"epoch={epoch}, "
    for name, value in metrics.items():
        tag = "score" if name == "accuracy" else "loss"
        log(f"#quality_metric: host={CURRENT_HOST}, {at}{channel} {name} <{tag}>={value:.6g}")


def _load_pretrained(network: Object2VecNetwork, layout: JobLayout, hp: dict) -> None:
    for side in (0, 1):
        name = hp[f"enc{side}_pretrained_embedding_file"]
        if not name:
            continue
        try:
            files = {
                key: confined(
                    layout.channel_dir("auxiliary"), hp[f"enc{side}_{key}"], f"Hyperparameter enc{side}_{key}"
                )
                for key in ("pretrained_embedding_file", "vocab_file")
                if hp[f"enc{side}_{key}"]
            }
        except JobInputError as error:
            raise ClientError(str(error)) from None
        for key, path in files.items():
            if not path.is_file():
                raise ClientError(f"enc{side}_{key} '{path.name}' was not found in the auxiliary channel")
        weight = network.encoder(side).embedding.weight
        try:
            vectors, ids = read_pretrained_embeddings(
                files["pretrained_embedding_file"],
                files.get("vocab_file"),
                hp[f"enc{side}_vocab_size"],
                hp[f"enc{side}_token_embedding_dim"],
            )
        except RecordError as error:
            raise ClientError(str(error)) from None
        table = weight.data().asnumpy()
        table[ids] = vectors
        weight.set_data(mx.nd.array(table))
        frozen = hp[f"enc{side}_freeze_pretrained_embedding"]
        if frozen:
            weight.grad_req = "null"
        log(f"Loaded {len(ids)} pretrained vectors for enc{side} from {name}{' (frozen)' if frozen else ''}")


def make_trainer(network: Object2VecNetwork, hp: dict) -> gluon.Trainer:
    """The Gluon trainer for the hyperparameters' optimizer, learning rate and weight decay."""
    parameters = network.collect_params()
    if hp["token_embedding_storage_type"] == "row_sparse" and hp["optimizer"] == "adagrad" and hp["weight_decay"]:
        log("row_sparse embeddings with adagrad get no weight decay (MXNet's sparse AdaGrad has none)")
        for parameter in network.collect_params(".*embedding.*").values():
            parameter.wd_mult = 0.0
    options = {"learning_rate": hp["learning_rate"], "wd": hp["weight_decay"]}
    return gluon.Trainer(parameters, hp["optimizer"], options, kvstore=None)


@dataclass
class EarlyStopping:
    """Tracks the watched loss: the best epoch, and epochs since the last improvement larger than ``tolerance``."""

    patience: int
    tolerance: float
    best_loss: float = np.inf
    best_epoch: int = -1
    waited: int = 0

    def update(self, epoch: int, loss: float) -> bool:
        """Record an epoch's loss; True when it is the best so far (the model to keep)."""
        self.waited = 0 if loss < self.best_loss - self.tolerance else self.waited + 1
        if not loss < self.best_loss:
            return False
        self.best_loss, self.best_epoch = loss, epoch
        return True

    @property
    def should_stop(self) -> bool:
        return self.waited >= self.patience


def dropout_mask_arrays(rng: np.random.Generator, rows: int, widths: list[int], rate: float) -> list[np.ndarray]:
    """One batch's inverted-dropout masks, ``rows`` × each width: 0 with probability ``rate``, else 1 / (1 - rate).

    Drawn as 16-bit integers from the generator's raw output (a 0.5 ms draw for Lab 2's three masks of a batch of
    512, against MXNet's 5 ms), so ``rate`` counts in steps of 1/65,536.
    """
    total = rows * sum(widths)
    draws = rng.bit_generator.random_raw(-(-total // 4)).view(np.uint16)[:total]
    scale = 0.0 if rate >= 1 else 1.0 / (1.0 - rate)
    kept = (draws >= round(rate * 65536)).astype(np.float32) * np.float32(scale)
    edges = np.cumsum([0, *widths]) * rows
    return [kept[a:b].reshape((rows, -1)) for a, b in zip(edges[:-1], edges[1:])]


def dropout_masks(rng: np.random.Generator, rows: int, widths: list[int], rate: float) -> list[mx.nd.NDArray]:
    """:func:`dropout_mask_arrays` as MXNet arrays (one copy in)."""
    return [mx.nd.array(mask) for mask in dropout_mask_arrays(rng, rows, widths, rate)]


def _rows(array: mx.nd.NDArray, start: int, stop: int, width: int) -> mx.nd.NDArray:
    # Slicing rows only is a view; cutting columns too copies, so it is done only when the batch is narrower.
    return array[start:stop] if width == array.shape[1] else array[start:stop, :width]


def train_epoch(graph: TrainingGraph, trainer, data: Pairs, hp: dict, rng) -> tuple[dict[str, float], float]:
    """One pass over the epoch's pairs (with sampled negatives); returns the running metrics and records/second."""
    started = time.perf_counter()
    softmax = hp["output_layer"] == "softmax"
    widths = graph.network.mask_widths()
    first, second, labels = epoch_pairs(data, hp["negative_sampling_rate"], rng)
    side0, side1 = data.sides[0].take(first), data.sides[1].take(second)
    order, batches = plan_batches(side0.lengths, side1.lengths, hp["mini_batch_size"], hp["bucket_width"], rng)
    tokens0, lengths0, tokens1, lengths1, labels = _arrays(side0.take(order), side1.take(order), labels[order])
    total_loss, correct = mx.nd.zeros(1), mx.nd.zeros(1)
    for start, stop, width0, width1 in batches:
        masks = dropout_masks(rng, stop - start, widths, hp["dropout"]) if widths else []
        batch_labels = labels[start:stop]
        with autograd.record():
            loss, outputs = graph(
                _rows(tokens0, start, stop, width0),
                lengths0[start:stop],
                _rows(tokens1, start, stop, width1),
                lengths1[start:stop],
                batch_labels,
                *masks,
            )
        loss.backward()
        trainer.step(stop - start)
        total_loss += loss.sum()
        if softmax:
            correct += (outputs.argmax(axis=1) == batch_labels).sum()
    mean_loss = total_loss.asscalar() / first.size  # waits for the last batch
    throughput = first.size / (time.perf_counter() - started)
    if softmax:
        return {"accuracy": correct.asscalar() / first.size, "cross_entropy": mean_loss}, throughput
    return {"mean_squared_error": mean_loss}, throughput


def train_epoch_lookup(trainer: LookupTrainer, data: Pairs, hp: dict, rng) -> tuple[dict[str, float], float]:
    """:func:`train_epoch` for one-token sides, each step in numpy (:mod:`object2vec_numpy`), same batches.

    From ``HOGWILD_MIN_PAIRS`` pairs on, two threads each take every other batch and update the shared
    parameters without locks (Hogwild), each matrix product on one core: both cores work, one update is still one
    mini-batch, and runs are no longer reproducible to the bit. Smaller epochs run in one thread, seeded.
    """
    started = time.perf_counter()
    softmax = hp["output_layer"] == "softmax"
    widths = trainer.network.mask_widths()
    first, second, labels = epoch_pairs(data, hp["negative_sampling_rate"], rng)
    users, items = (data.sides[side].tokens[index, 0].astype(np.int64) for side, index in ((0, first), (1, second)))
    ones = np.ones(first.size, dtype=np.float32)
    order, batches = plan_batches(ones, ones, hp["mini_batch_size"], hp["bucket_width"], rng)
    users, items, labels = users[order], items[order], labels[order]
    lanes = HOGWILD_THREADS if first.size >= HOGWILD_MIN_PAIRS else 1
    generators = rng.spawn(lanes) if lanes > 1 else [rng]

    def lane(number: int) -> tuple[float, int]:
        slots, generator = trainer.slots(), generators[number]
        total_loss, correct = 0.0, 0
        for start, stop, _, _ in batches[number::lanes]:
            masks = dropout_mask_arrays(generator, stop - start, widths, hp["dropout"]) if widths else []
            losses, outputs = trainer.step(users[start:stop], items[start:stop], labels[start:stop], masks, slots)
            total_loss += float(losses.sum())
            if softmax:
                correct += int((outputs.argmax(axis=1) == labels[start:stop]).sum())
        return total_loss, correct

    if lanes == 1:
        results = [lane(0)]
    else:
        with threadpool_limits(1), ThreadPoolExecutor(lanes, "object2vec-hogwild") as pool:
            results = list(pool.map(lane, range(lanes)))
    total_loss, correct = (sum(values) for values in zip(*results))
    throughput = first.size / (time.perf_counter() - started)
    if softmax:
        return {"accuracy": correct / first.size, "cross_entropy": total_loss / first.size}, throughput
    return {"mean_squared_error": total_loss / first.size}, throughput


def run_training(layout: JobLayout, hp: dict) -> None:
    """Train with resolved hyperparameters (``object2vec.resolve_hyperparameters``) and save the best epoch."""
    log(f"Final configuration: {json.dumps(hp, sort_keys=True)}")
    for name in ("_kvstore", "_num_gpus", "_num_kv_servers"):
        log(f"{name}={hp[name]} has no effect in the emulator (one CPU host)")
    if hp["bucket_width"]:
        log(f"Bucketing: batches group pairs whose longer side falls in the same {hp['bucket_width']}-token bucket")
    channels = {name: read_channel(layout, name, hp) for name in ("train", "validation", "test")}
    train_data, validation, test = channels["train"], channels["validation"], channels["test"]
    if hp["negative_sampling_rate"] and len(train_data) < 2:
        raise ClientError("negative_sampling_rate needs at least 2 training records to draw negatives from")
    log(
        f"Training on {len(train_data)} records"
        + "".join(f", {name} on {len(channels[name])}" for name in ("validation", "test") if channels[name] is not None)
    )

    mx.random.seed(SEED)
    rng = np.random.default_rng(SEED)
    softmax = hp["output_layer"] == "softmax"
    network = build_network(hp)
    if not softmax:  # start from the mean rating rather than 0
        network.output.bias.set_data(mx.nd.array([float(train_data.labels.mean())]))
    _load_pretrained(network, layout, hp)
    if LookupTrainer.fits(hp):
        log("One-token sides with row_sparse Adam: each training step runs in numpy, without Gluon")
        lookup = LookupTrainer(network, hp)

        def run_epoch() -> tuple[dict[str, float], float]:
            metrics = train_epoch_lookup(lookup, train_data, hp, rng)
            lookup.write_back()
            return metrics
    else:
        graph = TrainingGraph(network, softmax, bfloat16=native_bfloat16())
        graph.hybridize(static_alloc=True)
        trainer = make_trainer(network, hp)

        def run_epoch() -> tuple[dict[str, float], float]:
            return train_epoch(graph, trainer, train_data, hp, rng)

    stop_metric = "cross_entropy" if softmax else "mean_squared_error"
    watched = "validation" if validation is not None else "train"
    stopping = EarlyStopping(hp["early_stopping_patience"], hp["early_stopping_tolerance"])
    kept: dict[str, float] = {}  # the metrics of the epoch whose model is saved
    for epoch in range(hp["epochs"]):
        metrics, throughput = run_epoch()
        _quality_lines("train", metrics, epoch)
        log(f"#progress_metric: host={CURRENT_HOST}, completed {100.0 * (epoch + 1) / hp['epochs']:.1f} % of epochs")
        log(f"#throughput_metric: host={CURRENT_HOST}, train throughput={throughput:.1f} records/second")
        if validation is not None:
            metrics = scores(predict(network, *validation.sides), validation.labels, softmax)
            _quality_lines("validation", metrics, epoch)
        if stopping.update(epoch, metrics[stop_metric]):
            save_model(network, hp, layout.model_dir)
            kept = metrics
        if stopping.should_stop:
            log(
                f"Early stopping: {watched} {stop_metric} did not improve by more than "
                f"{hp['early_stopping_tolerance']} for {stopping.waited} epochs"
            )
            break

    if stopping.best_epoch < 0:
        log(f"{watched} {stop_metric} was never a finite number: keeping the last epoch", level="WARNING")
        save_model(network, hp, layout.model_dir)
    else:
        log(f"Best model from epoch {stopping.best_epoch} ({watched} {stop_metric}={stopping.best_loss:.6g}), saved")
        if validation is not None:  # the last value of each metric is what the job reports: make it the kept model's
            _quality_lines("validation", kept, stopping.best_epoch)
    if test is not None:
        best, _ = load_model(layout.model_dir)
        _quality_lines("test", scores(predict(best, *test.sides), test.labels, softmax), None)
