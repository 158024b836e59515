"""SageMaker's built-in Factorization Machines (image ``factorization-machines``), trained and served locally.

Model (reference/sagemaker-fm-knn-contract.md §4): ŷ = w0 + x·w + ½ Σ_f [(x·V_f)² − (x²)·(V_f²)]. The
``regressor`` outputs ŷ and is trained on squared loss; the ``binary_classifier`` outputs σ(ŷ) and is
trained on log loss. Training is mini-batch Adam, the container's default ``_optimizer``, with its own
learning rate, weight decay and initialiser per parameter group (bias w0, linear w, factors V). MXNet's
semantics apply throughout: ``rescale_grad`` defaults to 1/mini_batch_size (what ``Module.init_optimizer``
sets), a negative ``clip_gradient`` disables clipping (as in MXNet's update operators), weight decay is
added to the rescaled, clipped gradient, and updates are lazy: a batch updates and decays only the rows of
w and V its features touch, as MXNet's row-sparse ``adam_update`` does.

Choices where the contract is silent:
- rows are shuffled every epoch with a fixed seed, so runs are reproducible and ratings sorted by user
  still train well; from ``TWO_THREADS_MIN_ROWS`` records on, the two halves of each epoch train at once in two
  threads sharing the parameters without locks (asynchronous SGD, as MXNet's ``dist_async`` store is across
  hosts), so large runs use both cores and are no longer reproducible to the bit; from ``COMPILED_MIN_ROWS``
  records on, each chunk of batches runs in a numba kernel (``fm_compiled``: the same updates, rounded alike, without the GIL), imported
  only then so that small jobs start without numba; runs both compiled and two-threaded shuffle with
  ``fm_compiled.shuffle`` (as random, 3-4 times cheaper, but another permutation for the same seed);
- ``_learning_rate`` and ``_wd`` (container defaults 1.0) multiply every group's rate and decay, the way an
  MXNet optimizer's global rate scales per-parameter multipliers; ``_optimizer`` also takes ``sgd``;
- the other underscore knobs (``_kvstore``, ``_num_gpus``, ...) are accepted and have no effect on one host;
- ``eps`` and ``rescale_grad`` must be > 0: any other value would make the updates diverge;
- the classifier's label threshold is ``score >= 0.5``; its F1 is 0.0 when there are no positives at all;
- the artifact's ``symbol.json`` is a working MXNet graph of the model above (inputs ``data``,
  ``out_label``; parameters ``w0_weight`` (1,), ``w1_weight`` (feature_dim, 1), ``v`` (feature_dim,
  num_factors)); its output operator (``LogisticRegressionOutput`` / ``LinearRegressionOutput``) tells
  :func:`load` the predictor type. ``meta.json`` records the final configuration. The artifact is written
  and read without importing MXNet (``fm_artifact``: 3 CPU-seconds saved per job and per endpoint).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from recordio_protobuf import read_matrix
from sagemaker_emulator.algorithms import distributed, fm_artifact, payloads
from sagemaker_emulator.algorithms.base import (
    AlgorithmError,
    Boolean,
    Categorical,
    Channel,
    ClientError,
    Float,
    Integer,
    Text,
    log,
)
from sagemaker_emulator.algorithms.layout import CURRENT_HOST, JobLayout
from sagemaker_emulator.algorithms.media import parse_media_type

CLASSIFIER = "binary_classifier"
REGRESSOR = "regressor"
GROUPS = ("bias", "linear", "factors")
INIT_METHODS = ("normal", "uniform", "constant")
MODEL_FILE = "model_algo-1"
SEED = 0
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
# An init method's amount when the job leaves it unset: mx.init.Uniform's default scale, and zero for a constant
# (mx.init.Constant has no default; zero is also what use_bias=false and use_linear=false give).
UNSET_INIT_AMOUNTS = {"scale": 0.07, "value": 0.0}
PREDICT_CHUNK = 65536
SMALL_REQUEST_VALUES = 4096  # non-zeros up to which a request is scored without scipy
TWO_THREADS_MIN_ROWS = 1_000_000  # records from which an epoch's two halves train at once (_train_halves)
# Records from which batches run compiled (fm_compiled): importing numba and loading or compiling its kernel
# costs 1-10 CPU-seconds, what the numpy path spends on about a million records.
MULTI_INSTANCE = True  # trains data-parallel across a job's hosts (distributed.py)
COMPILED_MIN_ROWS = 1_000_000
ROWS_PER_CHUNK = 1 << 18  # rows copied in shuffled order at a time, a few MB whatever the data's size


def _group_specs(group: str, lr: float, wd: float, sigma: float) -> dict[str, Any]:
    return {
        f"{group}_lr": Float(low=0.0, default=lr),
        f"{group}_wd": Float(low=0.0, default=wd),
        f"{group}_init_method": Categorical(options=INIT_METHODS, default="normal"),
        f"{group}_init_scale": Float(low=0.0),
        f"{group}_init_sigma": Float(low=0.0, default=sigma),
        f"{group}_init_value": Float(),
    }


HYPERPARAMETERS = {
    "feature_dim": Integer(required=True, low=1),
    "num_factors": Integer(required=True, low=1),
    "predictor_type": Categorical(required=True, options=(CLASSIFIER, REGRESSOR)),
    "epochs": Integer(low=1, default=1),
    "mini_batch_size": Integer(low=1, default=1000),
    **_group_specs("bias", lr=0.1, wd=0.01, sigma=0.01),
    **_group_specs("linear", lr=0.001, wd=0.001, sigma=0.01),
    **_group_specs("factors", lr=0.0001, wd=0.00001, sigma=0.001),
    "clip_gradient": Float(),
    "eps": Float(low=0.0, low_open=True),
    "rescale_grad": Float(low=0.0, low_open=True),
    "use_bias": Boolean(default=True),
    "use_linear": Boolean(default=True),
    "batch_metrics_publish_interval": Integer(low=1, default=500),
    "_optimizer": Categorical(options=("adam", "sgd"), default="adam"),
    "_learning_rate": Float(low=0.0, default=1.0),
    "_wd": Float(low=0.0, default=1.0),
    "_kvstore": Text(default="auto"),
    "_num_gpus": Text(default="auto"),
    "_num_kv_servers": Text(default="auto"),
    "_data_format": Categorical(options=("record",), default="record"),
    "_use_full_symbolic": Boolean(default=True),
    "_tuning_objective_metric": Text(default=""),
    "_log_level": Text(default="info"),
}

CHANNELS = {
    "train": Channel(required=True, content_types=(payloads.RECORDIO,)),
    "test": Channel(required=False, content_types=(payloads.RECORDIO,)),
}

_QUALITY = r"#quality_metric: host=\S+, test {} <{}>=(\S+)"
METRIC_DEFINITIONS = [
    {"Name": "test:rmse", "Regex": _QUALITY.format("rmse", "loss")},
    {
        "Name": "test:binary_classification_accuracy",
        "Regex": _QUALITY.format("binary_classification_accuracy", "score"),
    },
    {
        "Name": "test:binary_classification_cross_entropy",
        "Regex": _QUALITY.format("binary_classification_cross_entropy", "loss"),
    },
    {"Name": "test:binary_f_beta", "Regex": _QUALITY.format("binary_f_1.000", "score")},
    {"Name": "train:progress", "Regex": r"#progress_metric: host=\S+, completed (\S+) %"},
    {"Name": "train:throughput", "Regex": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second"},
]

SERVED_TYPES = (payloads.JSON, payloads.JSONLINES, payloads.RECORDIO)


@dataclass
class FactorizationMachine:
    """The trained parameters: global bias w0 (1,), linear weights w (d,), factors V (d, k), all float32."""

    w0: np.ndarray
    w: np.ndarray
    v: np.ndarray

    @functools.cached_property
    def squared_norms(self) -> np.ndarray:
        """‖V_i‖² per feature: computed once, not per request (a pass over all of V, 42 MB at ml-20m's size)."""
        return np.einsum("ij,ij->i", self.v, self.v)

    def decision(self, features: sp.csr_matrix) -> np.ndarray:
        """ŷ for every row (before the sigmoid for classifiers), in chunks to bound memory."""
        if features.nnz <= SMALL_REQUEST_VALUES:
            return self._small_decision(features)
        out = np.empty(features.shape[0], dtype=np.float32)
        squared_norms = self.squared_norms
        for start in range(0, features.shape[0], PREDICT_CHUNK):
            x = features[start : start + PREDICT_CHUNK]
            xv = x @ self.v
            pairwise = 0.5 * (np.einsum("ij,ij->i", xv, xv) - x.multiply(x) @ squared_norms)
            out[start : start + x.shape[0]] = self.w0[0] + x @ self.w + pairwise
        return out

    def _small_decision(self, features: sp.csr_matrix) -> np.ndarray:
        """:meth:`decision` in plain numpy over the rows of V a request touches: an endpoint's usual request is a
        record or a few, for which scipy's per-operation set-up would cost ten times the arithmetic."""
        columns, values, indptr = features.indices, features.data, features.indptr
        counts = np.diff(indptr)
        xv = np.zeros((features.shape[0], self.v.shape[1]), np.float32)
        linear = np.zeros(features.shape[0], np.float32)
        squares = np.zeros(features.shape[0], np.float32)
        filled = np.flatnonzero(counts)
        if filled.size:
            starts = indptr[filled]
            xv[filled] = np.add.reduceat(values[:, None] * self.v[columns], starts)
            linear[filled] = np.add.reduceat(values * self.w[columns], starts)
            squares[filled] = np.add.reduceat(values * values * self.squared_norms[columns], starts)
        return self.w0[0] + linear + np.float32(0.5) * (np.einsum("ij,ij->i", xv, xv) - squares)


# --------------------------------------------------------------------------------------------- training


def train(layout: JobLayout, hyperparameters: dict[str, Any]) -> None:
    """Train on the ``train`` channel, score the optional ``test`` channel, write ``model_algo-1``.

    Args:
        layout: the job's ``/opt/ml`` tree.
        hyperparameters: the output of ``parse_hyperparameters(HYPERPARAMETERS, raw)``.

    Raises:
        ClientError: inconsistent hyperparameters, or channel data FM cannot train on (non-RecordIO
            content type, float64 tensors, a width other than feature_dim, missing or invalid labels).
    """
    config = dict(hyperparameters)
    _log_configuration(layout, config)
    initializers = {group: _initializer(group, config) for group in GROUPS}
    train_x, train_y = _read_channel(layout, "train", config)
    test = _read_channel(layout, "test", config) if "test" in layout.input_data_config() else None
    cluster = distributed.join(layout)  # multi-instance: None on one host
    model = fit(train_x, train_y, config, initializers, cluster)
    if test is not None:
        _log_test_scores(config["predictor_type"], model.decision(test[0]), test[1], layout.current_host())
    _save_model(layout.model_dir, model, config)
    if cluster is not None:  # multi-instance
        cluster.close()


def _log_configuration(layout: JobLayout, config: dict[str, Any]) -> None:
    defaults = {name: spec.default for name, spec in HYPERPARAMETERS.items() if spec.default is not None}
    log(f"Reading default configuration from {__name__}.HYPERPARAMETERS: {defaults}")
    provided = layout.config_dir / "hyperparameters.json"
    log(f"Merging with provided configuration from {provided}: {layout.hyperparameters()}")
    log(f"Final configuration: {config}")


def _initializer(group: str, config: dict[str, Any]) -> Callable[[tuple[int, ...], np.random.Generator], np.ndarray]:
    """The group's initializer. AWS's page lists ``*_init_scale`` and ``*_init_value`` as optional with no default
    ("None"), so a method without its amount takes the MXNet initializer's own (``UNSET_INIT_AMOUNTS``), as the
    container's initializers do."""
    method = config[f"{group}_init_method"]
    knob = {"normal": "sigma", "uniform": "scale", "constant": "value"}[method]
    amount = config[f"{group}_init_{knob}"]
    if amount is None:
        amount = UNSET_INIT_AMOUNTS[knob]
        log(f"'{group}_init_{knob}' is not set: '{group}_init_method' '{method}' uses {amount}")
    if method == "normal":
        return lambda shape, rng: rng.normal(0.0, amount, shape).astype(np.float32)
    if method == "uniform":
        return lambda shape, rng: rng.uniform(-amount, amount, shape).astype(np.float32)
    return lambda shape, rng: np.full(shape, amount, dtype=np.float32)


def _read_channel(layout: JobLayout, channel: str, config: dict[str, Any]) -> tuple[sp.csr_matrix, np.ndarray]:
    """All files of a channel as one matrix and its labels, or a ClientError naming what is wrong."""
    content_type = layout.input_data_config()[channel].get("ContentType") or payloads.RECORDIO
    if parse_media_type(content_type)[0] != payloads.RECORDIO:
        raise ClientError(
            f"Channel '{channel}' has content type '{content_type}': factorization-machines reads only "
            f"{payloads.RECORDIO} (Float32 tensors)"
        )
    files = layout.channel_files(channel)
    if not files:
        raise ClientError(f"Channel '{channel}' has no data files")
    matrices, labels = [], []
    for path in files:
        where = f"Channel '{channel}', file '{path.relative_to(layout.channel_dir(channel))}'"
        try:
            with path.open("rb") as stream:
                matrix, label = read_matrix(stream, feature_dim=config["feature_dim"])
        except ValueError as error:
            raise ClientError(f"{where}: {error}") from None
        if matrix.shape[0] and label is None:
            raise ClientError(f"{where}: records have no label; FM trains on labelled records")
        matrices.append(matrix)
        labels.append(label if label is not None else np.zeros(0, dtype=np.float32))
    # One file (the usual channel) is used as read: a copy of a 20M-row matrix would cost 0.5 GB more.
    features = matrices[0] if len(matrices) == 1 else sp.vstack(matrices, format="csr", dtype=np.float32)
    target = labels[0] if len(labels) == 1 else np.concatenate(labels)
    del matrices, labels
    if features.shape[0] == 0:
        raise ClientError(f"Channel '{channel}' holds no records")
    if not (np.isfinite(features.data).all() and np.isfinite(target).all()):
        raise ClientError(f"Channel '{channel}' has NaN or infinite features or labels")
    if config["predictor_type"] == CLASSIFIER and not np.isin(target, (0.0, 1.0)).all():
        bad = np.unique(target[~np.isin(target, (0.0, 1.0))])[:5].tolist()
        raise ClientError(f"Channel '{channel}': binary_classifier labels must be 0 or 1, found {bad}")
    # which objects this host read: with ShardedByS3Key, a multi-instance job's hosts each name their own share
    names = ", ".join(str(path.relative_to(layout.channel_dir(channel))) for path in files)
    objects = f"{len(files)} file{'s' if len(files) > 1 else ''}"
    log(f"{layout.current_host()}: channel '{channel}': {features.shape[0]} records from {objects} ({names})")
    return features, target


class _GroupOptimizer:
    """One parameter group's values with its update rule (MXNet Adam or plain SGD), rate, decay and state.

    Values and Adam's two moments live in one table, each row's three side by side ((rows, 3, width) float32):
    a batch touches a few thousand scattered rows, and gathering and scattering each of them once, as one
    contiguous run, costs a third of the memory round trips of three separate tables.
    """

    def __init__(self, initial: np.ndarray, lr: float, wd: float, config: dict[str, Any]):
        self.lr, self.wd = lr, wd
        self.adam = config["_optimizer"] == "adam"
        self.rescale = np.float32(config["rescale_grad"] or 1.0 / config["mini_batch_size"])
        clip = config["clip_gradient"]
        self.clip = clip if clip is not None and clip >= 0 else None
        self.eps = np.float32(config["eps"] or ADAM_EPS)
        rows = initial.shape[0]
        self.table = np.zeros((rows, 3 if self.adam else 1, initial.size // rows), np.float32)
        self.table[:, 0] = initial.reshape(rows, -1)

    @property
    def values(self) -> np.ndarray:
        """The parameters, (rows, width): a view of the table."""
        return self.table[:, 0]

    def settings(self) -> list[float]:
        """Rate, decay, rescale, clip (-1: none) and eps, in ``fm_compiled``'s order."""
        return [self.lr, self.wd, float(self.rescale), -1.0 if self.clip is None else self.clip, float(self.eps)]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """A copy of ``rows`` of the table, values and state, to compute on and :meth:`apply` back."""
        return self.table.take(rows, axis=0)

    def update(self, block: np.ndarray, grad: np.ndarray, step: int) -> None:
        """Apply one step to ``block`` (rows of the table, or the whole table) in place. ``grad`` is consumed.

        Computes on contiguous copies of the values and moments: numpy's loops over a strided (rows, width) view
        run once per row, over contiguous data once in all.
        """
        grad *= self.rescale
        if self.clip is not None:
            np.clip(grad, -self.clip, self.clip, out=grad)
        weights = block[:, 0].copy()
        if self.wd:
            grad += np.float32(self.wd) * weights
        if not self.adam:
            grad *= np.float32(self.lr)
            weights -= grad
            block[:, 0] = weights
            return
        mean, var = block[:, 1].copy(), block[:, 2].copy()
        mean *= np.float32(ADAM_BETA1)
        mean += np.float32(1 - ADAM_BETA1) * grad
        grad *= grad
        grad *= np.float32(1 - ADAM_BETA2)
        var *= np.float32(ADAM_BETA2)
        var += grad
        step_size = np.sqrt(var, out=grad)
        step_size += self.eps
        np.divide(mean, step_size, out=step_size)
        step_size *= np.float32(self.lr * math.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step))
        weights -= step_size
        block[:, 0], block[:, 1], block[:, 2] = weights, mean, var

    def apply(self, rows: np.ndarray, block: np.ndarray, grad: np.ndarray, step: int) -> None:
        """:meth:`update` ``block``, the table's ``rows``, and write it back."""
        self.update(block, grad, step)
        self.table[rows] = block


def fit(
    features: sp.csr_matrix,
    labels: np.ndarray,
    config: dict[str, Any],
    initializers: dict[str, Callable] | None = None,
    cluster: distributed.Cluster | None = None,
    after_epoch: Callable[[FactorizationMachine], None] | None = None,
) -> FactorizationMachine:
    """Train an FM on a float32 CSR matrix, logging the container's metric lines. Loops over batches only.

    Args:
        features: (n, feature_dim) float32 CSR.
        labels: (n,) float32; 0/1 for the classifier.
        config: parsed hyperparameters.
        initializers: group → initialiser; built from ``config`` when omitted.
        cluster: the job's other hosts (multi-instance), whose updates are merged with these
            ``distributed.SYNCS_PER_EPOCH`` times an epoch.
        after_epoch: called with a copy of the model after every epoch (a search's validation curve from one run).
    """
    initializers = initializers or {group: _initializer(group, config) for group in GROUPS}
    host = cluster.host if cluster is not None else CURRENT_HOST  # each host's metric lines name it, as on AWS
    rng = np.random.default_rng(SEED)
    n, dim = features.shape
    initial = {
        "bias": initializers["bias"]((1,), rng) if config["use_bias"] else np.zeros(1, np.float32),
        "linear": initializers["linear"]((dim,), rng) if config["use_linear"] else np.zeros(dim, np.float32),
        "factors": initializers["factors"]((dim, config["num_factors"]), rng),
    }
    optimizers = {
        group: _GroupOptimizer(
            values, config[f"{group}_lr"] * config["_learning_rate"], config[f"{group}_wd"] * config["_wd"], config
        )
        for group, values in initial.items()
    }
    del initial
    if cluster is not None:  # multi-instance: the hosts start from the same (seeded) values
        cluster.track([optimizers[group].values for group in GROUPS])
    epochs = config["epochs"]
    step = 0
    order = np.arange(n, dtype=np.int32 if n < np.iinfo(np.int32).max else np.int64)
    halves = n >= TWO_THREADS_MIN_ROWS and len(os.sched_getaffinity(0)) > 1
    if halves:
        log(f"{n} records: each epoch trains its two halves in two threads, each updating the shared parameters")
    kernel = None
    if n >= COMPILED_MIN_ROWS:
        started = time.perf_counter()  # compiled (or loaded from NUMBA_CACHE_DIR) here, not in the first epoch's time
        kernel = _Compiled.load(features)
        _CompiledChunks(kernel, optimizers, features, labels, config).train(order[:0], step)
        if halves:
            kernel.module.shuffle(order[:0], 0)
        log(f"{n} records: batches run in compiled kernels (numba), ready in {time.perf_counter() - started:.1f} s")
    for epoch in range(epochs):
        started = time.perf_counter()
        if halves and kernel is not None:  # already not reproducible to the bit: the faster shuffle
            kernel.module.shuffle(order, rng.integers(1 << 32))
        else:
            rng.shuffle(order)  # the permutation rng.permutation(n) gives, in half its memory
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported after its epoch
            if cluster is not None:
                epoch_metrics, step = _train_synced(
                    optimizers, features, labels, order, config, epoch, step, kernel, cluster
                )
            elif halves:
                epoch_metrics, step = _train_halves(optimizers, features, labels, order, config, epoch, step, kernel)
            else:
                epoch_metrics, step = _train_epoch(
                    optimizers, features, labels, order, config, epoch, step, kernel=kernel
                )
        metrics = epoch_metrics.values()
        elapsed = max(time.perf_counter() - started, 1e-9)
        if not all(math.isfinite(value) for value in metrics.values()):
            raise ClientError(
                f"Training diverged in epoch {epoch} (train metrics {metrics}): lower the learning rates "
                "or set clip_gradient"
            )
        _log_quality(f"epoch={epoch}, train", metrics, host)
        log(f"#progress_metric: host={host}, completed {100.0 * (epoch + 1) / epochs} % of epochs")
        log(f"#throughput_metric: host={host}, train throughput={n / elapsed} records/second")
        if after_epoch is not None:
            after_epoch(_model(optimizers))
    _log_quality("train", metrics, host)
    return _model(optimizers)


def _model(optimizers: dict[str, _GroupOptimizer]) -> FactorizationMachine:
    """The parameters the optimisers hold, copied out of their tables."""
    return FactorizationMachine(
        w0=optimizers["bias"].values.reshape(1).copy(),
        w=optimizers["linear"].values.reshape(-1).copy(),
        v=np.ascontiguousarray(optimizers["factors"].values),
    )


def _train_halves(
    optimizers: dict[str, _GroupOptimizer],
    features: sp.csr_matrix,
    labels: np.ndarray,
    order: np.ndarray,
    config: dict[str, Any],
    epoch: int,
    step: int,
    kernel: _Compiled | None = None,
) -> tuple[_Metrics, int]:
    """:func:`_train_epoch` on the two halves of ``order`` at once, one per core, Hogwild-style.

    Both threads read and write the same tables without locks (numpy frees the GIL in its loops): when both
    touch a row at once, one may write over the other's update or read the row while it is being written.
    Asynchronous SGD tolerates both (Hogwild!, Niu et al. 2011; MXNet's ``dist_async`` store is the same idea
    across hosts), and a batch being a tiny share of an epoch, a lost update is a small one. Used from
    ``TWO_THREADS_MIN_ROWS`` records, so runs the size of the labs stay sequential and reproducible to the bit.
    """
    half = len(order) // 2 // config["mini_batch_size"] * config["mini_batch_size"]
    halt = threading.Event()

    def second_half() -> tuple[_Metrics, int]:
        with np.errstate(over="ignore", invalid="ignore"):
            return _train_epoch(optimizers, features, labels, order[half:], config, epoch, step, halt, None, kernel)

    with ThreadPoolExecutor(1, "fm-second-half") as helper:
        other = helper.submit(second_half)
        try:
            metrics, first_step = _train_epoch(
                optimizers, features, labels, order[:half], config, epoch, step, halt, kernel=kernel
            )
        except BaseException:  # SIGTERM (Stopped) or an error: the other thread ends at its next chunk
            halt.set()
            raise
        other_metrics, second_step = other.result()
    metrics.merge(other_metrics)
    return metrics, step + (first_step - step) + (second_step - step)


def _train_synced(
    optimizers: dict[str, _GroupOptimizer],
    features: sp.csr_matrix,
    labels: np.ndarray,
    order: np.ndarray,
    config: dict[str, Any],
    epoch: int,
    step: int,
    kernel: _Compiled | None,
    cluster: distributed.Cluster,
) -> tuple[_Metrics, int]:
    """:func:`_train_epoch` in stretches of this host's shard, each ended by merging every host's updates at the
    batches ``cluster.schedule`` names (multi-instance; one thread per host, the hosts being the parallelism)."""
    batch_size = config["mini_batch_size"]
    metrics, start = _Metrics(config["predictor_type"] == CLASSIFIER), 0
    for last in sorted(cluster.schedule(-(-len(order) // batch_size))):
        stop = min((last + 1) * batch_size, len(order))
        stretch, step = _train_epoch(
            optimizers,
            features,
            labels,
            order[start:stop],
            config,
            epoch,
            step,
            kernel=kernel,
            batches_host=cluster.host if start == 0 else None,
        )
        metrics.merge(stretch)
        cluster.merge()
        start = stop
    return metrics, step


def _train_epoch(
    optimizers: dict[str, _GroupOptimizer],
    features: sp.csr_matrix,
    labels: np.ndarray,
    order: np.ndarray,
    config: dict[str, Any],
    epoch: int,
    step: int,
    halt: threading.Event | None = None,
    batches_host: str | None = CURRENT_HOST,
    kernel: _Compiled | None = None,
) -> tuple[_Metrics, int]:
    """One pass over the rows in ``order``, batch by batch; returns the pass's train metrics and the step.

    Rows are copied in shuffled order ``ROWS_PER_CHUNK`` at a time, never the whole matrix. Each batch is
    re-indexed to the columns it touches, so products and updates cost O(batch non-zeros × num_factors)
    whatever feature_dim is. ``halt`` ends the pass early (the thread of the other half has stopped on an error or SIGTERM).
    ``kernel`` (:class:`_Compiled`) runs each chunk's batches compiled instead. ``batches_host`` names the host in the
    per-batch metric lines; None logs none (the second half of a two-thread epoch, a host's later stretches).
    """
    classifier = config["predictor_type"] == CLASSIFIER
    batch_size, interval = config["mini_batch_size"], config["batch_metrics_publish_interval"]
    bias, linear, factors = optimizers["bias"], optimizers["linear"], optimizers["factors"]
    epoch_metrics = _Metrics(classifier)
    chunk_rows = max(1, ROWS_PER_CHUNK // batch_size) * batch_size
    batch = 0
    if kernel is not None:
        compiled = _CompiledChunks(kernel, optimizers, features, labels, config)
    for chunk_start in range(0, len(order), chunk_rows):
        if halt is not None and halt.is_set():
            break
        chosen = order[chunk_start : chunk_start + chunk_rows]
        if kernel is not None:
            decisions, targets, step = compiled.train(chosen, step)
            if batches_host is not None:
                _log_batches(classifier, decisions, targets, batch_size, interval, epoch, batch, batches_host)
            batch += -(-len(chosen) // batch_size)
            epoch_metrics.add(decisions, targets)
            continue
        chunk, targets = features[chosen], labels[chosen]
        decisions = np.empty(len(chosen), np.float32)
        for start in range(0, len(chosen), batch_size):
            stop = min(start + batch_size, len(chosen))
            lo, hi = chunk.indptr[start], chunk.indptr[stop]
            columns, local = np.unique(chunk.indices[lo:hi], return_inverse=True)
            indptr = chunk.indptr[start : stop + 1] - lo
            values = chunk.data[lo:hi]
            x = sp.csr_matrix((values, local, indptr), shape=(stop - start, len(columns)))
            transposed = x.T
            row_of = np.repeat(np.arange(stop - start), np.diff(indptr))
            squares = values * values
            w_block, v_block = linear.gather(columns), factors.gather(columns)
            v_rows = np.ascontiguousarray(v_block[:, 0])
            xv = x @ v_rows
            # (x²)·Σ_f V_f² per row, without a second sparse matrix for x²
            norms = np.einsum("ij,ij->i", v_rows, v_rows)
            squared_norms = np.bincount(row_of, squares * norms[local], stop - start).astype(np.float32)
            decision = bias.table[0, 0, 0] + x @ w_block[:, 0, 0]
            decision += np.float32(0.5) * (np.einsum("ij,ij->i", xv, xv) - squared_norms)
            decisions[start:stop] = decision
            residual = (expit(decision) if classifier else decision) - targets[start:stop]
            if batches_host is not None:
                _log_batches(
                    classifier, decision, targets[start:stop], batch_size, interval, epoch, batch, batches_host
                )
            batch += 1
            step += 1
            if config["use_bias"]:
                bias.update(bias.table, np.array([[residual.sum()]], np.float32), step)
            if config["use_linear"]:
                linear.apply(columns, w_block, (transposed @ residual)[:, None], step)
            # ∂ŷ/∂V_if = x_i (x·V)_f − x_i² V_if
            scaled = np.bincount(local, squares * residual[row_of], len(columns)).astype(np.float32)
            grad_v = transposed @ (residual[:, None] * xv)
            grad_v -= v_rows * scaled[:, None]
            factors.apply(columns, v_block, grad_v, step)
        epoch_metrics.add(decisions, targets)
    return epoch_metrics, step


def _log_batches(
    classifier: bool,
    decisions: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    interval: int,
    epoch: int,
    first_batch: int,
    host: str,
) -> None:
    """The container's per-batch train metric lines for the batches of ``decisions`` (numbered from
    ``first_batch``) that fall on ``batch_metrics_publish_interval``: one function for both training paths."""
    first_logged = -(-first_batch // interval) * interval  # the first multiple of the interval from first_batch on
    batches = -(-len(targets) // batch_size)
    for batch in range(first_logged, first_batch + batches, interval):
        start = (batch - first_batch) * batch_size
        metrics = _Metrics(classifier)
        metrics.add(decisions[start : start + batch_size], targets[start : start + batch_size])
        _log_quality(f"epoch={epoch}, batch={batch} train", metrics.values(), host)


@dataclass(frozen=True)
class _Compiled:
    """``fm_compiled`` and what its kernel needs to know of the training matrix, found once per job."""

    module: Any
    binary: bool  # every value is 1 (one-hot data): the kernel never reads them
    longest: int  # the non-zeros of the longest row: each row's room when a batch is staged

    @classmethod
    def load(cls, features: sp.csr_matrix) -> _Compiled:
        from sagemaker_emulator.algorithms import fm_compiled

        return cls(fm_compiled, bool((features.data == 1).all()), int(np.diff(features.indptr).max(initial=0)))


class _CompiledChunks:
    """One thread's calls of ``fm_compiled.train_chunk``: the groups' settings and the thread's scratch space."""

    def __init__(self, kernel: _Compiled, optimizers: dict[str, _GroupOptimizer], features, labels, config):
        self.kernel, self.features, self.labels, self.config = kernel, features, labels, config
        self.tables = tuple(optimizers[group].table for group in GROUPS)
        self.settings = np.array([optimizers[group].settings() for group in GROUPS], np.float64)
        self.adam = optimizers["factors"].adam
        dim, factors = self.tables[2].shape[0], self.tables[2].shape[2]
        self.scratch = (
            np.zeros(dim, np.float32),
            np.zeros((dim, factors), np.float32),
            np.zeros(dim, np.float64),
            np.full(dim, -1, np.int32),
            # a batch's non-zeros, each as its feature's slot and its value (the backward pass reads these)
            np.empty(config["mini_batch_size"] * kernel.longest, np.int32),
            np.empty(config["mini_batch_size"] * kernel.longest, np.float32),
        )

    def train(self, rows: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Train on ``rows`` batch by batch; their decisions before each update, their labels, the new step."""
        config, features = self.config, self.features
        decisions = np.empty(len(rows), np.float32)
        step = self.kernel.module.train_chunk(
            features.indptr,
            features.indices,
            features.data,
            self.kernel.binary,
            self.labels,
            rows,
            *self.tables,
            self.settings,
            self.adam,
            config["predictor_type"] == CLASSIFIER,
            config["use_bias"],
            config["use_linear"],
            config["mini_batch_size"],
            step,
            decisions,
            *self.scratch,
        )
        return decisions, self.labels[rows], step


class _Metrics:
    """Running sums for the train/test metrics the container reports, per predictor type."""

    def __init__(self, classifier: bool):
        self.classifier = classifier
        self.count = 0
        self.sums = np.zeros(4)

    def add(self, decision: np.ndarray, target: np.ndarray) -> None:
        decision, target = decision.astype(np.float64), target.astype(np.float64)
        self.count += len(target)
        if self.classifier:
            predicted = decision >= 0.0  # σ(ŷ) >= 0.5
            positive = target == 1.0
            # log loss from logits: -y log σ(ŷ) - (1-y) log(1-σ(ŷ)) = softplus(ŷ) - y ŷ
            entropy = np.logaddexp(0.0, decision) - target * decision
            self.sums += (
                (predicted == positive).sum(),
                entropy.sum(),
                (predicted & positive).sum(),
                predicted.sum() + positive.sum(),
            )
        else:
            error = decision - target
            self.sums += ((error * error).sum(), np.abs(error).sum(), 0.0, 0.0)

    def merge(self, other: _Metrics) -> None:
        self.count += other.count
        self.sums += other.sums

    def values(self) -> dict[str, float]:
        count = max(self.count, 1)
        if self.classifier:
            correct, entropy, true_positive, predicted_plus_actual = self.sums
            f1 = 2 * true_positive / predicted_plus_actual if predicted_plus_actual else 0.0
            return {
                "binary_classification_accuracy": correct / count,
                "binary_classification_cross_entropy": entropy / count,
                "binary_f_1.000": f1,
            }
        squared, absolute = self.sums[:2]
        return {"rmse": math.sqrt(squared / count), "mse": squared / count, "absolute_loss": absolute / count}


_LOSSES = {"rmse", "mse", "absolute_loss", "binary_classification_cross_entropy"}


def _log_quality(scope: str, values: dict[str, float], host: str) -> None:
    for name, value in values.items():
        kind = "loss" if name in _LOSSES else "score"
        log(f"#quality_metric: host={host}, {scope} {name} <{kind}>={value}")


def _log_test_scores(predictor_type: str, decision: np.ndarray, labels: np.ndarray, host: str) -> None:
    metrics = _Metrics(predictor_type == CLASSIFIER)
    metrics.add(decision, labels)
    values = metrics.values()
    for name, value in values.items():
        log(f"#test_score ({host}) : ('{name}', {value})")
    _log_quality("test", values, host)


# --------------------------------------------------------------------------------------------- artifact


def _save_model(model_dir: Path, model: FactorizationMachine, config: dict[str, Any]) -> None:
    """Write ``model_algo-1`` (``fm_artifact``): the graph, the parameters in MXNet's format, ``meta.json``."""
    dim, factors = model.v.shape
    output_op = "LogisticRegressionOutput" if config["predictor_type"] == CLASSIFIER else "LinearRegressionOutput"
    meta = {"training_parameters": {name: value for name, value in config.items() if value is not None}}
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    fm_artifact.write_artifact(
        Path(model_dir) / MODEL_FILE,
        {"w0_weight": model.w0, "w1_weight": model.w.reshape(dim, 1), "v": model.v},
        fm_artifact.symbol_json(dim, factors, output_op),
        meta,
    )
    log(f"Saved model to {Path(model_dir) / MODEL_FILE}")


# --------------------------------------------------------------------------------------------- serving


def load(model_dir: Path) -> Predictor:
    """Read ``model_algo-1`` and return the predictor that answers invocations.

    Raises:
        AlgorithmError: the folder has no readable FM artifact.
    """
    path = Path(model_dir) / MODEL_FILE
    try:
        graph, params = fm_artifact.read_artifact(path)
        head = graph["nodes"][graph["heads"][0][0]]["op"]
        model = FactorizationMachine(
            w0=params["w0_weight"].reshape(1).astype(np.float32),
            w=params["w1_weight"].reshape(-1).astype(np.float32),
            v=np.ascontiguousarray(params["v"], dtype=np.float32),
        )
    except (OSError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile) as error:
        raise AlgorithmError(f"Cannot load the factorization-machines model {path}: {error}") from None
    return Predictor(model, CLASSIFIER if head == "LogisticRegressionOutput" else REGRESSOR)


class Predictor:
    """Answers one invocation: parse the body, score every row, encode as ``Accept`` asks."""

    def __init__(self, model: FactorizationMachine, predictor_type: str):
        self.model = model
        self.predictor_type = predictor_type

    def __call__(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        mime, _ = payloads.negotiate_accept(accept, SERVED_TYPES)
        features = payloads.read_features(body, content_type, self.model.v.shape[0], SERVED_TYPES)
        decision = self.model.decision(features)
        if self.predictor_type == REGRESSOR:
            return payloads.write_predictions({"score": decision}, mime)
        score = expit(decision)
        return payloads.write_predictions({"score": score, "predicted_label": (score >= 0.5).astype(np.float32)}, mime)
