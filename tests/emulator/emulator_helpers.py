"""Helpers the emulator tests share: request builders, waiting, tiny artifacts."""

from __future__ import annotations

import io
import json
import tarfile
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from sagemaker_emulator.emulator import stop_bound_seconds
from sagemaker_emulator.state import Timings

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "emulator-tests"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/mean-regressor:1"
# How long a test waits for a served emulator to exit after SIGTERM before calling it a hang: what ``serve`` promises
# (its stop bound), plus time for the interpreter to start and leave on a loaded machine. A bound, not a measure.
EXIT_HANG_SECONDS = stop_bound_seconds(Timings()) + 60


def client(emulator, service: str, **config):
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, **config),
        **emulator.credentials.as_boto3(),
    )


def send(
    emulator,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    service: str = "sagemaker",
    credentials: Credentials | None = None,
    sign: bool = True,
) -> tuple[int, dict, bytes]:
    """One raw HTTP request to the emulator, SigV4-signed by botocore with its key (or ``credentials``) unless
    ``sign`` is False; returns (status, headers, body) whatever the status."""
    request = AWSRequest(method=method, url=emulator.url + path, data=body, headers=dict(headers or {}))
    if sign:
        keys = credentials or Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
        (S3SigV4Auth if service == "s3" else SigV4Auth)(keys, service, REGION).add_auth(request)  # as boto3 signs
    prepared = urllib.request.Request(request.url, data=body or None, method=method, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def assert_healthy(emulator) -> None:
    """The emulator still answers signed requests on every API the workshop uses, after whatever a test threw at it."""
    assert client(emulator, "sagemaker").list_endpoints()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client(emulator, "sts").get_caller_identity()["Account"] == ACCOUNT
    assert "Buckets" in client(emulator, "s3").list_buckets()


@contextmanager
def held_bytes() -> Iterator[dict]:
    """``["peak"]``: the most bytes Python held at once in this process (the in-process emulator's threads
    included) above what it held on entry."""
    tracemalloc.start()
    held = {"start": tracemalloc.get_traced_memory()[0]}
    try:
        yield held
    finally:
        held["peak"] = tracemalloc.get_traced_memory()[1] - held["start"]
        tracemalloc.stop()


def wait_for(read, done, timeout: float = 60.0, interval: float = 0.05):
    """Call ``read()`` until ``done(value)``; return the value (fail the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s; last value: {value}")
        time.sleep(interval)


def put_csv(s3, key: str, text: str) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    return f"s3://{BUCKET}/{key}"


def model_artifact(s3, key: str, value: float = 2.5) -> str:
    """A mean-regressor model.tar.gz in the test bucket; returns its URI."""
    data = json.dumps({"value": value}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("mean.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def channel(name: str, uri: str, content_type: str = "text/csv", data_type: str = "S3Prefix") -> dict:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri}},
    }


def training_request(name: str, channels: list[dict], image: str = IMAGE, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {},
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(overrides)
    return request


def finished_training(sm, name: str, timeout: float = 60.0) -> dict:
    return wait_for(
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda job: job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
        timeout,
    )


def deploy(sm, name: str, model_data: str, image: str = IMAGE) -> dict:
    """Model + config + endpoint named ``name``; returns the endpoint once it leaves Creating."""
    sm.create_model(
        ModelName=name, PrimaryContainer={"Image": image, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_for(lambda: sm.describe_endpoint(EndpointName=name), lambda e: e["EndpointStatus"] != "Creating")


def error_of(excinfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]
