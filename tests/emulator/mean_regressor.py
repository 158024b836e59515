"""``mean-regressor``: a deliberately tiny algorithm that exercises the whole plug-in contract in tests.

Not shipped in the emulator's registry: ``tests/conftest.py`` registers it through ``SAGEMAKER_EMULATOR_PLUGINS``
(``algorithms/registry.py``), which every emulator and container the tests start inherits.

It predicts one constant, the mean (or median) of the training labels times ``scale``. CSV rows carry the
label first, as for SageMaker's built-in algorithms. After saving its model it can sleep ``sleep_seconds`` (to
test StopTrainingJob, MaxRuntimeInSeconds and concurrent jobs); a test channel is scored by MSE and logged as
``#quality_metric: host=algo-1, test mse <loss>=<value>``. Unreadable data is a ``ClientError``.

Test-only, set through the model's container ``Environment`` as a real model's settings are: for the endpoint
health tests, a model whose replacement instances crash or hang while loading (:func:`check_restart`); for the
tests of invocations while an endpoint changes, a slow model and a model that holds its requests (:func:`pace`).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

from sagemaker_emulator.algorithms.base import (
    AlgorithmError,
    Boolean,
    Categorical,
    Channel,
    ClientError,
    Float,
    PayloadError,
    log,
)
from sagemaker_emulator.algorithms.layout import CURRENT_HOST, JobLayout
from sagemaker_emulator.algorithms.media import parse_media_type

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
MODEL_FILE = "mean.json"
FIRST_START_VARIABLE = "MEAN_REGRESSOR_TEST_FIRST_START"  # a file path; see check_restart
RESTARTS_VARIABLE = "MEAN_REGRESSOR_TEST_RESTARTS"  # what a later start does: "crash" (default) or "hang"
RESTART_MODES = ("crash", "hang")
LATENCY_VARIABLE = "MEAN_REGRESSOR_TEST_LATENCY_SECONDS"  # how long each prediction takes; see pace
HOLD_VARIABLE = "MEAN_REGRESSOR_TEST_HOLD"  # a file path; see pace

HYPERPARAMETERS = {
    "statistic": Categorical(options=("mean", "median"), default="mean"),
    "scale": Float(low=0.0, low_open=True, default=1.0),
    "sleep_seconds": Float(low=0.0, high=3600.0, default=0.0),
    "verbose": Boolean(default=False),
}

CHANNELS = {
    "train": Channel(required=True, content_types=(CSV,)),
    "test": Channel(required=False, content_types=(CSV,)),
}

METRIC_DEFINITIONS = [
    {"Name": "train:mse", "Regex": r"#quality_metric: host=\S+, train mse <loss>=(\S+)"},
    {"Name": "test:mse", "Regex": r"#quality_metric: host=\S+, test mse <loss>=(\S+)"},
]


def read_labels(files: list[Path], channel: str) -> np.ndarray:
    """The first column of every CSV file of a channel."""
    if not files:
        raise ClientError(f"The '{channel}' channel has no files.")
    parts = []
    for path in files:
        try:
            rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError as error:
            raise ClientError(
                f"Unable to read the '{channel}' channel's file {path.name} as CSV numbers: {error}"
            ) from None
        parts.append(rows[:, 0])
    labels = np.concatenate(parts)
    if labels.size == 0:
        raise ClientError(f"The '{channel}' channel holds no rows.")
    return labels


def train(layout: JobLayout, hyperparameters: dict) -> None:
    labels = read_labels(layout.channel_files("train"), "train")
    centre = np.median(labels) if hyperparameters["statistic"] == "median" else labels.mean()
    value = float(centre * hyperparameters["scale"])
    if hyperparameters["verbose"]:
        log(f"Read {labels.size} training rows from {len(layout.channel_files('train'))} file(s).")
    log(f"#quality_metric: host={CURRENT_HOST}, train mse <loss>={float(np.mean((labels - value) ** 2))}")
    (layout.model_dir / MODEL_FILE).write_text(json.dumps({"value": value}))
    log(f"Saved the model: {hyperparameters['statistic']} x {hyperparameters['scale']} = {value}")
    if hyperparameters["sleep_seconds"]:
        time.sleep(hyperparameters["sleep_seconds"])
    if layout.channel_files("test"):
        test = read_labels(layout.channel_files("test"), "test")
        log(f"#quality_metric: host={CURRENT_HOST}, test mse <loss>={float(np.mean((test - value) ** 2))}")


def model_archive(value: float = 1.0) -> bytes:
    """A ``model.tar.gz`` this algorithm serves, answering ``value``: an endpoint without a training job first."""
    data = json.dumps({"value": value}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _count_rows(body: bytes, content_type: str) -> int:
    media = parse_media_type(content_type)[0]
    try:
        if media == CSV:
            return np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2).shape[0]
        if media == JSON:
            return len(json.loads(body)["instances"])
        if media == JSONLINES:
            return len([line for line in body.splitlines() if line.strip()])
    except (ValueError, KeyError, TypeError) as error:
        raise PayloadError(f"unable to evaluate payload provided: {error}") from None
    raise PayloadError(f"Content type {content_type} is not supported; use {CSV}, {JSON} or {JSONLINES}.", 415)


def _render(value: float, rows: int, accept: str) -> tuple[bytes, str]:
    media = parse_media_type(accept)[0]
    if media in (JSON, "*/*"):
        return json.dumps({"predictions": [{"score": value}] * rows}).encode(), JSON
    if media == JSONLINES:
        return (json.dumps({"score": value}) + "\n").encode() * rows, JSONLINES
    if media == CSV:
        return f"{value}\n".encode() * rows, CSV
    raise PayloadError(f"Accept {accept} is not supported; use {JSON}, {JSONLINES} or {CSV}.", 406)


def check_restart() -> None:
    """Test-only: let the first model server load and make every later one crash or hang while loading.

    With ``MEAN_REGRESSOR_TEST_FIRST_START`` naming a file, the first load creates it; a load that finds it
    raises ``AlgorithmError`` (``MEAN_REGRESSOR_TEST_RESTARTS=crash``, the default) or never returns (``hang``),
    as the replacement of a broken instance would. Without the variable, loading is unaffected.

    Raises:
        ClientError: ``MEAN_REGRESSOR_TEST_RESTARTS`` is neither ``crash`` nor ``hang``.
        AlgorithmError: this is not the first start, in ``crash`` mode.
    """
    marker = os.environ.get(FIRST_START_VARIABLE)
    if not marker:
        return
    mode = os.environ.get(RESTARTS_VARIABLE, "crash")
    if mode not in RESTART_MODES:
        raise ClientError(f"{RESTARTS_VARIABLE} is {mode!r}; valid values: {', '.join(RESTART_MODES)}.")
    try:
        with open(marker, "x"):
            return
    except FileExistsError:
        pass
    if mode == "hang":
        log(f"Not the first start ({marker} exists): loading forever, as {RESTARTS_VARIABLE} asks.")
        threading.Event().wait()
    raise AlgorithmError(f"Not the first start ({marker} exists): crashing, as {RESTARTS_VARIABLE} asks.")


def pace() -> None:
    """Test-only: make a prediction slow, or hold it, so that a test has requests in flight when it changes the endpoint.

    ``MEAN_REGRESSOR_TEST_LATENCY_SECONDS`` makes every prediction take that long, as a big batch would.
    With ``MEAN_REGRESSOR_TEST_HOLD`` naming a file, a prediction first creates ``<file>.held`` (the test's sign
    that a request is inside the model) and then waits for as long as the file exists. Without the variables,
    predictions are unaffected.
    """
    latency = float(os.environ.get(LATENCY_VARIABLE) or 0.0)
    if latency:
        time.sleep(latency)
    hold = os.environ.get(HOLD_VARIABLE)
    if not hold:
        return
    Path(f"{hold}.held").touch()
    while os.path.exists(hold):
        time.sleep(0.01)


def load(model_dir: Path):
    check_restart()
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise ClientError(f"The model artifact holds no {MODEL_FILE}.")
    value = float(json.loads(path.read_text())["value"])

    def predict(body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        pace()
        rows = _count_rows(body, content_type)
        if rows == 0:
            raise PayloadError("unable to evaluate payload provided: no rows")
        return _render(value, rows, accept)

    return predict
