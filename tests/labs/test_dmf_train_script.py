"""Lab 1's script-mode entry point (train.py), run as SageMaker would: a process with an SM_* environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import common  # noqa: F401  (numpy.bool before mxnet, which train.py imports)
from common.labs import lab_folder, load_lab_module

SCRIPT = lab_folder("lab1") / "train.py"
METRIC_LINE = re.compile(r"^epoch=(\d+) train_rmse=(\d+\.\d+) validation_rmse=(\d+\.\d+)", re.MULTILINE)


train_script = load_lab_module("lab1", "train")


def write_ratings(folder: Path, n: int, seed: int, users: int = 30, items: int = 40) -> pd.DataFrame:
    """Ratings from a planted 2-factor model, rounded to 1..5, as SageMaker would find them in a channel."""
    rng = np.random.default_rng(seed)
    taste = np.random.default_rng(99).normal(size=(users + items, 2))
    u, i = rng.integers(0, users, n), rng.integers(0, items, n)
    rating = np.clip(np.round(3.5 + (taste[u] * taste[users + i]).sum(axis=1)), 1, 5)
    frame = pd.DataFrame({"user": u, "item": i, "rating": rating})
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "ratings.csv", index=False)
    return frame


@pytest.fixture
def job(tmp_path):
    """An /opt/ml-like tree with train and validation channels and the env vars the toolkit would set."""
    write_ratings(tmp_path / "input" / "data" / "train", 600, seed=1)
    validation = write_ratings(tmp_path / "input" / "data" / "validation", 100, seed=2)
    env = {
        "SM_CHANNEL_TRAIN": str(tmp_path / "input" / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(tmp_path / "input" / "data" / "validation"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_FAILURE": str(tmp_path / "output" / "failure"),
        "SM_HPS": json.dumps({"epochs": 3, "batch_size": 64, "hidden": "8,8"}),
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
    }
    return tmp_path, env, validation


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_script_trains_prints_metric_lines_and_saves_a_loadable_model(job):
    root, env, validation = job
    done = run(env, "--learning_rate", "0.01")
    assert done.returncode == 0, done.stderr
    epochs = METRIC_LINE.findall(done.stdout)
    assert [int(e[0]) for e in epochs] == [1, 2, 3]
    assert json.loads((root / "model" / "model.json").read_text())["hidden"] == [8, 8]
    net = train_script.model_fn(root / "model")
    mx = train_script.mx
    predictions = net(mx.nd.array(validation["user"].to_numpy()), mx.nd.array(validation["item"].to_numpy()))
    rmse = float(np.sqrt(((predictions.asnumpy() - validation["rating"].to_numpy()) ** 2).mean()))
    best = min(float(e[2]) for e in epochs)
    assert rmse == pytest.approx(best, abs=1e-3)  # the best epoch was kept
    assert float(re.findall(r"validation_rmse=(\d+\.\d+)", done.stdout)[-1]) == best  # SageMaker's final metric
    assert not (root / "output" / "failure").exists()


def test_a_bad_input_becomes_the_failure_reason(job):
    root, env, _ = job
    (root / "input" / "data" / "train" / "ratings.csv").write_text("userId,movieId,rating\n1,2,3\n")
    done = run(env)
    assert done.returncode == 1
    reason = (root / "output" / "failure").read_text()
    assert "ratings.csv in channel 'train' lacks column(s) ['user', 'item']" in reason
    assert "Traceback" not in done.stderr


def test_command_line_flags_override_sm_hps(job):
    _, env, _ = job
    args = train_script.build_parser().parse_args(
        train_script.hyperparameter_args(env["SM_HPS"]) + ["--epochs", "1", "--hidden", "[16, 4]"]
    )
    assert (args.epochs, args.batch_size, args.hidden) == (1, 64, [16, 4])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"SM_HPS": json.dumps({"epochs": 0})}, "bad hyperparameter: argument --epochs: must be a positive integer"),
        ({"SM_HPS": json.dumps({"layers": 3})}, "bad hyperparameter: unrecognized arguments: --layers 3"),
        ({"SM_HPS": "[1, 2]"}, "SM_HPS must be a JSON object"),
        ({"SM_HPS": json.dumps({"hidden": "64,x"})}, "hidden must be comma-separated integers"),
        ({"SM_HPS": json.dumps({"num_users": 5})}, "user index 29 is out of range for num_users=5"),
        ({"SM_HPS": json.dumps({"learning_rate": 1e30, "epochs": 1})}, "training diverged"),
        ({"SM_HOSTS": json.dumps(["algo-1", "algo-2"])}, "trains on a single instance"),
        ({"SM_CHANNEL_TRAIN": "/nonexistent"}, "no training data: SM_CHANNEL_TRAIN"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(job, change, message):
    _, env, _ = job
    with pytest.raises(ValueError, match=re.escape(message)):
        train_script.main([], {**env, **change})


def test_a_channel_without_csv_files_is_refused(job):
    root, env, _ = job
    (root / "input" / "data" / "train" / "ratings.csv").rename(root / "input" / "data" / "train" / "ratings.txt")
    with pytest.raises(ValueError, match="channel 'train' .* holds no .csv file"):
        train_script.main([], env)


def test_non_numeric_ratings_are_refused(job):
    root, env, _ = job
    (root / "input" / "data" / "validation" / "ratings.csv").write_text("user,item,rating\n1,2,good\n")
    with pytest.raises(ValueError, match="column 'rating' in channel 'validation' must hold numbers only"):
        train_script.main([], env)


def test_training_without_a_validation_channel_reports_train_rmse_only(job, capsys):
    root, env, _ = job
    env = {k: v for k, v in env.items() if k != "SM_CHANNEL_VALIDATION"}
    train_script.main(["--epochs", "1"], env)
    assert re.search(r"^epoch=1 train_rmse=\d+\.\d+ epoch_seconds", capsys.readouterr().out, re.MULTILINE)
    assert (root / "model" / "model.params").exists()
