"""The training files the notebooks write: RecordIO-protobuf for Factorization Machines and JSON Lines pairs for
Object2Vec.

The RecordIO-protobuf codec lives in the ``recordio_protobuf`` package, shared with the emulator (which reads what
the notebooks write); its writer and reader are named here so a notebook finds every format in one module.
"""

from __future__ import annotations

import io

import numpy as np

from recordio_protobuf import DEFAULT_CHUNK_ROWS, read_records, write_records

__all__ = ["read_records", "write_records", "write_jsonlines_pairs"]


def _token_columns(tokens, name: str) -> tuple[list, str]:
    """Format columns (numpy arrays of ids, or a list of rows' text) and the template fragment placing them."""
    try:
        array = np.asarray(tokens)
    except ValueError:  # ragged lists of token lists
        array = np.empty(len(tokens), dtype=object)
        array[:] = [np.asarray(row) for row in tokens]
    if array.dtype != object:
        if array.dtype.kind not in "iu" or array.ndim not in (1, 2):
            raise ValueError(f"{name} must be integer token ids, 1-D or 2-D, got {array.dtype} {array.shape}")
        if array.ndim == 2 and array.shape[1] == 0:
            raise ValueError(f"{name} rows must hold at least one token, got shape {array.shape}")
        if array.size and array.min() < 0:
            raise ValueError(f"{name} token ids must be non-negative, got {array.min()}")
        array = array if array.ndim == 2 else array[:, None]
        return list(array.T), ", ".join(["{}"] * array.shape[1])
    texts = []
    for row, ids in enumerate(array):
        ids = np.ravel(ids)
        if ids.size == 0 or ids.dtype.kind not in "iu" or ids.min() < 0:
            raise ValueError(f"{name} row {row} must be a non-empty list of non-negative integer ids, got {ids!r}")
        texts.append(", ".join(map(str, ids.tolist())))
    return [texts], "{}"


def write_jsonlines_pairs(fileobj, in0, in1, labels=None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Write Object2Vec training pairs, one ``{"in0": [u], "in1": [i], "label": r}`` per line.

    Args:
        fileobj: a text file object (lines written as str) or a binary one (UTF-8 bytes).
        in0, in1: token ids per row: a 1-D int array (one token each), a 2-D int array, or a list of lists.
        labels: optional, one per row; ints are written as ints, floats as Python writes them (float32
            values in full, e.g. 0.1 -> 0.10000000149011612), bools as 0/1. Omitted for inference input.
        chunk_rows: rows formatted at once.

    Returns:
        The number of lines written.

    Raises:
        ValueError: negative, non-integer or empty token lists, row counts that differ, non-numeric or
            non-finite labels.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    columns0, slots0 = _token_columns(in0, "in0")
    columns1, slots1 = _token_columns(in1, "in1")
    rows = {"in0": len(columns0[0]), "in1": len(columns1[0])}
    columns = columns0 + columns1
    template = '{{"in0": [' + slots0 + '], "in1": [' + slots1 + "]"
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "biuf":
            raise ValueError(f"labels must be a 1-D numeric array, got {labels.dtype} {labels.shape}")
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError(f"labels must be finite (JSON has no NaN/inf), got {labels[~np.isfinite(labels)][0]}")
        rows["labels"] = len(labels)
        columns.append(labels.astype(np.float64 if labels.dtype.kind == "f" else np.int64))
        template += ', "label": {}'
    if len(set(rows.values())) > 1:
        raise ValueError(f"in0, in1 and labels must have the same number of rows, got {rows}")
    line = (template + "}}\n").format
    text = isinstance(fileobj, io.TextIOBase)
    n_rows = rows["in0"]
    for start in range(0, n_rows, chunk_rows):
        # numpy columns become Python numbers a chunk at a time: 20M Python ints would take GBs
        chunk = [column[start : start + chunk_rows] for column in columns]
        lines = "".join(map(line, *(c.tolist() if isinstance(c, np.ndarray) else c for c in chunk)))
        fileobj.write(lines if text else lines.encode())
    return n_rows
