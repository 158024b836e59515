"""Deep matrix factorization (DMF) as a SageMaker script-mode entry point, MXNet Gluon.

The model is the notebook's DMF: a user embedding and a movie embedding, concatenated and passed through
an MLP that predicts the rating. The script follows the SageMaker training-toolkit contract, so the same
file runs in the MXNet training container on AWS, in the local emulator, or by hand:

- data: CSV files with a header ``user,item,rating`` (0-based integer indices, numeric ratings) in the
  folders named by ``SM_CHANNEL_TRAIN`` (required) and ``SM_CHANNEL_VALIDATION`` (optional);
- hyperparameters: ``SM_HPS`` (a JSON object) and/or command-line flags (``--epochs 5``), the flags winning;
- ``SM_MODEL_DIR`` receives ``model.params`` (Gluon parameters) and ``model.json`` (the architecture);
- ``SM_NUM_GPUS`` picks the device; ``SM_HOSTS`` / ``SM_CURRENT_HOST``: one instance only;
- one line per epoch, ``epoch=1 train_rmse=0.9512 validation_rmse=0.9307``, for MetricDefinitions; the last
  line repeats the best ``validation_rmse``, so SageMaker's final metric is the saved model's.

``model_fn(model_dir)`` loads a trained model back (the name SageMaker's MXNet serving looks for).
It deliberately does not import the workshop's ``common`` package: the container has only the job's source folder,
this lab's folder, so the model class comes from ``dmf_models.py`` next to this file (the notebook's ``#@save``
definitions, written once in the notebook).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy

# mxnet 1.9.1 still refers to numpy.bool, which numpy removed in 1.24; restore the alias as it used to be
# (the workshop's `common` package does the same) before importing mxnet.
if "bool" not in vars(numpy):
    numpy.bool = bool

import mxnet as mx  # noqa: E402
import pandas as pd  # noqa: E402
from dmf_models import DMF  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

COLUMNS = ("user", "item", "rating")
PARAMS_FILE = "model.params"
ARCHITECTURE_FILE = "model.json"
EVAL_BATCH = 65536


def parse_hidden(text: str) -> list[int]:
    """'64,64' (or the JSON list '[64, 64]' that a list hyperparameter becomes) → [64, 64]; '' → no hidden layer."""
    try:
        widths = [int(part) for part in text.strip("[] ").split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden must be comma-separated integers like '64,64', got {text!r}"
        ) from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"hidden layer widths must be positive, got {text!r}")
    return widths


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


class HyperparameterParser(argparse.ArgumentParser):
    """Bad hyperparameters raise ValueError, so they reach the failure file like every other bad input."""

    def error(self, message):
        raise ValueError(f"bad hyperparameter: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = HyperparameterParser(description="Train deep matrix factorization on (user, item, rating) CSVs.")
    parser.add_argument("--epochs", type=positive_int, default=5)
    parser.add_argument("--batch_size", type=positive_int, default=1024)
    parser.add_argument("--learning_rate", type=positive_float, default=0.001)
    parser.add_argument("--wd", type=float, default=0.0, help="weight decay (L2) applied by the optimizer")
    parser.add_argument("--user_factors", type=positive_int, default=16)
    parser.add_argument("--item_factors", type=positive_int, default=32)
    parser.add_argument("--hidden", type=parse_hidden, default=[64, 64], help="MLP widths, e.g. 64,64")
    parser.add_argument("--num_users", type=positive_int, default=None, help="default: largest index seen + 1")
    parser.add_argument("--num_items", type=positive_int, default=None, help="default: largest index seen + 1")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def hyperparameter_args(sm_hps: str | None) -> list[str]:
    """SM_HPS (a JSON object) as command-line flags, so that explicit flags given after them win."""
    if not sm_hps:
        return []
    try:
        hps = json.loads(sm_hps)
    except json.JSONDecodeError as error:
        raise ValueError(f"SM_HPS is not valid JSON ({error}): {sm_hps[:200]!r}") from None
    if not isinstance(hps, dict):
        raise ValueError(f"SM_HPS must be a JSON object of hyperparameters, got {sm_hps[:200]!r}")
    return [item for key, value in hps.items() for item in (f"--{key}", str(value))]


def read_channel(name: str, env=os.environ) -> pd.DataFrame | None:
    """Every CSV of channel ``name`` as one frame, or None when the channel was not given.

    Raises:
        ValueError: the folder has no CSV, a file lacks a column, or a value is not a number.
    """
    folder = env.get(f"SM_CHANNEL_{name.upper()}")
    if not folder or not Path(folder).is_dir():
        return None
    files = sorted(p for p in Path(folder).rglob("*.csv") if p.is_file())
    if not files:
        raise ValueError(f"channel '{name}' ({folder}) holds no .csv file; expected CSVs with header user,item,rating")
    frames = []
    for path in files:
        frame = pd.read_csv(path)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path.name} in channel '{name}' lacks column(s) {missing}; found {list(frame.columns)}")
        frames.append(frame[list(COLUMNS)])
    data = pd.concat(frames, ignore_index=True)
    for column in COLUMNS:
        if not pd.api.types.is_numeric_dtype(data[column]) or data[column].isna().any():
            raise ValueError(f"column '{column}' in channel '{name}' must hold numbers only (no blanks)")
    if not ((data["user"] >= 0).all() and (data["item"] >= 0).all()):
        raise ValueError(f"channel '{name}': user and item must be 0-based indices (no negative values)")
    return data


def as_arrays(frame: pd.DataFrame) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Compact dtypes: int32 indices and float32 ratings (12 bytes per rating)."""
    return (
        frame["user"].to_numpy(numpy.int32),
        frame["item"].to_numpy(numpy.int32),
        frame["rating"].to_numpy(numpy.float32),
    )


def check_hosts(env=os.environ) -> None:
    """This script trains on one instance; SM_HOSTS lists more than one, stop before paying for idle ones."""
    hosts = json.loads(env.get("SM_HOSTS") or "[]")
    if len(hosts) > 1:
        raise ValueError(
            f"train.py trains on a single instance, but SM_HOSTS lists {hosts} "
            f"(current host {env.get('SM_CURRENT_HOST')}); use instance_count=1"
        )


def device(env=os.environ) -> mx.Context:
    return mx.gpu(0) if int(env.get("SM_NUM_GPUS") or 0) > 0 else mx.cpu()


def batches(n: int, batch_size: int, rng: numpy.random.Generator | None = None):
    """Index slices covering range(n), shuffled when an rng is given (one permutation per epoch)."""
    order = rng.permutation(n) if rng is not None else numpy.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def rmse(net: DMF, users, items, ratings, ctx) -> float:
    squared = 0.0
    for idx in batches(len(ratings), EVAL_BATCH):
        pred = net(mx.nd.array(users[idx], ctx=ctx), mx.nd.array(items[idx], ctx=ctx)).asnumpy()
        squared += float(((pred - ratings[idx]) ** 2).sum())
    return (squared / len(ratings)) ** 0.5


def index_size(kind: str, given: int | None, *datasets) -> int:
    """The embedding table size for users or items: as given, else the largest index seen + 1."""
    column = 0 if kind == "user" else 1
    largest = max(int(data[column].max()) for data in datasets if data is not None)
    if given is None:
        return largest + 1
    if largest >= given:
        raise ValueError(
            f"{kind} index {largest} is out of range for num_{kind}s={given}; "
            f"raise num_{kind}s or re-index the data from 0"
        )
    return given


def train(args: argparse.Namespace, train_data, validation_data, ctx, model_dir: str | Path) -> DMF:
    """Adam on the squared error, one metric line per epoch.

    With validation data the model is saved after each epoch that lowers the validation RMSE (the net can
    overfit within a few epochs on small data), else once at the end. Returns the net as trained last.
    """
    mx.random.seed(args.seed)
    rng = numpy.random.default_rng(args.seed)
    users, items, ratings = train_data
    architecture = {
        "num_users": index_size("user", args.num_users, train_data, validation_data),
        "num_items": index_size("item", args.num_items, train_data, validation_data),
        "user_factors": args.user_factors,
        "item_factors": args.item_factors,
        "hidden": args.hidden,
        "global_mean": float(ratings.mean()),
    }
    net = DMF(**architecture)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": args.learning_rate, "wd": args.wd})
    loss_fn = gluon.loss.L2Loss()
    best = float("inf")
    for epoch in range(1, args.epochs + 1):
        started, squared = time.time(), mx.nd.zeros(1, ctx=ctx)
        for idx in batches(len(ratings), args.batch_size, rng):
            u, i = mx.nd.array(users[idx], ctx=ctx), mx.nd.array(items[idx], ctx=ctx)
            r = mx.nd.array(ratings[idx], ctx=ctx)
            with autograd.record():
                loss = loss_fn(net(u, i), r)
            loss.backward()
            trainer.step(len(idx))
            squared += 2 * loss.sum()  # L2Loss is half the squared error
        line = f"epoch={epoch} train_rmse={(squared.asscalar() / len(ratings)) ** 0.5:.4f}"
        if validation_data:
            validation_rmse = rmse(net, *validation_data, ctx)
            line += f" validation_rmse={validation_rmse:.4f}"
            if validation_rmse < best:
                best = validation_rmse
                save_model(net, architecture, model_dir)
        print(f"{line} epoch_seconds={time.time() - started:.1f}", flush=True)
    if not validation_data:
        save_model(net, architecture, model_dir)
    elif best == float("inf"):
        raise ValueError("training diverged (validation RMSE is not a number): lower learning_rate")
    else:
        print(f"saved the model of the epoch with the lowest validation_rmse={best:.4f}", flush=True)
    return net


def save_model(net: DMF, architecture: dict, model_dir: str | Path) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    net.save_parameters(str(model_dir / PARAMS_FILE))
    (model_dir / ARCHITECTURE_FILE).write_text(json.dumps(architecture, indent=2) + "\n")


def model_fn(model_dir: str | Path, ctx: mx.Context | None = None) -> DMF:
    """Load a model saved by this script (``model.json`` + ``model.params``)."""
    model_dir = Path(model_dir)
    architecture = json.loads((model_dir / ARCHITECTURE_FILE).read_text())
    net = DMF(**architecture)
    net.load_parameters(str(model_dir / PARAMS_FILE), ctx=ctx or mx.cpu())
    return net


def main(argv: list[str] | None = None, env=os.environ) -> None:
    args = build_parser().parse_args(
        hyperparameter_args(env.get("SM_HPS")) + list(sys.argv[1:] if argv is None else argv)
    )
    check_hosts(env)
    train_frame = read_channel("train", env)
    if train_frame is None:
        raise ValueError("no training data: SM_CHANNEL_TRAIN must name a folder of CSVs (channel 'train')")
    if train_frame.empty:
        raise ValueError("channel 'train' holds no rows")
    validation_frame = read_channel("validation", env)
    validation = as_arrays(validation_frame) if validation_frame is not None and len(validation_frame) else None
    ctx = device(env)
    print(
        f"training on {len(train_frame)} ratings, validating on {len(validation[2]) if validation else 0}, "
        f"device {ctx}, hyperparameters {vars(args)}",
        flush=True,
    )
    train(args, as_arrays(train_frame), validation, ctx, env.get("SM_MODEL_DIR") or "/opt/ml/model")


def fail(message: str, env=os.environ) -> None:
    """Report a bad input the SageMaker way: the failure file's text becomes the job's FailureReason."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    failure = env.get("SM_OUTPUT_FAILURE")
    if failure:
        Path(failure).parent.mkdir(parents=True, exist_ok=True)
        Path(failure).write_text(message)
    sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        fail(str(error))
