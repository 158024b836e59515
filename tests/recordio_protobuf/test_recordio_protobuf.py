"""Tests for recordio_protobuf: round trips, error paths, and byte-for-byte equality with the v2 SDK.

The ``fixtures/sdk2_*.pbr`` files were written once by the v2 SDK's own writers, from the inputs in
``fixtures/sdk2_inputs.py``: sagemaker 2.257.7 (``pip install "sagemaker<3" scipy "numpy<2"`` in a throwaway
Python 3.11.7 venv, which resolved protobuf 6.33.6, numpy 1.26.4, scipy 1.17.1), run from the repo root:

    import sys; sys.path.insert(0, "tests/recordio_protobuf/fixtures")
    import scipy.sparse
    from sdk2_inputs import cases
    from sagemaker.amazon.common import write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor
    for name, (features, labels) in cases().items():
        with open(f"tests/recordio_protobuf/fixtures/{name}.pbr", "wb") as f:
            write = write_spmatrix_to_sparse_tensor if scipy.sparse.issparse(features) else write_numpy_to_dense_tensor
            write(f, features, labels)

The same venv confirmed that our ``aialgs.data`` FileDescriptorProto equals the one of the SDK's
``sagemaker/amazon/record_pb2.py`` apart from the file name and Java options.
"""

import importlib.util
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import recordio_protobuf as records

FIXTURES = Path(__file__).parent / "fixtures"
MAGIC = struct.pack("<I", 0xCED7230A)


def _sdk2_cases() -> dict:
    spec = importlib.util.spec_from_file_location("sdk2_inputs", FIXTURES / "sdk2_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cases()


SDK2_CASES = _sdk2_cases()


def _write(features, labels=None, **kwargs) -> bytes:
    out = io.BytesIO()
    assert records.write_records(out, features, labels, **kwargs) == features.shape[0]
    return out.getvalue()


def _per_message(features, labels=None) -> bytes:
    """The same file built one protobuf message at a time: the reference for the vectorised writer."""
    out = []
    for row in range(features.shape[0]):
        if scipy.sparse.issparse(features):
            start, stop = features.indptr[row], features.indptr[row + 1]
            tensor = (features.indices[start:stop], features.data[start:stop], features.shape[1])
        else:
            tensor = features[row]
        label = None if labels is None else {"values": [labels[row]]}
        out.append(records.frame(records.encode_record({"values": tensor}, label)))
    return b"".join(out)


def _random_sparse(rows: int, cols: int, max_per_row: int, seed: int) -> scipy.sparse.csr_matrix:
    """0 to max_per_row non-zeros per row at distinct random columns."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_per_row + 1, rows)
    indices = np.concatenate([np.sort(rng.choice(cols, count, replace=False)) for count in counts])
    data = rng.normal(size=counts.sum()).astype(np.float32)
    return scipy.sparse.csr_matrix((data, indices, np.concatenate(([0], np.cumsum(counts)))), shape=(rows, cols))


# --------------------------------------------------------------------------------------------------------
# Byte-for-byte with the v2 SDK


@pytest.mark.parametrize("name", sorted(SDK2_CASES))
@pytest.mark.parametrize("chunk_rows", [1, 2, records.DEFAULT_CHUNK_ROWS])
def test_write_records_equals_the_v2_sdk_bytes(name, chunk_rows):
    features, labels = SDK2_CASES[name]
    assert _write(features, labels, chunk_rows=chunk_rows) == (FIXTURES / f"{name}.pbr").read_bytes()


@pytest.mark.parametrize("name", sorted(SDK2_CASES))
def test_encode_record_and_frame_equal_the_v2_sdk_bytes(name):
    features, labels = SDK2_CASES[name]
    assert _per_message(features, labels) == (FIXTURES / f"{name}.pbr").read_bytes()


@pytest.mark.parametrize("name", sorted(SDK2_CASES))
def test_read_matrix_reads_the_v2_sdk_files(name):
    features, labels = SDK2_CASES[name]
    matrix, read_labels = records.read_matrix((FIXTURES / f"{name}.pbr").read_bytes())
    assert matrix.dtype == np.float32 and matrix.shape == features.shape
    assert (matrix != scipy.sparse.csr_matrix(features)).nnz == 0
    if labels is None:
        assert read_labels is None
    else:
        np.testing.assert_array_equal(read_labels, labels)


def test_a_sparse_record_has_the_documented_text_form():
    payload = records.encode_record({"values": ([990290, 1266265], [1.0, 1.0], 1266394)}, {"values": [3.0]})
    record = records.Record.FromString(payload)
    tensor = record.features["values"].float32_tensor
    assert list(tensor.keys) == [990290, 1266265] and list(tensor.values) == [1.0, 1.0]
    assert list(tensor.shape) == [1266394]
    assert list(record.label["values"].float32_tensor.values) == [3.0]


@pytest.mark.parametrize(
    "message, field, number",
    [
        ("Float32Tensor", "values", 1),
        ("Float32Tensor", "keys", 2),
        ("Float32Tensor", "shape", 3),
        ("Float64Tensor", "values", 1),
        ("Int32Tensor", "values", 1),
        ("Bytes", "value", 1),
        ("Bytes", "content_type", 2),
        ("Value", "float32_tensor", 2),
        ("Value", "float64_tensor", 3),
        ("Value", "int32_tensor", 7),
        ("Value", "bytes", 9),
        ("Record", "features", 1),
        ("Record", "label", 2),
        ("Record", "uid", 3),
        ("Record", "metadata", 4),
        ("Record", "configuration", 5),
    ],
)
def test_schema_field_numbers_are_those_of_record_proto(message, field, number):
    descriptor = getattr(records, message).DESCRIPTOR
    assert descriptor.full_name == f"aialgs.data.{message}"
    assert descriptor.fields_by_name[field].number == number


# --------------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("labelled", [True, False])
def test_sparse_round_trip_with_empty_rows_and_wide_keys(labelled):
    features = _random_sparse(200, 3_000_000, 6, seed=1)
    assert np.diff(features.indptr).min() == 0  # some rows are empty
    labels = np.random.default_rng(1).normal(size=200).astype(np.float32) if labelled else None
    data = _write(features, labels, chunk_rows=37)
    assert data == _per_message(features, labels) == _write(features, labels)
    matrix, read_labels = records.read_matrix(data, feature_dim=3_000_000)
    assert (matrix != features).nnz == 0
    if labelled:
        np.testing.assert_array_equal(read_labels, labels)
    else:
        assert read_labels is None


def test_dense_round_trip_casts_float64_and_ints_to_float32():
    features = np.random.default_rng(2).normal(size=(9, 6))
    labels = np.arange(9)
    data = _write(features, labels, chunk_rows=4)
    assert data == _per_message(features.astype(np.float32), labels.astype(np.float32))
    matrix, read_labels = records.read_matrix(io.BytesIO(data))
    np.testing.assert_array_equal(matrix.toarray(), features.astype(np.float32))
    np.testing.assert_array_equal(read_labels, labels.astype(np.float32))


def test_one_hot_rows_round_trip():
    users, items = np.array([0, 2, 1, 0]), np.array([1, 0, 2, 2])
    features = scipy.sparse.csr_matrix(np.hstack([np.eye(3)[users], np.eye(3)[items]]), dtype=np.float32)
    matrix, labels = records.read_matrix(_write(features, np.array([5, 3, 4, 1])))
    assert (matrix != features).nnz == 0 and matrix.nnz == 8
    np.testing.assert_array_equal(labels, [5, 3, 4, 1])


def test_sparse_input_of_any_format_is_written_as_csr():
    features = _random_sparse(30, 40, 5, seed=3)
    assert _write(features.tocoo()) == _write(features.tocsc()) == _write(features)


def test_mixed_dense_and_sparse_records_read_into_one_matrix():
    data = b"".join(
        records.frame(records.encode_record({"values": tensor}, {"values": [label]}))
        for tensor, label in [
            ([1.0, 0.0, 2.5, 0.0], 1.0),
            (([3, 0], [4.0, -1.0], [4]), 0.0),
            (([], [], [4]), 2.0),
            ([0.0, 0.0, 0.0, 7.0], 3.0),
        ]
    )
    matrix, labels = records.read_matrix(data)
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 2.5, 0], [-1, 0, 0, 4], [0, 0, 0, 0], [0, 0, 0, 7]])
    np.testing.assert_array_equal(labels, [1, 0, 2, 3])


def test_empty_matrix_writes_nothing_and_reads_back_empty():
    assert _write(scipy.sparse.csr_matrix((0, 5), dtype=np.float32)) == b""
    assert _write(np.zeros((0, 5), dtype=np.float32), np.zeros(0)) == b""
    matrix, labels = records.read_matrix(b"", feature_dim=5)
    assert matrix.shape == (0, 5) and labels is None
    assert records.read_matrix(b"")[0].shape == (0, 0)


def test_read_records_yields_messages():
    features, labels = SDK2_CASES["sdk2_sparse_7x13_labelled"]
    read = list(records.read_records(io.BytesIO(_write(features, labels))))
    assert len(read) == 7
    assert list(read[2].features["values"].float32_tensor.keys) == [1, 5, 11]
    assert read[6].label["values"].float32_tensor.values[0] == 5.0


def test_write_label_records_equals_one_message_per_row():
    score = np.array([0.25, 0.9, 0.5])
    predicted = np.array([0, 1, 1])
    distances = np.array([[1.0, 2.0], [0.5, 4.0], [3.0, 3.5]])
    out = io.BytesIO()
    assert records.write_label_records(out, {"score": score, "predicted_label": predicted, "distances": distances}) == 3
    expected = b"".join(
        records.frame(records.encode_record(label={"score": s, "predicted_label": p, "distances": d}))
        for s, p, d in zip(score, predicted, distances)
    )
    assert out.getvalue() == expected
    first = next(records.read_records(io.BytesIO(expected)))
    assert len(first.features) == 0
    assert list(first.label["distances"].float32_tensor.values) == [1.0, 2.0]
    assert first.label["predicted_label"].float32_tensor.values[0] == 0.0


def test_write_label_records_across_chunks():
    score = np.arange(records.DEFAULT_CHUNK_ROWS + 3, dtype=np.float32)
    out = io.BytesIO()
    records.write_label_records(out, {"score": score})
    payloads = list(records.iter_payloads(io.BytesIO(out.getvalue())))
    assert len(payloads) == score.size
    for row in (0, records.DEFAULT_CHUNK_ROWS - 1, records.DEFAULT_CHUNK_ROWS, score.size - 1):
        assert payloads[row] == records.encode_record(label={"score": score[row]})


def test_write_label_records_of_no_rows_writes_nothing():
    out = io.BytesIO()
    assert records.write_label_records(out, {"score": np.zeros(0), "distances": np.zeros((0, 3))}) == 0
    assert out.getvalue() == b""


def test_encode_record_accepts_a_scalar_and_is_deterministic():
    one = records.encode_record(label={"b": 2.0, "a": [1.0]})
    other = records.encode_record(label={"a": 1.0, "b": [2.0]})
    assert one == other
    assert records.Record.FromString(one).label["a"].float32_tensor.values[0] == 1.0


# --------------------------------------------------------------------------------------------------------
# Framing


def test_frame_pads_to_four_bytes():
    assert records.frame(b"abcde") == MAGIC + struct.pack("<I", 5) + b"abcde\0\0\0"
    assert records.frame(b"") == MAGIC + b"\0\0\0\0"
    assert list(records.iter_payloads(io.BytesIO(records.frame(b"abcde") + records.frame(b"xy")))) == [b"abcde", b"xy"]


def _part(payload: bytes, flag: int) -> bytes:
    return MAGIC + struct.pack("<I", flag << 29 | len(payload)) + payload + bytes(-len(payload) % 4)


def test_a_record_split_by_the_writer_is_joined_with_the_magic_between_parts():
    stream = _part(b"abcd", 1) + _part(b"efgh", 2) + _part(b"ij", 3) + records.frame(b"next")
    assert list(records.iter_payloads(io.BytesIO(stream))) == [b"abcd" + MAGIC + b"efgh" + MAGIC + b"ij", b"next"]


@pytest.mark.parametrize(
    "stream, message",
    [
        (b"\0" * 8, "bad RecordIO magic 0x00000000 at byte offset 0"),
        (records.frame(b"ok") + b"\x0a\x23\xd7\xcf" + b"\0" * 4, "bad RecordIO magic 0xCFD7230A at byte offset 12"),
        (records.frame(b"ok") + MAGIC[:3], "truncated RecordIO record at byte offset 12: 3 of 8 header bytes"),
        (records.frame(b"abcdef")[:-3], "truncated RecordIO record at byte offset 0: the header announces 6 bytes"),
        (_part(b"ab", 5), "invalid RecordIO continuation flag 5 at byte offset 0"),
        (_part(b"ab", 2), r"byte offset 0 is a middle part \(flag 2\) but no split record was begun"),
        (
            _part(b"abcd", 1) + records.frame(b"x"),
            r"byte offset 12 is a whole record \(flag 0\) but the record split at byte offset 0 is unfinished",
        ),
        (records.frame(b"x") + _part(b"abcd", 1), "the record split at byte offset 12 has no last part"),
    ],
)
def test_iter_payloads_names_the_byte_offset_of_bad_framing(stream, message):
    with pytest.raises(ValueError, match=message):
        list(records.iter_payloads(io.BytesIO(stream)))


# --------------------------------------------------------------------------------------------------------
# read_matrix errors


def _record_with(kind: str) -> bytes:
    record = records.Record()
    tensor = getattr(record.features["values"], kind)
    tensor.values.extend([1, 2])
    return records.frame(record.SerializeToString())


@pytest.mark.parametrize("kind, name", [("float64_tensor", "Float64Tensor"), ("int32_tensor", "Int32Tensor")])
def test_read_matrix_refuses_other_tensor_types_by_name(kind, name):
    good = records.frame(records.encode_record({"values": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=rf"record 1: features\['values'\] is {name}; only Float32Tensor"):
        records.read_matrix(good + _record_with(kind))


def test_read_matrix_refuses_a_float64_label():
    record = records.Record.FromString(records.encode_record({"values": [1.0]}))
    record.label["values"].float64_tensor.values.append(1.0)
    with pytest.raises(ValueError, match=r"record 0: label\['values'\] is Float64Tensor"):
        records.read_matrix(records.frame(record.SerializeToString()))


def test_read_matrix_reads_float64_and_int32_as_float32_when_asked():
    """k-NN reads what SDK v2's ``write_numpy_to_dense_tensor`` writes for float64 (numpy's default) and int arrays."""
    record = records.Record()
    record.features["values"].float64_tensor.values.extend([0.1, 2.5])
    record.label["values"].float64_tensor.values.append(1.0)
    integers = records.Record()
    integers.features["values"].int32_tensor.values.extend([3, -4])
    integers.label["values"].int32_tensor.values.append(2)
    stream = records.frame(record.SerializeToString()) + records.frame(integers.SerializeToString())
    matrix, labels = records.read_matrix(stream, tensor_types=records.NUMERIC_TENSORS)
    assert matrix.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_array_equal(matrix.toarray(), np.array([[0.1, 2.5], [3, -4]], np.float32))
    np.testing.assert_array_equal(labels, [1.0, 2.0])


def test_read_matrix_names_the_accepted_types_in_its_refusal():
    record = records.Record()
    record.features["values"].bytes.value.append(b"x")
    with pytest.raises(ValueError, match=r"is Bytes; only Float32Tensor or Float64Tensor or Int32Tensor is accepted$"):
        records.read_matrix(records.frame(record.SerializeToString()), tensor_types=records.NUMERIC_TENSORS)


def _stream(*tensors, labels=None) -> bytes:
    labels = labels or [None] * len(tensors)
    return b"".join(
        records.frame(records.encode_record({"values": t}, None if y is None else {"values": y}))
        for t, y in zip(tensors, labels)
    )


def _unchecked(keys, values, shape) -> bytes:
    """A sparse record that encode_record would refuse to write."""
    record = records.Record()
    tensor = record.features["values"].float32_tensor
    tensor.keys.extend(keys)
    tensor.values.extend(values)
    tensor.shape.extend(shape)
    return records.frame(record.SerializeToString())


@pytest.mark.parametrize(
    "data, feature_dim, message",
    [
        (_stream([1.0] * 10, [1.0] * 10, [1.0] * 10, [1.0] * 12), 10, "feature_dim=10 but record 3 has 12 features"),
        (_stream([1.0] * 3, ([0], [1.0], 5)), None, "record 0 has 3 features but record 1 has 5 features"),
        (_stream(([0, 2], [1.0, 2.0], [])), None, r"record 0 is sparse \(2 keys\) but has no shape"),
        (_stream(([1], [1.0], 4), ([0, 4], [1.0, 2.0], 4)), None, "record 1 has key 4 out of range for 4 features"),
        (_unchecked([0, 1], [1.0], [4]), None, "record 0 has 2 keys but 1 values"),
        (_unchecked([], [1.0, 2.0], [3]), None, r"record 0 is dense with 2 values but has shape \[3\]"),
        (_stream(([0], [1.0], [2, 3])), None, r"record 0 has shape \[2, 3\]; only vectors"),
        (_stream([1.0, 2.0], [1.0, 2.0], labels=[[1.0], None]), None, "record 1 has no label"),
        (_stream([1.0, 2.0], labels=[[1.0, 2.0]]), None, "record 0 has a label of 2 values; expected one"),
        (records.frame(records.encode_record({"other": [1.0]})), None, r"record 0 has no features\['values'\]"),
        (records.frame(b"\xff\xff\xff"), None, r"record 0 \(byte offset 0\) is not an aialgs.data.Record"),
    ],
)
def test_read_matrix_errors(data, feature_dim, message):
    with pytest.raises(ValueError, match=message):
        records.read_matrix(data, feature_dim=feature_dim)


@pytest.mark.parametrize("feature_dim", [0, -3, 2.5, True])
def test_read_matrix_refuses_a_bad_feature_dim(feature_dim):
    with pytest.raises(ValueError, match=f"feature_dim must be a positive integer or None, got {feature_dim!r}"):
        records.read_matrix(b"", feature_dim=feature_dim)


# --------------------------------------------------------------------------------------------------------
# Writer errors


@pytest.mark.parametrize(
    "features, labels, kwargs, message",
    [
        (np.array([["a", "b"]]), None, {}, "features must be numeric, got dtype <U1"),
        (np.array([[1 + 2j]]), None, {}, "features must be numeric, got dtype complex128"),
        (np.ones(4), None, {}, r"features must be 2-D \(rows x columns\), got shape \(4,\)"),
        (np.ones((3, 0)), None, {}, r"features has no columns \(shape \(3, 0\)\)"),
        (np.ones((3, 2)), np.ones(2), {}, r"labels must be 1-D with one value per row \(3\), got shape \(2,\)"),
        (np.ones((3, 2)), np.ones((3, 1)), {}, r"got shape \(3, 1\)"),
        (np.ones((3, 2)), np.array(["x", "y", "z"]), {}, "labels must be numeric"),
        (np.ones((3, 2)), None, {"chunk_rows": 0}, "chunk_rows must be a positive integer, got 0"),
    ],
)
def test_write_records_errors(features, labels, kwargs, message):
    out = io.BytesIO()
    with pytest.raises(ValueError, match=message):
        records.write_records(out, features, labels, **kwargs)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    "features, message",
    [
        ({"values": ["a"]}, r"features\['values'\] must be numeric, got dtype <U1"),
        ({"values": [[1.0, 2.0]]}, r"features\['values'\] must be 1-D"),
        ({"values": ([-1], [1.0], 3)}, r"features\['values'\] keys must be non-negative, got -1"),
        ({"values": ([0.5], [1.0], 3)}, r"features\['values'\] keys must be integers, got dtype float64"),
        ({"values": ([0, 1], [1.0], 3)}, r"features\['values'\]: 2 keys but 1 values"),
        ({"values": ([0], [1.0])}, r"a sparse tensor is \(keys, values, shape\), got a tuple of 2"),
    ],
)
def test_encode_record_errors(features, message):
    with pytest.raises(ValueError, match=message):
        records.encode_record(features)


@pytest.mark.parametrize(
    "labels, message",
    [
        ({}, "labels must name at least one array, got none"),
        ({"score": np.ones(3), "distances": np.ones((2, 4))}, r"same number of rows, got \{'distances': 2, 'score': 3"),
        ({"score": np.ones((2, 2, 2))}, r"labels\['score'\] must be 1-D or 2-D"),
        ({"labels": np.ones((2, 0))}, r"with at least one column, got \(2, 0\)"),
        ({"score": np.array(["a"])}, r"labels\['score'\] must be numeric"),
    ],
)
def test_write_label_records_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        records.write_label_records(io.BytesIO(), labels)


# --------------------------------------------------------------------------------------------------------
# read_matrix reads in blocks: the same matrix and the same errors whatever the block size


class _Unseekable:
    """A pipe-like stream: read() only."""

    def __init__(self, data: bytes):
        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


def _long_dense(rows: int) -> np.ndarray:
    """Dense rows over 1,024 bytes: the reader follows their headers instead of scanning words."""
    return np.random.default_rng(3).normal(size=(rows, 300)).astype(np.float32)


BLOCK_CASES = {
    "sparse labelled": lambda: _write(_random_sparse(300, 40, 5, seed=1), np.arange(300, dtype=np.float32)),
    "sparse unlabelled": lambda: _write(_random_sparse(300, 1 << 33, 3, seed=2)),
    "dense": lambda: _write(_long_dense(40), np.ones(40)),
    "split record in the middle": lambda: (
        _write(_random_sparse(80, 40, 5, seed=4)) + _split_record() + _write(_random_sparse(80, 40, 5, seed=5))
    ),
}


def _split_record() -> bytes:
    """A record whose value's bytes are the magic word, split there as dmlc's writer does (flags 1 and 3)."""
    value = np.frombuffer(MAGIC, dtype="<f4")[0]
    payload = records.encode_record({"values": ([3], [value], [40])})
    cut = payload.index(MAGIC)
    return _part(payload[:cut], 1) + _part(payload[cut + 4 :], 3)


@pytest.mark.parametrize("name", sorted(BLOCK_CASES))
@pytest.mark.parametrize("block_bytes", [16, 100, 1000, 5000])
def test_read_matrix_in_blocks_equals_one_read(name, block_bytes, monkeypatch):
    data = BLOCK_CASES[name]()
    expected, expected_labels = records.read_matrix(data)
    monkeypatch.setattr("recordio_protobuf.reader.STREAM_BLOCK_BYTES", block_bytes)
    for source in (data, io.BytesIO(data), _Unseekable(data)):
        matrix, labels = records.read_matrix(source)
        assert matrix.shape == expected.shape and (matrix != expected).nnz == 0
        assert matrix.dtype == np.float32 and matrix.indices.dtype == expected.indices.dtype
        if expected_labels is None:
            assert labels is None
        else:
            np.testing.assert_array_equal(labels, expected_labels)


def test_the_split_record_case_is_read_whole():
    matrix, _ = records.read_matrix(BLOCK_CASES["split record in the middle"]())
    assert matrix.shape == (161, 40) and matrix[80].toarray()[0, 3] == np.frombuffer(MAGIC, dtype="<f4")[0]


GOOD_ROWS = _write(scipy.sparse.csr_matrix(np.eye(30, 10, dtype=np.float32)), np.ones(30))


@pytest.mark.parametrize(
    "data, feature_dim, message",
    [
        (GOOD_ROWS + _stream(*[[1.0] * 12] * 3, labels=[[1.0]] * 3), 10, "feature_dim=10 but record 30 has 12"),
        (GOOD_ROWS + _stream(*[[1.0] * 12] * 3, labels=[[1.0]] * 3), None, "record 0 has 10 features but record 30"),
        (GOOD_ROWS + _stream([1.0] * 10), None, r"record 30 has no label\['values'\] but 30 other records do"),
        (_write(np.eye(30, 10, dtype=np.float32)) + _stream([1.0] * 10, labels=[[1.0]]), None, "record 0 has no label"),
        (GOOD_ROWS + _stream(([12], [1.0], 10), labels=[[1.0]]), None, "record 30 has key 12 out of range"),
        (GOOD_ROWS + records.frame(b"\xff\xff\xff"), None, rf"record 30 \(byte offset {len(GOOD_ROWS)}\) is not"),
        (GOOD_ROWS + b"\0" * 8, None, f"bad RecordIO magic 0x00000000 at byte offset {len(GOOD_ROWS)}"),
        (GOOD_ROWS + records.frame(b"abcdef")[:-3], None, f"truncated RecordIO record at byte offset {len(GOOD_ROWS)}"),
    ],
)
@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_read_matrix_errors_name_the_record_in_any_block(data, feature_dim, message, block_bytes, monkeypatch):
    monkeypatch.setattr("recordio_protobuf.reader.STREAM_BLOCK_BYTES", block_bytes)
    with pytest.raises(ValueError, match=message):
        records.read_matrix(_Unseekable(data), feature_dim=feature_dim)


def test_read_matrix_never_holds_the_whole_file(tmp_path, monkeypatch):
    """A file is decoded block by block: the reader's peak stays under the file's size (reading it whole did not)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    rows = 100_000
    matrix = scipy.sparse.csr_matrix(
        (
            np.ones(2 * rows, np.float32),
            np.stack([rng.integers(0, 500, rows), rng.integers(500, 900, rows)], 1).ravel(),
            np.arange(0, 2 * rows + 1, 2),
        ),
        shape=(rows, 900),
    )
    path = tmp_path / "data.pbr"
    with path.open("wb") as stream:
        records.write_records(stream, matrix, np.ones(rows, np.float32))
    monkeypatch.setattr("recordio_protobuf.reader.STREAM_BLOCK_BYTES", 1 << 18)
    with path.open("rb") as stream:
        tracemalloc.start()
        read, _ = records.read_matrix(stream)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert (read != matrix).nnz == 0
    assert peak < path.stat().st_size, (peak, path.stat().st_size)
