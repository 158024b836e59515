"""The ``object2vec`` built-in algorithm: pairs of token sequences → scores, and each side's embedding.

Follows ``reference/sagemaker-object2vec-contract.md``: its hyperparameters (ranges, defaults, enc1 inheriting
enc0's settings when ``enc1_network=enc0``), ``application/jsonlines`` channels, the real log and metric lines,
early stopping on the validation channel with the best epoch kept, and the JSON / JSON Lines inference formats.
The network is in :mod:`object2vec_network`, record parsing in :mod:`object2vec_data`, the training loop in
:mod:`object2vec_training` (its numpy step for one-token sides in :mod:`object2vec_numpy`) and inference in
:mod:`object2vec_serving`. The artifact (undocumented on AWS) is
``model_algo-1/`` holding
``hyperparameters.json`` (resolved) and ``network.params`` (Gluon parameters).
"""

from __future__ import annotations

import re
from pathlib import Path

from sagemaker_emulator.algorithms.base import (
    Boolean,
    Categorical,
    Channel,
    ClientError,
    Float,
    Integer,
    Predictor,
    Text,
    log,
    parse_hyperparameters,
)
from sagemaker_emulator.algorithms.layout import JobLayout
from sagemaker_emulator.algorithms.object2vec_network import COMPARATORS
from sagemaker_emulator.algorithms.object2vec_serving import load_predictor
from sagemaker_emulator.algorithms.object2vec_training import run_training

JSONLINES = "application/jsonlines"
ENCODER_KEYS = (
    "network",
    "max_seq_len",
    "vocab_size",
    "cnn_filter_width",
    "layers",
    "token_embedding_dim",
    "pretrained_embedding_file",
    "vocab_file",
    "freeze_pretrained_embedding",
)
AUTO_LAYERS = {"hcnn": 4, "bilstm": 1, "pooled_embedding": 1}
SPARSE_OPTIMIZERS = ("adam", "adagrad", "sgd")


def _comparator_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",")]


def _valid_comparators(text: str) -> bool:
    return all(name in COMPARATORS for name in _comparator_names(text))


def _valid_file_name(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9._]*", text) is not None


def _encoder_hyperparameters(side: int) -> dict:
    first = side == 0
    return {
        f"enc{side}_max_seq_len": Integer(required=first, low=1, high=5000),
        f"enc{side}_vocab_size": Integer(required=first, low=2, high=3_000_000),
        f"enc{side}_network": Categorical(
            default="hcnn" if first else "enc0",
            options=("hcnn", "bilstm", "pooled_embedding") if first else ("enc0", "hcnn", "bilstm", "pooled_embedding"),
        ),
        f"enc{side}_cnn_filter_width": Integer(default=3, low=1, high=9),
        f"enc{side}_layers": Integer(default="auto", low=1, high=4, allow_auto=True),
        f"enc{side}_token_embedding_dim": Integer(default=300, low=2, high=1000),
        f"enc{side}_pretrained_embedding_file": Text(
            default="", check=_valid_file_name, meaning="a file name made of [A-Za-z0-9._]"
        ),
        f"enc{side}_vocab_file": Text(default="", check=_valid_file_name, meaning="a file name made of [A-Za-z0-9._]"),
        f"enc{side}_freeze_pretrained_embedding": Boolean(default=True),
    }


HYPERPARAMETERS = {
    **_encoder_hyperparameters(0),
    **_encoder_hyperparameters(1),
    "enc_dim": Integer(default=4096, low=4, high=10000),
    "mlp_dim": Integer(default=512, low=2, high=10000),
    "mlp_layers": Integer(default=2, low=0, high=10),
    "mlp_activation": Categorical(default="linear", options=("tanh", "relu", "linear")),
    "output_layer": Categorical(default="softmax", options=("softmax", "mean_squared_error")),
    "num_classes": Integer(default=2, low=2, high=30),
    "epochs": Integer(default=30, low=1, high=100),
    "mini_batch_size": Integer(default=32, low=1, high=10000),
    "learning_rate": Float(default=0.0004, low=1e-6, high=1.0),
    "optimizer": Categorical(default="adam", options=("adadelta", "adagrad", "adam", "sgd", "rmsprop")),
    "dropout": Float(default=0.0, low=0.0, high=1.0),
    "weight_decay": Float(default=0.0, low=0.0, high=10000.0),
    "early_stopping_patience": Integer(default=3, low=1, high=5),
    "early_stopping_tolerance": Float(default=0.01, low=1e-6, high=0.1),
    "bucket_width": Integer(default=0, low=0, high=100),
    "comparator_list": Text(
        default="hadamard, concat, abs_diff",
        check=_valid_comparators,
        meaning="a comma-separated list of hadamard, concat, abs_diff",
    ),
    "tied_token_embedding_weight": Boolean(default=False),
    "token_embedding_storage_type": Categorical(default="dense", options=("dense", "row_sparse")),
    "negative_sampling_rate": Integer(default=0, low=0, high=100),
    # Undocumented distributed-training knobs the AWS examples pass; meaningless on one CPU host.
    "_kvstore": Text(default="device"),
    "_num_gpus": Text(default="auto"),
    "_num_kv_servers": Text(default="auto"),
}

CHANNELS = {
    "train": Channel(required=True, content_types=(JSONLINES,)),
    "validation": Channel(content_types=(JSONLINES,)),
    "test": Channel(content_types=(JSONLINES,)),
    "auxiliary": Channel(),
}

_QUALITY = r"#quality_metric: host=\S+, "
METRIC_DEFINITIONS = [
    {
        "Name": f"{channel}:{name}",
        "Regex": _QUALITY + ("" if channel == "test" else r"epoch=\S+, ") + f"{channel} {name} <{tag}>=(\\S+)",
    }
    for channel in ("train", "validation", "test")
    for name, tag in (("mean_squared_error", "loss"), ("accuracy", "score"), ("cross_entropy", "loss"))
] + [
    {"Name": "train:progress", "Regex": r"#progress_metric: host=\S+, completed (\S+) %"},
    {"Name": "train:throughput", "Regex": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second"},
]


def resolve_hyperparameters(values: dict) -> dict:
    """Validate a job's hyperparameters and settle every conditional one, returning plain JSON-able values.

    Accepts the raw strings of ``hyperparameters.json`` or an already parsed dict (both go through
    :func:`parse_hyperparameters`). ``enc1_network=enc0`` copies every ``enc0_*`` setting to enc1 (the container
    did so even for the vocab size); otherwise ``enc1_max_seq_len`` and ``enc1_vocab_size`` are required.
    ``auto`` layers become 4 (hcnn) or 1; a pooled_embedding's token width is forced to enc_dim, logged as AWS does.

    Raises:
        ClientError: a value out of range, a missing conditional value, or an inconsistent combination.
    """
    hp = parse_hyperparameters(HYPERPARAMETERS, {k: str(v) for k, v in values.items() if v is not None})
    if hp["enc1_network"] == "enc0":
        hp.update({f"enc1_{key}": hp[f"enc0_{key}"] for key in ENCODER_KEYS})
    else:
        missing = [name for name in ("enc1_max_seq_len", "enc1_vocab_size") if hp[name] is None]
        if missing:
            names = ", ".join(f"'{n}'" for n in missing)
            raise ClientError(
                f"No value(s) were specified for {names} which are required hyperparameter(s) when "
                f"enc1_network is '{hp['enc1_network']}' (caused by ValidationError)"
            )
    for side in (0, 1):
        network = hp[f"enc{side}_network"]
        if hp[f"enc{side}_layers"] == "auto":
            hp[f"enc{side}_layers"] = AUTO_LAYERS[network]
        if network == "pooled_embedding" and hp[f"enc{side}_token_embedding_dim"] != hp["enc_dim"]:
            log(
                "Inconsistent enc_dim and token_embedding_dim found for token-embedding-encoder: "
                f"{hp['enc_dim']} vs {hp[f'enc{side}_token_embedding_dim']}. "
                f"Setting token embedding dim to be {hp['enc_dim']}"
            )
            hp[f"enc{side}_token_embedding_dim"] = hp["enc_dim"]
        if hp[f"enc{side}_vocab_file"] and not hp[f"enc{side}_pretrained_embedding_file"]:
            raise ClientError(f"enc{side}_vocab_file is set but enc{side}_pretrained_embedding_file is not")
    hp["comparator_list"] = ", ".join(_comparator_names(hp["comparator_list"]))
    if hp["tied_token_embedding_weight"] and (
        hp["enc0_vocab_size"] != hp["enc1_vocab_size"]
        or hp["enc0_token_embedding_dim"] != hp["enc1_token_embedding_dim"]
    ):
        raise ClientError(
            "tied_token_embedding_weight=true needs one embedding table for both encoders, but enc0 has "
            f"vocab_size={hp['enc0_vocab_size']}, token_embedding_dim={hp['enc0_token_embedding_dim']} and enc1 has "
            f"vocab_size={hp['enc1_vocab_size']}, token_embedding_dim={hp['enc1_token_embedding_dim']}"
        )
    if hp["token_embedding_storage_type"] == "row_sparse" and hp["optimizer"] not in SPARSE_OPTIMIZERS:
        raise ClientError(
            f"token_embedding_storage_type=row_sparse supports optimizer {', '.join(SPARSE_OPTIMIZERS)}; "
            f"got '{hp['optimizer']}'"
        )
    return hp


def train(layout: JobLayout, hyperparameters: dict) -> None:
    """Train on the job's channels and write ``model_algo-1/`` into ``layout.model_dir``."""
    run_training(layout, resolve_hyperparameters(hyperparameters))


def load(model_dir: Path) -> Predictor:
    """The inference function of a trained artifact (``model_dir`` holds ``model_algo-1/``)."""
    return load_predictor(Path(model_dir))
