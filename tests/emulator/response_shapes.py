"""Check a SageMaker response body against botocore's output shape: what a client may rely on being there.

The input side is ``sagemaker_emulator.validation``; this is its mirror for answers, used by the tests to hold
every operation to the service model: required members present, no members the model does not define, each
value of its JSON type (timestamps as epoch seconds, as JSON 1.1 sends them), strings within their enums.
"""

from __future__ import annotations

from botocore.model import Shape

_JSON_TYPES = {
    "string": (str,),
    "blob": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (int, float),
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
}


def response_faults(shape: Shape | None, value, path: str = "") -> list[str]:
    """Every way ``value`` (a decoded JSON response) departs from ``shape``; empty when it conforms."""
    if shape is None:
        return [] if value == {} else [f"{path or 'response'}: the operation has no output, got {value!r}"]
    kind = shape.type_name
    where = path or "response"
    numeric = kind in ("integer", "long", "float", "double")
    if not isinstance(value, _JSON_TYPES[kind]) or ((numeric or kind == "timestamp") and isinstance(value, bool)):
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r}"]
    faults: list[str] = []
    if kind == "structure":
        prefix = f"{path}." if path else ""
        faults += [f"{prefix}{name}: required member missing" for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name not in shape.members:
                faults.append(f"{prefix}{name}: not a member of {shape.name}")
            elif item is None:
                faults.append(f"{prefix}{name}: null")
            else:
                faults += response_faults(shape.members[name], item, prefix + name)
    elif kind == "list":
        for index, item in enumerate(value):
            faults += response_faults(shape.member, item, f"{where}[{index}]")
    elif kind == "map":
        for key, item in value.items():
            faults += response_faults(shape.value, item, f"{where}[{key}]")
    elif kind == "string" and shape.enum and value not in shape.enum:
        faults.append(f"{where}: {value!r} is not one of {shape.enum}")
    return faults
