"""Can a local endpoint keep up? Single-record InvokeEndpoint from concurrent clients, against the machine's reference.

Issue 24's goal reads "≥ 1,000 requests/s at p50 ≤ 2 ms with 8 clients". By Little's law, 8 clients that each wait
for an answer before sending again (a closed loop) at 1,000 requests/s have a mean latency of 8 ms whatever the server
does, so the goal can only mean two measurements, and this script takes both:
- saturation (closed loop): each client sends its next request as soon as it has the answer; the requests/s the
  server sustains must be ≥ 1,000 for 8 light clients and ≥ 600 for 8 boto3 clients;
- latency at the goal's rate (open loop): the 8 clients together offer 1,000 requests/s, each on its own schedule
  (125/s, staggered), and a request's latency is counted from when it was due, not when it was sent, so a server
  that falls behind is charged for the wait; p50 must be ≤ 2 ms with the light client (boto3's is printed beside it).
The clients: "light" is botocore's SigV4 signer over one kept-alive ``http.client`` connection; "boto3" is a
``sagemaker-runtime`` client. The reference is the light client against a bare keep-alive echo server (no signature,
no model), what this machine's Python HTTP can do at all; each figure is also given as a share of it.
Each client is its own process, as a notebook kernel or a load generator is; the emulator runs in this one (its
threads are all this process spends while the clients run) and the model server in its child. CPU per request is
given for each side (clients, emulator, model server) from the saturation run.

    PYTHONPATH=. .venv/bin/python benchmarks/endpoint_throughput.py [--clients 8] [--requests 2000] [--rate 1000]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import numpy as np
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from emulator_setup import RECORD, REGION, client, deploy, prepare, start

BUCKET = "benchmark"
ENDPOINT = "bench-throughput"
WARM_UP = 50  # requests each client sends before the clock starts (connections, imports, caches)
OPEN_SECONDS = 8.0  # how long the clients offer the goal's rate
GOALS = {  # kind -> (saturation requests/s at least, p50 ms at most at the offered rate)
    "light": (1000.0, 2.0),
    "boto3": (600.0, None),
}


@dataclass
class Target:
    url: str
    path: str
    access_key: str = ""
    secret_key: str = ""


@dataclass(frozen=True)
class Plan:
    """What each client sends: ``requests`` of them, back to back (``interval`` 0), or one every ``interval`` seconds
    from ``offset`` seconds after the start."""

    requests: int
    interval: float = 0.0
    offset: float = 0.0


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


def _client(kind: str, target: Target, plan: Plan, ready, go, results) -> None:
    """A client process: warm up, wait for the start, send as planned; report latencies and CPU.

    Paced requests are timed from when they were due, so time spent waiting for a late answer is counted.
    """
    send = (_boto3 if kind == "boto3" else _light)(target)
    for _ in range(WARM_UP):
        send()
    ready.put(os.getpid())
    go.wait()
    latencies = np.empty(plan.requests)
    cpu = time.process_time()
    began = time.perf_counter() + plan.offset
    for index in range(plan.requests):
        due = began + index * plan.interval
        if plan.interval and (ahead := due - time.perf_counter()) > 0:
            time.sleep(ahead)
        started = due if plan.interval else time.perf_counter()
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


def run(kind: str, target: Target, plans: list[Plan], servers: dict[str, list[psutil.Process]]) -> dict:
    """Run one client process per plan; throughput, latency and each side's CPU per request."""
    context = multiprocessing.get_context("spawn")  # the emulator's threads must not be forked
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=_client, args=(kind, target, plan, ready, go, results)) for plan in plans]
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
    count = len(latencies)
    cpu = {"client": sum(spent for _, spent in answers) / count * 1000}
    cpu |= {side: (after[side] - before[side]) / count * 1000 for side in servers}
    return {
        "rate": count / seconds,
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "cpu": cpu,
    }


def closed(clients: int, requests: int) -> list[Plan]:
    return [Plan(requests)] * clients


def paced(clients: int, rate: float) -> list[Plan]:
    """``clients`` clients that together offer ``rate`` requests/s for ``OPEN_SECONDS``, staggered evenly."""
    interval = clients / rate
    requests = int(OPEN_SECONDS / interval)
    return [Plan(requests, interval, index / rate) for index in range(clients)]


def _line(label: str, result: dict, share: str, goal: str) -> str:
    return (
        f"  {label:<36} {result['rate']:7,.0f} requests/s  p50 {result['p50']:6.2f} ms  p99 {result['p99']:7.2f} ms"
        f"  {share}{goal}"
    )


def _verdict(met: bool, goal: str) -> str:
    return f"  goal {goal}: {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="requests per client at saturation (default 2000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s all clients offer together (1000)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    port = context.Queue()
    echo = context.Process(target=_echo_server, args=(port,), daemon=True)
    echo.start()
    echo_target = Target(f"http://127.0.0.1:{port.get(timeout=60)}", "/echo")
    emulator = start()
    try:
        prepare(emulator, BUCKET)
        deploy(client(emulator, "sagemaker"), ENDPOINT)
        me = psutil.Process()
        keys = emulator.credentials
        target = Target(emulator.url, f"/endpoints/{ENDPOINT}/invocations", keys.access_key_id, keys.secret_access_key)
        sides = {"emulator": [me], "model server": me.children(recursive=True)}
        echo_sides = {"echo server": [psutil.Process(echo.pid)]}
        saturation, offered = {}, {}
        for kind in ("echo", "light", "boto3"):
            kind_target, kind_sides = (echo_target, echo_sides) if kind == "echo" else (target, sides)
            saturation[kind] = run(kind, kind_target, closed(args.clients, args.requests), kind_sides)
            offered[kind] = run(kind, kind_target, paced(args.clients, args.rate), kind_sides)
    finally:
        emulator.stop()
        echo.terminate()
    names = {
        "echo": "light client → bare keep-alive echo",
        "light": "light signed keep-alive client",
        "boto3": "boto3 sagemaker-runtime client",
    }
    print(f"single-record InvokeEndpoint, {args.clients} client processes, {os.cpu_count()} CPUs")
    print(f"saturation (closed loop, {args.requests} requests per client, each sent when the last is answered):")
    for kind, result in saturation.items():
        rate_goal = GOALS.get(kind, (None, None))[0]
        goal = _verdict(result["rate"] >= rate_goal, f"≥ {rate_goal:,.0f}/s") if rate_goal else ""
        share = f"({result['rate'] / saturation['echo']['rate']:.0%} of the echo server's rate)"
        print(_line(names[kind], result, share, goal))
        cpu = ", ".join(f"{side} {ms:.2f}" for side, ms in result["cpu"].items())
        print(f"  {'':<36} CPU ms per request: {cpu}")
    print(
        f"offered {args.rate:,.0f} requests/s (open loop, {OPEN_SECONDS:g} s, latency counted from when each was due):"
    )
    for kind, result in offered.items():
        p50_goal = GOALS.get(kind, (None, None))[1]
        goal = _verdict(result["p50"] <= p50_goal, f"p50 ≤ {p50_goal:g} ms") if p50_goal else ""
        share = f"(p50 {result['p50'] / offered['echo']['p50']:.1f}× the echo server's)"
        print(_line(names[kind], result, share, goal))


if __name__ == "__main__":
    main()
