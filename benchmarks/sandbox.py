"""What the jobs' sandbox (bubblewrap, ``sagemaker_emulator/jobs/sandbox.py``) costs, against no sandbox in the same run.

- process start: ``python -c pass`` in the sandbox a container gets, and bare (the added milliseconds per start);
- job start: CreateTrainingJob → Completed for the tests' no-op algorithm on a 3-row CSV;
- InvokeEndpoint latency (p50, p99), one request at a time, to a model server in the sandbox and to one without;
- the memory guard: one sample of a sandboxed model server's processes (what it does 20 times a second per job).
Two emulators run side by side, one with ``Supervisor(use_sandbox=False)``; the measurements alternate between them,
so a busy machine slows both alike. The figures are printed, and the ratio of each pair.

    .venv/bin/python benchmarks/sandbox.py [--starts 20] [--jobs 3] [--invocations 300]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from functools import partial
from pathlib import Path

import boto3
import numpy as np
from botocore.config import Config

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE
from sagemaker_emulator.jobs import sandbox
from sagemaker_emulator.jobs.memory_guard import MemoryGuard
from sagemaker_emulator.jobs.process import Supervisor

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
        config=Config(retries={"max_attempts": 1}),
    )


def _until(read, done, timeout: float = 120.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value} after {timeout} s")
        time.sleep(interval)
    return value


def process_start(tool: sandbox.Sandbox, starts: int) -> tuple[list[float], list[float]]:
    """Seconds to run ``python -c pass`` (sandboxed, bare), alternating."""
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        wrapped = tool.command([sys.executable, "-c", "pass"], Path(folder), [Path.home()])
        bare = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {"sandboxed": [], "bare": []}
        for _ in range(starts):
            for name, command in (("sandboxed", wrapped), ("bare", bare)):
                start = time.perf_counter()
                subprocess.run(command, check=True)
                times[name].append(time.perf_counter() - start)
    return times["sandboxed"], times["bare"]


def prepare(emulator) -> tuple:
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
    return sm, runtime


def job_seconds(sm, name: str) -> float:
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
    return time.perf_counter() - start


def deploy(sm) -> None:
    sm.create_endpoint_config(
        EndpointConfigName="bench",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "bench",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    _until(partial(sm.describe_endpoint, EndpointName="bench"), lambda e: e["EndpointStatus"] == "InService")


def invoke_ms(runtime) -> float:
    start = time.perf_counter()
    runtime.invoke_endpoint(EndpointName="bench", Body=b"1,2,3\n", ContentType="text/csv")["Body"].read()
    return (time.perf_counter() - start) * 1000


def guard_sample_ms(emulator, samples: int) -> tuple[float, int]:
    """Median milliseconds of one memory sample of the emulator's (one) live model server, and its processes."""
    child = emulator.services.supervisor.live()[0]
    guard = MemoryGuard(1 << 40, child.processes, child.shared_folders, child.kill)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        _, count = guard.measure()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), count


def _pair(label: str, unit: str, sandboxed: float, bare: float) -> None:
    print(f"{label:<38} sandboxed {sandboxed:8.2f} {unit}   bare {bare:8.2f} {unit}   ratio {sandboxed / bare:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--invocations", type=int, default=300)
    args = parser.parse_args()
    tool, why = sandbox.find()
    if tool is None:
        sys.exit(f"No sandbox to measure: {why}")
    boxed = sagemaker_emulator.start()
    bare = sagemaker_emulator.start()
    bare.services.supervisor = Supervisor(use_sandbox=False)
    try:
        sandboxed_starts, bare_starts = process_start(tool, args.starts)
        _pair(
            "process start (python -c pass), median",
            "ms",
            *(statistics.median(t) * 1000 for t in (sandboxed_starts, bare_starts)),
        )
        clients = {name: prepare(emulator) for name, emulator in (("boxed", boxed), ("bare", bare))}
        jobs: dict[str, list[float]] = {"boxed": [], "bare": []}
        for run in range(args.jobs):
            for name, (sm, _) in clients.items():
                jobs[name].append(job_seconds(sm, f"bench-{run}"))
        _pair(
            "training job create → Completed, median",
            "s ",
            statistics.median(jobs["boxed"]),
            statistics.median(jobs["bare"]),
        )
        for sm, _ in clients.values():
            deploy(sm)
        latencies: dict[str, list[float]] = {"boxed": [], "bare": []}
        for _, runtime in clients.values():
            for _ in range(20):
                invoke_ms(runtime)
        for _ in range(args.invocations):
            for name, (_, runtime) in clients.items():
                latencies[name].append(invoke_ms(runtime))
        for percentile in (50, 99):
            _pair(
                f"invoke latency p{percentile} ({args.invocations} requests)",
                "ms",
                *(float(np.percentile(latencies[name], percentile)) for name in ("boxed", "bare")),
            )
        sandboxed_sample, sandboxed_count = guard_sample_ms(boxed, 200)
        bare_sample, bare_count = guard_sample_ms(bare, 200)
        print(
            f"memory guard, one sample (median):     sandboxed {sandboxed_sample:.2f} ms ({sandboxed_count} processes, "
            f"the tree of its pid namespace)   bare {bare_sample:.2f} ms ({bare_count} processes, process tree)"
        )
    finally:
        boxed.stop()
        bare.stop()


if __name__ == "__main__":
    main()
