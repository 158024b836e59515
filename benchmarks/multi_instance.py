"""One host against two for factorization-machines, side by side in one run: what a 2-instance ``ShardedByS3Key`` job
costs and what it gives (issue 24).

The data is a synthetic matrix of ml-20m's shape (``common.synthetic``, users scaled down to keep 20+ ratings each,
as ``benchmarks/fm.py`` does), 10% held out as the test channel (``FullyReplicated``), the rest written as two
RecordIO objects of the train channel (``ShardedByS3Key``: one host reads both, each of two hosts one). Every host
runs as the emulator runs it (``python -m sagemaker_emulator.algorithms.container train`` on its own ``/opt/ml``
tree with AWS's ``resourceconfig.json``; two hosts meet in MXNet's ``dist_sync`` kvstore through the ``DMLC_*``
variables the job runner sets), without the emulator's S3 transfers. The compiled kernels are compiled first by a
small job into a shared NUMBA_CACHE_DIR, as the emulator keeps them.

Printed per configuration: the job's wall seconds (start of the first host to end of the last), CPU seconds of every
process (hosts and their kvstore scheduler and servers), cores busy on average, the epoch throughput each host logs
and their sum, each host's peak RSS, and algo-1's test RMSE (the job's metric). On two cores two hosts cannot beat
one host's two Hogwild threads by much: the point is the honest cost of the kvstore merges
(``distributed.SYNCS_PER_EPOCH`` times an epoch, each the whole of every parameter table) and the parity of quality.

    .venv/bin/python benchmarks/multi_instance.py [--rows 4000000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fm import LAB1_KNOBS, MIN_RATINGS_PER_USER, ML_20M, ROOT, job_tree, one_hot, peak_rss_bytes, run_job

import common  # noqa: F401  (numpy alias before mxnet)
from common import records, synthetic
from sagemaker_emulator.algorithms.layout import create_layout, host_names
from sagemaker_emulator.jobs.training import cluster_environment

RECORDIO = "application/x-recordio-protobuf"
OBJECTS = 2  # train objects: ShardedByS3Key deals them one per host to two hosts
TEST_SHARE = 0.1


def write_objects(folder: Path, features, labels, parts: int) -> list[Path]:
    """``parts`` RecordIO files of consecutive rows, ``part-<i>.pbr``."""
    folder.mkdir(parents=True)
    paths = []
    for part, rows in enumerate(np.array_split(np.arange(features.shape[0]), parts)):
        path = folder / f"part-{part}.pbr"
        with path.open("wb") as stream:
            records.write_records(stream, features[rows], labels[rows])
        paths.append(path)
    return paths


def run_hosts(root: Path, count: int, train: list[Path], test: Path, hyperparameters: dict, cache: Path) -> dict:
    """Run a ``count``-host job to its end; its wall and CPU seconds, and each host's log and peak RSS."""
    hosts = host_names(count)
    channels = {
        "train": {"ContentType": RECORDIO, "S3DistributionType": "ShardedByS3Key"},
        "test": {"ContentType": RECORDIO, "S3DistributionType": "FullyReplicated"},
    }
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(cache), **cluster_environment(count)}
    processes = {}
    start = time.perf_counter()
    for position, host in enumerate(hosts):
        layout = create_layout(root / host, hyperparameters, channels, hosts=hosts, current_host=host)
        for path in train[position::count]:  # ShardedByS3Key: host i gets objects i, i + N, ...
            os.link(path, layout.channel_dir("train") / path.name)
        os.link(test, layout.channel_dir("test") / test.name)
        output = tempfile.TemporaryFile("w+")
        command = [sys.executable, "-m", "sagemaker_emulator.algorithms.container", "train"]
        command += ["factorization-machines", str(layout.root)]
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        processes[host] = (process, output)
    peaks, usage, left = dict.fromkeys(hosts, 0), {}, set(hosts)
    while left:  # a high-water mark only grows: the last reading before a host's end is its peak
        for host in sorted(left):
            process = processes[host][0]
            with contextlib.suppress(OSError, StopIteration):
                peaks[host] = max(peaks[host], peak_rss_bytes(process.pid))
            pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
            if pid:  # its rusage counts the kvstore scheduler and server it started and waited for
                process.returncode = os.waitstatus_to_exitcode(status)
                usage[host] = rusage.ru_utime + rusage.ru_stime
                left.discard(host)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    logs = {}
    for host, (process, output) in processes.items():
        output.seek(0)
        logs[host] = output.read()
        output.close()
        if process.returncode:
            raise RuntimeError(f"{host} of the {count}-host job failed ({process.returncode}):\n{logs[host][-3000:]}")
    return {"wall": wall, "cpu": sum(usage.values()), "logs": logs, "peaks": peaks}


def report(count: int, result: dict, train_rows: int, epochs: int) -> float:
    """Print one configuration's figures; return its test RMSE."""
    logs, wall, cpu = result["logs"], result["wall"], result["cpu"]
    rmse = float(re.search(r"#quality_metric: host=\S+, test rmse <loss>=(\S+)", logs["algo-1"]).group(1))
    per_host = {
        host: float(np.mean([float(v) for v in re.findall(r"train throughput=(\S+) records/second", log)]))
        for host, log in logs.items()
    }
    peaks = ", ".join(f"{host} {peak / 2**30:.2f}" for host, peak in result["peaks"].items())
    rates = ", ".join(f"{host} {rate:,.0f}" for host, rate in per_host.items())
    print(
        f"  {count} host{'s' if count > 1 else ' '}  job {wall:6.1f} s wall, {cpu:6.1f} s CPU ({cpu / wall:.2f} cores busy), "
        f"{train_rows * epochs / wall:>9,.0f} records/s over the whole job\n"
        f"           epoch throughput logged: {rates} = {sum(per_host.values()):,.0f} records/s in all\n"
        f"           peak RSS (GiB): {peaks}; {1e6 * cpu / (train_rows * epochs):.2f} CPU-us per record-epoch\n"
        f"           test RMSE {rmse:.4f}"
    )
    return rmse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000, help="ratings of the ml-20m-shaped matrix")
    parser.add_argument("--epochs", type=int, default=3)
    arguments = parser.parse_args()
    if arguments.rows < 2 * MIN_RATINGS_PER_USER:
        parser.error(f"--rows must be at least {2 * MIN_RATINGS_PER_USER}")
    n_users = min(ML_20M[0], arguments.rows // MIN_RATINGS_PER_USER)
    ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=ML_20M[1], n_ratings=arguments.rows)
    features = one_hot(ratings["user_id"].to_numpy() - 1, ratings["item_id"].to_numpy() - 1, n_users, ML_20M[1])
    labels = ratings["rating"].to_numpy(np.float32)
    del ratings
    test = np.random.default_rng(0).random(len(labels)) < TEST_SHARE
    knobs = {**LAB1_KNOBS, "epochs": arguments.epochs}
    hyperparameters = {"feature_dim": features.shape[1], "predictor_type": "regressor", **knobs}
    hyperparameters = {name: str(value) for name, value in hyperparameters.items()}
    train_rows = int((~test).sum())
    print(
        f"FM regressor on a synthetic ml-20m-shaped matrix: {train_rows:,} train / {int(test.sum()):,} test ratings, "
        f"{n_users:,} users + {ML_20M[1]:,} movies, Lab 1's knobs, {arguments.epochs} epochs; train channel in "
        f"{OBJECTS} objects (ShardedByS3Key); {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        cache = scratch / "numba"
        run_job(job_tree(scratch / "warm", features[:5000], labels[:5000], knobs), compiled_min_rows=0, cache=cache)
        train = write_objects(scratch / "train", features[~test], labels[~test], OBJECTS)
        (test_path,) = write_objects(scratch / "test", features[test], labels[test], 1)
        del features, labels
        rmse = {}
        for count in (1, 2):
            result = run_hosts(scratch / f"hosts-{count}", count, train, test_path, hyperparameters, cache)
            rmse[count] = report(count, result, train_rows, arguments.epochs)
    print(f"  test RMSE, 2 hosts - 1 host: {rmse[2] - rmse[1]:+.4f}")


if __name__ == "__main__":
    main()
