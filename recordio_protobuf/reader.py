"""Read RecordIO-protobuf: :func:`read_records` message by message, :func:`read_matrix` a whole training channel."""

from __future__ import annotations

import array
import io
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import scipy.sparse
from google.protobuf import message

from recordio_protobuf.columns import read_columns, whole_frames
from recordio_protobuf.framing import iter_frames
from recordio_protobuf.schema import VALUES_KEY, Record


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
    for index, (offset, payload) in enumerate(iter_frames(fileobj)):
        record = Record()
        _parse(record, payload, index, offset)
        yield record


_TENSOR_TYPES = {
    "float32_tensor": "Float32Tensor",
    "float64_tensor": "Float64Tensor",
    "int32_tensor": "Int32Tensor",
    "bytes": "Bytes",
    None: "empty",
}
FLOAT32_ONLY = ("float32_tensor",)
"""What Factorization Machines reads (its documentation: "recordio-protobuf format with Float32 tensors")."""
NUMERIC_TENSORS = ("float32_tensor", "float64_tensor", "int32_tensor")
"""What k-NN reads: SDK v2's ``write_numpy_to_dense_tensor`` writes float64 arrays (numpy's default) as
Float64Tensor and int arrays as Int32Tensor, and AWS's k-NN trains on them; values are read as float32."""


def _tensor(value, field_name: str, index: int, tensor_types: tuple[str, ...]):
    """The tensor of a ``features``/``label`` entry "values", or the error for one missing or of a refused type."""
    if value is None:
        raise ValueError(f"record {index} has no {field_name}[{VALUES_KEY!r}]")
    kind = value.WhichOneof("value")
    if kind not in tensor_types:
        accepted = " or ".join(_TENSOR_TYPES[name] for name in tensor_types)
        hint = " (cast the data to float32 before writing it)" if tensor_types == FLOAT32_ONLY else ""
        raise ValueError(
            f"record {index}: {field_name}[{VALUES_KEY!r}] is {_TENSOR_TYPES[kind]}; only {accepted} is accepted{hint}"
        )
    return getattr(value, kind)


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


STREAM_BLOCK_BYTES = 1 << 25
"""Bytes read at a time by :func:`read_matrix`: a channel file is decoded block by block and never held whole
(a 20M-row FM file is 1.2 GB; its matrix 0.5 GB)."""


def read_matrix(
    fileobj_or_bytes, feature_dim: int | None = None, tensor_types: tuple[str, ...] = FLOAT32_ONLY
) -> tuple:
    """Read every record's ``features["values"]`` into one CSR matrix and ``label["values"]`` into a vector.

    Dense and sparse records may be mixed. A sparse tensor (one with keys) must carry ``shape=[width]``. The
    stream is read in blocks of ``STREAM_BLOCK_BYTES``; a block of regular records (every file a program writes)
    is decoded column-wise (``columns.read_columns``), in which case a dense row's zeros are left out of the
    matrix; from the first irregular block on, records are parsed one by one.

    Args:
        fileobj_or_bytes: a binary file object or the bytes of a RecordIO-protobuf stream.
        feature_dim: the expected number of columns; by default the width of the first record.
        tensor_types: the ``Value`` kinds accepted (``FLOAT32_ONLY`` or ``NUMERIC_TENSORS``); values of any of
            them are read as float32.

    Returns:
        ``(matrix, labels)``: a float32 ``scipy.sparse.csr_matrix`` with one row per record, and a float32
        vector of labels, or None when no record has a label.

    Raises:
        ValueError: a framing or parsing error, a tensor of a kind not in ``tensor_types``, a record without
            ``features["values"]``, a sparse tensor without shape, keys and values of different lengths, a
            width other than ``feature_dim`` (or the first record's), a key out of range, a label that is not
            one value, or labels on only some records.
    """
    if feature_dim is not None and (
        isinstance(feature_dim, bool) or not isinstance(feature_dim, (int, np.integer)) or feature_dim < 1
    ):
        raise ValueError(f"feature_dim must be a positive integer or None, got {feature_dim!r}")
    if isinstance(fileobj_or_bytes, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(fileobj_or_bytes)
    else:
        stream = fileobj_or_bytes
    parts = _Parts(feature_dim)
    pending = b""
    while True:
        block = pending + stream.read(max(STREAM_BLOCK_BYTES, len(pending)))
        if len(block) == len(pending):  # end of stream: what is left is not a whole record
            if block:
                _read_messages(_Chained(block, stream), tensor_types, parts)
            break
        whole = whole_frames(memoryview(block))
        columns = read_columns(memoryview(block)[:whole]) if whole else None
        if whole is None or (whole and not parts.add_columns(columns)):
            _read_messages(_Chained(block, stream), tensor_types, parts)
            break
        parts.offset += whole
        pending = block[whole:] if whole else block
    return parts.matrix()


class _Chained:
    """A stream of ``head`` followed by the rest of ``tail``: the records from a block that is not regular on."""

    def __init__(self, head: bytes, tail):
        self.head, self.tail = memoryview(head), tail

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.tail.read(size)
        if size is None or size < 0:
            taken, self.head = bytes(self.head) + self.tail.read(), memoryview(b"")
            return taken
        taken, self.head = bytes(self.head[:size]), self.head[size:]
        if len(taken) < size:
            taken += self.tail.read(size - len(taken))
        return taken


class _Parts:
    """The blocks read so far (CSR values, column indices, row counts, labels) and what they must agree on."""

    def __init__(self, feature_dim: int | None):
        self.width = feature_dim
        self.given_width = feature_dim is not None
        self.values, self.indices, self.counts, self.labels = [], [], [], []
        self.rows = 0
        self.offset = 0
        self.labelled: bool | None = None  # unknown until the first record

    def add_columns(self, columns) -> bool:
        """Keep a block decoded by ``read_columns``; False (nothing kept) when it needs the per-record reader's
        words: not regular, or another width, a key out of range, or labels unlike the earlier records'."""
        if columns is None:
            return False
        values, keys, counts, labels, width = columns
        width = width if self.width is None else self.width if width == self.width else None
        if (
            width is None
            or (keys >= width).any()
            or (self.labelled is not None and self.labelled != (labels is not None))
        ):
            return False
        self.width, self.labelled = width, labels is not None
        self.add(values, keys.astype(_index_dtype(width)), counts, labels)
        return True

    def add(self, values, indices, counts, labels) -> None:
        self.values.append(values)
        self.indices.append(indices)
        self.counts.append(counts.astype(np.int32))
        if labels is not None:
            self.labels.append(labels)
        self.rows += len(counts)

    def matrix(self) -> tuple:
        counts = _concatenate(self.counts, np.int32)
        nnz = int(counts.sum(dtype=np.int64))
        width = self.width or 0
        index_dtype = np.int32 if max(width, nnz) < np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(counts.size + 1, dtype=index_dtype)
        np.cumsum(counts, out=indptr[1:])
        del counts
        indices = _concatenate(self.indices, index_dtype)
        values = _concatenate(self.values, np.float32)
        labels = _concatenate(self.labels, np.float32) if self.labelled else None
        matrix = scipy.sparse.csr_matrix((values, indices, indptr), shape=(self.rows, width))
        return matrix, labels


def _index_dtype(width: int) -> type:
    return np.int32 if width < np.iinfo(np.int32).max else np.int64


def _concatenate(arrays: list[np.ndarray], dtype) -> np.ndarray:
    """One array of ``arrays`` (emptied as it goes: each block is freed once copied, so the peak is one result)."""
    out = np.empty(sum(len(array) for array in arrays), dtype=dtype)
    position = 0
    while arrays:
        array = arrays.pop(0)
        out[position : position + len(array)] = array
        position += len(array)
    return out


def _read_messages(stream, tensor_types: tuple[str, ...], parts: _Parts) -> None:
    """The rest of the stream record by record, into ``parts``; the errors name the record and its byte offset."""
    # Compact typed buffers (not lists of Python numbers): 20M records must fit in memory.
    values, keys, labels = array.array("f"), array.array("Q"), array.array("f")
    counts, widths, sparse_rows = array.array("q"), array.array("q"), array.array("q")
    first_unlabelled = None
    record = Record()
    for local, (offset, payload) in enumerate(iter_frames(stream, parts.offset)):
        index = parts.rows + local
        _parse(record, payload, index, offset)
        tensor = _tensor(record.features.get(VALUES_KEY), "features", index, tensor_types)
        tensor_values, tensor_keys, shape = tensor.values, tensor.keys, tensor.shape
        n_values = len(tensor_values)
        if tensor_keys or shape:
            widths.append(_checked_width(index, n_values, len(tensor_keys), list(shape)))
            if tensor_keys:
                keys.extend(tensor_keys)
                sparse_rows.append(local)
        else:
            widths.append(n_values)
        values.extend(tensor_values)
        counts.append(n_values)
        label = record.label.get(VALUES_KEY)
        if label is not None:
            label = _tensor(label, "label", index, tensor_types).values
            if len(label) != 1:
                raise ValueError(f"record {index} has a label of {len(label)} values; expected one")
            labels.append(label[0])
        elif first_unlabelled is None:
            first_unlabelled = index

    n_rows = len(counts)
    widths = np.frombuffer(widths, dtype=np.int64)
    if parts.width is None and n_rows:
        parts.width = int(widths[0])
    width = parts.width
    wrong = np.flatnonzero(widths != width)
    if wrong.size:
        expected = f"feature_dim={width}" if parts.given_width else f"record 0 has {width} features"
        raise ValueError(f"{expected} but record {parts.rows + wrong[0]} has {widths[wrong[0]]} features")
    if parts.labelled is False and n_rows:
        first_unlabelled = 0  # the records before this one had no labels
    labelled = len(labels) + (parts.rows if parts.labelled else 0)
    if labelled and first_unlabelled is not None:
        raise ValueError(f"record {first_unlabelled} has no label[{VALUES_KEY!r}] but {labelled} other records do")
    if n_rows:
        parts.labelled = labelled > 0

    counts = np.frombuffer(counts, dtype=np.int64)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    keys = np.frombuffer(keys, dtype=np.uint64)
    sparse_rows = np.frombuffer(sparse_rows, dtype=np.int64)
    out_of_range = np.flatnonzero(keys >= width) if width is not None else np.zeros(0, np.int64)
    if out_of_range.size:
        row = sparse_rows[np.searchsorted(np.cumsum(counts[sparse_rows]), out_of_range[0], "right")]
        raise ValueError(f"record {parts.rows + row} has key {keys[out_of_range[0]]} out of range for {width} features")
    index_dtype = _index_dtype(width or 0)
    if sparse_rows.size == n_rows:
        indices = keys.astype(index_dtype)
    else:  # dense rows: a value's column is its position in the row
        indices = (np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)).astype(index_dtype)
        is_sparse = np.zeros(n_rows, dtype=bool)
        is_sparse[sparse_rows] = True
        indices[np.repeat(is_sparse, counts)] = keys
    parts.add(
        np.frombuffer(values, dtype=np.float32), indices, counts, np.frombuffer(labels, np.float32) if labels else None
    )
