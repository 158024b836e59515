"""common.cleanup against the emulator: delete a lab's resources by prefix, leave everything else alone."""

from __future__ import annotations

import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from common import resource_kinds
from common.cleanup import delete_resources, leftovers
from sagemaker_emulator.algorithms.registry import load_plugin
from sagemaker_emulator.jobs import endpoints

BUCKET = "cleanup-tests"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/mean-regressor:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _artifact(s3) -> str:
    s3.put_object(Bucket=BUCKET, Key="lab1-abc/model.tar.gz", Body=load_plugin(IMAGE).model_archive())
    return f"s3://{BUCKET}/lab1-abc/model.tar.gz"


def _lab(sm, s3) -> None:
    """What a lab leaves behind: an endpoint with its config and model, a running job, S3 objects; plus others."""
    model_data = _artifact(s3)
    for name in ("lab1-abc-model", "other-model"):
        sm.create_model(
            ModelName=name, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
        )
    sm.create_endpoint_config(
        EndpointConfigName="lab1-abc-config",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "lab1-abc-model", "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="lab1-abc-endpoint", EndpointConfigName="lab1-abc-config")
    s3.put_object(Bucket=BUCKET, Key="lab1-abc/train/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket=BUCKET, Key="other/keep.csv", Body=b"1\n")
    sm.create_training_job(
        TrainingJobName="lab1-abc-train",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={"sleep_seconds": "120"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/lab1-abc/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/lab1-abc/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def test_leftovers_lists_what_a_lab_left(aws):
    sm, s3 = aws
    _lab(sm, s3)
    assert leftovers("lab1-abc", BUCKET, ["lab1-abc/"]) == {
        "endpoints": ["lab1-abc-endpoint"],
        "endpoint_configs": ["lab1-abc-config"],
        "models": ["lab1-abc-model"],
        "running_training_jobs": ["lab1-abc-train"],
        "s3_objects": [f"s3://{BUCKET}/lab1-abc/model.tar.gz", f"s3://{BUCKET}/lab1-abc/train/a.csv"],
    }


def test_delete_resources_removes_the_lab_and_only_the_lab(aws):
    sm, s3 = aws
    _lab(sm, s3)
    time.sleep(0.5)  # let the endpoint and the job get going, as they would be at the end of a lab
    done = delete_resources("lab1-abc", BUCKET, [f"s3://{BUCKET}/lab1-abc/"], poll=0.2)
    assert (done["endpoints"], done["endpoint_configs"], done["models"]) == (
        ["lab1-abc-endpoint"],
        ["lab1-abc-config"],
        ["lab1-abc-model"],
    )
    assert done["stopped_jobs"] == ["lab1-abc-train"]
    assert not leftovers("lab1-abc", BUCKET, ["lab1-abc/"])
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["other-model"]
    assert s3.get_object(Bucket=BUCKET, Key="other/keep.csv")["Body"].read() == b"1\n"
    assert sm.describe_training_job(TrainingJobName="lab1-abc-train")["TrainingJobStatus"] == "Stopped"


def test_an_endpoint_already_being_deleted_is_waited_for_not_deleted_again(aws, monkeypatch):
    sm, s3 = aws
    _lab(sm, s3)
    release = threading.Event()
    slow_delete = endpoints._delete
    monkeypatch.setattr(endpoints, "_delete", lambda *args: release.wait(30) and slow_delete(*args))
    sm.delete_endpoint(EndpointName="lab1-abc-endpoint")  # another kernel started deleting it
    assert sm.describe_endpoint(EndpointName="lab1-abc-endpoint")["EndpointStatus"] == "Deleting"
    threading.Timer(1.0, release.set).start()
    done = delete_resources("lab1-abc", BUCKET, [f"s3://{BUCKET}/lab1-abc/"], poll=0.2)
    assert done["endpoints"] == ["lab1-abc-endpoint"]
    assert not leftovers("lab1-abc", BUCKET, ["lab1-abc/"])


def _refused(**params):
    raise ClientError({"Error": {"Code": "ValidationException", "Message": "any wording"}}, "StopTrainingJob")


def test_a_refusal_is_ignored_only_when_the_status_shows_the_work_was_done():
    asked = []
    resource_kinds.unless_done(_refused, lambda **params: asked.append(params) or False, TrainingJobName="j")
    assert asked == [{"TrainingJobName": "j"}]
    with pytest.raises(ClientError):
        resource_kinds.unless_done(_refused, lambda **params: True, TrainingJobName="j")


def test_prefixes_that_would_match_too_much_are_refused(aws):
    with pytest.raises(ValueError, match="A name prefix is required: an empty one would delete every resource"):
        delete_resources("")
    with pytest.raises(ValueError, match=r"S3 prefix 'lab1/' is not an s3:// URI, so a bucket must be given."):
        delete_resources("lab1", None, ["lab1/"])
    with pytest.raises(ValueError, match=r"Refusing to delete a whole bucket \(cleanup-tests\): give a key prefix."):
        delete_resources("lab1", None, [f"s3://{BUCKET}/"])
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
