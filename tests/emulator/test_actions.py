"""The action recorder: each signed request noted once as (service, IAM action, resource ARN), internal calls not."""

from __future__ import annotations

import json

import pytest
from emulator_helpers import BUCKET, REGION, client

from sagemaker_emulator.iam.actions import ActionRecorder, action_of, read_actions

ROLE_ARN = "arn:aws:iam::123456789012:role/recorded"

TRUST = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}


@pytest.fixture
def recording(emulator, tmp_path):
    """The session's emulator with a recorder writing to tmp_path, removed afterwards."""
    app = emulator.app
    app.recorder = ActionRecorder(tmp_path / "actions.jsonl")
    yield app.recorder.path
    app.recorder = None


def _entries(path) -> set[tuple[str, str]]:
    return {(entry["action"], entry["resource"]) for entry in read_actions(path)}


def test_s3_iam_and_sagemaker_calls_are_recorded_with_their_arns(emulator, recording):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="lab1-x/data.csv", Body=b"1")
    s3.get_object(Bucket=BUCKET, Key="lab1-x/data.csv")
    s3.list_objects_v2(Bucket=BUCKET, Prefix="lab1-x/")
    client(emulator, "iam").create_role(RoleName="recorded", AssumeRolePolicyDocument=json.dumps(TRUST))
    sm = client(emulator, "sagemaker")
    sm.create_model(ModelName="Lab1-Model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    sm.list_models()
    assert {
        ("s3:CreateBucket", f"arn:aws:s3:::{BUCKET}"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/lab1-x/data.csv"),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/lab1-x/data.csv"),
        ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
        ("iam:CreateRole", ROLE_ARN),
        ("sagemaker:CreateModel", f"arn:aws:sagemaker:{REGION}:123456789012:model/lab1-model"),
        ("iam:PassRole", ROLE_ARN),
        ("sagemaker:ListModels", "*"),
    } <= _entries(recording)


def test_each_triple_is_written_once(emulator, recording):
    sm = client(emulator, "sagemaker")
    for _ in range(3):
        sm.list_endpoints()
    assert [e["action"] for e in read_actions(recording)].count("sagemaker:ListEndpoints") == 1


def test_the_emulators_own_calls_are_not_recorded(emulator, recording):
    emulator.internal_client("s3", REGION).list_buckets()
    assert ("s3:ListAllMyBuckets", "*") not in _entries(recording)


def test_cloudwatch_metric_reads_are_recorded_as_cloudwatch_actions(emulator, recording):
    """CloudWatch signs as "monitoring"; its IAM actions are cloudwatch:* (TrainingJobAnalytics reads metrics)."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    client(emulator, "cloudwatch").get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName="train:progress",
        Dimensions=[{"Name": "TrainingJobName", "Value": "lab1-x"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now,
        Period=60,
        Statistics=["Average"],
    )
    assert ("cloudwatch:GetMetricStatistics", "*") in _entries(recording)


def test_a_policy_simulation_reads_the_role_without_recording_it(emulator, recording):
    iam = client(emulator, "iam")
    iam.create_role(RoleName="recorded", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.simulate_principal_policy(PolicySourceArn=ROLE_ARN, ActionNames=["s3:GetObject"])
    actions = {action for action, _ in _entries(recording)}
    assert "iam:SimulatePrincipalPolicy" in actions
    assert not actions & {"iam:ListRolePolicies", "iam:ListAttachedRolePolicies"}


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/2015-03-31/functions/", ("lambda:ListFunctions", "*")),
        ("POST", "/2015-03-31/functions", ("lambda:CreateFunction", "*")),
        (
            "POST",
            "/2015-03-31/functions/lab2-f/invocations",
            ("lambda:InvokeFunction", "arn:aws:lambda:r:123456789012:function:lab2-f"),
        ),
        (
            "DELETE",
            "/2015-03-31/functions/lab2-f",
            ("lambda:DeleteFunction", "arn:aws:lambda:r:123456789012:function:lab2-f"),
        ),
    ],
)
def test_lambda_paths_map_to_iam_actions(method, path, expected):
    assert action_of("lambda", "r", {"REQUEST_METHOD": method, "PATH_INFO": path}, b"") == expected


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"TrainingJobName": 7}', b"\xff\xfe"])
def test_hostile_bodies_are_recorded_without_a_resource(body):
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "SageMaker.DescribeTrainingJob"}
    assert action_of("sagemaker", "r", environ, body) == ("sagemaker:DescribeTrainingJob", "*")


def test_a_multi_object_delete_is_recorded_per_key(emulator, recording):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET)
    for key in ("lab1-x/a", "lab1-x/b&c"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"1")
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "lab1-x/a"}, {"Key": "lab1-x/b&c"}]})
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    entries = _entries(recording)
    assert {
        ("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/lab1-x/a"),
        ("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/lab1-x/b&c"),
        ("s3:PutBucketPublicAccessBlock", f"arn:aws:s3:::{BUCKET}"),
    } <= entries


def test_tags_given_at_creation_are_recorded_as_add_tags(emulator, recording):
    sm = client(emulator, "sagemaker")
    sm.create_model(
        ModelName="lab1-tagged",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": "x"},
        Tags=[{"Key": "workshop:lab", "Value": "lab1"}],
    )
    assert ("sagemaker:AddTags", f"arn:aws:sagemaker:{REGION}:123456789012:model/lab1-tagged") in _entries(recording)
