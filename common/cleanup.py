"""Delete what a lab made, by its name prefix, and check that nothing is left.

Every resource a lab creates is named from its ``run_id``, so one prefix finds them all:

    delete_resources(run_id, bucket, [f"{run_id}/"])
    assert not leftovers(run_id, bucket, [f"{run_id}/"])

Order matters: endpoints first (they bill by the hour, and AWS deletes them asynchronously), then endpoint
configurations, then models. Training and transform jobs cannot be deleted; running ones are stopped. S3
objects under the given prefixes (keys in ``bucket``, or ``s3://bucket/prefix`` URIs) are deleted. The clients
come from the environment, so this works the same in AWS and local mode. The SageMaker kinds are the rows of
``common.resource_kinds.KINDS`` that have a ``lab_key``.

The room-wide sweep of what *any* lab left is ``common.sweep`` (``python -m common.sweep --all``), built on this.
"""

from __future__ import annotations

from collections.abc import Iterable

import boto3
from botocore.exceptions import ClientError

from common.resource_kinds import KINDS, Kind, listed, remove, running, wait

POLL_SECONDS = 2.0
TIMEOUT_SECONDS = 900.0
# A lab's kinds: what is deleted (endpoints first), then the jobs that are stopped.
LAB_KINDS = tuple(k for k in KINDS if k.lab_key and not k.job) + tuple(k for k in KINDS if k.lab_key and k.job)


def _named(sm, kind: Kind, prefix: str) -> list[dict]:
    """The items of ``kind`` whose names start with ``prefix`` (running ones only, for a job)."""
    items = running(sm, kind, NameContains=prefix) if kind.job else listed(sm, kind, NameContains=prefix)
    return [item for item in items if item[kind.name_key].startswith(prefix)]


def _names(sm, kind: Kind, prefix: str) -> list[str]:
    return [item[kind.name_key] for item in _named(sm, kind, prefix)]


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
        What was deleted or stopped, by kind (``stopped_jobs`` for every kind of job).

    Raises:
        ValueError: an empty prefix, or a prefix that would delete a whole bucket.
        TimeoutError: endpoints still exist or jobs still run after ``timeout`` seconds.
    """
    if not prefix:
        raise ValueError("A name prefix is required: an empty one would delete every resource in the account.")
    locations = _locations(bucket, s3_prefixes)
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    done: dict[str, list[str]] = {}
    stopped: list[str] = []
    for kind in LAB_KINDS:
        items = _named(sm, kind, prefix)
        names = [item[kind.name_key] for item in items]
        for item in items:
            if kind.job or item.get(kind.status_key) != "Deleting":  # SageMaker refuses a second DeleteEndpoint
                remove(sm, kind, item[kind.name_key])
        if kind.job:
            stopped += names
        else:
            done[kind.lab_key] = names
            wait(lambda kind=kind: _names(sm, kind, prefix), kind.lab_key.replace("_", " "), timeout, poll)
    done["stopped_jobs"] = stopped
    jobs = [kind for kind in LAB_KINDS if kind.job]
    wait(lambda: [name for kind in jobs for name in _names(sm, kind, prefix)], "running jobs", timeout, poll)
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
    found = {kind.lab_key: _names(sm, kind, prefix) for kind in LAB_KINDS}
    found["s3_objects"] = [f"s3://{b}/{k}" for b, p in _locations(bucket, s3_prefixes) for k in _objects(s3, b, p)]
    return {kind: names for kind, names in found.items() if names}
