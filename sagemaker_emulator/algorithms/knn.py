"""SageMaker's built-in k-nearest-neighbours (image ``knn``), trained and served locally.

Training (reference/sagemaker-fm-knn-contract.md §6): sample ``sample_size`` labelled points from the
``train`` channel (a seeded reservoir: each record gets a uniform random key and the smallest keys are
kept, chunk by chunk), optionally reduce their dimension, and store them as the index; an optional
``test`` channel is scored into the log (``accuracy`` for classifiers, ``mse`` for regressors).

The search is exact, in numpy, in blocks of queries. The real container builds a FAISS index; here
every ``index_type`` (``faiss.Flat``, ``faiss.IVFFlat``, ``faiss.IVFPQ``) is accepted and validated as AWS
does, and answered by exact search, so IVF/PQ results equal ``faiss.Flat``'s instead of approximating them
(the job log says so). ``faiss_index_ivf_nlists``, ``faiss_index_pq_m`` and ``_faiss_index_nprobe`` have no
effect.

Distances follow FAISS, which the real container uses (faiss ``IndexFlat::search``: a max-heap of squared
L2 distances for ``METRIC_L2``, a min-heap of inner products for ``METRIC_INNER_PRODUCT``; faiss wiki
"MetricType and distances"):
- ``L2``: squared Euclidean distances, smallest first;
- ``INNER_PRODUCT``: inner products (similarities), largest first — the contract's open question §10.5,
  resolved this way because the FM→k-NN recommendation recipe ranks items by ⟨user, item⟩;
- ``COSINE``: index and queries are L2-normalised (``"normalize": true`` in the metadata) and searched by
  inner product, so distances are cosine similarities, largest first.

Other choices where the contract is silent (§10.6):
- the classifier predicts the most frequent label among the k neighbours; a tie goes to the tied label
  whose first occurrence is nearest (ties in distance are ordered by position in the index);
- the regressor predicts the mean of the neighbours' labels;
- ``sample_size`` above the number of records keeps every record; ``k`` above the index size returns every
  indexed point (fewer than k neighbours), with a warning in the training log;
- training CSV (``text/csv``) defaults to ``label_size=1`` (first column the label) and accepts only 1;
- dimension reduction: ``sign`` multiplies by a random ±1/√target matrix; ``fjlt`` is a subsampled
  randomized Hadamard transform (random signs, normalised Walsh-Hadamard transform over the input padded
  to a power of two, ``target`` coordinates sampled and rescaled), both seeded by the metadata's ``seed``.

Artifact: ``model_algo-1`` (our own index: an ``.npz`` of the stored vectors and the metric under that
name), ``model_algo-1.labels`` (the labels as raw float32) and ``model_algo-1.json`` (the documented
metadata; editing ``k`` or ``predictor_type`` there changes inference, as on AWS).

Several hosts (contract §6.3: "sample_size points in total, split evenly across hosts"): each host samples its
share of ``sample_size`` from its own data (its ``ShardedByS3Key`` shard), the samples are gathered through the
job's kvstore (``distributed.py``) in host order, and every host builds the same index from all of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recordio_protobuf import NUMERIC_TENSORS, read_matrix
from sagemaker_emulator.algorithms import distributed, payloads
from sagemaker_emulator.algorithms.base import (
    AlgorithmError,
    Categorical,
    Channel,
    ClientError,
    Integer,
    Text,
    log,
)
from sagemaker_emulator.algorithms.layout import JobLayout
from sagemaker_emulator.algorithms.media import parse_media_type

CLASSIFIER = "classifier"
REGRESSOR = "regressor"
L2, INNER_PRODUCT, COSINE = "L2", "INNER_PRODUCT", "COSINE"
INDEX_TYPES = ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")
PQ_M = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
MODEL_FILE = "model_algo-1"
SEED = 0
SEARCH_BLOCK_FLOATS = 1 << 24  # query rows per block × index rows: bounds a block's score matrix to 64 MiB
VOTE_BLOCK_BOOLS = 1 << 24

MULTI_INSTANCE = True  # samples on every host, index from all samples (distributed.py)

HYPERPARAMETERS = {
    "feature_dim": Integer(required=True, low=1),
    "k": Integer(required=True, low=1),
    "predictor_type": Categorical(required=True, options=(CLASSIFIER, REGRESSOR)),
    "sample_size": Integer(required=True, low=1),
    "dimension_reduction_type": Categorical(options=("sign", "fjlt")),
    "dimension_reduction_target": Integer(low=1),
    "index_type": Categorical(options=INDEX_TYPES, default="faiss.Flat"),
    "index_metric": Categorical(options=(L2, INNER_PRODUCT, COSINE), default=L2),
    "faiss_index_ivf_nlists": Integer(low=1, allow_auto=True, default="auto"),
    "faiss_index_pq_m": Categorical(options=tuple(str(m) for m in PQ_M)),
    "mini_batch_size": Integer(low=1, default=5000),
    "epochs": Integer(low=1, default=1),
    "_faiss_index_nprobe": Integer(low=1, default=5),
    "_kvstore": Text(default="dist_async"),
    "_num_gpus": Text(default="auto"),
    "_num_kv_servers": Text(default="1"),
}

CHANNELS = {
    "train": Channel(required=True, content_types=(payloads.RECORDIO, payloads.CSV)),
    "test": Channel(required=False, content_types=(payloads.RECORDIO, payloads.CSV)),
}

METRIC_DEFINITIONS = [
    {"Name": "test:accuracy", "Regex": r"#quality_metric: host=\S+, test accuracy <score>=(\S+)"},
    {"Name": "test:mse", "Regex": r"#quality_metric: host=\S+, test mse <loss>=(\S+)"},
    {"Name": "train:progress", "Regex": r"#progress_metric: host=\S+, completed (\S+) %"},
    {"Name": "train:throughput", "Regex": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second"},
]

REQUEST_TYPES = (payloads.CSV, payloads.JSON, payloads.JSONLINES, payloads.RECORDIO)
RESPONSE_TYPES = (payloads.JSON, payloads.JSONLINES, payloads.RECORDIO)


# --------------------------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class Reduction:
    """A seeded random projection from ``input_dim`` to ``target_dim`` (``sign`` or ``fjlt``)."""

    type: str
    seed: int
    target_dim: int
    input_dim: int

    def apply(self, features: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if self.type == "sign":
            signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(self.input_dim, self.target_dim))
            return features @ (signs / np.float32(np.sqrt(self.target_dim)))
        padded = 1 << max(self.input_dim - 1, 0).bit_length()
        flips = rng.choice(np.array([-1.0, 1.0], np.float32), size=self.input_dim)
        kept = np.sort(rng.choice(padded, size=self.target_dim, replace=False))
        rotated = np.zeros((features.shape[0], padded), np.float32)
        rotated[:, : self.input_dim] = features * flips
        rotated = _walsh_hadamard(rotated) / np.float32(np.sqrt(padded))
        return rotated[:, kept] * np.float32(np.sqrt(padded / self.target_dim))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "seed": self.seed, "target_dim": self.target_dim, "input_dim": self.input_dim}


def _walsh_hadamard(matrix: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform of every row (width a power of two), log2(width) passes."""
    rows, width = matrix.shape
    half = 1
    while half < width:
        pairs = matrix.reshape(rows, width // (2 * half), 2, half)
        matrix = np.stack((pairs[:, :, 0] + pairs[:, :, 1], pairs[:, :, 0] - pairs[:, :, 1]), axis=2)
        half *= 2
    return matrix.reshape(rows, width)


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.finfo(np.float32).tiny)


@dataclass
class Index:
    """Stored vectors and labels, and how queries are compared with them."""

    vectors: np.ndarray
    labels: np.ndarray
    metric: str
    normalize: bool
    reduction: Reduction | None

    def prepare(self, queries: np.ndarray) -> np.ndarray:
        """Queries in the index's space: reduced, then normalised for COSINE."""
        queries = np.asarray(queries, dtype=np.float32)
        if self.reduction is not None:
            queries = self.reduction.apply(queries)
        return _normalised(queries) if self.normalize else queries

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, positions) of the k best matches per prepared query, best first (see module docstring)."""
        k = min(k, len(self.vectors))
        distances = np.empty((len(queries), k), np.float32)
        positions = np.empty((len(queries), k), np.int64)
        block = max(1, SEARCH_BLOCK_FLOATS // max(len(self.vectors), 1))
        squared_norms = np.einsum("ij,ij->i", self.vectors, self.vectors) if self.metric == L2 else None
        for start in range(0, len(queries), block):
            chunk = queries[start : start + block]
            products = chunk @ self.vectors.T
            if squared_norms is None:
                key, value = -products, products  # similarities: the largest ranks first
            else:
                value = np.maximum(np.einsum("ij,ij->i", chunk, chunk)[:, None] - 2 * products + squared_norms, 0)
                key = value
            if k < key.shape[1]:
                best = np.argpartition(key, k - 1, axis=1)[:, :k]
            else:
                best = np.tile(np.arange(k), (len(chunk), 1))
            order = np.lexsort((best, np.take_along_axis(key, best, axis=1)), axis=1)
            best = np.take_along_axis(best, order, axis=1)
            positions[start : start + len(chunk)] = best
            distances[start : start + len(chunk)] = np.take_along_axis(value, best, axis=1)
        return distances, positions


def predict_labels(neighbour_labels: np.ndarray, predictor_type: str) -> np.ndarray:
    """The prediction per row from its neighbours' labels, nearest first (vote or mean; see module docstring)."""
    if predictor_type == REGRESSOR:
        return neighbour_labels.mean(axis=1, dtype=np.float64).astype(np.float32)
    rows, k = neighbour_labels.shape
    predicted = np.empty(rows, np.float32)
    block = max(1, VOTE_BLOCK_BOOLS // (k * k))
    for start in range(0, rows, block):
        labels = neighbour_labels[start : start + block]
        counts = (labels[:, :, None] == labels[:, None, :]).sum(axis=2)
        first_best = np.argmax(counts, axis=1)  # the nearest position holding a most frequent label
        predicted[start : start + len(labels)] = labels[np.arange(len(labels)), first_best]
    return predicted


# --------------------------------------------------------------------------------------------- training


def train(layout: JobLayout, hyperparameters: dict[str, Any]) -> None:
    """Sample the ``train`` channel into an index, score the optional ``test`` channel, write the artifact.

    Args:
        layout: the job's ``/opt/ml`` tree.
        hyperparameters: the output of ``parse_hyperparameters(HYPERPARAMETERS, raw)``.

    Raises:
        ClientError: inconsistent hyperparameters or unreadable, unlabelled or wrongly shaped data.
    """
    config = dict(hyperparameters)
    log(
        f"Reading default configuration from {__name__}.HYPERPARAMETERS: "
        f"{ {name: spec.default for name, spec in HYPERPARAMETERS.items() if spec.default is not None} }"
    )
    log(
        f"Merging with provided configuration from {layout.config_dir / 'hyperparameters.json'}: "
        f"{layout.hyperparameters()}"
    )
    log(f"Final configuration: {config}")
    reduction = _check_configuration(config)
    started = time.perf_counter()
    host, hosts = layout.current_host(), layout.hosts()
    share = _share(config["sample_size"], hosts.index(host), len(hosts))
    sample, sample_labels, seen = _reservoir_sample(layout, config, share)
    log(
        f"Got reservoir sample from {host}: data={sample.shape}, labels={sample_labels.shape}, "
        f"NaNs={int(np.isnan(sample).sum())}"
    )
    if np.isnan(sample).any():
        raise ClientError("Channel 'train' has NaN feature values")
    cluster = distributed.join(layout)
    if cluster is not None:
        sample, sample_labels = _gather(cluster, sample, sample_labels, hosts.index(host))
        log(f"Gathered the samples of {len(hosts)} hosts: data={sample.shape}")
    if config["k"] > len(sample):
        log(f"k={config['k']} exceeds the {len(sample)} indexed points: queries return all of them", "WARNING")
    if config["index_type"] != "faiss.Flat":
        log(f"{config['index_type']} is answered by exact search in the emulator: results equal faiss.Flat's")
    log("Training index...")
    normalize = config["index_metric"] == COSINE
    vectors = sample if reduction is None else reduction.apply(sample)
    index = Index(
        vectors=_normalised(vectors) if normalize else vectors,
        labels=sample_labels,
        metric=L2 if config["index_metric"] == L2 else INNER_PRODUCT,
        normalize=normalize,
        reduction=reduction,
    )
    log("Adding data to index...")
    elapsed = max(time.perf_counter() - started, 1e-9)
    log(f"#progress_metric: host={host}, completed 100.0 % of epochs")
    log(f"#throughput_metric: host={host}, train throughput={seen / elapsed} records/second")
    if "test" in layout.input_data_config():
        _log_test_score(layout, config, index, host)
    _save(layout.model_dir, index, config)
    if cluster is not None:
        cluster.close()


def _share(sample_size: int, position: int, hosts: int) -> int:
    """The sample size of the host at ``position``: ``sample_size`` split evenly, the first hosts take the rest."""
    return sample_size // hosts + (position < sample_size % hosts)


def _gather(
    cluster: distributed.Cluster, sample: np.ndarray, labels: np.ndarray, position: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every host's sample and labels, in host order (workers' ranks follow their connection order instead)."""
    rows = np.column_stack([np.full(len(sample), position, np.float32), labels, sample]).astype(np.float32)
    stacked = cluster.gather(rows)
    stacked = stacked[np.argsort(stacked[:, 0], kind="stable")]
    return np.ascontiguousarray(stacked[:, 2:]), np.ascontiguousarray(stacked[:, 1])


def _check_configuration(config: dict[str, Any]) -> Reduction | None:
    """Cross-parameter rules the schema cannot express; returns the dimension reduction, if any."""
    kind, target, dim = config["dimension_reduction_type"], config["dimension_reduction_target"], config["feature_dim"]
    if kind is not None and target is None:
        raise ClientError('"dimension_reduction_target" is required when "dimension_reduction_type" is set')
    if kind is None and target is not None:
        raise ClientError('"dimension_reduction_target" is used only with "dimension_reduction_type" (sign or fjlt)')
    if target is not None and target >= dim:
        raise ClientError(f'"dimension_reduction_target" ({target}) must be smaller than "feature_dim" ({dim})')
    if config["index_type"] == "faiss.IVFPQ" and config["index_metric"] != L2:
        raise ClientError(f"faiss.IVFPQ supports only index_metric L2, got {config['index_metric']}")
    return None if kind is None else Reduction(type=kind, seed=SEED, target_dim=target, input_dim=dim)


def _read_chunks(layout: JobLayout, channel: str, config: dict[str, Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(dense float32 features, labels) chunks of at most mini_batch_size rows, from every file of a channel."""
    content_type = layout.input_data_config()[channel].get("ContentType") or payloads.RECORDIO
    mime, params = parse_media_type(content_type)
    if mime not in (payloads.RECORDIO, payloads.CSV):
        raise ClientError(
            f"Channel '{channel}' has content type '{content_type}': knn reads {payloads.RECORDIO} or {payloads.CSV}"
        )
    if mime == payloads.CSV and params.get("label_size", "1") != "1":
        raise ClientError(f"Channel '{channel}': text/csv training data needs label_size=1, got '{content_type}'")
    files = layout.channel_files(channel)
    if not files:
        raise ClientError(f"Channel '{channel}' has no data files")
    dim, rows = config["feature_dim"], config["mini_batch_size"]
    for path in files:
        where = f"Channel '{channel}', file '{path.relative_to(layout.channel_dir(channel))}'"
        if mime == payloads.CSV:
            yield from _csv_chunks(path, where, dim, rows)
            continue
        try:
            with path.open("rb") as stream:
                matrix, labels = read_matrix(stream, feature_dim=dim, tensor_types=NUMERIC_TENSORS)
        except ValueError as error:
            raise ClientError(f"{where}: {error}") from None
        if matrix.shape[0] and labels is None:
            raise ClientError(f"{where}: records have no label; k-NN trains on labelled records")
        for start in range(0, matrix.shape[0], rows):
            yield matrix[start : start + rows].toarray(), labels[start : start + rows]


def _csv_chunks(path: Path, where: str, dim: int, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    try:
        for frame in pd.read_csv(path, header=None, dtype=np.float32, chunksize=rows):
            if frame.shape[1] != dim + 1:
                raise ClientError(
                    f"{where}: rows have {frame.shape[1]} columns; expected the label plus feature_dim={dim} features"
                )
            values = frame.to_numpy(np.float32)
            yield values[:, 1:], values[:, 0]
    except pd.errors.EmptyDataError:
        return
    except ValueError as error:
        raise ClientError(f"{where}: CSV rows must hold numbers only ({error})") from None


def _reservoir_sample(layout: JobLayout, config: dict[str, Any], size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A uniform sample of ``size`` records in one pass: keep the records with the smallest random keys.

    Chunks are buffered and the buffer is cut back to ``sample_size`` whenever it holds twice that, so each
    record is copied a bounded number of times whatever the channel's size.
    """
    rng = np.random.default_rng(SEED)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    buffered = seen = 0

    def cut() -> list:
        keys, positions, features, labels = (np.concatenate(column) for column in zip(*parts))
        kept = np.argpartition(keys, size - 1)[:size] if len(keys) > size else slice(None)
        return [(keys[kept], positions[kept], features[kept], labels[kept])]

    for chunk, chunk_labels in _read_chunks(layout, "train", config):
        parts.append((rng.random(len(chunk)), np.arange(seen, seen + len(chunk)), chunk, chunk_labels))
        seen += len(chunk)
        buffered += len(chunk)
        if buffered >= 2 * size:
            parts = cut()
            buffered = len(parts[0][0])
    if seen == 0:
        raise ClientError("Channel 'train' holds no records")
    _, positions, features, labels = cut()[0]
    if not np.isfinite(labels).all():
        raise ClientError("Channel 'train' has NaN or infinite labels")
    order = np.argsort(positions)  # index in the order the records were read
    return features[order], labels[order], seen


def _log_test_score(layout: JobLayout, config: dict[str, Any], index: Index, host: str) -> None:
    predicted, truth = [], []
    for chunk, labels in _read_chunks(layout, "test", config):
        _, positions = index.search(index.prepare(chunk), config["k"])
        predicted.append(predict_labels(index.labels[positions], config["predictor_type"]))
        truth.append(labels)
    if not truth:
        raise ClientError("Channel 'test' holds no records")
    predicted, truth = np.concatenate(predicted), np.concatenate(truth)
    if config["predictor_type"] == CLASSIFIER:
        name, kind, value = "accuracy", "score", float(np.mean(predicted == truth))
    else:
        name, kind, value = "mse", "loss", float(np.mean((predicted.astype(np.float64) - truth) ** 2))
    log(f"#test_score ({host}) : ('{name}', {value})")
    log(f"#quality_metric: host={host}, test {name} <{kind}>={value}")


def _save(model_dir: Path, index: Index, config: dict[str, Any]) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / MODEL_FILE).open("wb") as stream:
        np.savez(
            stream, vectors=index.vectors, metric=np.array(index.metric), index_type=np.array(config["index_type"])
        )
    index.labels.astype("<f4").tofile(model_dir / f"{MODEL_FILE}.labels")
    metadata = {"k": config["k"], "predictor_type": config["predictor_type"]}
    if index.reduction is not None:
        metadata["dimension_reduction"] = index.reduction.to_json()
    metadata.update({"normalize": index.normalize, "version": "1.0"})
    (model_dir / f"{MODEL_FILE}.json").write_text(json.dumps(metadata))
    log(f"Saved index of {len(index.vectors)} points to {model_dir / MODEL_FILE}")


# --------------------------------------------------------------------------------------------- serving


def load(model_dir: Path) -> Predictor:
    """Read the three artifact files and return the predictor that answers invocations.

    Raises:
        AlgorithmError: a file is missing or unreadable.
    """
    model_dir = Path(model_dir)
    try:
        metadata = json.loads((model_dir / f"{MODEL_FILE}.json").read_text())
        with np.load(model_dir / MODEL_FILE) as stored:
            vectors, metric = stored["vectors"], str(stored["metric"])
        labels = np.fromfile(model_dir / f"{MODEL_FILE}.labels", dtype="<f4")
        reduction = metadata.get("dimension_reduction")
        index = Index(
            vectors=vectors.astype(np.float32),
            labels=labels.astype(np.float32),
            metric=metric,
            normalize=bool(metadata.get("normalize", False)),
            reduction=Reduction(**reduction) if reduction else None,
        )
        k, predictor_type = int(metadata["k"]), metadata["predictor_type"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AlgorithmError(f"Cannot load the knn model in {model_dir}: {error}") from None
    if len(labels) != len(vectors):
        raise AlgorithmError(f"knn model in {model_dir}: {len(vectors)} vectors but {len(labels)} labels")
    return Predictor(index, k, predictor_type)


class Predictor:
    """Answers one invocation: parse the queries, search, vote or average, encode as ``Accept`` asks."""

    def __init__(self, index: Index, k: int, predictor_type: str):
        self.index, self.k, self.predictor_type = index, k, predictor_type
        self.input_dim = index.reduction.input_dim if index.reduction else index.vectors.shape[1]

    def __call__(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        mime, params = payloads.negotiate_accept(accept, RESPONSE_TYPES)
        queries = payloads.read_features(
            body, content_type, self.input_dim, REQUEST_TYPES, tensor_types=NUMERIC_TENSORS
        ).toarray()
        distances, positions = self.index.search(self.index.prepare(queries), self.k)
        labels = self.index.labels[positions]
        columns = {"predicted_label": predict_labels(labels, self.predictor_type)}
        if payloads.is_verbose(params):
            columns.update(distances=distances, labels=labels)
        return payloads.write_predictions(columns, mime)
