"""aws/workshop.yaml: cfn-lint finds nothing, it carries the committed policy, and moto's CloudFormation creates
the stack (bucket, role, policy, lifecycle configuration, notebook instance), reports its outputs and deletes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode

from sagemaker_emulator.iam.policy import template_block, template_policy

AWS = Path(__file__).resolve().parents[2] / "aws"
TEMPLATE = AWS / "workshop.yaml"
REPOSITORY = "https://git.example.com/recommendation-workshop.git"


def test_cfn_lint_finds_nothing():
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_the_template_grants_exactly_the_committed_policy():
    policy = json.loads((AWS / "workshop-policy.json").read_text())
    assert policy["Statement"], "aws/workshop-policy.json is empty: regenerate it (INSTRUCTOR.md)"
    assert template_policy(TEMPLATE) == template_block(policy, indent=8)


def test_the_bucket_blocks_public_access_and_expires_lab_data():
    """moto's CloudFormation applies a bucket's encryption but not these two, so they are read from the template."""
    template, problems = decode(TEMPLATE)
    assert not problems
    bucket = template["Resources"]["Bucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"], rule["ExpirationInDays"]) == (
        "Enabled",
        "lab",
        {"Ref": "ExpireLabDataAfterDays"},
    )


@pytest.fixture
def moto_account(monkeypatch):
    from moto import mock_aws

    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + ["AWS_PROFILE", "AWS_SESSION_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield


def _notebook_names() -> list[str]:
    return [n["NotebookInstanceName"] for n in boto3.client("sagemaker").list_notebook_instances()["NotebookInstances"]]


def test_the_stack_deploys_reports_its_outputs_and_deletes(moto_account):
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="workshop",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": "RepositoryUrl", "ParameterValue": REPOSITORY}],
        Capabilities=["CAPABILITY_IAM"],
    )
    [stack] = cloudformation.describe_stacks(StackName="workshop")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert set(outputs) == {"BucketName", "RoleArn", "NotebookUrl"}
    s3, iam = boto3.client("s3"), boto3.client("iam")
    encryption = s3.get_bucket_encryption(Bucket=outputs["BucketName"])["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    role = outputs["RoleArn"].rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role, PolicyName="WhatTheLabsDo")["PolicyDocument"]
    resources = json.dumps(document)
    assert outputs["BucketName"] in resources and outputs["RoleArn"] in resources and "${" not in resources
    [notebook] = [name for name in _notebook_names() if name in outputs["NotebookUrl"]]
    cloudformation.delete_stack(StackName="workshop")
    assert outputs["BucketName"] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert notebook not in _notebook_names()
