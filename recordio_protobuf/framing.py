"""RecordIO framing, the layer below the protobuf records: one frame per payload.

A frame: magic ``0xCED7230A`` (uint32 little-endian), a uint32 little-endian word whose low 29 bits are the payload
length and top 3 bits a continuation flag (0 whole record, 1 first, 2 middle, 3 last part of a record split by the
writer), the payload, zero padding to a multiple of 4 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

MAGIC = 0xCED7230A
LENGTH_MASK = (1 << 29) - 1  # the length word's low 29 bits; the top 3 are the continuation flag
MAX_PAYLOAD_BYTES = LENGTH_MASK
MAGIC_BYTES = struct.pack("<I", MAGIC)
HEADER = struct.Struct("<II")
FLAG_NAMES = {0: "whole record", 1: "first part", 2: "middle part", 3: "last part"}


def frame(payload: bytes) -> bytes:
    """RecordIO frame around one payload: magic, length word (flag 0), payload, zero padding to 4 bytes."""
    length = len(payload)
    if length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {length} bytes exceeds the RecordIO limit of {MAX_PAYLOAD_BYTES}")
    return b"".join((MAGIC_BYTES, struct.pack("<I", length), payload, bytes(-length % 4)))


def iter_frames(fileobj: BinaryIO, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(byte offset, payload) for each record; joins the parts of a split record as dmlc does.

    ``offset`` is where ``fileobj`` starts in the whole stream, so that errors and offsets name the right byte.
    """
    read, unpack = fileobj.read, HEADER.unpack
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
        length, flag = word & LENGTH_MASK, word >> 29
        padded = length + (-length % 4)
        body = read(padded)
        if len(body) < padded:
            raise ValueError(
                f"truncated RecordIO record at byte offset {offset}: the header announces {length} bytes "
                f"({padded} with padding) but only {len(body)} follow"
            )
        payload = body[:length]
        if flag not in FLAG_NAMES:
            valid = ", ".join(f"{number} {name}" for number, name in FLAG_NAMES.items())
            raise ValueError(f"invalid RecordIO continuation flag {flag} at byte offset {offset} (valid: {valid})")
        if (flag in (0, 1)) != (parts is None):
            if parts is None:
                problem = "no split record was begun (flag 1)"
            else:
                problem = f"the record split at byte offset {split_offset} is unfinished"
            raise ValueError(
                f"RecordIO record at byte offset {offset} is a {FLAG_NAMES[flag]} (flag {flag}) but {problem}"
            )
        if flag == 0:
            yield offset, payload
        elif flag == 1:
            parts, split_offset = [payload], offset
        else:
            parts.append(payload)
            if flag == 3:
                yield split_offset, MAGIC_BYTES.join(parts)
                parts = None
        offset += 8 + padded


def iter_payloads(fileobj: BinaryIO) -> Iterator[bytes]:
    """Payloads of a RecordIO stream, unframed.

    Raises:
        ValueError: naming the byte offset, on a bad magic, a truncated record or an invalid continuation flag.
    """
    for _, payload in iter_frames(fileobj):
        yield payload
