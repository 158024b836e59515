"""Object2Vec's records → padded numpy arrays, for the training channels and for inference payloads.

A record is a JSON object ``{"in0": [ids], "in1": [ids], "label": x}``. Each side becomes a float32 matrix of
token ids (records × longest kept length, right-padded with 0) and a float32 vector of lengths; the network
masks by length, so id 0 stays an ordinary token. Sequences longer than the side's limit are truncated.
Parsing is one JSON decode per chunk of a file when it is clean; the slower per-line pass runs only to name the
line of a fault. Errors carry a ``where(i)`` description of the record (file and line, or instance index).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK_LINES = 500_000
"""Lines of a channel file decoded at a time (about 400 MB of Python objects)."""


class RecordError(ValueError):
    """A record the algorithm cannot use; the message says which record and why."""


@dataclass(frozen=True)
class Side:
    """One input side of many records: ``tokens`` (records × time, float32 ids) and ``lengths`` (float32)."""

    tokens: np.ndarray
    lengths: np.ndarray

    def take(self, index: np.ndarray) -> Side:
        return Side(self.tokens[index], self.lengths[index])

    @staticmethod
    def concatenate(parts: Sequence[Side]) -> Side:
        """The records of every part in order, padded to the widest part."""
        tokens = np.zeros((sum(len(p.lengths) for p in parts), max(p.tokens.shape[1] for p in parts)), np.float32)
        starts = np.cumsum([0, *(len(p.lengths) for p in parts)])
        for start, part in zip(starts, parts):
            tokens[start : start + len(part.lengths), : part.tokens.shape[1]] = part.tokens
        return Side(tokens, np.concatenate([p.lengths for p in parts]))


def vocab_error(side: int, token: int, vocab_size: int) -> str:
    """The real container's wording for an id outside the vocabulary (seen in a user's FailureReason)."""
    return f'Inconsistent vocab for in{side} found. Vocab id "{token}" is not less than vocab_size={vocab_size}'


def encode_side(sequences: Sequence, side: int, max_len: int, vocab_size: int, where: Callable[[int], str]) -> Side:
    """Check one side's id lists and pack them into a padded matrix, keeping the first ``max_len`` ids.

    Raises:
        RecordError: a value that is not a non-empty list of integers (naming the record), or an id outside
            [0, vocab_size) (the container's vocab wording).
    """
    key = f"in{side}"
    empty = next((i for i, sequence in enumerate(sequences) if type(sequence) is not list or not sequence), None)
    if empty is not None:
        raise RecordError(f"{where(empty)}: '{key}' must be a non-empty list of integer token ids")
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    try:
        flat = np.array(list(chain.from_iterable(sequences)))
    except ValueError:
        flat = np.array([], dtype=object)
    if flat.dtype.kind not in "iu" and not (flat.dtype.kind == "f" and np.all(np.mod(flat, 1) == 0)):
        first = next((i for i, s in enumerate(sequences) if not all(_is_integral(v) for v in s)), None)
        if first is None:  # integers too large for int64, so outside any vocabulary
            raise RecordError(vocab_error(side, max(chain.from_iterable(sequences), key=abs), vocab_size))
        raise RecordError(f"{where(first)}: '{key}' must be a non-empty list of integer token ids")
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(flat.size) - starts
    kept = positions < max_len
    rows = np.repeat(np.arange(len(sequences)), lengths)[kept]
    flat, positions = flat[kept].astype(np.int64), positions[kept]
    bad = np.flatnonzero((flat < 0) | (flat >= vocab_size))
    if bad.size:
        token = int(flat[bad[0]])
        if token < 0:
            raise RecordError(f"{where(int(rows[bad[0]]))}: '{key}' has the negative token id {token}")
        raise RecordError(vocab_error(side, token, vocab_size))
    lengths = np.minimum(lengths, max_len)
    tokens = np.zeros((len(sequences), int(lengths.max(initial=1))), dtype=np.float32)
    tokens[rows, positions] = flat
    return Side(tokens, lengths.astype(np.float32))


def _is_integral(value) -> bool:
    return not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))


def parse_labels(records: list[dict], classes: int | None, where: Callable[[int], str]) -> np.ndarray:
    """The ``label`` of every record: a number, or for ``classes`` a class index in [0, classes).

    Raises:
        RecordError: a missing or non-numeric label, or a class label outside [0, classes).
    """
    labels = [record.get("label") for record in records]
    wrong = next(
        (i for i, label in enumerate(labels) if type(label) not in (int, float) or not np.isfinite(label)), None
    )
    if wrong is not None:
        label = labels[wrong]
        reason = "has no 'label'" if label is None else f"has a non-numeric label {json.dumps(label)}"
        raise RecordError(f"{where(wrong)}: the record {reason}")
    values = np.asarray(labels, dtype=np.float64)
    if classes is not None:
        bad = np.flatnonzero((values < 0) | (values >= classes) | (np.mod(values, 1) != 0))
        if bad.size:
            raise RecordError(
                f"{where(int(bad[0]))}: label {labels[bad[0]]} is not a class index in [0, {classes}) "
                f"(num_classes={classes})"
            )
    return values.astype(np.float32)


def decode_lines(text: str, where: Callable[[int], str]) -> tuple[list[dict], np.ndarray]:
    """The JSON objects of a JSON Lines text and their 1-based line numbers; blank lines are skipped.

    Raises:
        RecordError: a line that is not a JSON object (naming the line and the decoder's reason).
    """
    lines = text.splitlines()
    numbers = np.array([n for n, line in enumerate(lines, start=1) if line.strip()], dtype=np.int64)
    kept = [lines[n - 1] for n in numbers]
    try:
        records = json.loads("[" + ",".join(kept) + "]")
    except json.JSONDecodeError:
        records = None
    if records is None or len(records) != len(kept) or not all(isinstance(r, dict) for r in records):
        records = [_decode_line(line, where(int(n))) for line, n in zip(kept, numbers)]
    return records, numbers


def _decode_line(line: str, location: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise RecordError(f"{location}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise RecordError(f"{location}: expected a JSON object with in0, in1 and label")
    return record


def read_jsonlines_chunks(
    files: list[Path], root: Path, size: int = CHUNK_LINES
) -> Iterator[tuple[list[dict], Callable[[int], str]]]:
    """A channel's records, ``size`` lines of a file at a time, each chunk with ``where(i)`` naming record i's file
    (relative to root) and line.

    In chunks because a decoded record costs about 800 bytes: ml-20m's 20 million at once would take 16 GB, more
    than the arrays they become (20 bytes a one-token pair).

    Raises:
        RecordError: a file that is not UTF-8, or a line that is not a JSON object.
    """
    for path in files:
        name = path.relative_to(root).as_posix()
        offset = 0  # lines of the file before this chunk
        with open(path, encoding="utf-8", newline="") as stream:
            while True:
                try:
                    text = "".join(islice(stream, size))
                except UnicodeDecodeError as error:
                    raise RecordError(f"{name}: not UTF-8 text ({error})") from None
                if not text:
                    break
                found, numbers = decode_lines(text, lambda line, name=name, at=offset: f"{name}, line {at + line}")
                if found:
                    yield found, lambda i, name=name, numbers=numbers + offset: f"{name}, line {numbers[i]}"
                offset += len(text.splitlines())


def read_pretrained_embeddings(
    path: Path, vocab_path: Path | None, vocab_size: int, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a GloVe-style text file (``token v1 … vD`` per line) and the token ids they belong to.

    Without a vocab file, the file's line order gives the ids (line 1 → id 0). With one (a JSON object
    token → id), tokens it does not list are skipped; so are ids outside the vocabulary.

    Raises:
        RecordError: the vectors are not ``dim`` wide, or a file cannot be read.
    """
    try:
        table = pd.read_csv(
            path, sep=" ", header=None, quoting=csv.QUOTE_NONE, na_filter=False, dtype={0: str}, engine="c"
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise RecordError(f"{path.name}: not a space-separated 'token v1 ... vD' file ({error})") from None
    vectors = table.iloc[:, 1:].to_numpy(dtype=np.float32, na_value=np.nan)
    if vectors.shape[1] != dim or np.isnan(vectors).any():
        raise RecordError(f"{path.name}: vectors have {vectors.shape[1]} values, but the token embedding dim is {dim}")
    if vocab_path is None:
        ids = np.arange(len(table))
    else:
        try:
            vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise RecordError(f"{vocab_path.name}: not a JSON object token → id ({error})") from None
        ids = table[0].map(vocab).to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    keep = (ids >= 0) & (ids < vocab_size)
    return vectors[keep], ids[keep]
