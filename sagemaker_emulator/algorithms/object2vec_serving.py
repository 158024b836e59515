"""Object2Vec inference: ``application/json`` or ``application/jsonlines`` in, the same two formats out.

Each instance is answered by its own keys: ``in0`` and ``in1`` → ``{"scores": [...]}`` (num_classes softmax
probabilities, or the one regression value); only one of them → ``{"embeddings": [...]}`` from that side's
encoder. One request may mix both kinds (our choice; AWS does not say); answers keep the request's order.
``; infer_max_seqlens=<in0>,<in1>`` on the ContentType sets the truncation lengths (default: the training ones).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sagemaker_emulator.algorithms.base import PayloadError, Predictor
from sagemaker_emulator.algorithms.media import accepted, parse_media_type
from sagemaker_emulator.algorithms.object2vec_data import RecordError, decode_lines, encode_side
from sagemaker_emulator.algorithms.object2vec_network import load_model
from sagemaker_emulator.algorithms.object2vec_training import embed, predict

JSON = "application/json"
JSONLINES = "application/jsonlines"
UNEVALUABLE = "unable to evaluate payload provided"


def _response_type(accept: str) -> str:
    """The first of JSON / JSON Lines the Accept header allows (JSON when it allows anything)."""
    for kind, _ in accepted(accept):
        if kind in ("", "*/*", "application/*", JSON):
            return JSON
        if kind == JSONLINES:
            return JSONLINES
    raise PayloadError(f"accept {accept} not supported; use {JSON} or {JSONLINES}", status=406)


def _limits(parameters: dict[str, str], hp: dict) -> tuple[int, int]:
    text = parameters.get("infer_max_seqlens")
    if text is None:
        return hp["enc0_max_seq_len"], hp["enc1_max_seq_len"]
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() and 1 <= int(part) <= 5000 for part in parts):
        raise PayloadError(f"{UNEVALUABLE}: infer_max_seqlens must be two integers in [1, 5000], got '{text}'")
    return int(parts[0]), int(parts[1])


def _instances(body: bytes, kind: str) -> tuple[list, Callable[[int], str]]:
    """The request's instances and ``where(i)`` naming instance i (JSON index or JSON Lines line)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"{UNEVALUABLE}: the body is not UTF-8 ({error})") from None
    if kind == JSONLINES:
        try:
            instances, numbers = decode_lines(text, lambda line: f"line {line}")
        except RecordError as error:
            raise PayloadError(f"{UNEVALUABLE}: {error}") from None
        return instances, lambda i: f"line {numbers[i]}"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError(f"{UNEVALUABLE}: not valid JSON ({error})") from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not all(isinstance(item, dict) for item in instances):
        raise PayloadError(f'{UNEVALUABLE}: expected {{"instances": [{{"in0": [...], "in1": [...]}}, ...]}}')
    return instances, lambda i: f"instance {i}"


def load_predictor(model_dir: Path) -> Predictor:
    """The inference function of the artifact in ``model_dir`` (the network is loaded once, here)."""
    network, hp = load_model(model_dir)
    softmax = hp["output_layer"] == "softmax"
    lock = threading.Lock()

    def sides(instances: list, chosen: np.ndarray, keys: tuple[int, ...], limits, where):
        try:
            return [
                encode_side(
                    [instances[i][f"in{side}"] for i in chosen],
                    side,
                    limits[side],
                    hp[f"enc{side}_vocab_size"],
                    lambda j: where(int(chosen[j])),
                )
                for side in keys
            ]
        except RecordError as error:
            raise PayloadError(f"{UNEVALUABLE}: {error}") from None

    def predictor(body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind, parameters = parse_media_type(content_type)
        if kind not in (JSON, JSONLINES):
            raise PayloadError(f"content-type {content_type} not supported; use {JSON} or {JSONLINES}", status=415)
        response_type = _response_type(accept)
        limits = _limits(parameters, hp)
        instances, where = _instances(body, kind)
        has = np.array([[f"in{side}" in item for side in (0, 1)] for item in instances], dtype=bool).reshape(-1, 2)
        neither = np.flatnonzero(~has.any(axis=1))
        if neither.size:
            raise PayloadError(f"{UNEVALUABLE}: {where(int(neither[0]))} has neither 'in0' nor 'in1'")
        groups = [(np.flatnonzero(has.all(axis=1)), (0, 1))] + [
            (np.flatnonzero(has[:, side] & ~has[:, 1 - side]), (side,)) for side in (0, 1)
        ]
        encoded = [
            (chosen, keys, sides(instances, chosen, keys, limits, where)) for chosen, keys in groups if chosen.size
        ]
        answers: list = [None] * len(instances)
        with lock:  # one request at a time through the cached graph
            for chosen, keys, inputs in encoded:
                if len(keys) == 2:
                    outputs = predict(network, *inputs)
                    if softmax:
                        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
                        outputs /= outputs.sum(axis=1, keepdims=True)
                    rows = [{"scores": row} for row in outputs.tolist()]
                else:
                    rows = [{"embeddings": row} for row in embed(network, keys[0], inputs[0]).tolist()]
                for i, row in zip(chosen, rows):
                    answers[i] = row
        if response_type == JSONLINES:
            return "".join(json.dumps(answer) + "\n" for answer in answers).encode(), JSONLINES
        return json.dumps({"predictions": answers}).encode(), JSON

    return predictor
