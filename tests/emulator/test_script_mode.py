"""Script mode: SDK v3 ``ModelTrainer(source_code=...)`` on a framework image runs the user's entry point.

The jobs run the SDK's own drivers (``sm_train.sh``, ``environment.py``, ``basic_script_driver.py``) with
``/opt/ml`` mapped to the job folder, and a tiny entry script written here. Only the first test waits with
ModelTrainer (it polls every 5 s); the others poll with boto3.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
import textwrap
import uuid
import zipfile
from pathlib import Path

import psutil
import pytest
from emulator_helpers import BUCKET, REGION, ROLE, channel, finished_training, put_csv, training_request, wait_for

from sagemaker_emulator.algorithms import toolkit
from sagemaker_emulator.algorithms.framework import FRAMEWORKS, container_path, failure_reason
from sagemaker_emulator.algorithms.layout import create_layout
from sagemaker_emulator.algorithms.registry import FRAMEWORK, PLUGINS
from sagemaker_emulator.jobs.s3 import relative_key

INSTANCE_TYPE = "ml.c5.xlarge"  # a GPU type (ml.p3.2xlarge) gives the -gpu- image; the emulator runs both alike
MXNET = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38"

ENTRY_SCRIPT = """
    import argparse, json, os, pathlib
    from helper import read_rows  # a sibling module of the source folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning_rate", type=float)
    parser.add_argument("--hidden")
    args = parser.parse_args()
    rows = read_rows(os.environ["SM_CHANNEL_TRAIN"])
    for epoch in range(1, args.epochs + 1):
        print(f"epoch={epoch} loss={1 / epoch:.4f}", flush=True)
    seen = {
        "args": vars(args), "hps": json.loads(os.environ["SM_HPS"]), "rows": rows,
        "num_gpus": int(os.environ["SM_NUM_GPUS"]), "hosts": json.loads(os.environ["SM_HOSTS"]),
        "current_host": os.environ["SM_CURRENT_HOST"], "job": os.environ["TRAINING_JOB_NAME"],
    }
    pathlib.Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(json.dumps(seen))
    pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"], "notes.txt").write_text("extra output")
"""
HELPER = """
    import pathlib

    def read_rows(folder):
        files = sorted(pathlib.Path(folder).glob("*.csv"))
        return [line.split(",") for path in files for line in path.read_text().split()]
"""


def _source(tmp_path: Path, script: str, **others: str) -> str:
    folder = tmp_path / "src"
    folder.mkdir()
    for name, text in {"train.py": script, **others}.items():
        (folder / name).write_text(textwrap.dedent(text))
    return str(folder)


def _trainer(source_dir: str, hyperparameters: dict | None = None):
    """What a notebook writes: the MXNet training image, the source folder, an entry script."""
    from sagemaker.core import image_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, OutputDataConfig, SourceCode
    from sagemaker.train import ModelTrainer

    image = image_uris.retrieve(
        "mxnet", REGION, version="1.9.0", py_version="py38", instance_type=INSTANCE_TYPE, image_scope="training"
    )
    return ModelTrainer(
        training_image=image,
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        base_job_name="script",
        source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
        hyperparameters=hyperparameters or {},
        compute=Compute(instance_type=INSTANCE_TYPE, instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/script/output"),
    )


def _train_channel(s3):
    from sagemaker.core.training.configs import InputData

    put_csv(s3, "script/train/a.csv", "1,2\n3,4\n")
    put_csv(s3, "script/train/b.csv", "5,6\n")
    return [InputData(channel_name="train", data_source=f"s3://{BUCKET}/script/train", content_type="text/csv")]


def _tar_members(s3, uri: str) -> dict[str, bytes]:
    key = uri.removeprefix(f"s3://{BUCKET}/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _started(trainer, sm, s3) -> dict:
    trainer.train(input_data_config=_train_channel(s3), wait=False)
    return finished_training(sm, trainer._latest_training_job.training_job_name)


def test_model_trainer_runs_the_entry_script(sdk, s3, sm, tmp_path, caplog):
    from sagemaker.core.training.configs import MetricDefinition

    hyperparameters = {"epochs": 2, "learning_rate": 0.01, "hidden": [64, 32]}
    trainer = _trainer(_source(tmp_path, ENTRY_SCRIPT, **{"helper.py": HELPER}), hyperparameters)
    trainer.with_metric_definitions([MetricDefinition(name="train:loss", regex=r"loss=([0-9.]+)")])
    with caplog.at_level(logging.INFO, logger="sagemaker.core.resources"):
        trainer.train(input_data_config=_train_channel(s3), wait=True, logs=True)

    job = sm.describe_training_job(TrainingJobName=trainer._latest_training_job.training_job_name)
    assert job["TrainingJobStatus"] == "Completed"
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("train:loss", 0.5)]
    seen = json.loads(_tar_members(s3, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen == {
        "args": {"epochs": 2, "learning_rate": 0.01, "hidden": "[64, 32]"},
        "hps": hyperparameters,
        "rows": [["1", "2"], ["3", "4"], ["5", "6"]],
        "num_gpus": 0,
        "hosts": ["algo-1"],
        "current_host": "algo-1",
        "job": job["TrainingJobName"],
    }
    output = job["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    assert _tar_members(s3, output) == {"notes.txt": b"extra output"}
    logged = [record.getMessage() for record in caplog.records]
    assert any("epoch=2 loss=0.5000" in line for line in logged)
    assert any("taken as satisfied by this local environment" in line for line in logged)


def test_a_failing_script_fails_the_job_with_its_error(sdk, s3, sm, tmp_path):
    script = 'print("loading")\nraise ValueError("learning_rate must be positive, got -1")\n'
    job = _started(_trainer(_source(tmp_path, script)), sm, s3)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    # what AWS reports (the SDK driver's failure file), then the script's own error from the log
    assert reason.startswith("AlgorithmError: Traceback (most recent call last):")
    assert "subprocess.CalledProcessError: Command" in reason
    assert reason.endswith("\nThe script's error: ValueError: learning_rate must be positive, got -1")
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{job['TrainingJobName']}/output/model.tar.gz")


def test_the_scripts_failure_file_is_the_failure_reason(sdk, s3, sm, tmp_path):
    script = """
        import os, sys
        open(os.environ["SM_OUTPUT_FAILURE"], "w").write("channel 'train' holds no rows")
        sys.exit(3)
    """
    job = _started(_trainer(_source(tmp_path, script)), sm, s3)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: channel 'train' holds no rows"


def _running(marker: str) -> list[int]:
    """Processes of this machine whose command line holds ``marker`` (zombies are not running)."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline", "status"])
        if marker in (process.info["cmdline"] or []) and process.info["status"] != psutil.STATUS_ZOMBIE
    ]


def test_stopping_ends_the_script_and_uploads_what_it_saved(sdk, s3, sm, logs, tmp_path):
    """The script's pid is its sandbox's, so the test finds it by a marker among its arguments instead."""
    script = """
        import os, pathlib, time
        pathlib.Path(os.environ["SM_MODEL_DIR"], "partial.txt").write_text("epoch 1")
        print("sleeping", flush=True)
        time.sleep(120)
    """
    marker = f"script-{uuid.uuid4().hex}"
    trainer = _trainer(_source(tmp_path, script), {"marker": marker})
    trainer.train(input_data_config=_train_channel(s3), wait=False)
    name = trainer._latest_training_job.training_job_name
    wait_for(
        lambda: (
            logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", filterPattern="sleeping")["events"]
            if logs.describe_log_groups()["logGroups"]
            else []
        ),
        bool,
    )
    assert _running(marker)
    sm.stop_training_job(TrainingJobName=name)
    job = finished_training(sm, name)
    assert job["TrainingJobStatus"] == "Stopped"
    assert _tar_members(s3, job["ModelArtifacts"]["S3ModelArtifacts"]) == {"partial.txt": b"epoch 1"}
    wait_for(lambda: _running(marker), lambda running: not running, timeout=10)


EPOCHS_SCRIPT = """
    import argparse, json, os, pathlib, time

    parser = argparse.ArgumentParser()
    parser.add_argument("--start", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--pause", type=float)
    args = parser.parse_args()
    for epoch in range(1, args.epochs + 1):
        print(f"epoch={epoch} loss={args.start / epoch:.4f}", flush=True)
        time.sleep(args.pause)
    seen = {
        "args": vars(args), "hps": json.loads(os.environ["SM_HPS"]), "channels": json.loads(os.environ["SM_CHANNELS"])
    }
    pathlib.Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(json.dumps(seen))
"""


def test_sdk_v3_tuner_runs_a_script_and_stops_the_clearly_worse_trial_early(sdk, s3, sm, tmp_path):
    """AWS's v3 tuning example's shape: HyperparameterTuner over a ModelTrainer with SourceCode, early stopping Auto.

    Grid order: losses start/epoch for start 1, 0.9, then 8. The third is worse at its first epoch than the median
    of the earlier trials' running averages, so it is stopped; the first two run all their epochs.
    """
    from sagemaker.core.parameter import CategoricalParameter
    from sagemaker.train.tuner import HyperparameterTuner

    trainer = _trainer(_source(tmp_path, EPOCHS_SCRIPT), {"epochs": 25, "pause": 0.2})
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name="train:loss",
        metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
        objective_type="Minimize",
        hyperparameter_ranges={"start": CategoricalParameter(["1", "0.9", "8"])},
        strategy="Grid",
        max_jobs=3,
        max_parallel_jobs=1,
        early_stopping_type="Auto",
    )
    tuner.tune(inputs=_train_channel(s3), job_name="script-tuning", wait=True)

    assert tuner.describe().hyper_parameter_tuning_job_status == "Completed"
    trials = sorted(tuner.analytics().dataframe().to_dict("records"), key=lambda t: t["TrainingJobName"])
    assert [(t["start"], t["TrainingJobStatus"]) for t in trials] == [
        (1.0, "Completed"),
        (0.9, "Completed"),
        (8.0, "Stopped"),
    ]
    assert tuner.best_training_job() == trials[1]["TrainingJobName"]
    done = sm.describe_training_job(TrainingJobName=trials[0]["TrainingJobName"])
    seen = json.loads(_tar_members(s3, done["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen == {
        "args": {"start": 1.0, "epochs": 25, "pause": 0.2},
        "hps": {"start": 1, "epochs": 25, "pause": 0.2},
        "channels": ["sm_drivers", "train"],
    }
    stopped = sm.describe_training_job(TrainingJobName=trials[2]["TrainingJobName"])
    stopping = next(t for t in stopped["SecondaryStatusTransitions"] if t["Status"] == "Stopping")
    assert re.fullmatch(
        r"Stopped early by hyperparameter tuning job script-tuning \(TrainingJobEarlyStoppingType Auto\): "
        r"train:loss at epoch \d+ was [0-9.]+, above [0-9.]+, the median of 2 earlier training jobs' running "
        r"averages at that epoch\.",
        stopping["StatusMessage"],
    )
    assert stopped["FinalMetricDataList"][0]["Value"] > trials[0]["FinalObjectiveValue"]


def test_a_framework_image_needs_an_entry_point(sm, s3):
    request = training_request("no-entry", [channel("train", put_csv(s3, "n/a.csv", "1\n"))], image=MXNET)
    sm.create_training_job(**request)
    job = finished_training(sm, "no-entry")
    assert job["FailureReason"].startswith(
        "ClientError: A framework image runs the job's own code, but AlgorithmSpecification.ContainerEntrypoint "
        "is empty and no 'sagemaker_program' hyperparameter names a script."
    )


def _put_sourcedir(s3, key: str, files: dict[str, bytes]) -> str:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, body in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    s3.put_object(Bucket=BUCKET, Key=key, Body=archive.getvalue())
    return f"s3://{BUCKET}/{key}"


def _wheel(name: str, module: str) -> bytes:
    """A minimal pure-Python wheel holding ``<name>.py``, so pip installs it offline."""
    buffer = io.BytesIO()
    info = f"{name}-0.1.dist-info"
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(f"{name}.py", module)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()


def test_the_toolkit_runs_sagemaker_program_with_its_arguments_environment_and_requirements(sm, s3):
    """What SDK v2's framework estimators send: JSON-encoded hyperparameters, the code as a sourcedir.tar.gz."""
    script = b"""
import json, os, pathlib, sys
import tinydep
packages = os.environ["SAGEMAKER_EMULATOR_ENVIRONMENTS"]  # requirements' environments, cached by hash
pathlib.Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(json.dumps({
    "argv": sys.argv[1:], "dep": tinydep.VALUE, "dep_in_job": tinydep.__file__.startswith(packages),
    "hps": json.loads(os.environ["SM_HPS"]), "hp_layers": os.environ["SM_HP_LAYERS"],
    "train": os.listdir(os.environ["SM_CHANNEL_TRAIN"]),
    "env": json.loads(os.environ["SM_TRAINING_ENV"])["hyperparameters"],
}))
"""
    wheel = "tinydep-0.1-py3-none-any.whl"
    source = _put_sourcedir(
        s3,
        "toolkit/sourcedir.tar.gz",
        {"train.py": script, "requirements.txt": f"./{wheel}\n".encode(), wheel: _wheel("tinydep", "VALUE = 7\n")},
    )
    hyperparameters = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": json.dumps(source),
        "sagemaker_container_log_level": "20",
        "sagemaker_region": f'"{REGION}"',
        "_tuning_objective_metric": "loss",
        "layers": "[64, 32]",
        "lr": "0.1",
        "k": '"knn"',
    }
    request = training_request(
        "toolkit-run",
        [channel("train", put_csv(s3, "toolkit/a.csv", "1\n"))],
        image=MXNET,
        HyperParameters=hyperparameters,
    )
    sm.create_training_job(**request)
    job = finished_training(sm, "toolkit-run")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(_tar_members(s3, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen == {
        "argv": ["-k", "knn", "--layers", "[64, 32]", "--lr", "0.1"],
        "dep": 7,
        "dep_in_job": True,
        "hps": {"k": "knn", "layers": [64, 32], "lr": 0.1},
        "hp_layers": "[64,32]",
        "train": ["a.csv"],
        "env": {"k": "knn", "layers": [64, 32], "lr": 0.1},
    }


def test_the_toolkits_hyperparameters_split_and_become_arguments():
    own, user = toolkit.split(
        {
            "sagemaker_program": '"train.py"',
            "sagemaker_mpi_enabled": "true",
            "_tuning_objective_metric": "loss",
            "x": "1",
        }
    )
    assert own == {"sagemaker_program": "train.py", "sagemaker_mpi_enabled": True, "_tuning_objective_metric": "loss"}
    assert user == {"x": 1}
    assert toolkit.user_arguments({"b": {"z": 1, "a": 2}, "alpha": None, "a": True}) == [
        "-a",
        "True",
        "--alpha",
        "",
        "-b",
        "a=2,z=1",
    ]


@pytest.mark.parametrize(
    "hyperparameters, reason",
    [
        (
            {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"/home/me/src"'},
            "sagemaker_submit_directory must be an S3 URI of a sourcedir.tar.gz, got '/home/me/src'.",
        ),
        (
            {"sagemaker_program": '"train.py"'},
            "sagemaker_program is 'train.py' but sagemaker_submit_directory is missing: the code has no source.",
        ),
        (
            {"sagemaker_program": '"main.py"', "sagemaker_submit_directory": f'"s3://{BUCKET}/toolkit/src.tar.gz"'},
            f"sagemaker_program 'main.py' is not in sagemaker_submit_directory s3://{BUCKET}/toolkit/src.tar.gz.",
        ),
    ],
)
def test_a_toolkit_job_without_its_program_fails_with_a_client_error(sm, s3, hyperparameters, reason):
    _put_sourcedir(s3, "toolkit/src.tar.gz", {"train.py": b"print('hi')\n"})
    request = training_request(
        "toolkit-fault", [channel("train", put_csv(s3, "t/a.csv", "1\n"))], image=MXNET, HyperParameters=hyperparameters
    )
    sm.create_training_job(**request)
    assert finished_training(sm, "toolkit-fault")["FailureReason"] == f"ClientError: {reason}"


def test_a_sourcedir_with_a_member_outside_its_folder_fails_the_job_and_writes_nothing_outside(sm, s3, tmp_path):
    """A hostile sourcedir.tar.gz: its ``../`` member is refused before the script could run."""
    escape = f"../../../../../../../../..{tmp_path}/escaped.py"
    source = _put_sourcedir(s3, "toolkit/hostile.tar.gz", {"train.py": b"print('hi')\n", escape: b"owned = True\n"})
    hyperparameters = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(source)}
    request = training_request(
        "toolkit-hostile",
        [channel("train", put_csv(s3, "t/a.csv", "1\n"))],
        image=MXNET,
        HyperParameters=hyperparameters,
    )
    sm.create_training_job(**request)
    reason = finished_training(sm, "toolkit-hostile")["FailureReason"]
    assert reason.startswith(f"ClientError: sagemaker_submit_directory {source} holds a member outside its folder")
    assert not (tmp_path / "escaped.py").exists()


def test_a_builtin_image_refuses_an_entry_point(sm, s3):
    request = training_request("builtin-entry", [channel("train", put_csv(s3, "b/a.csv", "1,2\n"))])
    request["AlgorithmSpecification"].update(ContainerEntrypoint=["/bin/bash"], ContainerArguments=["-c", "true"])
    sm.create_training_job(**request)
    job = finished_training(sm, "builtin-entry")
    assert job["FailureReason"] == (
        f"ClientError: The image '{request['AlgorithmSpecification']['TrainingImage']}' runs a built-in algorithm; "
        "the local SageMaker emulator runs AlgorithmSpecification.ContainerEntrypoint/ContainerArguments only for "
        "framework images."
    )


def test_container_paths_move_under_the_job_folder():
    root = Path("/tmp/job/opt_ml")
    assert container_path("cd /opt/ml/input/data/code && /opt/ml", root) == (
        "cd /tmp/job/opt_ml/input/data/code && /tmp/job/opt_ml"
    )
    assert container_path("/opt/mlflow /opt/ml.d /opt/ml_x", root) == "/opt/mlflow /opt/ml.d /opt/ml_x"


def test_a_prefix_without_its_slash_is_still_a_folder():
    assert relative_key("p/input/code", "p/input/code/train.py") == "train.py"  # what ModelTrainer uploads
    assert relative_key("p/input/code/", "p/input/code/lib/x.py") == "lib/x.py"
    assert relative_key("data/train.csv", "data/train.csv") == "train.csv"
    assert relative_key("data/tr", "data/train/a.csv") == "train/a.csv"


def test_every_framework_image_names_its_framework():
    assert {repo for repo, module in PLUGINS.items() if module == FRAMEWORK} == set(FRAMEWORKS)


def test_without_a_failure_file_the_reason_is_the_exit_code_and_the_last_lines(tmp_path):
    layout = create_layout(tmp_path / "opt_ml", {}, {})
    output = [f"line {n}\n" for n in range(9)]
    assert failure_reason(layout, 2, output) == (
        "the training container exited with code 2\nLast lines of output:\nline 4\nline 5\nline 6\nline 7\nline 8"
    )


def test_a_long_failure_file_keeps_its_end_within_awss_limit(tmp_path):
    layout = create_layout(tmp_path / "opt_ml", {}, {})
    layout.failure_file.write_text("x" * 2000 + " the end")
    reason = failure_reason(layout, 1, ["KeyError: 'rating'\n"])
    assert len("AlgorithmError: " + reason) == 1024
    assert reason.startswith("...x") and reason.endswith("x the end\nThe script's error: KeyError: 'rating'")
