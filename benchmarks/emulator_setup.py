"""The set-up the emulator's benchmarks share: an emulator that serves the tests' algorithm, clients for it, and the
tiny model they train, deploy and invoke, written once so that every script measures the same thing.

The algorithm is ``tests/emulator/mean_regressor.py`` (registered by image name through ``PLUGINS_VARIABLE``): it
trains and answers in microseconds, so what a benchmark measures is the emulator's own work around it.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE, load_plugin
from sagemaker_emulator.auth import Credentials, SignedRequest, Verifier

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/mean-regressor:1"
PLUGIN = f"mean-regressor={Path(__file__).parents[1] / 'tests' / 'emulator' / 'mean_regressor.py'}"
MODEL = "bench"
RECORD = b"1,2,3\n"  # one CSV record, what every invocation sends


def start(**options):
    """An emulator in this process (its threads are this process's CPU) that knows the ``mean-regressor`` image."""
    os.environ[PLUGINS_VARIABLE] = PLUGIN
    return sagemaker_emulator.start(**options)


def client(emulator, service: str, **config):
    """A boto3 client of the emulator that never retries (a retry would hide a failure inside a timing)."""
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        **emulator.credentials.as_boto3(),
        config=Config(retries={"max_attempts": 1}, **config),
    )


def until(read, done, timeout: float = 120.0, interval: float = 0.02):
    """``read()`` again until ``done(value)``; the value, or ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value} after {timeout} s")
        time.sleep(interval)
    return value


def prepare(emulator, bucket: str) -> None:
    """A bucket with a 3-row training CSV (``train/``) and the tiny model, registered as the SageMaker model ``bench``."""
    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,0\n2,0\n3,0\n")
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=load_plugin(IMAGE).model_archive())
    sm.create_model(
        ModelName=MODEL,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/model.tar.gz"},
    )


def train(sm, name: str, bucket: str) -> dict:
    """Run one training job of the mean-regressor on ``prepare``'s CSV to its end; its description."""
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    job = until(
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda job: job["TrainingJobStatus"] in ("Completed", "Failed"),
    )
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"training job {name} failed: {job.get('FailureReason')}")
    return job


def create_endpoint_config(sm, name: str) -> None:
    """One variant of the model ``bench`` on one instance."""
    variant = {"VariantName": "AllTraffic", "ModelName": MODEL, "InitialInstanceCount": 1}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}])


def create_endpoint(sm, name: str) -> None:
    """Create the endpoint ``name`` from the endpoint config of the same name and wait until it is InService."""
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    endpoint = until(
        lambda: sm.describe_endpoint(EndpointName=name),
        lambda endpoint: endpoint["EndpointStatus"] in ("InService", "Failed"),
        timeout=300,
    )
    if endpoint["EndpointStatus"] != "InService":
        raise RuntimeError(f"endpoint {name} failed: {endpoint.get('FailureReason')}")


def deploy(sm, name: str) -> None:
    """The model ``bench`` behind an endpoint ``name``, InService."""
    create_endpoint_config(sm, name)
    create_endpoint(sm, name)


def invoke_seconds(runtime, name: str) -> float:
    """One single-record invocation of endpoint ``name``, answer read, in seconds."""
    start = time.perf_counter()
    runtime.invoke_endpoint(EndpointName=name, Body=RECORD, ContentType="text/csv", Accept="application/json")[
        "Body"
    ].read()
    return time.perf_counter() - start


def signature_check(credentials: Credentials, host: str, path: str):
    """The gate's work on one signed single-record InvokeEndpoint, as a callable without I/O: authenticate from the
    headers, hash the body, recompute the signature (``auth.Verifier``)."""
    request = AWSRequest(
        "POST", f"http://{host}{path}", data=RECORD, headers={"Content-Type": "text/csv", "Accept": "application/json"}
    )
    keys = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
    SigV4Auth(keys, "sagemaker", REGION).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()} | {"host": host}
    signed = SignedRequest("POST", path, "", headers)
    verifier = Verifier(credentials)
    return lambda: verifier.verify(signed, verifier.authenticate(signed), hashlib.sha256(RECORD).hexdigest())
