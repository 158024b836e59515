"""What checking that a body is the one signed costs (issue 20): the gate hashes every body the signature covers.

- InvokeEndpoint, one CSV record: the round trip's p50 latency next to what the gate spends on the signature check
  (authenticate from the headers, hash the body, recompute the signature) and on hashing the body alone;
- S3 PUT of one large object: the emulator checks the signed ``x-amz-content-sha256`` as the body streams into moto.
  Timed side by side in the same run: the checked PUT, the same PUT with ``UNSIGNED-PAYLOAD`` (no hash on either
  side, what a client that opts out of payload signing gets), and SHA-256 of the same bytes alone.
All on loopback, in bounded loops; the endpoint serves the tests' mean-regressor plug-in.

    .venv/bin/python benchmarks/body_check.py [--invocations 500] [--put-mb 64] [--puts 5]
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
from pathlib import Path

import boto3
import numpy as np
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE
from sagemaker_emulator.auth import SignedRequest, Verifier

REGION = "us-east-1"
BUCKET = "benchmark-body"
RECORD = b"1,2,3\n"
IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/mean-regressor:1"  # the tests' algorithm, registered below
os.environ[PLUGINS_VARIABLE] = (
    f"mean-regressor={Path(__file__).parents[1] / 'tests' / 'emulator' / 'mean_regressor.py'}"
)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _client(emulator, service: str, **config):
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        **emulator.credentials.as_boto3(),
        config=Config(retries={"max_attempts": 1}, **config),
    )


def deploy(emulator) -> None:
    """One mean-regressor endpoint, ``bench``, InService."""
    s3, sm = _client(emulator, "s3"), _client(emulator, "sagemaker")
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
    variant = {"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName="bench", ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}]
    )
    sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bench", WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})


def invoke_latencies(emulator, count: int) -> np.ndarray:
    runtime = _client(emulator, "sagemaker-runtime")
    seconds = []
    for run in range(count + 20):  # the first 20 warm the connection pool and the model server
        start = time.perf_counter()
        runtime.invoke_endpoint(EndpointName="bench", Body=RECORD, ContentType="text/csv")["Body"].read()
        if run >= 20:
            seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gate_check(emulator):
    """The gate's work on one signed InvokeEndpoint request, as a callable: authenticate, hash, verify."""
    keys = emulator.credentials
    path = "/endpoints/bench/invocations"
    request = AWSRequest("POST", emulator.url + path, data=RECORD, headers={"Content-Type": "text/csv"})
    SigV4Auth(BotoCredentials(keys.access_key_id, keys.secret_access_key), "sagemaker", REGION).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()} | {"host": f"127.0.0.1:{emulator.port}"}
    signed = SignedRequest("POST", path, "", headers)
    verifier = Verifier(keys)
    return lambda: verifier.verify(signed, verifier.authenticate(signed), hashlib.sha256(RECORD).hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invocations", type=int, default=500)
    parser.add_argument("--put-mb", type=int, default=64)
    parser.add_argument("--puts", type=int, default=5)
    args = parser.parse_args()
    emulator = sagemaker_emulator.start()
    try:
        _client(emulator, "s3").create_bucket(Bucket=BUCKET)
        deploy(emulator)
        latencies = invoke_latencies(emulator, args.invocations) * 1e6
        p50 = np.percentile(latencies, 50)
        check = median_seconds(gate_check(emulator), args.invocations) * 1e6
        hashing = median_seconds(lambda: hashlib.sha256(RECORD).hexdigest(), args.invocations) * 1e6
        print(
            f"InvokeEndpoint, one {len(RECORD)}-byte record:  p50 {p50:.0f} µs, p99 {np.percentile(latencies, 99):.0f} µs "
            f"over {args.invocations} requests"
        )
        print(f"  gate's signature check (headers, body hash, signature): {check:.1f} µs = {check / p50:.2%} of p50")
        print(
            f"  SHA-256 of the body alone:                               {hashing:.2f} µs = {hashing / p50:.3%} of p50"
        )

        body = os.urandom(args.put_mb * 1024 * 1024)
        checked, unsigned = _client(emulator, "s3"), _client(emulator, "s3", s3={"payload_signing_enabled": False})
        put_checked = median_seconds(lambda: checked.put_object(Bucket=BUCKET, Key="big", Body=body), args.puts)
        put_unsigned = median_seconds(lambda: unsigned.put_object(Bucket=BUCKET, Key="big", Body=body), args.puts)
        hash_alone = median_seconds(lambda: hashlib.sha256(body).hexdigest(), args.puts)
        print(f"S3 PUT of {args.put_mb} MiB, median of {args.puts}:")
        print(f"  signed hash, checked as it streams:   {put_checked:.3f} s ({args.put_mb / put_checked:.0f} MiB/s)")
        print(
            f"  UNSIGNED-PAYLOAD, hashed by no side:  {put_unsigned:.3f} s (checked/unsigned {put_checked / put_unsigned:.2f})"
        )
        print(
            f"  SHA-256 of the same bytes alone:      {hash_alone:.3f} s ({hash_alone / put_checked:.1%} of the checked PUT)"
        )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
