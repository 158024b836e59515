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
  still train well;
- ``_learning_rate`` and ``_wd`` (container defaults 1.0) multiply every group's rate and decay, the way an
  MXNet optimizer's global rate scales per-parameter multipliers; ``_optimizer`` also takes ``sgd``;
- the other underscore knobs (``_kvstore``, ``_num_gpus``, ...) are accepted and have no effect on one host;
- ``eps`` and ``rescale_grad`` must be > 0: any other value would make the updates diverge;
- the classifier's label threshold is ``score >= 0.5``; its F1 is 0.0 when there are no positives at all;
- the artifact's ``symbol.json`` is a working MXNet graph of the model above (inputs ``data``,
  ``out_label``; parameters ``w0_weight`` (1,), ``w1_weight`` (feature_dim, 1), ``v`` (feature_dim,
  num_factors)); its output operator (``LogisticRegressionOutput`` / ``LinearRegressionOutput``) tells
  :func:`load` the predictor type. ``meta.json`` records the final configuration.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from recordio_protobuf import read_matrix
from sagemaker_emulator.algorithms import distributed, payloads
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

MULTI_INSTANCE = True  # multi-instance: trains data-parallel across hosts (distributed.py)

SERVED_TYPES = (payloads.JSON, payloads.JSONLINES, payloads.RECORDIO)


@dataclass
class FactorizationMachine:
    """The trained parameters: global bias w0 (1,), linear weights w (d,), factors V (d, k), all float32."""

    w0: np.ndarray
    w: np.ndarray
    v: np.ndarray

    def decision(self, features: sp.csr_matrix) -> np.ndarray:
        """ŷ for every row (before the sigmoid for classifiers), in chunks to bound memory."""
        out = np.empty(features.shape[0], dtype=np.float32)
        squared_norms = np.einsum("ij,ij->i", self.v, self.v)
        for start in range(0, features.shape[0], PREDICT_CHUNK):
            x = features[start : start + PREDICT_CHUNK]
            xv = x @ self.v
            pairwise = 0.5 * (np.einsum("ij,ij->i", xv, xv) - x.multiply(x) @ squared_norms)
            out[start : start + x.shape[0]] = self.w0[0] + x @ self.w + pairwise
        return out


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
        _log_test_scores(config["predictor_type"], model.decision(test[0]), test[1])
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
    features = sp.vstack(matrices, format="csr", dtype=np.float32)
    target = np.concatenate(labels).astype(np.float32)
    if features.shape[0] == 0:
        raise ClientError(f"Channel '{channel}' holds no records")
    if not (np.isfinite(features.data).all() and np.isfinite(target).all()):
        raise ClientError(f"Channel '{channel}' has NaN or infinite features or labels")
    if config["predictor_type"] == CLASSIFIER and not np.isin(target, (0.0, 1.0)).all():
        bad = np.unique(target[~np.isin(target, (0.0, 1.0))])[:5].tolist()
        raise ClientError(f"Channel '{channel}': binary_classifier labels must be 0 or 1, found {bad}")
    return features, target


class _GroupOptimizer:
    """One parameter group's update rule (MXNet Adam or plain SGD), with its rate, decay and state."""

    def __init__(self, param: np.ndarray, lr: float, wd: float, config: dict[str, Any]):
        self.lr, self.wd = lr, wd
        self.adam = config["_optimizer"] == "adam"
        self.rescale = config["rescale_grad"] or 1.0 / config["mini_batch_size"]
        clip = config["clip_gradient"]
        self.clip = clip if clip is not None and clip >= 0 else None
        self.eps = config["eps"] or ADAM_EPS
        self.mean = np.zeros_like(param) if self.adam else None
        self.var = np.zeros_like(param) if self.adam else None

    def update(self, param: np.ndarray, grad: np.ndarray, rows: np.ndarray | None, step: int) -> None:
        """Apply one step to ``param`` (only ``rows`` of it when given: the lazy update). ``grad`` is consumed."""
        grad *= np.float32(self.rescale)
        if self.clip is not None:
            np.clip(grad, -self.clip, self.clip, out=grad)
        weights = param if rows is None else param[rows]
        if self.wd:
            grad += np.float32(self.wd) * weights
        if not self.adam:
            grad *= np.float32(self.lr)
            weights -= grad
        else:
            mean = self.mean if rows is None else self.mean[rows]
            var = self.var if rows is None else self.var[rows]
            mean *= np.float32(ADAM_BETA1)
            mean += np.float32(1 - ADAM_BETA1) * grad
            grad *= grad
            grad *= np.float32(1 - ADAM_BETA2)
            var *= np.float32(ADAM_BETA2)
            var += grad
            step_size = np.sqrt(var)
            step_size += np.float32(self.eps)
            np.divide(mean, step_size, out=step_size)
            step_size *= np.float32(self.lr * math.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step))
            weights -= step_size
            if rows is not None:
                self.mean[rows], self.var[rows] = mean, var
        if rows is not None:
            param[rows] = weights


def fit(
    features: sp.csr_matrix,
    labels: np.ndarray,
    config: dict[str, Any],
    initializers: dict[str, Callable] | None = None,
    cluster: distributed.Cluster | None = None,
) -> FactorizationMachine:
    """Train an FM on a float32 CSR matrix, logging the container's metric lines. Loops over batches only.

    Args:
        features: (n, feature_dim) float32 CSR.
        labels: (n,) float32; 0/1 for the classifier.
        config: parsed hyperparameters.
        initializers: group → initialiser; built from ``config`` when omitted.
        cluster: the job's other hosts (multi-instance), whose updates are merged with these
            ``distributed.SYNCS_PER_EPOCH`` times an epoch.
    """
    initializers = initializers or {group: _initializer(group, config) for group in GROUPS}
    rng = np.random.default_rng(SEED)
    n, dim = features.shape
    model = FactorizationMachine(
        w0=initializers["bias"]((1,), rng) if config["use_bias"] else np.zeros(1, np.float32),
        w=initializers["linear"]((dim,), rng) if config["use_linear"] else np.zeros(dim, np.float32),
        v=initializers["factors"]((dim, config["num_factors"]), rng),
    )
    if cluster is not None:  # multi-instance: the hosts start from the same (seeded) values
        cluster.track([model.w0, model.w, model.v])
    optimizers = {
        name: _GroupOptimizer(
            param, config[f"{group}_lr"] * config["_learning_rate"], config[f"{group}_wd"] * config["_wd"], config
        )
        for name, group, param in (("w0", "bias", model.w0), ("w", "linear", model.w), ("v", "factors", model.v))
    }
    epochs = config["epochs"]
    step = 0
    for epoch in range(epochs):
        started = time.perf_counter()
        order = rng.permutation(n)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported after its epoch
            metrics, step = _train_epoch(
                model, optimizers, features[order], labels[order], config, epoch, step, cluster
            )
        elapsed = max(time.perf_counter() - started, 1e-9)
        if not all(math.isfinite(value) for value in metrics.values()):
            raise ClientError(
                f"Training diverged in epoch {epoch} (train metrics {metrics}): lower the learning rates "
                "or set clip_gradient"
            )
        _log_quality(f"epoch={epoch}, train", metrics)
        log(f"#progress_metric: host={CURRENT_HOST}, completed {100.0 * (epoch + 1) / epochs} % of epochs")
        log(f"#throughput_metric: host={CURRENT_HOST}, train throughput={n / elapsed} records/second")
    _log_quality("train", metrics)
    return model


def _train_epoch(
    model: FactorizationMachine,
    optimizers: dict[str, _GroupOptimizer],
    features: sp.csr_matrix,
    labels: np.ndarray,
    config: dict[str, Any],
    epoch: int,
    step: int,
    cluster: distributed.Cluster | None = None,
) -> tuple[dict[str, float], int]:
    """One pass over (already shuffled) rows, batch by batch; returns the epoch's train metrics and the step.

    Each batch is re-indexed to the columns it touches, so products and updates cost O(batch non-zeros ×
    num_factors) whatever feature_dim is.
    """
    classifier = config["predictor_type"] == CLASSIFIER
    batch_size, interval = config["mini_batch_size"], config["batch_metrics_publish_interval"]
    epoch_metrics = _Metrics(classifier)
    syncs = cluster.schedule(-(-features.shape[0] // batch_size)) if cluster is not None else ()  # multi-instance
    for batch, start in enumerate(range(0, features.shape[0], batch_size)):
        stop = min(start + batch_size, features.shape[0])
        lo, hi = features.indptr[start], features.indptr[stop]
        columns, local = np.unique(features.indices[lo:hi], return_inverse=True)
        indptr = features.indptr[start : stop + 1] - lo
        values = features.data[lo:hi]
        x = sp.csr_matrix((values, local, indptr), shape=(stop - start, len(columns)))
        transposed = x.T
        row_of = np.repeat(np.arange(stop - start), np.diff(indptr))
        squares = values * values
        w_rows, v_rows = model.w[columns], model.v[columns]
        xv = x @ v_rows
        # (x²)·Σ_f V_f² per row, without a second sparse matrix for x²
        squared_norms = np.bincount(row_of, squares * np.einsum("ij,ij->i", v_rows, v_rows)[local], stop - start)
        decision = model.w0[0] + x @ w_rows + 0.5 * (np.einsum("ij,ij->i", xv, xv) - squared_norms).astype(np.float32)
        target = labels[start:stop]
        residual = (expit(decision) if classifier else decision) - target
        epoch_metrics.add(decision, target)
        if batch % interval == 0:
            batch_metrics = _Metrics(classifier)
            batch_metrics.add(decision, target)
            _log_quality(f"epoch={epoch}, batch={batch} train", batch_metrics.values())
        step += 1
        if config["use_bias"]:
            optimizers["w0"].update(model.w0, np.array([residual.sum()], np.float32), None, step)
        if config["use_linear"]:
            optimizers["w"].update(model.w, transposed @ residual, columns, step)
        # ∂ŷ/∂V_if = x_i (x·V)_f − x_i² V_if
        scaled = np.bincount(local, squares * residual[row_of], len(columns)).astype(np.float32)
        grad_v = transposed @ (residual[:, None] * xv)
        grad_v -= v_rows * scaled[:, None]
        optimizers["v"].update(model.v, grad_v, columns, step)
        if batch in syncs:  # multi-instance: the hosts' updates merged
            cluster.merge()
    return epoch_metrics.values(), step


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


def _log_quality(scope: str, values: dict[str, float]) -> None:
    for name, value in values.items():
        kind = "loss" if name in _LOSSES else "score"
        log(f"#quality_metric: host={CURRENT_HOST}, {scope} {name} <{kind}>={value}")


def _log_test_scores(predictor_type: str, decision: np.ndarray, labels: np.ndarray) -> None:
    metrics = _Metrics(predictor_type == CLASSIFIER)
    metrics.add(decision, labels)
    values = metrics.values()
    for name, value in values.items():
        log(f"#test_score ({CURRENT_HOST}) : ('{name}', {value})")
    _log_quality("test", values)


# --------------------------------------------------------------------------------------------- artifact


def _symbol(mx: Any, feature_dim: int, num_factors: int, predictor_type: str) -> Any:
    """The FM graph with the parameter and label names AWS's loading recipe reads."""
    data = mx.sym.Variable("data")
    label = mx.sym.Variable("out_label")
    w0 = mx.sym.Variable("w0_weight", shape=(1,))
    w1 = mx.sym.Variable("w1_weight", shape=(feature_dim, 1))
    v = mx.sym.Variable("v", shape=(feature_dim, num_factors))
    linear = mx.sym.broadcast_add(mx.sym.dot(data, w1), mx.sym.reshape(w0, shape=(1, 1)))
    xv = mx.sym.dot(data, v)
    squares = mx.sym.dot(mx.sym.square(data), mx.sym.square(v))
    pairwise = 0.5 * mx.sym.sum(mx.sym.square(xv) - squares, axis=1, keepdims=True)
    output = mx.sym.LogisticRegressionOutput if predictor_type == CLASSIFIER else mx.sym.LinearRegressionOutput
    return output(linear + pairwise, label, name="out")


def _save_model(model_dir: Path, model: FactorizationMachine, config: dict[str, Any]) -> None:
    """Write ``model_algo-1``: a zip of ``symbol.json``, ``params`` (``mx.nd.save``, ``arg:`` keys), ``meta.json``."""
    import mxnet as mx  # imported late: only training and loading need it, not hyperparameter validation

    dim, factors = model.v.shape
    with tempfile.TemporaryDirectory() as scratch:
        params = Path(scratch) / "params"
        mx.nd.save(
            str(params),
            {
                "arg:w0_weight": mx.nd.array(model.w0, dtype="float32"),
                "arg:w1_weight": mx.nd.array(model.w.reshape(dim, 1), dtype="float32"),
                "arg:v": mx.nd.array(model.v, dtype="float32"),
            },
        )
        symbol = _symbol(mx, dim, factors, config["predictor_type"]).tojson()
        meta = {"training_parameters": {name: value for name, value in config.items() if value is not None}}
        Path(model_dir).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(Path(model_dir) / MODEL_FILE, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("symbol.json", symbol)
            archive.write(params, "params")
            archive.writestr("meta.json", json.dumps(meta))
    log(f"Saved model to {Path(model_dir) / MODEL_FILE}")


# --------------------------------------------------------------------------------------------- serving


def load(model_dir: Path) -> Predictor:
    """Read ``model_algo-1`` and return the predictor that answers invocations.

    Raises:
        AlgorithmError: the folder has no readable FM artifact.
    """
    import mxnet as mx

    path = Path(model_dir) / MODEL_FILE
    try:
        with zipfile.ZipFile(path) as archive:
            graph = json.loads(archive.read("symbol.json"))
            arrays = mx.nd.load_frombuffer(archive.read("params"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, mx.base.MXNetError) as error:
        raise AlgorithmError(f"Cannot load the factorization-machines model {path}: {error}") from None
    head = graph["nodes"][graph["heads"][0][0]]["op"]
    model = FactorizationMachine(
        w0=arrays["arg:w0_weight"].asnumpy().reshape(1).astype(np.float32),
        w=arrays["arg:w1_weight"].asnumpy().reshape(-1).astype(np.float32),
        v=arrays["arg:v"].asnumpy().astype(np.float32),
    )
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
