"""Clients and fixtures for the emulator tests; the emulator itself comes from tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from emulator_helpers import BUCKET, REGION, client

TRUST = {  # lets SageMaker assume the tests' role
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def sm(emulator):
    return client(emulator, "sagemaker")


@pytest.fixture
def sm_unchecked(emulator):
    """A SageMaker client that sends bad requests as they are, so the server's own validation answers."""
    return client(emulator, "sagemaker", parameter_validation=False)


@pytest.fixture
def runtime(emulator):
    return client(emulator, "sagemaker-runtime")


@pytest.fixture
def logs(emulator):
    return client(emulator, "logs")


@pytest.fixture
def s3(emulator):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def sdk(emulator, s3, monkeypatch, tmp_path):
    """The process environment a local-mode notebook gets, pointing every client at the emulator."""
    from sagemaker.core.utils.logs import CloudWatchLogsClient
    from sagemaker.core.utils.utils import SageMakerClient, SingletonMeta

    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_SAGEMAKER",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    ):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
        f"      Session:\n        DefaultS3Bucket: {BUCKET}\n"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    for name, value in emulator.credentials.as_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # as common.session sets it; the role has no policies
    SageMakerClient.reset()
    SingletonMeta._instances.pop(CloudWatchLogsClient, None)
    boto3.client("iam").create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=json.dumps(TRUST))
    yield
    SageMakerClient.reset()
    SingletonMeta._instances.pop(CloudWatchLogsClient, None)


@pytest.fixture
def outside(tmp_path) -> Path:
    """Where a hostile path aims; the tests assert it stays as it was."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "sentinel.txt").write_text("original")
    return folder
