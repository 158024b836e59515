"""Throughput of the RecordIO-protobuf codec (recordio_protobuf) on a 1M-row one-hot matrix (2 non-zeros per row, like FM's user+item rows).

Prints write and read speed (records/s, MB/s), the per-message protobuf path and the Object2Vec JSON Lines
writer for comparison, and the time and memory a 20M-row matrix (ml-20m) needs, extrapolated from the 1M-row run.
Then dense against sparse: the same ml-100k-wide one-hot rows written dense (what SDK v2's ``record_set()``
writes from a numpy array) and sparse, read with ``read_matrix`` and trained on by the factorization-machines
plug-in (a whole job: read the channel, 10 epochs, save).

    .venv/bin/python benchmarks/records.py [--rows 1000000] [--dense-rows 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import tracemalloc

import numpy as np
import scipy.sparse

import recordio_protobuf as records
from common.records import write_jsonlines_pairs
from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import parse_hyperparameters
from sagemaker_emulator.algorithms.layout import create_layout

N_USERS, N_ITEMS = 138_493, 26_744  # ml-20m
FULL_ROWS = 20_000_000
MESSAGE_ROWS = 50_000  # the per-message path is slow: time a sample


def one_hot(n_rows: int, seed: int = 0) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n_rows)
    items = rng.integers(0, N_ITEMS, n_rows) + N_USERS
    indptr = np.arange(0, 2 * n_rows + 1, 2)
    indices = np.column_stack([users, items]).ravel()
    matrix = scipy.sparse.csr_matrix(
        (np.ones(2 * n_rows, dtype=np.float32), indices, indptr), shape=(n_rows, N_USERS + N_ITEMS)
    )
    return matrix, rng.integers(1, 6, n_rows).astype(np.float32)


def timed(label: str, n_rows: int, n_bytes: int, run) -> float:
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {n_rows / seconds:>12,.0f} records/s {n_bytes / seconds / 1e6:>8.1f} MB/s  ({seconds:.2f} s)")
    return seconds


def peak_bytes(run) -> int:
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def fm_job_seconds(body: bytes, feature_dim: int) -> float:
    """Wall time of a factorization-machines job on one RecordIO channel: read it, 10 epochs, save."""
    knobs = {"feature_dim": feature_dim, "predictor_type": "regressor", "num_factors": 16, "epochs": 10}
    with tempfile.TemporaryDirectory() as root:
        layout = create_layout(
            root, {k: str(v) for k, v in knobs.items()}, {"train": {"ContentType": "application/x-recordio-protobuf"}}
        )
        (layout.channel_dir("train") / "data.pbr").write_bytes(body)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fm.train(layout, parse_hyperparameters(fm.HYPERPARAMETERS, layout.hyperparameters()))
        return time.perf_counter() - start


def dense_against_sparse(rows: int) -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 943, 1682  # ml-100k
    indices = np.column_stack([rng.integers(0, n_users, rows), rng.integers(0, n_items, rows) + n_users]).ravel()
    matrix = scipy.sparse.csr_matrix(
        (np.ones(2 * rows, np.float32), indices, np.arange(0, 2 * rows + 1, 2)), shape=(rows, n_users + n_items)
    )
    labels = rng.integers(1, 6, rows).astype(np.float32)
    print(f"\ndense against sparse: {rows:,} rows x {matrix.shape[1]:,} columns (ml-100k one-hot), labelled")
    warm_up = io.BytesIO()  # the first job in a process pays for loading mxnet: not the format's cost
    records.write_records(warm_up, matrix[:100], labels[:100])
    fm_job_seconds(warm_up.getvalue(), matrix.shape[1])
    jobs = {}
    for name, features in (("sparse", matrix), ("dense", matrix.toarray())):
        buffer = io.BytesIO()
        records.write_records(buffer, features, labels)
        body = buffer.getvalue()
        timed(
            f"read_matrix, {name} ({len(body) / rows:,.0f} bytes/record)",
            rows,
            len(body),
            lambda body=body: records.read_matrix(body),
        )
        jobs[name] = fm_job_seconds(body, matrix.shape[1])
        print(f"{'FM job, 10 epochs, ' + name:<34} {rows * 10 / jobs[name]:>12,.0f} records/s  ({jobs[name]:.2f} s)")
    print(f"dense job time / sparse job time     {jobs['dense'] / jobs['sparse']:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dense-rows", type=int, default=20_000)
    arguments = parser.parse_args()
    rows = arguments.rows
    matrix, labels = one_hot(rows)
    buffer = io.BytesIO()
    records.write_records(buffer, matrix, labels)
    data = buffer.getvalue()
    print(
        f"{rows:,} rows x {matrix.shape[1]:,} columns, 2 non-zeros per row, labelled: {len(data) / 1e6:.1f} MB "
        f"({len(data) / rows:.1f} bytes/record)"
    )

    write_s = timed(
        "write_records (vectorised)", rows, len(data), lambda: records.write_records(io.BytesIO(), matrix, labels)
    )
    read_s = timed("read_matrix", rows, len(data), lambda: records.read_matrix(data))

    sample = matrix[:MESSAGE_ROWS]

    def per_message() -> None:
        out = io.BytesIO()
        for row, label in enumerate(labels[:MESSAGE_ROWS]):
            start, stop = sample.indptr[row], sample.indptr[row + 1]
            features = {"values": (sample.indices[start:stop], sample.data[start:stop], sample.shape[1])}
            out.write(records.frame(records.encode_record(features, {"values": [label]})))

    timed(f"encode_record + frame ({MESSAGE_ROWS:,} rows)", MESSAGE_ROWS, len(data) * MESSAGE_ROWS // rows, per_message)

    users, items = matrix.indices[0::2], matrix.indices[1::2] - N_USERS
    text = io.StringIO()
    write_jsonlines_pairs(text, users, items, labels)
    jsonl_s = timed(
        "write_jsonlines_pairs (Object2Vec)",
        rows,
        len(text.getvalue()),
        lambda: write_jsonlines_pairs(io.StringIO(), users, items, labels),
    )

    scale = FULL_ROWS / rows
    input_bytes = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes + labels.nbytes
    with open(os.devnull, "wb") as devnull:
        write_peak = peak_bytes(lambda: records.write_records(devnull, matrix, labels))
    read_peak = peak_bytes(lambda: records.read_matrix(data))
    print(f"extrapolated to {FULL_ROWS:,} rows (x{scale:.0f}):")
    print(f"  file size                         {len(data) * scale / 2**30:8.2f} GiB")
    print(f"  CSR matrix + labels in memory     {input_bytes * scale / 2**30:8.2f} GiB")
    print(
        f"  write_records working memory      {write_peak / 2**20:8.1f} MiB (per chunk of "
        f"{records.DEFAULT_CHUNK_ROWS:,} rows, independent of the row count)"
    )
    print(f"  read_matrix peak, result included {read_peak * scale / 2**30:8.2f} GiB (plus the file if in memory)")
    print(f"  write / read time                 {write_s * scale:8.0f} s / {read_s * scale:.0f} s")
    print(f"  Object2Vec JSON Lines write time  {jsonl_s * scale:8.0f} s")
    dense_against_sparse(arguments.dense_rows)


if __name__ == "__main__":
    main()
