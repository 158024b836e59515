"""Can a local endpoint keep up? Single-record InvokeEndpoint with concurrent clients, against the machine's reference.

Issue 24's goals, side by side in one run on a tiny endpoint (the tests' ``mean-regressor`` algorithm, one CSV row):
- 8 light signed clients (botocore's SigV4 signer over one persistent ``http.client`` connection each):
  ≥ 1,000 requests/s at p50 ≤ 2 ms;
- 8 boto3 ``sagemaker-runtime`` clients: ≥ 600 requests/s;
- the reference: 8 of the same light clients against a bare keep-alive echo server (no signature, no model), what
  this machine's Python HTTP can do at all; each goal is also printed as a share of it.
Each client is its own process, as a notebook kernel or a load generator is; the emulator runs in this one (its
threads are all this process spends while the clients run) and the model server in its child. CPU per request is
given for each side: clients, emulator, model server.

    PYTHONPATH=. .venv/bin/python benchmarks/endpoint_throughput.py [--clients 8] [--requests 2000]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import tarfile
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import numpy as np
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE

REGION = "us-east-1"
BUCKET = "benchmark"
ENDPOINT = "bench-throughput"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/mean-regressor:1"  # the tests' algorithm, registered below
PLUGIN = f"mean-regressor={Path(__file__).parents[1] / 'tests' / 'emulator' / 'mean_regressor.py'}"
RECORD = b"1,2,3\n"
WARM_UP = 50  # requests each client sends before the clock starts (connections, imports, caches)
GOALS = {  # kind -> (requests/s at least, p50 ms at most)
    "light": (1000.0, 2.0),
    "boto3": (600.0, None),
}


@dataclass
class Target:
    url: str
    path: str
    access_key: str = ""
    secret_key: str = ""


def _light(target: Target):
    """One request function per client: SigV4-signed by botocore, sent on one kept-alive connection."""
    host = target.url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=60)
    signer = SigV4Auth(Credentials(target.access_key, target.secret_key), "sagemaker", REGION)
    headers = {"Content-Type": "text/csv", "Accept": "application/json"}

    def send() -> None:
        request = AWSRequest("POST", target.url + target.path, data=RECORD, headers=headers)
        if target.access_key:
            signer.add_auth(request)
        connection.request("POST", target.path, RECORD, dict(request.headers))
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:300]!r}")

    return send


def _boto3(target: Target):
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=target.url,
        region_name=REGION,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )

    def send() -> None:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=RECORD, ContentType="text/csv", Accept="application/json")[
            "Body"
        ].read()

    return send


def _client(kind: str, target: Target, requests: int, ready, go, results) -> None:
    """A client process: warm up, wait for the start, send ``requests`` one after another; report latencies and CPU."""
    send = (_boto3 if kind == "boto3" else _light)(target)
    for _ in range(WARM_UP):
        send()
    ready.put(os.getpid())
    go.wait()
    latencies = np.empty(requests)
    cpu = time.process_time()
    for index in range(requests):
        started = time.perf_counter()
        send()
        latencies[index] = time.perf_counter() - started
    results.put((latencies, time.process_time() - cpu))


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def _echo_server(port) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run(kind: str, target: Target, clients: int, requests: int, servers: dict[str, list[psutil.Process]]) -> dict:
    """Run ``clients`` client processes of one kind; throughput, latency and each side's CPU per request."""
    context = multiprocessing.get_context("spawn")  # the emulator's threads must not be forked
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_client, args=(kind, target, requests, ready, go, results)) for _ in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    before = {side: _cpu(members) for side, members in servers.items()}
    started = time.perf_counter()
    go.set()
    answers = [results.get(timeout=600) for _ in processes]
    seconds = time.perf_counter() - started
    after = {side: _cpu(members) for side, members in servers.items()}
    for process in processes:
        process.join()
    latencies = np.concatenate([latency for latency, _ in answers]) * 1000
    count = clients * requests
    cpu = {"client": sum(spent for _, spent in answers) / count * 1000}
    cpu |= {side: (after[side] - before[side]) / count * 1000 for side in servers}
    return {
        "rate": count / seconds,
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "cpu": cpu,
    }


def _deploy(emulator) -> None:
    keys = emulator.credentials.as_boto3()
    s3 = boto3.client("s3", endpoint_url=emulator.url, region_name=REGION, **keys)
    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name=REGION, **keys)
    s3.create_bucket(Bucket=BUCKET)
    data = json.dumps({"value": 1.0}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("mean.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=buffer.getvalue())
    sm.create_model(
        ModelName=ENDPOINT,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": ENDPOINT, "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName=ENDPOINT, ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}]
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    deadline = time.monotonic() + 300
    while (status := sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]) != "InService":
        if status == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"the endpoint is {status}")
        time.sleep(0.1)


def _verdict(kind: str, result: dict, reference: float) -> str:
    rate_goal, p50_goal = GOALS.get(kind, (None, None))
    if rate_goal is None:
        return "reference"
    met = result["rate"] >= rate_goal and (p50_goal is None or result["p50"] <= p50_goal)
    goal = f"≥ {rate_goal:,.0f}/s" + (f", p50 ≤ {p50_goal:g} ms" if p50_goal else "")
    return f"{goal}: {'met' if met else 'NOT met'} ({result['rate'] / reference:.0%} of the echo server)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per client (default 2000)")
    args = parser.parse_args()
    os.environ[PLUGINS_VARIABLE] = PLUGIN
    context = multiprocessing.get_context("spawn")
    port = context.Queue()
    echo = context.Process(target=_echo_server, args=(port,), daemon=True)
    echo.start()
    echo_target = Target(f"http://127.0.0.1:{port.get(timeout=60)}", "/echo")
    emulator = sagemaker_emulator.start()
    try:
        _deploy(emulator)
        me = psutil.Process()
        keys = emulator.credentials
        target = Target(emulator.url, f"/endpoints/{ENDPOINT}/invocations", keys.access_key_id, keys.secret_access_key)
        emulator_sides = {"emulator": [me], "model server": me.children(recursive=True)}
        results = {
            "echo": run("echo", echo_target, args.clients, args.requests, {"echo server": [psutil.Process(echo.pid)]}),
            "light": run("light", target, args.clients, args.requests, emulator_sides),
            "boto3": run("boto3", target, args.clients, args.requests, emulator_sides),
        }
    finally:
        emulator.stop()
        echo.terminate()
    reference = results["echo"]["rate"]
    print(
        f"single-record InvokeEndpoint, {args.clients} client processes × {args.requests} requests, "
        f"{os.cpu_count()} CPUs"
    )
    names = {
        "echo": "light client → bare keep-alive echo",
        "light": "light signed keep-alive client",
        "boto3": "boto3 sagemaker-runtime client",
    }
    for kind, result in results.items():
        cpu = ", ".join(f"{side} {ms:.2f}" for side, ms in result["cpu"].items())
        print(
            f"{names[kind]:<38} {result['rate']:7,.0f} requests/s  p50 {result['p50']:5.2f} ms  "
            f"p99 {result['p99']:6.2f} ms  {_verdict(kind, result, reference)}\n"
            f"{'':<38} CPU ms per request: {cpu}"
        )


if __name__ == "__main__":
    main()
