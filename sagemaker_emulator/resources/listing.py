"""The one pager behind every ``List*`` operation: filter first, then sort, then cut the page.

Filters: ``NameContains``, ``StatusEquals``, ``CreationTime{After,Before}``, ``LastModifiedTime{After,Before}``.
Sorting: ``SortBy`` (``Name`` | ``CreationTime`` | ``Status``) and ``SortOrder``, whose defaults differ by
operation as the service model documents them (``ListTrainingJobs``: ``CreationTime``, ``Ascending``;
``ListEndpoints``: ``CreationTime``, ``Descending``; ``ListHyperParameterTuningJobs``: ``Name``, ``Ascending``). ``NextToken`` is an opaque offset into the filtered, sorted list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime

from sagemaker_emulator.errors import ValidationException
from sagemaker_emulator.state import Resource

_SORT_KEYS: dict[str, Callable[[Resource], object]] = {
    "Name": lambda r: r.name.lower(),
    "CreationTime": lambda r: r.creation_time,
    "Status": lambda r: r.status,
}


def timestamp(value) -> float:
    """A request timestamp (epoch seconds, or an ISO-8601 string) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationException(f"Invalid timestamp value '{value}'.") from None


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValidationException("Invalid pagination token.") from None
    if not isinstance(offset, int) or offset < 0:
        raise ValidationException("Invalid pagination token.")
    return offset


def _keep(resource: Resource, params: dict) -> bool:
    if "NameContains" in params and params["NameContains"] not in resource.name:
        return False
    if "StatusEquals" in params and resource.status != params["StatusEquals"]:
        return False
    bounds = (
        ("CreationTimeAfter", resource.creation_time, 1),
        ("CreationTimeBefore", resource.creation_time, -1),
        ("LastModifiedTimeAfter", resource.last_modified_time, 1),
        ("LastModifiedTimeBefore", resource.last_modified_time, -1),
    )
    for key, value, direction in bounds:
        if key in params:
            limit = timestamp(params[key])
            if (direction > 0 and not value > limit) or (direction < 0 and not value < limit):
                return False
    return True


def page(
    resources: Iterable[Resource],
    params: dict,
    output_key: str,
    summary: Callable[[Resource], dict],
    default_max: int = 10,
    order: str = "Descending",
    sort_by: str = "CreationTime",
) -> dict:
    """Answer a ``List*`` request: ``{output_key: [summary(r) ...], "NextToken": ...}``."""
    kept = [r for r in resources if _keep(r, params)]
    kept.sort(
        key=_SORT_KEYS[params.get("SortBy", sort_by)],
        reverse=params.get("SortOrder", order) == "Descending",
    )
    start = decode_token(params.get("NextToken"))
    size = params.get("MaxResults", default_max)
    chosen = kept[start : start + size]
    answer: dict = {output_key: [summary(r) for r in chosen]}
    if start + size < len(kept):
        answer["NextToken"] = encode_token(start + size)
    return answer
