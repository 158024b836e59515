"""Training jobs through boto3: the container contract, statuses, logs, metrics, artifacts, failures, stops."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import (
    ACCOUNT,
    BUCKET,
    REGION,
    channel,
    error_of,
    finished_training,
    put_csv,
    training_request,
    wait_for,
)

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def data(s3):
    put_csv(s3, "data/train/part-1.csv", "1,0.5\n2,0.5\n")
    put_csv(s3, "data/train/part-2.csv", "3,0.5\n")
    return {"train": f"s3://{BUCKET}/data/train/", "test": put_csv(s3, "data/test.csv", "2,1\n4,1\n")}


def _model_file(s3, uri: str) -> dict:
    key = uri.split(f"s3://{BUCKET}/", 1)[1]
    archive = tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    return json.loads(archive.extractfile("mean.json").read())


def test_job_trains_and_reports_like_sagemaker(sm, s3, data):
    request = training_request(
        "mean-ok", [channel("train", data["train"]), channel("test", data["test"])], HyperParameters={"scale": "2"}
    )
    sm.create_training_job(**request)
    assert sm.describe_training_job(TrainingJobName="mean-ok")["TrainingJobStatus"] == "InProgress"
    job = finished_training(sm, "mean-ok")
    assert job["TrainingJobStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all("StartTime" in t and "EndTime" in t for t in job["SecondaryStatusTransitions"])
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/output/mean-ok/output/model.tar.gz"
    assert _model_file(s3, job["ModelArtifacts"]["S3ModelArtifacts"]) == {"value": 4.0}
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {"train:mse": pytest.approx(14 / 3), "test:mse": 2.0}
    assert [d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]] == ["train:mse", "test:mse"]
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]
    assert job["TrainingJobArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/mean-ok"


def test_log_stream_pages_to_an_empty_page(sm, logs, data):
    sm.create_training_job(**training_request("mean-logs", [channel("train", data["train"])]))
    finished_training(sm, "mean-logs")
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="mean-logs/")["logStreams"]
    assert len(streams) == 1 and re.fullmatch(r"mean-logs/algo-1-\d+", streams[0]["logStreamName"])
    messages, token = [], None
    for _ in range(10):
        page = logs.get_log_events(
            logGroupName=GROUP,
            logStreamName=streams[0]["logStreamName"],
            startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        if not page["events"]:
            break
        messages += [event["message"] for event in page["events"]]
        token = page["nextForwardToken"]
    else:
        pytest.fail("GetLogEvents never returned an empty page")
    assert any("#quality_metric: host=algo-1, train mse <loss>=" in m for m in messages)


def test_manifest_channel_and_custom_metric(sm, s3, data):
    manifest = [{"prefix": f"s3://{BUCKET}/data/"}, "train/part-1.csv", "train/part-2.csv"]
    s3.put_object(Bucket=BUCKET, Key="manifests/train.manifest", Body=json.dumps(manifest).encode())
    request = training_request(
        "mean-manifest",
        [channel("train", f"s3://{BUCKET}/manifests/train.manifest", data_type="ManifestFile")],
        HyperParameters={"statistic": "median"},
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "model:value", "Regex": r"= (\S+)$"}]
    sm.create_training_job(**request)
    job = finished_training(sm, "mean-manifest")
    assert job["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["model:value"] == 2.0


def test_duplicate_name_is_resource_in_use(sm, data):
    sm.create_training_job(**training_request("mean-dup", [channel("train", data["train"])]))
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**training_request("mean-dup", [channel("train", data["train"])]))
    assert error_of(excinfo) == (
        "ResourceInUse",
        "Training job names must be unique within an AWS account and region, and a training job with this name "
        f"already exists (arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/mean-dup)",
    )
    finished_training(sm, "mean-dup")


def test_describe_unknown_job(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.describe_training_job(TrainingJobName="ghost")
    assert error_of(excinfo) == ("ValidationException", "Requested resource not found.")


def test_more_instances_than_the_quota_exceed_it(sm, data):
    request = training_request("mean-big", [channel("train", data["train"])])
    request["ResourceConfig"]["InstanceCount"] = 5
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**request)
    assert error_of(excinfo) == (
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.m5.large for training job usage' is 4 Instances, with current "
        "utilization of 0 Instances and a request delta of 5 Instances. Please use AWS Service Quotas to request "
        "an increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an "
        "increase for this quota.",
    )


def _failure(sm, name: str, request: dict) -> str:
    sm.create_training_job(**request)
    job = finished_training(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    return job["FailureReason"]


def test_unknown_image_fails_naming_the_supported_ones(sm, data):
    image = f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1"
    reason = _failure(sm, "xgb", training_request("xgb", [channel("train", data["train"])], image=image))
    assert reason.startswith(
        f"ClientError: The image '{image}' (repository 'sagemaker-xgboost') is not supported by the local SageMaker "
        "emulator. Supported image repositories: "
    )
    assert "factorization-machines" in reason and "mean-regressor" in reason


def test_missing_required_channel_fails(sm, data):
    reason = _failure(sm, "no-train", training_request("no-train", [channel("test", data["test"])]))
    assert reason == (
        "ClientError: Unable to initialize the algorithm. Failed to validate input data configuration: required "
        "channel(s) 'train' not given (caused by ValidationError)"
    )


def test_empty_prefix_fails(sm, data):
    empty = f"s3://{BUCKET}/nothing-here/"
    reason = _failure(sm, "empty", training_request("empty", [channel("train", empty)]))
    assert reason == (
        f'ClientError: Data download failed: No S3 objects found under S3 URL "{empty}" given in input data source. '
        f"Please ensure that the bucket exists in the selected region ({REGION}), that objects exist under that S3 "
        f'prefix, and that the role "arn:aws:iam::{ACCOUNT}:role/SageMakerRole" has "s3:ListBucket" permissions on '
        f'bucket "{BUCKET}".'
    )


def test_unreadable_data_fails(sm, s3):
    bad = put_csv(s3, "bad/data.csv", "1,2\nnot,a,number\n")
    reason = _failure(sm, "bad-data", training_request("bad-data", [channel("train", bad)]))
    assert reason.startswith("ClientError: Unable to read the 'train' channel's file data.csv as CSV numbers: ")


def test_bad_hyperparameter_fails(sm, data):
    request = training_request("bad-hp", [channel("train", data["train"])], HyperParameters={"scale": "-1"})
    assert _failure(sm, "bad-hp", request) == (
        "ClientError: Invalid value '-1' for hyperparameter 'scale': expected a number in (0, inf) "
        "(caused by ValidationError)"
    )


def _log_lines(logs, job: str) -> list[str]:
    try:
        streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    if not streams:
        return []
    page = logs.get_log_events(logGroupName=GROUP, logStreamName=streams[0]["logStreamName"], startFromHead=True)
    return [event["message"] for event in page["events"]]


def test_stop_uploads_what_was_saved(sm, s3, logs, data):
    request = training_request("mean-stop", [channel("train", data["train"])], HyperParameters={"sleep_seconds": "60"})
    sm.create_training_job(**request)
    wait_for(lambda: _log_lines(logs, "mean-stop"), lambda lines: any("Saved the model" in line for line in lines))
    sm.stop_training_job(TrainingJobName="mean-stop")
    assert sm.describe_training_job(TrainingJobName="mean-stop")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = finished_training(sm, "mean-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    assert _model_file(s3, job["ModelArtifacts"]["S3ModelArtifacts"]) == {"value": 2.0}
    with pytest.raises(ClientError) as excinfo:
        sm.stop_training_job(TrainingJobName="mean-stop")
    assert error_of(excinfo) == (
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )


def test_max_runtime_stops_the_job(sm, data):
    request = training_request(
        "mean-slow",
        [channel("train", data["train"])],
        HyperParameters={"sleep_seconds": "60"},
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    sm.create_training_job(**request)
    job = finished_training(sm, "mean-slow", timeout=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert (
        job["SecondaryStatusTransitions"][-1]["StatusMessage"] == "Training job exceeded MaxRuntimeInSeconds provided"
    )


def test_two_jobs_run_at_once(sm, data):
    for name in ("mean-a", "mean-b"):
        sm.create_training_job(
            **training_request(name, [channel("train", data["train"])], HyperParameters={"sleep_seconds": "3"})
        )
    both = wait_for(
        lambda: [sm.describe_training_job(TrainingJobName=n)["SecondaryStatus"] for n in ("mean-a", "mean-b")],
        lambda statuses: statuses == ["Training", "Training"],
    )
    assert both == ["Training", "Training"]
    assert [finished_training(sm, n)["TrainingJobStatus"] for n in ("mean-a", "mean-b")] == ["Completed", "Completed"]


def test_list_filters_by_status(sm, data):
    sm.create_training_job(**training_request("list-ok", [channel("train", data["train"])]))
    sm.create_training_job(**training_request("list-bad", [channel("test", data["test"])]))
    finished_training(sm, "list-ok"), finished_training(sm, "list-bad")
    failed = sm.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert [(j["TrainingJobName"], j["SecondaryStatus"]) for j in failed] == [("list-bad", "Failed")]
    everything = sm.list_training_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=1)
    assert [j["TrainingJobName"] for j in everything["TrainingJobSummaries"]] == ["list-bad"]
    assert "NextToken" in everything


def test_a_job_starts_from_a_clean_environment_not_the_hosts(monkeypatch):
    from sagemaker_emulator.jobs.process import container_environment

    monkeypatch.setenv("WORKSHOP_DATASET", "ml-latest-small")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-containers")
    monkeypatch.setenv("MXNET_ENGINE_TYPE", "NaiveEngine")
    env = container_environment()
    assert "WORKSHOP_DATASET" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["MXNET_ENGINE_TYPE"] == "NaiveEngine" and env["PATH"]


class _AheadClock:
    """The wall clock moved 50 minutes ahead (CloudWatch takes events up to two hours in the future)."""

    def now(self) -> float:
        return time.time() + 3000


def test_log_stream_name_and_event_times_come_from_the_emulators_clock(emulator, sm, logs, data, monkeypatch):
    monkeypatch.setattr(emulator.services, "clock", _AheadClock())
    sm.create_training_job(**training_request("mean-clock", [channel("train", data["train"])]))
    job = finished_training(sm, "mean-clock")
    ahead = time.time() + 2900
    assert job["TrainingStartTime"].timestamp() > ahead
    stream = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="mean-clock/")["logStreams"][0]
    assert int(stream["logStreamName"].rsplit("-", 1)[1]) > ahead
    events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"], startFromHead=True)
    assert events["events"] and all(event["timestamp"] > ahead * 1000 for event in events["events"])


def test_describe_has_what_sdk_v2_attach_reads_from_the_start(sm, data):
    """SDK v2's ``Estimator.attach`` reads ``OutputDataConfig.KmsKeyId`` and ``model_data`` ``ModelArtifacts``."""
    sm.create_training_job(**training_request("attach-me", [channel("test", data["test"])]))
    for job in (sm.describe_training_job(TrainingJobName="attach-me"), finished_training(sm, "attach-me")):
        assert job["OutputDataConfig"]["KmsKeyId"] == ""
        assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/output/attach-me/output/model.tar.gz"
    assert job["TrainingJobStatus"] == "Failed"


def test_list_is_oldest_first_by_default(sm, data):
    for name in ("first", "second"):
        sm.create_training_job(**training_request(name, [channel("train", data["train"])]))
    names = [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    assert names == ["first", "second"]
    finished_training(sm, "first"), finished_training(sm, "second")
