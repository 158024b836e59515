"""What keeping moto's state costs: MotoStore save and restore times for a workshop-sized S3, Logs and IAM.

- full save: every object and stream fetched and written (the first save, or after a restart without a store);
- save with nothing changed, and with a few objects changed: what the background saver pays after a request;
- restore into an emptied moto (a restarted emulator's start-up), and the first save after it;
- the SHA-256 of every object file alone, the part of the restore that checks them (``store/blobs.py``).
The emulator runs in this process, on loopback; the folder is a temporary one on the default temp disk.

    .venv/bin/python benchmarks/emulator_state.py [--objects 1000] [--object-kb 1] [--big-mb 100] [--log-events 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import sagemaker_emulator
from sagemaker_emulator.store.moto_store import MotoStore

REGION = "us-east-1"
BUCKET = "benchmark-state"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def populate(emulator, objects: int, object_kb: int, big_mb: int, log_events: int) -> None:
    s3 = emulator.client("s3", REGION)
    s3.create_bucket(Bucket=BUCKET)
    small = os.urandom(object_kb * 1024)
    for number in range(objects):
        s3.put_object(Bucket=BUCKET, Key=f"train/part-{number:05}.csv", Body=small, ContentType="text/csv")
    s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=os.urandom(big_mb * 1024 * 1024))
    logs = emulator.client("logs", REGION)
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="job/algo-1-1")
    now = int(time.time() * 1000)
    for start in range(0, log_events, 5000):
        batch = [
            {"timestamp": now + n, "message": f"[{n}] epoch {n // 100} loss=0.{n:04}"}
            for n in range(start, min(start + 5000, log_events))
        ]
        logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="job/algo-1-1", logEvents=batch)
    emulator.client("iam", REGION).create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=json.dumps(TRUST))


def checksum_all(folder: Path) -> None:
    """What the restore's integrity check costs on its own: every object file read and hashed."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as file:
                hashlib.file_digest(file, "sha256")


def timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--object-kb", type=int, default=1)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--log-events", type=int, default=10000)
    parser.add_argument("--changed", type=int, default=10, help="objects overwritten before the incremental save")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="moto-store-bench-"))
    emulator = sagemaker_emulator.start()
    try:
        populate(emulator, args.objects, args.object_kb, args.big_mb, args.log_events)
        print(
            f"state: {args.objects} objects of {args.object_kb} KB + one of {args.big_mb} MB, "
            f"{args.log_events} log events, 1 IAM role; folder {folder}"
        )
        store = MotoStore(folder, emulator.client)
        seconds, report = timed(store.save)
        print(
            f"full save:                      {seconds:6.2f} s  ({report.objects_written} objects, "
            f"{report.bytes_written / 1e6:.0f} MB, {report.streams_written} stream; "
            f"folder {folder_mb(folder):.0f} MB)"
        )
        seconds, report = timed(store.save)
        print(f"save, nothing changed:          {seconds:6.2f} s  ({report.objects_written} objects written)")
        s3 = emulator.client("s3", REGION)
        for number in range(args.changed):
            s3.put_object(Bucket=BUCKET, Key=f"train/part-{number:05}.csv", Body=os.urandom(1024))
        seconds, report = timed(lambda: store.save(["s3"]))
        print(
            f"S3 save, {args.changed} objects changed:     {seconds:6.2f} s  "
            f"({report.objects_written} objects written, {report.files_removed} files removed)"
        )
        store.close()

        emulator.reset()
        store = MotoStore(folder, emulator.client)
        seconds, summary = timed(store.restore)
        print(f"restore into an emptied moto:   {seconds:6.2f} s  ({summary})")
        checked, _ = timed(lambda: checksum_all(folder / "s3"))
        print(
            f"SHA-256 of every object file:   {checked:6.2f} s  ({checked / seconds:.0%} of the restore, which checks each)"
        )
        seconds, report = timed(store.save)
        print(
            f"first save after the restore:   {seconds:6.2f} s  ({report.objects_written} objects written, "
            f"index written: {report.index_written})"
        )
        store.close()
    finally:
        emulator.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
