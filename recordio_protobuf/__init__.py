"""Write and read SageMaker RecordIO-protobuf (``application/x-recordio-protobuf``).

A package of its own because both sides need it: the notebooks write training data with it (through
``common.records``) and the emulator's built-in algorithms read it, and the emulator must not depend on ``common``.

One module per layer: ``schema`` (the ``aialgs.data.Record`` messages), ``framing`` (RecordIO frames),
``writer``, ``reader`` and ``columns`` (the reader's fast path for regular files); callers import the names below
from the package itself.
"""

from recordio_protobuf.framing import MAGIC, MAX_PAYLOAD_BYTES, frame, iter_payloads
from recordio_protobuf.reader import FLOAT32_ONLY, NUMERIC_TENSORS, read_matrix, read_records
from recordio_protobuf.schema import VALUES_KEY, Bytes, Float32Tensor, Float64Tensor, Int32Tensor, Record, Value
from recordio_protobuf.writer import DEFAULT_CHUNK_ROWS, encode_record, write_label_records, write_records

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FLOAT32_ONLY",
    "MAGIC",
    "MAX_PAYLOAD_BYTES",
    "NUMERIC_TENSORS",
    "VALUES_KEY",
    "Bytes",
    "Float32Tensor",
    "Float64Tensor",
    "Int32Tensor",
    "Record",
    "Value",
    "encode_record",
    "frame",
    "iter_payloads",
    "read_matrix",
    "read_records",
    "write_label_records",
    "write_records",
]
