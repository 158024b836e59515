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
import os
import statistics
import time

import numpy as np
from emulator_setup import RECORD, client, deploy, invoke_seconds, prepare, signature_check, start

BUCKET = "benchmark-body"


def invoke_latencies(emulator, count: int) -> np.ndarray:
    runtime = client(emulator, "sagemaker-runtime")
    for _ in range(20):  # warm the connection pool and the model server
        invoke_seconds(runtime, "bench")
    return np.array([invoke_seconds(runtime, "bench") for _ in range(count)])


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invocations", type=int, default=500)
    parser.add_argument("--put-mb", type=int, default=64)
    parser.add_argument("--puts", type=int, default=5)
    args = parser.parse_args()
    emulator = start()
    try:
        prepare(emulator, BUCKET)
        deploy(client(emulator, "sagemaker"), "bench")
        latencies = invoke_latencies(emulator, args.invocations) * 1e6
        p50 = np.percentile(latencies, 50)
        gate = signature_check(emulator.credentials, f"127.0.0.1:{emulator.port}", "/endpoints/bench/invocations")
        check = median_seconds(gate, args.invocations) * 1e6
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
        checked, unsigned = client(emulator, "s3"), client(emulator, "s3", s3={"payload_signing_enabled": False})
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
