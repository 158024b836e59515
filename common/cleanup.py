"""Delete what a lab made, by its name prefix, and check that nothing is left.

Every resource a lab creates is named from its ``run_id``, so one prefix finds them all:

    delete_resources(run_id, bucket, [f"{run_id}/"])
    assert not leftovers(run_id, bucket, [f"{run_id}/"])

Order matters: endpoints first (they bill by the hour, and AWS deletes them asynchronously), then endpoint
configurations, then models. Training and transform jobs cannot be deleted; running ones are stopped. S3
objects under the given prefixes (keys in ``bucket``, or ``s3://bucket/prefix`` URIs) are deleted. The clients
come from the environment, so this works the same in AWS and local mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial

import boto3
from botocore.exceptions import ClientError

RUNNING = ("InProgress", "Stopping")
POLL_SECONDS = 2.0
TIMEOUT_SECONDS = 900.0


def _listed(client, operation: str, key: str, name_key: str, prefix: str, **filters) -> list[str]:
    """Names starting with ``prefix`` from a ``List*`` operation, every page."""
    pages = client.get_paginator(operation).paginate(NameContains=prefix, **filters)
    return [item[name_key] for page in pages for item in page[key] if item[name_key].startswith(prefix)]


def _endpoint_statuses(sm, prefix: str) -> dict[str, str]:
    pages = sm.get_paginator("list_endpoints").paginate(NameContains=prefix)
    return {
        item["EndpointName"]: item["EndpointStatus"]
        for page in pages
        for item in page["Endpoints"]
        if item["EndpointName"].startswith(prefix)
    }


def _endpoints(sm, prefix: str) -> list[str]:
    return list(_endpoint_statuses(sm, prefix))


def _running_jobs(sm, prefix: str) -> dict[str, list[str]]:
    return {
        "running_training_jobs": [
            name
            for status in RUNNING
            for name in _listed(
                sm, "list_training_jobs", "TrainingJobSummaries", "TrainingJobName", prefix, StatusEquals=status
            )
        ],
        "running_transform_jobs": [
            name
            for status in RUNNING
            for name in _listed(
                sm, "list_transform_jobs", "TransformJobSummaries", "TransformJobName", prefix, StatusEquals=status
            )
        ],
    }


def _locations(bucket: str | None, s3_prefixes: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for prefix in s3_prefixes:
        if prefix.startswith("s3://"):
            name, _, key = prefix[5:].partition("/")
            found.append((name, key))
        elif bucket is None:
            raise ValueError(f"S3 prefix {prefix!r} is not an s3:// URI, so a bucket must be given.")
        else:
            found.append((bucket, prefix))
    for name, key in found:
        if not key:
            raise ValueError(f"Refusing to delete a whole bucket ({name}): give a key prefix.")
    return found


def _objects(s3, bucket: str, prefix: str) -> list[str]:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            return []
        raise


def _described(describe, **params) -> dict | None:
    """What ``describe`` says of a resource, or None when SageMaker answers that it does not exist."""
    try:
        return describe(**params)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            return None
        raise


def _still_to_delete(describe, status_key: str | None, **params) -> bool:
    """Whether the resource exists and (for an endpoint) is not already being deleted."""
    found = _described(describe, **params)
    return found is not None and (status_key is None or found[status_key] != "Deleting")


def _still_running(describe, status_key: str, **params) -> bool:
    found = _described(describe, **params)
    return found is not None and found[status_key] == "InProgress"


def _unless_done(call, still_needed: Callable[..., bool], **params) -> None:
    """``call(**params)``; a ValidationException is ignored when ``still_needed(**params)`` then says someone else
    deleted or stopped the resource meanwhile (another kernel, the console). Decided by status, not message wording.
    """
    try:
        call(**params)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ValidationException" or still_needed(**params):
            raise


def _wait(check, what: str, timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while left := check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still there after {timeout:.0f} s: {left}")
        time.sleep(poll)


def delete_resources(
    prefix: str,
    bucket: str | None = None,
    s3_prefixes: Iterable[str] = (),
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
) -> dict[str, list[str]]:
    """Delete every endpoint, endpoint configuration and model named ``prefix...``, stop running jobs, delete S3 objects.

    Waits until the endpoints are gone and the jobs have stopped, so :func:`leftovers` can be asserted right after.

    Args:
        prefix: the lab's run id; an empty prefix is refused (it would match everything).
        bucket: the bucket that holds ``s3_prefixes`` given as keys.
        s3_prefixes: key prefixes in ``bucket`` or ``s3://bucket/prefix`` URIs.

    Returns:
        What was deleted or stopped, by kind.

    Raises:
        ValueError: an empty prefix, or a prefix that would delete a whole bucket.
        TimeoutError: endpoints still exist or jobs still run after ``timeout`` seconds.
    """
    if not prefix:
        raise ValueError("A name prefix is required: an empty one would delete every resource in the account.")
    locations = _locations(bucket, s3_prefixes)
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    endpoints = _endpoint_statuses(sm, prefix)
    done: dict[str, list[str]] = {"endpoints": list(endpoints)}
    for name, status in endpoints.items():
        if status != "Deleting":  # already on its way out; SageMaker refuses a second DeleteEndpoint
            _unless_done(
                sm.delete_endpoint, partial(_still_to_delete, sm.describe_endpoint, "EndpointStatus"), EndpointName=name
            )
    _wait(lambda: _endpoints(sm, prefix), "endpoints", timeout, poll)
    done["endpoint_configs"] = _listed(sm, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", prefix)
    for name in done["endpoint_configs"]:
        _unless_done(
            sm.delete_endpoint_config,
            partial(_still_to_delete, sm.describe_endpoint_config, None),
            EndpointConfigName=name,
        )
    done["models"] = _listed(sm, "list_models", "Models", "ModelName", prefix)
    for name in done["models"]:
        _unless_done(sm.delete_model, partial(_still_to_delete, sm.describe_model, None), ModelName=name)
    running = _running_jobs(sm, prefix)
    for name in running["running_training_jobs"]:
        _unless_done(
            sm.stop_training_job,
            partial(_still_running, sm.describe_training_job, "TrainingJobStatus"),
            TrainingJobName=name,
        )
    for name in running["running_transform_jobs"]:
        _unless_done(
            sm.stop_transform_job,
            partial(_still_running, sm.describe_transform_job, "TransformJobStatus"),
            TransformJobName=name,
        )
    done["stopped_jobs"] = running["running_training_jobs"] + running["running_transform_jobs"]
    _wait(lambda: [n for names in _running_jobs(sm, prefix).values() for n in names], "running jobs", timeout, poll)
    done["s3_objects"] = []
    for name, key in locations:
        keys = _objects(s3, name, key)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        done["s3_objects"] += [f"s3://{name}/{k}" for k in keys]
    return done


def leftovers(prefix: str, bucket: str | None = None, s3_prefixes: Iterable[str] = ()) -> dict[str, list[str]]:
    """What still exists of a lab: only the non-empty kinds, so ``assert not leftovers(...)`` reads as the claim.

    Kinds: ``endpoints``, ``endpoint_configs``, ``models``, ``running_training_jobs``, ``running_transform_jobs``,
    ``s3_objects`` (as URIs).
    """
    if not prefix:
        raise ValueError("A name prefix is required.")
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    found = {
        "endpoints": _endpoints(sm, prefix),
        "endpoint_configs": _listed(sm, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", prefix),
        "models": _listed(sm, "list_models", "Models", "ModelName", prefix),
        **_running_jobs(sm, prefix),
        "s3_objects": [f"s3://{b}/{k}" for b, p in _locations(bucket, s3_prefixes) for k in _objects(s3, b, p)],
    }
    return {kind: names for kind, names in found.items() if names}
