"""The emulator's own overheads: what a notebook waits for beyond the algorithm's work.

- training job overhead: CreateTrainingJob → Completed for the test algorithm on a 3-row CSV (process start,
  S3 download and upload, log shipping, status changes);
- endpoint CreateEndpoint → InService (artifact download, model-server process start);
- InvokeEndpoint latency (p50, p99) one request at a time, and requests/s with concurrent clients;
- what checking the SigV4 signature of such a request costs (``auth.Verifier``), per request and as a share of it.
All on loopback, in bounded loops.

    .venv/bin/python benchmarks/emulator.py [--repeats 5] [--invocations 500] [--threads 8]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import boto3
import numpy as np
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE
from sagemaker_emulator.auth import Credentials, SignedRequest, Verifier

REGION = "us-east-1"
BUCKET = "benchmark"
IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/mean-regressor:1"  # the tests' algorithm, registered below
os.environ[PLUGINS_VARIABLE] = (
    f"mean-regressor={Path(__file__).parents[1] / 'tests' / 'emulator' / 'mean_regressor.py'}"
)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _client(emulator, service: str):
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        **emulator.credentials.as_boto3(),
        config=Config(max_pool_connections=64, retries={"max_attempts": 1}),
    )


def _until(read, done, timeout: float = 120.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value} after {timeout} s")
        time.sleep(interval)
    return value


def training_overhead(sm, repeats: int) -> list[float]:
    seconds = []
    for run in range(repeats):
        name = f"bench-train-{run}"
        start = time.perf_counter()
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        job = _until(
            partial(sm.describe_training_job, TrainingJobName=name),
            lambda j: j["TrainingJobStatus"] in ("Completed", "Failed"),
        )
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        seconds.append(time.perf_counter() - start)
    return seconds


def endpoint_start(sm, repeats: int) -> list[float]:
    seconds = []
    for run in range(repeats):
        name = f"bench-ep-{run}"
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "bench",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        start = time.perf_counter()
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        _until(partial(sm.describe_endpoint, EndpointName=name), lambda e: e["EndpointStatus"] == "InService")
        seconds.append(time.perf_counter() - start)
        if run:
            sm.delete_endpoint(EndpointName=name)
    return seconds


def invoke_once(runtime) -> float:
    start = time.perf_counter()
    runtime.invoke_endpoint(
        EndpointName="bench-ep-0", Body=b"1,2,3\n", ContentType="text/csv", Accept="application/json"
    )["Body"].read()
    return time.perf_counter() - start


def signature_check_seconds(checks: int) -> float:
    """Median time the emulator's gate spends verifying one signed InvokeEndpoint request (no I/O)."""
    key = Credentials.generate()
    url = "http://127.0.0.1:8080/endpoints/bench-ep-0/invocations"
    request = AWSRequest(
        "POST", url, data=b"1,2,3\n", headers={"Content-Type": "text/csv", "Accept": "application/json"}
    )
    SigV4Auth(BotoCredentials(key.access_key_id, key.secret_access_key), "sagemaker", REGION).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()} | {"host": "127.0.0.1:8080"}
    signed = SignedRequest("POST", "/endpoints/bench-ep-0/invocations", "", headers)
    verifier = Verifier(key)
    times = []
    for _ in range(checks):
        start = time.perf_counter()
        verifier.verify(signed, verifier.authenticate(signed), hashlib.sha256(b"1,2,3\n").hexdigest())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--invocations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    emulator = sagemaker_emulator.start()
    try:
        sm, s3, runtime = (_client(emulator, s) for s in ("sagemaker", "s3", "sagemaker-runtime"))
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train/a.csv", Body=b"1,0\n2,0\n3,0\n")
        data = json.dumps({"value": 1.0}).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("mean.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=buffer.getvalue())
        sm.create_model(
            ModelName="bench",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
        )

        train = training_overhead(sm, args.repeats)
        print(
            f"training job create → Completed (no-op algorithm): median {statistics.median(train):.2f} s, "
            f"min {min(train):.2f} s over {args.repeats} jobs"
        )
        start = endpoint_start(sm, args.repeats)
        print(
            f"endpoint create → InService:                       median {statistics.median(start):.2f} s, "
            f"min {min(start):.2f} s over {args.repeats} endpoints"
        )

        for _ in range(20):
            invoke_once(runtime)
        latencies = np.array([invoke_once(runtime) for _ in range(args.invocations)]) * 1000
        print(
            f"invoke latency, one client:                        p50 {np.percentile(latencies, 50):.1f} ms, "
            f"p99 {np.percentile(latencies, 99):.1f} ms over {args.invocations} requests"
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda _: invoke_once(runtime), range(args.invocations)))
        rate = args.invocations / (time.perf_counter() - started)
        print(f"invoke throughput, {args.threads} concurrent clients:            {rate:.0f} requests/s")
        check = signature_check_seconds(args.invocations)
        print(
            f"signature check per request:                       {check * 1e6:.0f} µs "
            f"({check * 1000 / np.percentile(latencies, 50):.1%} of the p50 invoke latency)"
        )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
