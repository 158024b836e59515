"""Media types of ``Content-Type`` and ``Accept`` headers: the one parser every plug-in and the container use.

Not werkzeug's ``parse_options_header``: it ends a value at a comma, and SageMaker's own parameters carry commas
(Object2Vec's ``application/json; infer_max_seqlens=10,10``).
"""

from __future__ import annotations


def parse_media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype; key=value`` as the lower-cased media type and its parameters (keys lower-cased, values
    unquoted)."""
    kind, *parts = (header or "").split(";")
    params = {}
    for part in parts:
        key, _, value = part.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def accepted(header: str | None) -> list[tuple[str, dict[str, str]]]:
    """The media types an ``Accept`` header lists, in the order given."""
    return [parse_media_type(choice) for choice in (header or "").split(",")]
