"""State that outlives the emulator: stop it (or kill it) and start it again on the same home, and find everything.

These run the real thing, ``python -m sagemaker_emulator serve --home`` in a child process, because a restart is
a new process (moto keeps its data in process-wide globals, so two emulators in one process would share it).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import boto3
import pytest
from botocore.config import Config
from emulator_helpers import (
    BUCKET,
    EXIT_HANG_SECONDS,
    IMAGE,
    REGION,
    channel,
    deploy,
    finished_training,
    model_artifact,
    put_csv,
    training_request,
    wait_for,
)

from sagemaker_emulator.resources.training_jobs import INTERRUPTED
from sagemaker_emulator.store import home as homes


class Served:
    """An emulator serving ``home`` in a child process, with clients signed by its key."""

    def __init__(self, home):
        self.home = home
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emulator", "serve", "--home", str(home), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.banner = self.process.stdout.readline()
        running = wait_for(lambda: homes.find(home), lambda found: found is not None, timeout=60)
        self.url, self.credentials = running.url, running.credentials

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}),
            **self.credentials.as_boto3(),
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(EXIT_HANG_SECONDS) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "home"
    homes.stop(tmp_path / "home")


def _invoke(runtime, name: str) -> str:
    return runtime.invoke_endpoint(EndpointName=name, Body=b"1,2\n", ContentType="text/csv")["Body"].read().decode()


def test_a_restart_keeps_objects_resources_logs_and_serving_endpoints(home):
    first = Served(home)
    s3, sm = first.client("s3"), first.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="notes/kept.txt", Body=b"still here", ContentType="text/plain")
    data = put_csv(s3, "data/train.csv", "1,0\n3,0\n")
    sm.create_training_job(**training_request("done", [channel("train", data)]))
    job = finished_training(sm, "done")
    assert job["TrainingJobStatus"] == "Completed"
    deploy(sm, "kept", model_artifact(s3, "model/model.tar.gz", 4.5))
    before = _invoke(first.client("sagemaker-runtime"), "kept")
    time.sleep(1.5)  # the state savers run every 0.5 s (SageMaker) and 1 s (moto)
    first.stop()

    started = time.monotonic()
    second = Served(home)
    assert second.banner.startswith("SageMaker emulator listening on") and "State: restored 1 bucket (" in second.banner
    sm, runtime = second.client("sagemaker"), second.client("sagemaker-runtime")
    assert second.client("s3").get_object(Bucket=BUCKET, Key="notes/kept.txt")["Body"].read() == b"still here"
    again = sm.describe_training_job(TrainingJobName="done")
    assert (again["TrainingJobStatus"], again["FinalMetricDataList"], again["ModelArtifacts"]) == (
        "Completed",
        job["FinalMetricDataList"],
        job["ModelArtifacts"],
    )
    streams = second.client("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
    assert streams and streams[0]["logStreamName"].startswith("done/algo-1-")
    assert sm.describe_endpoint(EndpointName="kept")["EndpointStatus"] == "InService"
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["kept"]
    assert wait_for(lambda: _try(runtime, "kept"), lambda answer: answer is not None, timeout=60) == before
    print(f"restart to a serving endpoint: {time.monotonic() - started:.1f} s")
    second.stop()


def _try(runtime, name: str) -> str | None:
    try:
        return _invoke(runtime, name)
    except runtime.exceptions.ServiceUnavailable:
        return None


def test_a_job_running_when_the_emulator_stops_is_failed_with_the_reason(home):
    first = Served(home)
    s3, sm = first.client("s3"), first.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    data = put_csv(s3, "data/train.csv", "1,0\n")
    sm.create_training_job(
        **training_request("long", [channel("train", data)], HyperParameters={"sleep_seconds": "600"})
    )
    wait_for(lambda: sm.describe_training_job(TrainingJobName="long")["SecondaryStatus"], lambda s: s == "Training")
    first.stop()
    second = Served(home)
    job = second.client("sagemaker").describe_training_job(TrainingJobName="long")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"], job["FailureReason"]) == ("Failed", "Failed", INTERRUPTED)
    second.stop()


def test_a_killed_emulator_comes_back_with_what_it_had_saved(home):
    first = Served(home)
    s3, sm = first.client("s3"), first.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="saved.txt", Body=b"saved")
    sm.create_model(
        ModelName="m1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn="arn:aws:iam::123456789012:role/R"
    )
    wait_for(lambda: _saved(home), bool)  # S3 is saved a second after a change at most (on a quiet machine)
    first.kill()
    assert homes.find(home) is None  # the lock died with the process: no stale "running" emulator
    second = Served(home)
    assert second.client("s3").get_object(Bucket=BUCKET, Key="saved.txt")["Body"].read() == b"saved"
    assert second.client("sagemaker").describe_model(ModelName="m1")["ModelName"] == "m1"
    second.stop()


def _saved(home) -> bool:
    """Whether the object and the model of the test above are in the state on disk (each file is replaced whole)."""
    try:
        objects = json.loads((home / "state" / "moto" / "index.json").read_text())["s3"][BUCKET]["objects"]
        models = json.loads((home / "state" / "sagemaker.json").read_text())["regions"][REGION]["models"]
    except (FileNotFoundError, KeyError):
        return False
    return "saved.txt" in objects and any(model["name"] == "m1" for model in models)


def test_deleted_resources_stay_deleted(home):
    first = Served(home)
    s3, sm = first.client("s3"), first.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    deploy(sm, "gone", model_artifact(s3, "model/model.tar.gz"))
    sm.delete_endpoint(EndpointName="gone")
    sm.delete_endpoint_config(EndpointConfigName="gone")
    sm.delete_model(ModelName="gone")
    s3.delete_object(Bucket=BUCKET, Key="model/model.tar.gz")
    wait_for(lambda: sm.list_endpoints()["Endpoints"], lambda endpoints: endpoints == [])
    time.sleep(1.5)
    first.stop()
    second = Served(home)
    sm = second.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert second.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    second.stop()


def test_a_tuning_job_running_when_the_emulator_stops_is_failed_and_keeps_its_trials(home):
    from test_tuning_jobs import tuning_request

    from sagemaker_emulator.resources.tuning_jobs import INTERRUPTED as TUNING_INTERRUPTED

    first = Served(home)
    s3, sm = first.client("s3"), first.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    channels = [
        channel("train", put_csv(s3, "tune/train.csv", "1,0\n")),
        channel("test", put_csv(s3, "t.csv", "1,0\n")),
    ]
    sm.create_hyper_parameter_tuning_job(
        **tuning_request("tune-long", channels, StaticHyperParameters={"sleep_seconds": "600"}, RandomSeed=1)
    )
    listed = wait_for(
        lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-long"),
        lambda answer: len(answer["TrainingJobSummaries"]) == 2,
    )
    first.stop()
    second = Served(home)
    sm = second.client("sagemaker")
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-long")
    assert (job["HyperParameterTuningJobStatus"], job["FailureReason"]) == ("Failed", TUNING_INTERRUPTED)
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    again = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-long")
    assert [t["TunedHyperParameters"] for t in again["TrainingJobSummaries"]] == [
        t["TunedHyperParameters"] for t in listed["TrainingJobSummaries"]
    ]
    second.stop()
