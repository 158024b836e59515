"""The room-wide sweep (``python -m common.sweep --all``) against the
emulator: it finds what interrupted notebooks of earlier kernels left (by the labN- prefix or the workshop:lab tag),
lists it without touching it, and with --yes stops and deletes it in order, leaving everything else alone."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import boto3
import pytest

from common import costs, resource_kinds, sweep
from sagemaker_emulator.algorithms.registry import load_plugin

ACCOUNT = "123456789012"
BUCKET = f"sagemaker-us-east-1-{ACCOUNT}"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/mean-regressor:1"
RUN = "lab2-o2v-20261203-100000"
TRUST = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}


@pytest.fixture
def aws(emulator, monkeypatch):
    """The emulator as AWS mode's clients would see a real account: only AWS_ENDPOINT_URL differs."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "WORKSHOP_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    for name, value in emulator.credentials.as_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return boto3.client("sagemaker")


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _left_by_an_interrupted_lab(sm) -> None:
    """A Lab 2 run stopped mid-way by a kernel restart: data, a model behind an endpoint, a job still training, a
    deployed function and its log group; and one model named otherwise but tagged, as a renamed notebook leaves."""
    s3, iam, logs = boto3.client("s3"), boto3.client("iam"), boto3.client("logs")
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}/train/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket=BUCKET, Key="keep/notes.txt", Body=b"mine")
    s3.put_object(
        Bucket=BUCKET, Key=f"{RUN}/model.tar.gz", Body=load_plugin(IMAGE).model_archive()
    )  # an endpoint that comes up and bills
    model = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{RUN}/model.tar.gz"}
    role = iam.create_role(RoleName="lab-functions", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    sm.create_model(ModelName=f"{RUN}-regressor", PrimaryContainer=model, ExecutionRoleArn=role)
    sm.create_model(ModelName="renamed", PrimaryContainer=model, ExecutionRoleArn=role, Tags=costs.tags("lab2", RUN))
    sm.create_model(ModelName="someone-elses", PrimaryContainer=model, ExecutionRoleArn=role)
    variant = {"VariantName": "AllTraffic", "ModelName": f"{RUN}-regressor", "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=f"{RUN}-regressor", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=f"{RUN}-regressor", EndpointConfigName=f"{RUN}-regressor")
    sm.create_training_job(
        TrainingJobName=f"{RUN}-classifier",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=role,
        HyperParameters={"sleep_seconds": "120"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{RUN}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{RUN}/output"},
        ResourceConfig={"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    functions = boto3.client("lambda")
    for name in (f"{RUN}-predict", "unrelated-function"):
        functions.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Handler="lambda_function.handler",
            Role=role,
            Code={"ZipFile": _package()},
        )
    logs.create_log_group(logGroupName=f"/aws/lambda/{RUN}-predict")
    logs.create_log_group(logGroupName="/aws/lambda/unrelated-function")


def _kinds(found) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for f in found:
        kinds.setdefault(f.kind, []).append(f.name)
    return kinds


def test_the_dry_run_lists_every_lab_resource_with_its_cost_and_changes_nothing(aws, capsys):
    _left_by_an_interrupted_lab(aws)
    assert sweep.main(["--all"]) == 0
    printed = capsys.readouterr().out
    found = _kinds(sweep.find_lab_resources([BUCKET]))
    assert found["training job"] == [f"{RUN}-classifier"]
    assert found["endpoint"] == [f"{RUN}-regressor"]
    assert found["endpoint config"] == [f"{RUN}-regressor"]
    assert sorted(found["model"]) == sorted([f"{RUN}-regressor", "renamed"])
    assert found["lambda function"] == [f"{RUN}-predict"]
    assert found["s3 prefix"] == [f"{BUCKET}/{RUN}/"]
    assert f"/aws/lambda/{RUN}-predict" in found["log group"]
    assert "Dry run" in printed and f"{RUN}-regressor" in printed
    hourly = costs.PRICES["training"]["ml.c5.xlarge"] + costs.PRICES["hosting"]["ml.m5.large"]
    assert f"about {hourly:.2f} USD per hour" in printed
    assert aws.describe_training_job(TrainingJobName=f"{RUN}-classifier")["TrainingJobStatus"] == "InProgress"


def test_yes_stops_and_deletes_in_order_and_keeps_what_is_not_a_labs(aws, capsys):
    _left_by_an_interrupted_lab(aws)
    assert sweep.main(["--all", "--yes"]) == 0
    assert "0 left" in capsys.readouterr().out
    assert not sweep.find_lab_resources([BUCKET])
    assert aws.describe_training_job(TrainingJobName=f"{RUN}-classifier")["TrainingJobStatus"] == "Stopped"
    assert [m["ModelName"] for m in aws.list_models()["Models"]] == ["someone-elses"]
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key="keep/notes.txt")["Body"].read() == b"mine"
    functions = [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
    assert functions == ["unrelated-function"]
    groups = [g["logGroupName"] for g in boto3.client("logs").describe_log_groups()["logGroups"]]
    assert "/aws/lambda/unrelated-function" in groups and f"/aws/lambda/{RUN}-predict" not in groups


def test_an_endpoint_still_creating_is_waited_for_then_deleted(aws, monkeypatch):
    _left_by_an_interrupted_lab(aws)
    statuses = iter(["Creating", "Creating"])
    describe = aws.describe_endpoint

    def creating_at_first(**params):
        answer = describe(**params)
        return {**answer, "EndpointStatus": next(statuses, answer["EndpointStatus"])}

    monkeypatch.setattr(aws, "describe_endpoint", creating_at_first)
    sweep._delete(aws, resource_kinds.BY_LABEL["endpoint"], f"{RUN}-regressor", timeout=30, poll=0.05)
    assert next(statuses, "used up") == "used up"
    left = resource_kinds.described(describe, EndpointName=f"{RUN}-regressor")
    assert left is None or left["EndpointStatus"] == "Deleting"


def test_the_sweep_needs_all_spelled_out(capsys):
    with pytest.raises(SystemExit):
        sweep.main([])


def test_the_documented_command_runs_the_sweep():
    done = subprocess.run([sys.executable, "-m", "common.sweep"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "the following arguments are required: --all" in done.stderr
