"""The column-wise reader: the same matrix as the record-by-record reader, and a fall back on anything irregular."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import scipy.sparse

import recordio_protobuf as records
from recordio_protobuf.columns import MAGIC, read_columns


def _one_hot(rows: int, width: int, seed: int = 0) -> scipy.sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    half = width // 2
    columns = np.column_stack([rng.integers(0, half, rows), rng.integers(half, width, rows)]).ravel()
    return scipy.sparse.csr_matrix(
        (rng.uniform(0.5, 2, 2 * rows).astype(np.float32), columns, np.arange(0, 2 * rows + 1, 2)),
        shape=(rows, width),
    )


def _written(features, labels=None) -> bytes:
    buffer = io.BytesIO()
    records.write_records(buffer, features, labels)
    return buffer.getvalue()


def _message_by_message(body: bytes) -> tuple:
    """What the record-by-record reader gives, built from ``read_records`` (no column path involved)."""
    rows, labels = [], []
    for record in records.read_records(io.BytesIO(body)):
        tensor = record.features["values"].float32_tensor
        width = tensor.shape[0] if tensor.shape else len(tensor.values)
        keys = list(tensor.keys) or list(range(len(tensor.values)))
        row = np.zeros(width, np.float32)
        row[keys] = tensor.values
        rows.append(row)
        if "values" in record.label:
            labels.append(record.label["values"].float32_tensor.values[0])
    return np.array(rows), np.array(labels, np.float32) if labels else None


@pytest.mark.parametrize("width", [100, 20_000, 3_000_000])  # keys of one, two and three varint bytes mixed
def test_sparse_rows_read_as_written(width):
    matrix = _one_hot(500, width)
    labels = np.arange(500, dtype=np.float32)
    body = _written(matrix, labels)
    assert read_columns(body) is not None
    read, read_labels = records.read_matrix(body)
    assert (read != matrix).nnz == 0 and read.shape == matrix.shape
    np.testing.assert_array_equal(read_labels, labels)


def test_dense_rows_read_without_their_zeros():
    matrix = _one_hot(300, 40)
    body = _written(matrix.toarray(), np.ones(300, np.float32))
    read, labels = records.read_matrix(body)
    assert read.nnz == matrix.nnz and (read != matrix).nnz == 0
    dense, expected_labels = _message_by_message(body)
    np.testing.assert_array_equal(read.toarray(), dense)
    np.testing.assert_array_equal(labels, expected_labels)


def test_long_dense_rows_are_framed_by_following_their_headers():
    matrix = _one_hot(50, 600)  # 2,400+ bytes a record: the header walk, not the word scan
    body = _written(matrix.toarray(), np.arange(50, dtype=np.float32))
    assert read_columns(body) is not None
    read, labels = records.read_matrix(body)
    assert (read != matrix).nnz == 0
    np.testing.assert_array_equal(labels, np.arange(50, dtype=np.float32))
    assert read_columns(body[:-4]) is None  # a truncated last record: the record reader reports it
    with pytest.raises(ValueError):
        records.read_matrix(body[:-4])


def test_unlabelled_and_mixed_records_read_the_same_both_ways():
    sparse, dense = _written(_one_hot(20, 30, seed=1)), _written(_one_hot(20, 30, seed=2).toarray())
    body = sparse + dense
    read, labels = records.read_matrix(body)
    assert labels is None
    np.testing.assert_array_equal(read.toarray(), _message_by_message(body)[0])


def _record(uid: str) -> bytes:
    payload = records.encode_record({"values": np.array([1.0, 0.0, 2.0], np.float32)})
    record = records.Record()
    record.ParseFromString(payload)
    record.uid = uid
    return records.frame(record.SerializeToString())


def test_irregular_streams_fall_back_to_the_record_reader():
    differing = _record("a") + _record("b")  # same length, different bytes outside the tensors
    assert read_columns(differing) is None
    np.testing.assert_array_equal(records.read_matrix(differing)[0].toarray(), [[1, 0, 2], [1, 0, 2]])
    record = records.Record()
    record.features["values"].float64_tensor.values.extend([1.0, 2.0])
    float64 = records.frame(record.SerializeToString())
    assert read_columns(float64) is None
    with pytest.raises(ValueError, match="is Float64Tensor; only Float32Tensor is accepted"):
        records.read_matrix(float64)


def test_a_value_that_looks_like_a_frame_header_is_data():
    magic_as_float = struct.unpack("<f", struct.pack("<I", MAGIC))[0]
    rows = np.array([[magic_as_float, 1.0], [2.0, 3.0]], np.float32)
    read, _ = records.read_matrix(_written(rows))
    np.testing.assert_array_equal(read.toarray(), rows)


@pytest.mark.parametrize(
    "body",
    [b"\x00" * 7, struct.pack("<II", MAGIC, 100) + b"\x00" * 8, struct.pack("<II", MAGIC, 2 << 29) + b"\x00" * 4],
)
def test_broken_frames_get_the_record_readers_errors(body):
    assert read_columns(body) is None
    with pytest.raises(ValueError):
        records.read_matrix(body)


def test_keys_out_of_range_are_refused_as_before():
    body = _written(_one_hot(5, 50))
    with pytest.raises(ValueError, match="feature_dim=10 but record 0 has 50 features"):
        records.read_matrix(body, feature_dim=10)
