"""Request and response bodies of the first-party inference containers (FM, k-NN), shared by their plug-ins.

Requests become one float32 CSR matrix whatever their content type; responses are built from named
columns (one value or one vector per row) in the format the ``Accept`` header asks for. Formats
(reference/sagemaker-fm-knn-contract.md §5, §6.5):

- ``application/json``: ``{"instances": [...]}``, each instance ``{"features": [dense]}``,
  ``{"data": {"features": {"values": [dense]}}}`` or ``{"data": {"features": {"keys", "shape", "values"}}}``.
- ``application/jsonlines``: one such instance object per line.
- ``application/x-recordio-protobuf``: RecordIO-framed ``aialgs.data.Record`` with Float32 features (k-NN: also Float64, Int32).
- ``text/csv``: one dense row per line; the ``label_size`` parameter (default 0) drops leading label columns.

Every fault in a body is a :class:`PayloadError`: 400 with AWS's text ``unable to evaluate payload provided``
(plus the detail), 415 for a content type the model does not read, 406 for an ``Accept`` it cannot write.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from recordio_protobuf import FLOAT32_ONLY, read_matrix, write_label_records
from sagemaker_emulator.algorithms.base import PayloadError
from sagemaker_emulator.algorithms.media import accepted, parse_media_type

JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"
CSV = "text/csv"

_BAD_PAYLOAD = "Unable to evaluate payload provided"


def negotiate_accept(header: str | None, supported: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Pick the response format: the first supported type listed in ``Accept``; empty or ``*/*`` → the first one.

    Raises:
        PayloadError: 406 when no listed type is supported.
    """
    if not header or not header.strip():
        return supported[0], {}
    for mime, params in accepted(header):
        if mime in ("*/*", "application/*"):
            return supported[0], params
        if mime in supported:
            return mime, params
    raise PayloadError(f"Accept type '{header}' is not supported: use one of {', '.join(supported)}", status=406)


def is_verbose(params: dict[str, str]) -> bool:
    """Whether a media-type parameter set asks for ``verbose=true`` (k-NN's neighbour lists)."""
    return params.get("verbose", "").lower() == "true"


def bad_payload(detail: str) -> PayloadError:
    """The 400 first-party containers answer, with the reason appended."""
    return PayloadError(f"{_BAD_PAYLOAD}: {detail}", status=400)


def read_features(
    body: bytes,
    content_type: str | None,
    feature_dim: int,
    supported: tuple[str, ...],
    tensor_types: tuple[str, ...] = FLOAT32_ONLY,
) -> sp.csr_matrix:
    """Parse a request body into an (n, feature_dim) float32 CSR matrix.

    Args:
        body: the request bytes.
        content_type: the ``Content-Type`` header, parameters allowed (``text/csv; label_size=1``).
        feature_dim: the width the model was trained on; every row must have it.
        supported: the content types this model reads.
        tensor_types: the RecordIO-protobuf tensor kinds this model reads (``recordio_protobuf.NUMERIC_TENSORS``).

    Raises:
        PayloadError: 415 for an unsupported content type, 400 for a body that cannot be read or has the
            wrong width or no rows.
    """
    mime, params = parse_media_type(content_type)
    if mime not in supported:
        raise PayloadError(
            f"Content type '{content_type}' is not supported: use one of {', '.join(supported)}", status=415
        )
    if mime == RECORDIO:
        matrix = _read_recordio(body, feature_dim, tensor_types)
    elif mime == CSV:
        matrix = _read_csv(body, params, feature_dim)
    else:
        matrix = _read_json_instances(_json_instances(body, mime), feature_dim)
    if matrix.shape[0] == 0:
        raise bad_payload("the request holds no instances")
    return matrix


def _read_recordio(body: bytes, feature_dim: int, tensor_types: tuple[str, ...]) -> sp.csr_matrix:
    try:
        matrix, _ = read_matrix(body, feature_dim=feature_dim, tensor_types=tensor_types)
    except ValueError as error:
        raise bad_payload(str(error)) from None
    return matrix


def _read_csv(body: bytes, params: dict[str, str], feature_dim: int) -> sp.csr_matrix:
    try:
        label_size = int(params.get("label_size", "0"))
    except ValueError:
        raise bad_payload(f"label_size must be an integer, got '{params['label_size']}'") from None
    encoding = params.get("charset") or params.get("encoding") or "utf-8"
    if not body.strip():
        raise bad_payload("the request holds no instances")
    import pandas as pd  # imported here: it costs FM's jobs and endpoints 0.3 CPU-s, and only CSV needs it

    try:
        frame = pd.read_csv(io.BytesIO(body), header=None, encoding=encoding, dtype=np.float32)
    except (ValueError, UnicodeDecodeError, LookupError) as error:
        raise bad_payload(f"CSV rows must hold numbers only ({error})") from None
    values = frame.to_numpy(dtype=np.float32)[:, label_size:]
    if np.isnan(values).any():
        raise bad_payload("CSV rows must not have empty or NaN fields")
    _check_width(values.shape[1], feature_dim, "CSV row")
    return sp.csr_matrix(values)


def _json_instances(body: bytes, mime: str) -> list[Any]:
    try:
        text = body.decode("utf-8")
        if mime == JSONLINES:
            # Open question (contract §10.4): whether FM reads JSON Lines requests. We accept them for both
            # plug-ins, one instance object per line, as k-NN documents, so SplitType=Line batch jobs work.
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_payload(f"the body is not valid {'JSON Lines' if mime == JSONLINES else 'JSON'} ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise bad_payload('a JSON body must be an object with an "instances" list')
    return document["instances"]


def _read_json_instances(instances: list[Any], feature_dim: int) -> sp.csr_matrix:
    """Build a CSR matrix from instances in any mix of the dense shorthand, dense and sparse long forms."""
    row_keys, row_values = [], []
    for position, instance in enumerate(instances):
        keys, values = _instance_entries(instance, position, feature_dim)
        row_keys.append(keys)
        row_values.append(values)
    lengths = np.fromiter((len(v) for v in row_values), dtype=np.int64, count=len(row_values))
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    indices = np.concatenate(row_keys) if row_keys else np.zeros(0, dtype=np.int64)
    data = np.concatenate(row_values) if row_values else np.zeros(0, dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(instances), feature_dim))
    matrix.sum_duplicates()
    return matrix


def _instance_entries(instance: Any, position: int, feature_dim: int) -> tuple[np.ndarray, np.ndarray]:
    where = f"instance {position}"
    if not isinstance(instance, dict):
        raise bad_payload(f"{where} must be a JSON object")
    if "features" in instance:
        features = {"values": instance["features"]}
    else:
        data = instance.get("data")
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, dict) or "values" not in features:
            raise bad_payload(f'{where} needs "features" or "data": {{"features": {{"values": ...}}}}')
    values = _float_vector(features["values"], f"{where} values")
    if "keys" not in features:
        _check_width(len(values), feature_dim, where)
        return np.arange(len(values), dtype=np.int64), values
    keys = _index_vector(features["keys"], f"{where} keys")
    if len(keys) != len(values):
        raise bad_payload(f"{where} has {len(keys)} keys but {len(values)} values")
    shape = features.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) != 1:
            raise bad_payload(f"{where} shape must be a one-element list [feature_dim]")
        _check_width(_index_vector(shape, f"{where} shape")[0], feature_dim, where)
    if len(keys) and keys.max() >= feature_dim:
        raise bad_payload(f"{where} has key {int(keys.max())}, outside the model's feature_dim {feature_dim}")
    return keys, values


def _float_vector(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list):
        raise bad_payload(f"{where} must be a list of numbers")
    try:
        vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise bad_payload(f"{where} must be a list of numbers") from None
    if vector.ndim != 1 or not np.isfinite(vector).all():
        raise bad_payload(f"{where} must be a flat list of finite numbers")
    return vector


def _index_vector(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise bad_payload(f"{where} must be a list of integers")
    vector = np.asarray(value, dtype=np.int64)
    if len(vector) and vector.min() < 0:
        raise bad_payload(f"{where} must not be negative")
    return vector


def _check_width(width: int, feature_dim: int, where: str) -> None:
    if width != feature_dim:
        raise bad_payload(f"{where} has {width} features but the model's feature_dim is {feature_dim}")


def write_predictions(columns: dict[str, np.ndarray], mime: str) -> tuple[bytes, str]:
    """Encode per-row predictions in the response format ``mime``.

    Args:
        columns: name → array with one entry (shape (n,)) or one vector (shape (n, k)) per row; the key
            order is the order of the fields in each JSON object.
        mime: ``application/json``, ``application/jsonlines`` or ``application/x-recordio-protobuf``.

    Returns:
        The body and its content type. JSON numbers are the float32 values widened to double, as the
        real containers print them (``0.9999101161956787``); JSON Lines rows are joined by newlines, with
        no trailing newline, so one row of input gives exactly one line of output.
    """
    if mime == RECORDIO:
        buffer = io.BytesIO()
        write_label_records(buffer, {name: np.asarray(col, dtype=np.float32) for name, col in columns.items()})
        return buffer.getvalue(), RECORDIO
    names = list(columns)
    lists = [np.asarray(columns[name], dtype=np.float32).astype(np.float64).tolist() for name in names]
    rows = [dict(zip(names, values)) for values in zip(*lists)]
    if mime == JSONLINES:
        return "\n".join(json.dumps(row) for row in rows).encode("utf-8"), JSONLINES
    return json.dumps({"predictions": rows}).encode("utf-8"), JSON
