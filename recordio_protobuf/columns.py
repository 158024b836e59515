"""Read a RecordIO-protobuf stream as columns: every record of the same size decoded at once with numpy.

Files written by a program (SDK v2's ``record_set``, ``write_records``) repeat one layout: records of the same
byte length carry the same protobuf framing around their tensors, only the tensor bytes differ. So instead of
parsing 20M messages one by one, :func:`read_columns` finds every frame with one vectorised pass (headers are
4-byte aligned, so candidate magics are checked as a chain), walks the wire format of one record per length,
checks that every other record of that length has the same bytes outside its tensors, and then slices the
float32 values, varint keys and labels of all of them as 2-D arrays. Dense rows (no keys) come back without
their zeros, so a dense file trains as fast as the same data written sparse.

Anything irregular (split records, other feature names, float64 tensors, differing metadata...) returns None
and the caller falls back to the message-by-message reader, which also words the errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recordio_protobuf.framing import HEADER, LENGTH_MASK, MAGIC
from recordio_protobuf.schema import VALUES_KEY

_CHUNK_BYTES = 1 << 22  # bytes gathered per step: bounds the working memory whatever the file's size
_WALK_MIN_LENGTH = 1024  # records this long (dense rows) are few for their bytes: follow headers, scan no words
_VALUES = VALUES_KEY.encode()


@dataclass(frozen=True)
class _Layout:
    """Where one record's tensors lie within its payload (byte ranges), the rest being framing."""

    values: tuple[int, int]
    keys: tuple[int, int] | None
    width: int | None  # the tensor's shape[0], when it has a shape
    label: tuple[int, int] | None


def _frames(data: memoryview) -> tuple[np.ndarray, np.ndarray] | None:
    """(payload starts, payload lengths) of every record, or None unless the candidate magics chain exactly."""
    size = len(data)
    if size == 0 or size % 4:
        return None
    words = np.frombuffer(data, dtype="<u4")
    if size >= 8 and words[0] == MAGIC and words[1] & LENGTH_MASK >= _WALK_MIN_LENGTH:
        return _walk(data)
    heads = np.flatnonzero(words == MAGIC)
    if heads.size == 0 or heads[0] != 0:
        return None
    info = words[np.minimum(heads + 1, words.size - 1)]
    lengths = (info & LENGTH_MASK).astype(np.int64)
    after = heads * 4 + 8 + lengths + (-lengths % 4)
    if (info >> 29).any() or after[-1] != size or not np.array_equal(after[:-1], heads[1:] * 4):
        return None
    return heads * 4 + 8, lengths


def whole_frames(data: memoryview) -> int | None:
    """How many bytes at the start of ``data`` are whole records (0: not even one), cutting the last one off if it
    is incomplete; None when the frames do not chain (split records, a stray magic word) and the caller must
    read record by record."""
    size = len(data) - len(data) % 4
    words = np.frombuffer(data[:size], dtype="<u4")
    if words.size < 2:
        return 0
    if words[0] != MAGIC:
        return None
    if words[1] & LENGTH_MASK >= _WALK_MIN_LENGTH:
        position = 0
        while position + 8 <= size:
            magic, info = HEADER.unpack_from(data, position)
            length = info & LENGTH_MASK
            if magic != MAGIC or info >> 29:
                return None
            if position + 8 + length + (-length % 4) > len(data):
                break
            position += 8 + length + (-length % 4)
        return position
    heads = np.flatnonzero(words == MAGIC)
    info = words[np.minimum(heads + 1, words.size - 1)].astype(np.int64)
    lengths = info & LENGTH_MASK
    after = heads * 4 + 8 + lengths + (-lengths % 4)
    cut = np.flatnonzero((after > len(data)) | (heads * 4 + 8 > size))  # frames that end past the data
    whole = int(cut[0]) if cut.size else heads.size
    if (info[:whole] >> 29).any() or not np.array_equal(after[: whole - 1], heads[1:whole] * 4):
        return None
    if whole == heads.size:  # nothing cut: at most a few bytes of the next header may follow
        return int(after[-1]) if len(data) - after[-1] < 4 else None
    return int(heads[whole]) * 4 if whole == 0 or after[whole - 1] == heads[whole] * 4 else None


def _walk(data: memoryview) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_frames` for long records, header to header: a step per record instead of a comparison per word."""
    starts, lengths, position, size = [], [], 0, len(data)
    while position < size:
        if position + 8 > size:
            return None
        magic, info = HEADER.unpack_from(data, position)
        length = info & LENGTH_MASK
        if magic != MAGIC or info >> 29:
            return None
        starts.append(position + 8)
        lengths.append(length)
        position += 8 + length + (-length % 4)
    if position != size:
        return None
    return np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64)


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise IndexError
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(buffer: bytes, start: int, end: int):
    """(field number, start, end) of each length-delimited field in ``buffer[start:end]``; other wire types raise."""
    position = start
    while position < end:
        tag, position = _varint(buffer, position)
        if tag & 7 != 2:
            raise IndexError
        length, position = _varint(buffer, position)
        if position + length > end:
            raise IndexError
        yield tag >> 3, position, position + length
        position += length


def _tensor(buffer: bytes, start: int, end: int) -> tuple[tuple[int, int], tuple[int, int] | None, int | None] | None:
    """The Float32Tensor of a map entry whose key is "values" and whose value holds one; None for anything else."""
    key, tensor = None, None
    for number, low, high in _fields(buffer, start, end):
        if number == 1:
            key = buffer[low:high]
        elif number == 2:
            kinds = list(_fields(buffer, low, high))
            if len(kinds) != 1 or kinds[0][0] != 2:
                return None
            tensor = kinds[0][1:]
    if key != _VALUES or tensor is None:
        return None
    values, keys, width = (tensor[0], tensor[0]), None, None
    for number, low, high in _fields(buffer, *tensor):
        if number == 1:
            values = (low, high)
        elif number == 2:
            keys = (low, high)
        elif number == 3:
            shape = list(_fields_varints(buffer, low, high))
            if len(shape) != 1:
                return None
            width = shape[0]
    return values, keys, width


def _fields_varints(buffer: bytes, start: int, end: int):
    position = start
    while position < end:
        value, position = _varint(buffer, position)
        yield value


def _layout(payload: bytes) -> _Layout | None:
    features, label = None, None
    try:
        for number, low, high in _fields(payload, 0, len(payload)):
            found = _tensor(payload, low, high) if number in (1, 2) else None
            if found is None or (number == 1 and features) or (number == 2 and label):
                return None
            if number == 1:
                features = found
            else:
                label = found
    except IndexError:
        return None
    if features is None or (label is not None and (label[1] is not None or label[0][1] - label[0][0] != 4)):
        return None
    values, keys, width = features
    if (values[1] - values[0]) % 4 or (keys is None and width not in (None, (values[1] - values[0]) // 4)):
        return None
    return _Layout(values, keys, width, label[0] if label else None)


def _decode_varints(block: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Packed varints of each row of ``block`` (uint8, rows of equal byte length): (keys, count per row)."""
    ends = block < 0x80
    if block.size and not ends[:, -1].all():
        return None
    flat, ends_flat = block.ravel(), ends.ravel()
    number = np.concatenate(([0], np.cumsum(ends_flat)[:-1]))  # which varint each byte belongs to
    first = np.flatnonzero(np.concatenate(([True], ends_flat[:-1])))
    shift = (np.arange(flat.size) - first[number]) * 7
    if shift.size and shift.max() > 63:
        return None
    keys = np.zeros(int(ends_flat.sum()), dtype=np.uint64)
    np.add.at(keys, number, (flat & 0x7F).astype(np.uint64) << shift.astype(np.uint64))
    return keys, ends.sum(axis=1)


def _gather(raw: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The payloads at ``starts`` as rows of a 2-D array: a strided view when they lie at a constant stride."""
    strides = np.diff(starts)
    if starts.size > 1 and (strides == strides[0]).all() and strides[0] >= length:
        return np.lib.stride_tricks.as_strided(
            raw[starts[0] :], shape=(starts.size, length), strides=(int(strides[0]), 1), writeable=False
        )
    return raw[starts[:, None] + np.arange(length)]


def read_columns(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int] | None:
    """Decode a regular stream as CSR parts: (values, keys, count per row, labels or None, width).

    Returns None when the stream is not regular, and the caller reads it message by message.
    """
    view = memoryview(data)
    frames = _frames(view)
    if frames is None:
        return None
    starts, lengths = frames
    raw = np.frombuffer(view, dtype=np.uint8)
    groups, widths, labelled = [], set(), set()
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        first = bytes(raw[starts[rows[0]] : starts[rows[0]] + length])
        layout = _layout(first)
        if layout is None:
            return None
        data_bytes = np.zeros(int(length), dtype=bool)
        for region in (layout.values, layout.keys, layout.label):
            if region is not None:
                data_bytes[region[0] : region[1]] = True
        framing = np.flatnonzero(~data_bytes)
        step = max(1, _CHUNK_BYTES // int(length))
        for chunk in range(0, rows.size, step):
            chosen = rows[chunk : chunk + step]
            block = _gather(raw, starts[chosen], int(length))
            if not (block[:, framing] == np.frombuffer(first, dtype=np.uint8)[framing]).all():
                return None
            values = block[:, layout.values[0] : layout.values[1]].copy().view("<f4")
            labels = block[:, layout.label[0] : layout.label[1]].copy().view("<f4")[:, 0] if layout.label else None
            if layout.keys is None:
                present = np.flatnonzero(values != 0)  # zeros are no entries; a bool mask is ~10x faster to scan
                counts = np.bincount(present // values.shape[1], minlength=values.shape[0])
                keys = (present % values.shape[1]).astype(np.uint64)
                values = values.ravel()[present]
                width = layout.width if layout.width is not None else (layout.values[1] - layout.values[0]) // 4
            else:
                decoded = _decode_varints(block[:, layout.keys[0] : layout.keys[1]])
                if decoded is None or layout.width is None:
                    return None
                keys, counts = decoded
                if not (counts == values.shape[1]).all():
                    return None
                values = values.ravel()
                width = layout.width
            widths.add(width)
            labelled.add(layout.label is not None)
            groups.append((chosen, values, keys, counts, labels))
    if len(widths) != 1 or len(labelled) != 1:
        return None
    return _in_row_order(groups, starts.size, labelled.pop()) + (widths.pop(),)


def _in_row_order(groups: list[tuple], n_rows: int, labelled: bool) -> tuple:
    """Scatter each group's entries to their rows' places in one CSR layout (groups interleave in the file)."""
    counts = np.zeros(n_rows, dtype=np.int64)
    for rows, _, _, row_counts, _ in groups:
        counts[rows] = row_counts
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    values = np.empty(int(counts.sum()), dtype=np.float32)
    keys = np.empty(values.size, dtype=np.uint64)
    labels = np.zeros(n_rows, dtype=np.float32) if labelled else None
    for rows, group_values, group_keys, row_counts, group_labels in groups:
        within = np.arange(group_values.size) - np.repeat(np.cumsum(row_counts) - row_counts, row_counts)
        places = np.repeat(starts[rows], row_counts) + within
        values[places], keys[places] = group_values, group_keys
        if labelled:
            labels[rows] = group_labels
    return values, keys, counts, labels
