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
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from emulator_setup import (
    client,
    create_endpoint,
    create_endpoint_config,
    invoke_seconds,
    prepare,
    signature_check,
    start,
    train,
)

from sagemaker_emulator.auth import Credentials

BUCKET = "benchmark"


def training_overhead(sm, repeats: int) -> list[float]:
    seconds = []
    for run in range(repeats):
        begin = time.perf_counter()
        train(sm, f"bench-train-{run}", BUCKET)
        seconds.append(time.perf_counter() - begin)
    return seconds


def endpoint_start(sm, repeats: int) -> list[float]:
    seconds = []
    for run in range(repeats):
        name = f"bench-ep-{run}"
        create_endpoint_config(sm, name)
        begin = time.perf_counter()
        create_endpoint(sm, name)
        seconds.append(time.perf_counter() - begin)
        if run:
            sm.delete_endpoint(EndpointName=name)
    return seconds


def signature_check_seconds(checks: int) -> float:
    """Median time the emulator's gate spends verifying one signed InvokeEndpoint request (no I/O)."""
    check = signature_check(Credentials.generate(), "127.0.0.1:8080", "/endpoints/bench-ep-0/invocations")
    times = []
    for _ in range(checks):
        begin = time.perf_counter()
        check()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--invocations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    emulator = start()
    try:
        sm, runtime = client(emulator, "sagemaker"), client(emulator, "sagemaker-runtime", max_pool_connections=64)
        prepare(emulator, BUCKET)

        jobs = training_overhead(sm, args.repeats)
        print(
            f"training job create → Completed (no-op algorithm): median {statistics.median(jobs):.2f} s, "
            f"min {min(jobs):.2f} s over {args.repeats} jobs"
        )
        starts = endpoint_start(sm, args.repeats)
        print(
            f"endpoint create → InService:                       median {statistics.median(starts):.2f} s, "
            f"min {min(starts):.2f} s over {args.repeats} endpoints"
        )

        for _ in range(20):
            invoke_seconds(runtime, "bench-ep-0")
        latencies = np.array([invoke_seconds(runtime, "bench-ep-0") for _ in range(args.invocations)]) * 1000
        print(
            f"invoke latency, one client:                        p50 {np.percentile(latencies, 50):.1f} ms, "
            f"p99 {np.percentile(latencies, 99):.1f} ms over {args.invocations} requests"
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda _: invoke_seconds(runtime, "bench-ep-0"), range(args.invocations)))
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
