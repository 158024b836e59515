"""Write and read SageMaker RecordIO-protobuf (``application/x-recordio-protobuf``).

A package of its own because both sides need it: the notebooks write training data with it (through
``common.records``) and the emulator's built-in algorithms read it, and the emulator must not depend on ``common``.

SDK v3 ships only the RecordIO framing (its protobuf writer and reader raise ``NotImplementedError``), so the
``aialgs.data.Record`` schema is built here with the ``protobuf`` library, from the field numbers of the v2
SDK's ``record.proto``. Files written by ``write_records`` are byte-for-byte those of the v2 SDK's
``write_spmatrix_to_sparse_tensor`` / ``write_numpy_to_dense_tensor`` for float32 input.

RecordIO frame of one payload: magic ``0xCED7230A`` (uint32 little-endian), a uint32 little-endian word whose
low 29 bits are the payload length and top 3 bits a continuation flag (0 whole record, 1 first, 2 middle,
3 last part of a record split by the writer), the payload, zero padding to a multiple of 4 bytes.

``write_records`` and ``write_label_records`` lay out the protobuf wire bytes of a whole chunk of rows with
numpy instead of building one message per row, which is over ten times slower: minutes for ml-20m's 20M rows
(``benchmarks/records.py``). The tests check that both paths give the same bytes.
"""

from __future__ import annotations

import array
import io
import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import scipy.sparse
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from recordio_protobuf.columns import read_columns

MAGIC = 0xCED7230A
VALUES_KEY = "values"  # the name SageMaker's built-in algorithms read features and labels from
MAX_PAYLOAD_BYTES = (1 << 29) - 1
DEFAULT_CHUNK_ROWS = 65536

_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEADER = struct.Struct("<II")
_FLAG_NAMES = {0: "whole record", 1: "first part", 2: "middle part", 3: "last part"}
_NUMERIC_KINDS = "biuf"


def _build_schema() -> descriptor_pool.DescriptorPool:
    """The ``aialgs.data`` proto2 file of the v2 SDK's ``record.proto``, in a pool of its own."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="aialgs/data/record.proto", package="aialgs.data", syntax="proto2")

    def add(parent, name, number, kind, label=field.LABEL_OPTIONAL, type_name=None, packed=False, oneof=None):
        spec = parent.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            spec.type_name = type_name
        if packed:
            spec.options.packed = True
        if oneof is not None:
            spec.oneof_index = oneof

    for name, value_kind in (
        ("Float32Tensor", field.TYPE_FLOAT),
        ("Float64Tensor", field.TYPE_DOUBLE),
        ("Int32Tensor", field.TYPE_INT32),
    ):
        tensor = proto.message_type.add(name=name)
        add(tensor, "values", 1, value_kind, field.LABEL_REPEATED, packed=True)
        add(tensor, "keys", 2, field.TYPE_UINT64, field.LABEL_REPEATED, packed=True)
        add(tensor, "shape", 3, field.TYPE_UINT64, field.LABEL_REPEATED, packed=True)

    raw = proto.message_type.add(name="Bytes")
    add(raw, "value", 1, field.TYPE_BYTES, field.LABEL_REPEATED)
    add(raw, "content_type", 2, field.TYPE_STRING)

    value = proto.message_type.add(name="Value")
    value.oneof_decl.add(name="value")
    for name, number, type_name in (
        ("float32_tensor", 2, "Float32Tensor"),
        ("float64_tensor", 3, "Float64Tensor"),
        ("int32_tensor", 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        add(value, name, number, field.TYPE_MESSAGE, type_name=f".aialgs.data.{type_name}", oneof=0)

    record = proto.message_type.add(name="Record")
    for name, number, entry_name in (("features", 1, "FeaturesEntry"), ("label", 2, "LabelEntry")):
        entry = record.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        add(entry, "key", 1, field.TYPE_STRING)
        add(entry, "value", 2, field.TYPE_MESSAGE, type_name=".aialgs.data.Value")
        add(record, name, number, field.TYPE_MESSAGE, field.LABEL_REPEATED, f".aialgs.data.Record.{entry_name}")
    for name, number in (("uid", 3), ("metadata", 4), ("configuration", 5)):
        add(record, name, number, field.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


_POOL = _build_schema()


def _message_class(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"aialgs.data.{name}"))


Float32Tensor = _message_class("Float32Tensor")
Float64Tensor = _message_class("Float64Tensor")
Int32Tensor = _message_class("Int32Tensor")
Bytes = _message_class("Bytes")
Value = _message_class("Value")
Record = _message_class("Record")


# --------------------------------------------------------------------------------------------------------
# One record at a time, through the protobuf message classes.


def _as_float32(array, what: str) -> np.ndarray:
    """``array`` as float32, refusing what is not numbers (strings, objects, complex, dates)."""
    array = np.asarray(array)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def _as_uint64(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.size == 0:  # [] is float64 to numpy
        return np.zeros(0, dtype=np.uint64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{what} must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(f"{what} must be non-negative, got {array.min()}")
    return array.astype(np.uint64, copy=False)


def _fill_tensor(tensor, what: str, spec) -> None:
    tensor.SetInParent()  # an empty vector is still a Float32Tensor, not an unset Value
    if isinstance(spec, tuple):
        if len(spec) != 3:
            raise ValueError(f"{what}: a sparse tensor is (keys, values, shape), got a tuple of {len(spec)}")
        keys = _as_uint64(np.ravel(spec[0]), f"{what} keys")
        values = _as_float32(np.ravel(spec[1]), f"{what} values")
        if keys.size != values.size:
            raise ValueError(f"{what}: {keys.size} keys but {values.size} values")
        tensor.values.extend(values)
        tensor.keys.extend(keys)
        tensor.shape.extend(_as_uint64(np.atleast_1d(spec[2]), f"{what} shape"))
        return
    values = _as_float32(spec, what)
    if values.ndim > 1:
        raise ValueError(f"{what} must be 1-D (or a (keys, values, shape) tuple), got shape {values.shape}")
    tensor.values.extend(np.atleast_1d(values))


def encode_record(features: dict | None = None, label: dict | None = None) -> bytes:
    """Serialize one ``aialgs.data.Record`` (unframed) with Float32 tensors.

    Args:
        features, label: name -> a 1-D array-like (dense tensor; a scalar is a vector of one) or a tuple
            ``(keys, values, shape)`` (sparse tensor). Values are cast to float32.

    Returns:
        The serialized Record; map entries in name order, so the bytes are deterministic.

    Raises:
        ValueError: non-numeric values, negative or non-integer keys/shape, keys and values of different lengths.
    """
    record = Record()
    for field_name, tensors in (("features", features), ("label", label)):
        for name, spec in (tensors or {}).items():
            _fill_tensor(getattr(record, field_name)[name].float32_tensor, f"{field_name}[{name!r}]", spec)
    return record.SerializeToString(deterministic=True)


def frame(payload: bytes) -> bytes:
    """RecordIO frame around one payload: magic, length word (flag 0), payload, zero padding to 4 bytes."""
    length = len(payload)
    if length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {length} bytes exceeds the RecordIO limit of {MAX_PAYLOAD_BYTES}")
    return b"".join((_MAGIC_BYTES, struct.pack("<I", length), payload, bytes(-length % 4)))


def _iter_frames(fileobj: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(byte offset, payload) for each record; joins the parts of a split record as dmlc does."""
    read, unpack = fileobj.read, _HEADER.unpack
    offset = 0
    parts, split_offset = None, 0
    while True:
        header = read(8)
        if not header:
            if parts is not None:
                raise ValueError(f"truncated RecordIO: the record split at byte offset {split_offset} has no last part")
            return
        if len(header) < 8:
            raise ValueError(f"truncated RecordIO record at byte offset {offset}: {len(header)} of 8 header bytes")
        magic, word = unpack(header)
        if magic != MAGIC:
            raise ValueError(
                f"bad RecordIO magic 0x{magic:08X} at byte offset {offset} (expected 0x{MAGIC:08X}); "
                "is this application/x-recordio-protobuf?"
            )
        length, flag = word & MAX_PAYLOAD_BYTES, word >> 29
        padded = length + (-length % 4)
        body = read(padded)
        if len(body) < padded:
            raise ValueError(
                f"truncated RecordIO record at byte offset {offset}: the header announces {length} bytes "
                f"({padded} with padding) but only {len(body)} follow"
            )
        payload = body[:length]
        if flag not in _FLAG_NAMES:
            valid = ", ".join(f"{number} {name}" for number, name in _FLAG_NAMES.items())
            raise ValueError(f"invalid RecordIO continuation flag {flag} at byte offset {offset} (valid: {valid})")
        if (flag in (0, 1)) != (parts is None):
            if parts is None:
                problem = "no split record was begun (flag 1)"
            else:
                problem = f"the record split at byte offset {split_offset} is unfinished"
            raise ValueError(
                f"RecordIO record at byte offset {offset} is a {_FLAG_NAMES[flag]} (flag {flag}) but {problem}"
            )
        if flag == 0:
            yield offset, payload
        elif flag == 1:
            parts, split_offset = [payload], offset
        else:
            parts.append(payload)
            if flag == 3:
                yield split_offset, _MAGIC_BYTES.join(parts)
                parts = None
        offset += 8 + padded


def iter_payloads(fileobj: BinaryIO) -> Iterator[bytes]:
    """Payloads of a RecordIO stream, unframed.

    Raises:
        ValueError: naming the byte offset, on a bad magic, a truncated record or an invalid continuation flag.
    """
    for _, payload in _iter_frames(fileobj):
        yield payload


def _parse(record, payload: bytes, index: int, offset: int) -> None:
    try:
        record.ParseFromString(payload)
    except message.DecodeError as error:
        raise ValueError(f"record {index} (byte offset {offset}) is not an aialgs.data.Record: {error}") from None


def read_records(fileobj: BinaryIO) -> Iterator:
    """Parse each payload of a RecordIO stream into a ``Record``.

    Raises:
        ValueError: a framing error (see ``iter_payloads``) or a payload that is not a Record.
    """
    for index, (offset, payload) in enumerate(_iter_frames(fileobj)):
        record = Record()
        _parse(record, payload, index, offset)
        yield record


# --------------------------------------------------------------------------------------------------------
# Whole chunks of rows at once: the wire bytes laid out with numpy.
#
# A record is described as a list of pieces, each with a size per row (0 = absent in that row):
#   ("const", sizes, bytes)   the same bytes in every row where present
#   ("varint", sizes, values) a protobuf varint per row
#   ("word", 4, values)       a uint32 little-endian per row (the RecordIO length word)
#   ("blob", sizes, flat)     each row's slice of a flat uint8 buffer holding all rows' bytes in order
#   ("zeros", sizes, None)    padding


_LENGTH_DELIMITED = 2
_VARINT_LIMITS = [np.uint64(1 << bits) for bits in range(7, 64, 7)]


def _tag(field_number: int) -> bytes:
    return bytes([field_number << 3 | _LENGTH_DELIMITED])


def _varint_sizes(values) -> np.ndarray:
    """How many bytes each non-negative integer takes as a protobuf varint (1 to 10)."""
    values = np.asarray(values).astype(np.uint64, copy=False)
    sizes = np.ones(values.shape, dtype=np.int64)
    for limit in _VARINT_LIMITS:
        sizes += values >= limit
    return sizes


def _put_varints(out: np.ndarray, starts: np.ndarray, values: np.ndarray, sizes: np.ndarray) -> None:
    values = values.astype(np.uint64)
    while starts.size:
        more = sizes > 1
        out[starts] = (values & np.uint64(0x7F)).astype(np.uint8) | np.where(more, 0x80, 0).astype(np.uint8)
        starts, values, sizes = starts[more] + 1, values[more] >> np.uint64(7), sizes[more] - 1


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _const(data: bytes, present=None) -> tuple:
    """The same bytes in every row, or only in rows where ``present`` is true."""
    return ("const", len(data) if present is None else present.astype(np.int64) * len(data), data)


def _total(pieces, n_rows: int) -> np.ndarray:
    total = np.zeros(n_rows, dtype=np.int64)
    for _, sizes, _ in pieces:
        total += sizes
    return total


def _delimited(field_number: int, inner: list, n_rows: int) -> list:
    """A length-delimited field (sub-message) holding ``inner`` in every row."""
    length = _total(inner, n_rows)
    return [_const(_tag(field_number)), ("varint", _varint_sizes(length), length), *inner]


def _packed(field_number: int, flat: np.ndarray, sizes: np.ndarray) -> list:
    """A packed repeated field; absent (as protobuf writes it) in rows where it is empty."""
    present = sizes > 0
    return [
        _const(_tag(field_number), present),
        ("varint", np.where(present, _varint_sizes(sizes), 0), sizes),
        ("blob", sizes, flat),
    ]


def _map_entry(field_number: int, name: str, tensor: list, n_rows: int) -> list:
    """``Record.features``/``Record.label`` entry ``name`` -> Value{float32_tensor = tensor}."""
    key = name.encode()
    value = _delimited(2, tensor, n_rows)  # Value.float32_tensor = 2
    entry = [_const(_tag(1) + _varint_bytes(len(key)) + key), *_delimited(2, value, n_rows)]
    return _delimited(field_number, entry, n_rows)


def _float32_tensor(values: np.ndarray, counts: np.ndarray, keys=None, width: int | None = None) -> list:
    """Float32Tensor pieces: ``values`` of each row in order, with keys and shape=[width] when sparse."""
    pieces = _packed(1, values.astype("<f4", copy=False).view(np.uint8), 4 * counts)
    if keys is not None:
        key_sizes = _varint_sizes(keys)
        key_bytes = np.zeros(int(key_sizes.sum()), dtype=np.uint8)
        _put_varints(key_bytes, np.cumsum(key_sizes) - key_sizes, keys, key_sizes)
        ends = np.concatenate(([0], np.cumsum(key_sizes)))[np.cumsum(counts)]
        pieces += _packed(2, key_bytes, np.diff(ends, prepend=0))
        shape = _varint_bytes(width)
        pieces.append(_const(_tag(3) + _varint_bytes(len(shape)) + shape))
    return pieces


def _lay_out(payload: list, n_rows: int) -> bytes:
    """RecordIO-framed bytes of every row's payload, one frame per row."""
    length = _total(payload, n_rows)
    if n_rows and length.max() > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a record of {length.max()} bytes exceeds the RecordIO limit of {MAX_PAYLOAD_BYTES}")
    pieces = [_const(_MAGIC_BYTES), ("word", 4, length), *payload, ("zeros", -length % 4, None)]
    sizes = [np.broadcast_to(np.asarray(size, dtype=np.int64), (n_rows,)) for _, size, _ in pieces]
    starts = [np.zeros(n_rows, dtype=np.int64)]  # where each piece starts within its row
    for size in sizes:
        starts.append(starts[-1] + size)
    row_starts = np.concatenate(([0], np.cumsum(starts.pop())))
    out = np.zeros(row_starts[-1], dtype=np.uint8)
    rows = out.reshape(n_rows, -1) if n_rows and (length == length[0]).all() else None  # equal-length rows
    for (kind, _, data), size, start in zip(pieces, sizes, starts):
        at = row_starts[:-1] + start
        if kind == "const":
            present = size > 0
            out[at[present, None] + np.arange(len(data))] = np.frombuffer(data, dtype=np.uint8)
        elif kind == "word":
            out[at[:, None] + np.arange(4)] = data.astype("<u4").view(np.uint8).reshape(-1, 4)
        elif kind == "varint":
            present = size > 0
            _put_varints(out, at[present], data[present], size[present])
        elif kind == "blob" and rows is not None and (start == start[0]).all() and (size == size[0]).all():
            rows[:, start[0] : start[0] + size[0]] = data.reshape(n_rows, size[0])  # dense: no index arrays
        elif kind == "blob":
            out[np.repeat(at - (np.cumsum(size) - size), size) + np.arange(data.size)] = data
    return out.tobytes()


def _check_labels(labels, n_rows: int) -> np.ndarray:
    labels = _as_float32(labels, "labels")
    if labels.shape != (n_rows,):
        raise ValueError(f"labels must be 1-D with one value per row ({n_rows}), got shape {labels.shape}")
    return labels


def write_records(fileobj: BinaryIO, features, labels=None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Write one Record per row of ``features`` as RecordIO-protobuf, Float32 tensors under ``"values"``.

    The bytes equal the v2 SDK's ``write_spmatrix_to_sparse_tensor`` (sparse) and
    ``write_numpy_to_dense_tensor`` (dense) for float32 input.

    Args:
        fileobj: a binary file object.
        features: a scipy.sparse matrix (sparse tensors: the row's keys and values, shape=[n_cols]) or a 2-D
            numpy array (dense tensors: the row's values). Values are cast to float32 a chunk at a time, so a
            CSR matrix is never copied whole; other sparse formats are converted to CSR once.
        labels: optional 1-D array, one value per row, written as ``label["values"] = [value]``.
        chunk_rows: rows encoded at once; memory per chunk is about chunk_rows times a record's size.

    Returns:
        The number of records written.

    Raises:
        ValueError: features not 2-D or with no columns, non-numeric values, labels of the wrong shape.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    sparse = scipy.sparse.issparse(features)
    if sparse:
        features = features.tocsr()
    else:
        features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (rows x columns), got shape {features.shape}")
    if features.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"features must be numeric, got dtype {features.dtype}")
    n_rows, n_cols = features.shape
    if n_cols == 0:
        raise ValueError(f"features has no columns (shape {features.shape})")
    if labels is not None:
        labels = _check_labels(labels, n_rows)

    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        n = stop - start
        if sparse:
            lo, hi = features.indptr[start], features.indptr[stop]
            counts = np.diff(features.indptr[start : stop + 1]).astype(np.int64)
            values = features.data[lo:hi].astype(np.float32)
            tensor = _float32_tensor(values, counts, features.indices[lo:hi], n_cols)
        else:
            values = np.ascontiguousarray(features[start:stop], dtype=np.float32).ravel()
            tensor = _float32_tensor(values, np.full(n, n_cols, dtype=np.int64))
        payload = _map_entry(1, VALUES_KEY, tensor, n)
        if labels is not None:
            label_tensor = _float32_tensor(np.ascontiguousarray(labels[start:stop]), np.ones(n, dtype=np.int64))
            payload += _map_entry(2, VALUES_KEY, label_tensor, n)
        fileobj.write(_lay_out(payload, n))
    return n_rows


def write_label_records(fileobj: BinaryIO, labels: dict) -> int:
    """Write one Record per row with empty features and ``label[name]`` = that row's values (an algorithm response).

    Args:
        fileobj: a binary file object.
        labels: name -> array with one entry per row: 1-D (one value per row) or 2-D (a vector per row), e.g.
            ``{"score": s, "predicted_label": p}`` for FM or ``{"predicted_label": p, "distances": d,
            "labels": l}`` for k-NN. Cast to float32; entries are written in name order.

    Returns:
        The number of records written.

    Raises:
        ValueError: no names, non-numeric values, more than 2 dimensions, no columns, unequal row counts.
    """
    if not labels:
        raise ValueError("labels must name at least one array, got none")
    arrays = {}
    for name in sorted(labels):
        array = _as_float32(labels[name], f"labels[{name!r}]")
        if array.ndim not in (1, 2) or array.ndim == 2 and array.shape[1] == 0:
            raise ValueError(f"labels[{name!r}] must be 1-D or 2-D with at least one column, got {array.shape}")
        arrays[name] = array if array.ndim == 2 else array[:, None]
    rows = {name: len(array) for name, array in arrays.items()}
    if len(set(rows.values())) > 1:
        raise ValueError(f"labels arrays must have the same number of rows, got {rows}")
    n_rows = next(iter(rows.values()))
    for start in range(0, n_rows, DEFAULT_CHUNK_ROWS):
        n = min(DEFAULT_CHUNK_ROWS, n_rows - start)
        payload = []
        for name, array in arrays.items():
            values = np.ascontiguousarray(array[start : start + n]).ravel()
            payload += _map_entry(2, name, _float32_tensor(values, np.full(n, array.shape[1], dtype=np.int64)), n)
        fileobj.write(_lay_out(payload, n))
    return n_rows


# --------------------------------------------------------------------------------------------------------
# Reading a whole training channel into a matrix.


_TENSOR_TYPES = {"float64_tensor": "Float64Tensor", "int32_tensor": "Int32Tensor", "bytes": "Bytes", None: "empty"}


def _refuse_value(value, field_name: str, index: int):
    """Raise the error for a ``features``/``label`` entry "values" that is missing or not a Float32Tensor."""
    if value is None:
        raise ValueError(f"record {index} has no {field_name}[{VALUES_KEY!r}]")
    found = _TENSOR_TYPES[value.WhichOneof("value")]
    raise ValueError(
        f"record {index}: {field_name}[{VALUES_KEY!r}] is {found}; only Float32Tensor is accepted "
        "(cast the data to float32 before writing it)"
    )


def _checked_width(index: int, n_values: int, n_keys: int, shape: list) -> int:
    """Width of a tensor that has keys or a shape, after checking they agree with its values."""
    if len(shape) > 1:
        raise ValueError(f"record {index} has shape {shape}; only vectors (a 1-D shape) are supported")
    if n_keys:
        if not shape:
            raise ValueError(
                f"record {index} is sparse ({n_keys} keys) but has no shape; a sparse tensor must give "
                "shape=[feature_dim]"
            )
        if n_keys != n_values:
            raise ValueError(f"record {index} has {n_keys} keys but {n_values} values")
    elif n_values not in (0, shape[0]):
        raise ValueError(f"record {index} is dense with {n_values} values but has shape {shape}")
    return shape[0]


def read_matrix(fileobj_or_bytes, feature_dim: int | None = None) -> tuple:
    """Read every record's ``features["values"]`` into one CSR matrix and ``label["values"]`` into a vector.

    Dense and sparse records may be mixed. A sparse tensor (one with keys) must carry ``shape=[width]``.
    Regular files (every file a program writes) are decoded column-wise (``columns.read_columns``), in which
    case a dense row's zeros are left out of the matrix; anything else is parsed record by record.

    Args:
        fileobj_or_bytes: a binary file object or the bytes of a RecordIO-protobuf stream.
        feature_dim: the expected number of columns; by default the width of the first record.

    Returns:
        ``(matrix, labels)``: a float32 ``scipy.sparse.csr_matrix`` with one row per record, and a float32
        vector of labels, or None when no record has a label.

    Raises:
        ValueError: a framing or parsing error, a tensor other than Float32Tensor, a record without
            ``features["values"]``, a sparse tensor without shape, keys and values of different lengths, a
            width other than ``feature_dim`` (or the first record's), a key out of range, a label that is not
            one value, or labels on only some records.
    """
    if feature_dim is not None and (
        isinstance(feature_dim, bool) or not isinstance(feature_dim, (int, np.integer)) or feature_dim < 1
    ):
        raise ValueError(f"feature_dim must be a positive integer or None, got {feature_dim!r}")
    if isinstance(fileobj_or_bytes, bytes):
        data = fileobj_or_bytes
    elif isinstance(fileobj_or_bytes, (bytearray, memoryview)):
        data = bytes(fileobj_or_bytes)
    else:
        data = fileobj_or_bytes.read()
    columns = read_columns(data)
    if columns is not None:
        values, keys, counts, labels, width = columns
        if (feature_dim is None or feature_dim == width) and not (keys >= width).any():
            indptr = np.concatenate(([0], np.cumsum(counts)))
            index_dtype = np.int32 if max(width, indptr[-1]) < np.iinfo(np.int32).max else np.int64
            matrix = scipy.sparse.csr_matrix(
                (values, keys.astype(index_dtype), indptr.astype(index_dtype)), shape=(counts.size, width)
            )
            return matrix, labels
    stream = io.BytesIO(data)

    # Compact typed buffers (not lists of Python numbers): 20M records must fit in memory.
    values, keys, labels = array.array("f"), array.array("Q"), array.array("f")
    counts, widths, sparse_rows = array.array("q"), array.array("q"), array.array("q")
    first_unlabelled = None
    record = Record()
    for index, (offset, payload) in enumerate(_iter_frames(stream)):
        _parse(record, payload, index, offset)
        value = record.features.get(VALUES_KEY)
        if value is None or not value.HasField("float32_tensor"):
            _refuse_value(value, "features", index)
        tensor = value.float32_tensor
        tensor_values, tensor_keys, shape = tensor.values, tensor.keys, tensor.shape
        n_values = len(tensor_values)
        if tensor_keys or shape:
            widths.append(_checked_width(index, n_values, len(tensor_keys), list(shape)))
            if tensor_keys:
                keys.extend(tensor_keys)
                sparse_rows.append(index)
        else:
            widths.append(n_values)
        values.extend(tensor_values)
        counts.append(n_values)
        label = record.label.get(VALUES_KEY)
        if label is not None:
            if not label.HasField("float32_tensor"):
                _refuse_value(label, "label", index)
            label = label.float32_tensor.values
            if len(label) != 1:
                raise ValueError(f"record {index} has a label of {len(label)} values; expected one")
            labels.append(label[0])
        elif first_unlabelled is None:
            first_unlabelled = index

    n_rows = len(counts)
    widths = np.frombuffer(widths, dtype=np.int64)
    width = feature_dim if feature_dim is not None else int(widths[0]) if n_rows else 0
    wrong = np.flatnonzero(widths != width)
    if wrong.size:
        expected = f"feature_dim={width}" if feature_dim is not None else f"record 0 has {width} features"
        raise ValueError(f"{expected} but record {wrong[0]} has {widths[wrong[0]]} features")
    if labels and first_unlabelled is not None:
        raise ValueError(f"record {first_unlabelled} has no label[{VALUES_KEY!r}] but {len(labels)} other records do")

    counts = np.frombuffer(counts, dtype=np.int64)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    index_dtype = np.int32 if max(width, indptr[-1]) < np.iinfo(np.int32).max else np.int64
    keys = np.frombuffer(keys, dtype=np.uint64)
    sparse_rows = np.frombuffer(sparse_rows, dtype=np.int64)
    out_of_range = np.flatnonzero(keys >= width)
    if out_of_range.size:
        row = sparse_rows[np.searchsorted(np.cumsum(counts[sparse_rows]), out_of_range[0], "right")]
        raise ValueError(f"record {row} has key {keys[out_of_range[0]]} out of range for {width} features")
    if sparse_rows.size == n_rows:
        indices = keys.astype(index_dtype)
    else:  # dense rows: a value's column is its position in the row
        indices = (np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)).astype(index_dtype)
        is_sparse = np.zeros(n_rows, dtype=bool)
        is_sparse[sparse_rows] = True
        indices[np.repeat(is_sparse, counts)] = keys
    matrix = scipy.sparse.csr_matrix(
        (np.frombuffer(values, dtype=np.float32), indices, indptr.astype(index_dtype)), shape=(n_rows, width)
    )
    return matrix, np.frombuffer(labels, dtype=np.float32) if labels else None
