"""The one pager behind every ``List*`` operation: filter first, then sort, then cut the page.

Filters: ``NameContains``, ``StatusEquals``, ``CreationTime{After,Before}``, ``LastModifiedTime{After,Before}``.
Sorting: ``SortBy`` (``Name`` | ``CreationTime`` | ``Status``) and ``SortOrder``, whose defaults differ by
operation as the service model documents them (``ListTrainingJobs``: ``CreationTime``, ``Ascending``;
``ListEndpoints``: ``CreationTime``, ``Descending``; ``ListHyperParameterTuningJobs``: ``Name``, ``Ascending``).
``NextToken`` carries the last item's position and a hash of the request's other parameters, as moto's paginator
does: a page resumes after that item even if it was deleted meanwhile, and a token reused with other filters is a
``ValidationException`` rather than a silently wrong page. Every pager (``List*``, ``ListTags``, a tuning job's
training jobs) is :func:`paginate`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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


def _filters_hash(params: dict) -> str:
    """What a token is bound to: every request parameter but ``NextToken`` and ``MaxResults``."""
    bound = {key: value for key, value in params.items() if key not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(bound, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(last: list, params: dict) -> str:
    """A ``NextToken``: the position of the page's last item, and a hash of the request's filters."""
    document = {"after": last, "filters": _filters_hash(params)}
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def decode_token(token: str | None, params: dict) -> list | None:
    """The position a ``NextToken`` carries (None without one).

    Raises:
        ValidationException: the token is not one of ours, or it was issued for other filters or another order.
    """
    if not token:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        last, filters = document["after"], document["filters"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValidationException("Invalid pagination token.") from None
    if not isinstance(last, list) or not last:
        raise ValidationException("Invalid pagination token.")
    if filters != _filters_hash(params):
        raise ValidationException(
            "The pagination token was issued for a request with other parameters; repeat that request's "
            "parameters with it, or start again without NextToken."
        )
    return last


def _after(position: list, last: list, descending: bool) -> bool:
    """Whether an item at ``position`` comes after ``last``: the first member in the requested order, the rest
    (the tie-breakers) ascending."""
    if position[0] != last[0]:
        return position[0] < last[0] if descending else position[0] > last[0]
    return position[1:] > last[1:]


def paginate(
    ordered: list,
    params: dict,
    output_key: str,
    position: Callable[[object], list],
    descending: bool = False,
    default_max: int = 10,
    render: Callable[[object], dict] = lambda item: item,
) -> dict:
    """One page of ``ordered`` (already filtered and sorted): ``{output_key: [...], "NextToken": ...}``.

    ``position(item)`` is a unique, JSON-able list that sorts like ``ordered`` (its first member in the requested
    order, the rest ascending), so a page resumes after the last item shown even if that item is gone since.
    """
    last = decode_token(params.get("NextToken"), params)
    if last is not None:
        ordered = [item for item in ordered if _after(position(item), last, descending)]
    size = params.get("MaxResults", default_max)
    chosen = ordered[:size]
    answer: dict = {output_key: [render(item) for item in chosen]}
    if len(ordered) > size:
        answer["NextToken"] = encode_token(position(chosen[-1]), params)
    return answer


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
    primary = _SORT_KEYS[params.get("SortBy", sort_by)]
    descending = params.get("SortOrder", order) == "Descending"
    kept = sorted((r for r in resources if _keep(r, params)), key=lambda r: (r.creation_time, r.name.lower()))
    kept.sort(key=primary, reverse=descending)
    return paginate(
        kept,
        params,
        output_key,
        lambda r: [primary(r), r.creation_time, r.name.lower()],
        descending,
        default_max,
        summary,
    )
