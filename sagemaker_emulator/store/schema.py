"""Saved records that a newer emulator can still read: each carries a schema version, and its fields are declared with
their defaults, so a field added by a later release is filled in when an older save is loaded.

A record lists its fields as ``{name: default}``; :data:`REQUIRED` marks the few without a sensible default (a name,
the request a job was made from). :func:`fill` is the one place defaults are applied, for every kind of record (the
SageMaker resources, moto's index entries): a later release adds a field with a default and needs no migration
code. A record whose schema is newer than the code's, or that lacks a required field, is :class:`Damaged`, and the
caller quarantines it (``store/quarantine.py``) instead of guessing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

SCHEMA_FIELD = "schema"
OLDEST_SCHEMA = 1  # what a record saved before records carried a schema field is


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


class Damaged(ValueError):
    """A saved record or file that cannot be loaded as it is; the message says what is wrong with it."""


def fill(record: object, fields: Mapping[str, object], newest: int) -> dict:
    """``record`` with every declared field that it lacks set to a copy of its default.

    Args:
        record: as read from JSON.
        fields: every field the code knows, with its default (or :data:`REQUIRED`).
        newest: the schema this code writes; a record of a newer one was written by a newer emulator.

    Raises:
        Damaged: it is not an object, its schema is newer than ``newest``, or it lacks a required field.
    """
    if not isinstance(record, dict):
        raise Damaged(f"the record is a JSON {type(record).__name__}, not an object")
    version = record.get(SCHEMA_FIELD, OLDEST_SCHEMA)
    if not isinstance(version, int) or version > newest:
        raise Damaged(
            f"the record has schema {version!r}, and this emulator reads schemas up to {newest}: a newer emulator "
            "saved it; start that one to get it back"
        )
    missing = [name for name, default in fields.items() if default is REQUIRED and name not in record]
    if missing:
        raise Damaged(f"the record lacks {', '.join(missing)}, which no default can stand for")
    defaults = {name: copy.deepcopy(default) for name, default in fields.items() if name not in record}
    return {**record, **defaults}
