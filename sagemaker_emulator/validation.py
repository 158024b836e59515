"""Check a request against botocore's service model, generically, and word the faults as AWS does.

AWS lists every constraint violation in one ``ValidationException``:
``2 validation errors detected: Value null at 'trainingJobName' failed to satisfy constraint: Member must not
be null; Value '0' at 'resourceConfig.instanceCount' failed to satisfy constraint: Member must have value
greater than or equal to 1``. A value of the wrong JSON type is a ``SerializationException``.
Patterns written for Java's regex engine that Python cannot compile (``\\p{L}``...) are skipped.
"""

from __future__ import annotations

import re
from functools import cache

from botocore.model import Shape

from sagemaker_emulator.errors import SerializationException, ValidationException

_JSON_TYPES = {
    "string": (str,),
    "blob": (str, bytes),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (int, float, str),
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
}


@cache
def _pattern(text: str) -> re.Pattern | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def _path_name(member: str) -> str:
    return member[:1].lower() + member[1:]


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _violation(value, path: str, constraint: str, sensitive: bool = False) -> str:
    if sensitive or isinstance(value, bytes):
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def _check(shape: Shape, value, path: str, faults: list[str]) -> None:
    kind = shape.type_name
    allowed = _JSON_TYPES.get(kind, (object,))
    if not isinstance(value, allowed) or (kind in ("integer", "long", "float", "double") and isinstance(value, bool)):
        where = path or "the request body"
        raise SerializationException(f"Expected {kind} for '{where}', got {type(value).__name__} ({_show(value)!r})")
    meta = shape.metadata
    if kind == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                faults.append(
                    f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _join(path, name), faults)
        return
    if kind in ("string", "list", "map", "blob"):
        size = len(value)
        hidden = meta.get("sensitive", False)
        if "min" in meta and size < meta["min"]:
            faults.append(
                _violation(value, path, f"Member must have length greater than or equal to {meta['min']}", hidden)
            )
        if "max" in meta and size > meta["max"]:
            faults.append(
                _violation(value, path, f"Member must have length less than or equal to {meta['max']}", hidden)
            )
    if kind == "string":
        if shape.enum and value not in shape.enum:
            faults.append(_violation(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"))
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            faults.append(_violation(value, path, f"Member must satisfy regular expression pattern: {meta['pattern']}"))
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            faults.append(_violation(value, path, f"Member must have value greater than or equal to {meta['min']}"))
        if "max" in meta and value > meta["max"]:
            faults.append(_violation(value, path, f"Member must have value less than or equal to {meta['max']}"))
    elif kind == "list":
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{path}.{index}.member", faults)
    elif kind == "map":
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{key}.key", faults)
            _check(shape.value, item, f"{path}.{key}.value", faults)


def _join(path: str, member: str) -> str:
    return f"{path}.{_path_name(member)}" if path else _path_name(member)


def validate(shape: Shape | None, params: dict) -> None:
    """Raise the AWS error for the first kind of fault in ``params`` (an operation's input).

    Raises:
        SerializationException: a value of the wrong JSON type.
        ValidationException: missing required members, or values outside their enum, length, range or pattern.
    """
    if shape is None:
        return
    faults: list[str] = []
    _check(shape, params, "", faults)
    if faults:
        count = len(faults)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(faults))
