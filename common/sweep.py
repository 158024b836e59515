"""The room-wide sweep: find what *any* lab left in the account and region, and stop or delete it.

    python -m common.sweep --all          # a dry run: lists each resource with its age and hourly cost
    python -m common.sweep --all --yes    # stops and deletes them (``python -m common.cleanup`` is the same)

Every run id starts ``labN-``; SageMaker resources also carry the ``workshop:lab`` tag, which finds those named
otherwise. The order: running jobs stopped; endpoints deleted (waiting out ``Creating``/``Updating``, which cannot be
deleted) and waited for before their configs and models; then Lambda functions, S3 prefixes in the workshop bucket,
the labs' log groups and log streams. The SageMaker kinds and their order are ``common.resource_kinds.KINDS``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

from common import costs
from common.cleanup import POLL_SECONDS, TIMEOUT_SECONDS, delete_resources
from common.resource_kinds import KINDS, TRANSITIONAL, Kind, described, listed, remove, running, wait
from common.settings import settings

LAB_NAME = re.compile(r"^lab\d+-")  # every run id: lab1-fm-..., lab1-dmf-..., lab2-o2v-...
SHARED_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TransformJobs")
SWEEP_ORDER = (*(kind.label for kind in KINDS), "lambda function", "s3 prefix", "log group", "log stream")


@dataclass(frozen=True)
class Found:
    """One resource a lab left: what, its name (for S3 and log streams, ``container/name``), age and cost."""

    kind: str
    name: str
    status: str = ""
    created: dt.datetime | None = None
    usd_per_hour: float | None = None  # what it costs while it keeps running; None when not priced or not running

    def age_hours(self, now: dt.datetime) -> float | None:
        return None if self.created is None else round((now - self.created).total_seconds() / 3600, 2)


def _is_lab(name: str, tags: dict[str, str] | None = None) -> bool:
    return bool(LAB_NAME.match(name)) or costs.TAG_LAB in (tags or {})


def _tags(sm, arn: str) -> dict[str, str]:
    pages = sm.get_paginator("list_tags").paginate(ResourceArn=arn)
    return {tag["Key"]: tag["Value"] for page in pages for tag in page["Tags"]}


def _labs(sm, kind: Kind) -> list[Found]:
    """The resources of ``kind`` named like a lab, or (for others) tagged with ``workshop:lab``; running ones only
    for a job. Each with its status, creation time and, for a kind that is priced, its hourly cost."""
    items = running(sm, kind) if kind.job else listed(sm, kind)
    found = []
    for item in items:
        name = item[kind.name_key]
        if not (_is_lab(name) or _is_lab(name, _tags(sm, item[kind.arn_key]))):
            continue
        status = item.get(kind.status_key, "") if kind.status_key else ""
        rate = None
        if kind.hourly is not None:
            description = described(getattr(sm, kind.describe), **kind.name_param(name))
            rate = None if description is None else kind.hourly(sm, description)
        found.append(Found(kind.label, name, status, item.get("CreationTime"), rate))
    return found


def _s3_prefixes(s3, buckets: Iterable[str]) -> list[Found]:
    found = []
    for bucket in buckets:
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/")
            prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchBucket", "AccessDenied"):
                continue
            raise
        found += [Found("s3 prefix", f"{bucket}/{prefix}") for prefix in prefixes if LAB_NAME.match(prefix)]
    return found


def _log_groups(logs) -> list[Found]:
    found = []
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            name = group["logGroupName"]
            created = dt.datetime.fromtimestamp(group["creationTime"] / 1000, dt.UTC)
            if LAB_NAME.match(name.rsplit("/", 1)[-1]):  # /aws/lambda/<function>, /aws/sagemaker/Endpoints/<endpoint>
                found.append(Found("log group", name, created=created))
            elif name in SHARED_LOG_GROUPS:
                for streams in logs.get_paginator("describe_log_streams").paginate(logGroupName=name):
                    found += [
                        Found("log stream", f"{name}/{s['logStreamName']}")
                        for s in streams["logStreams"]
                        if LAB_NAME.match(s["logStreamName"])
                    ]
    return found


def find_lab_resources(buckets: Iterable[str] = ()) -> list[Found]:
    """Everything any lab left in this account and region, in :data:`SWEEP_ORDER`: found by the ``labN-`` name
    prefix every run id has, or by the ``workshop:lab`` tag (SageMaker resources named otherwise)."""
    sm, s3, logs = boto3.client("sagemaker"), boto3.client("s3"), boto3.client("logs")
    found = [f for kind in KINDS for f in _labs(sm, kind)]
    functions = boto3.client("lambda")
    for page in functions.get_paginator("list_functions").paginate():
        found += [
            Found("lambda function", f["FunctionName"], f.get("State", ""), _lambda_time(f.get("LastModified")))
            for f in page["Functions"]
            if LAB_NAME.match(f["FunctionName"])
        ]
    found += _s3_prefixes(s3, buckets)
    found += _log_groups(logs)
    return sorted(found, key=lambda f: SWEEP_ORDER.index(f.kind))


def _lambda_time(value: str | None) -> dt.datetime | None:
    """Lambda's ``LastModified`` (``2026-12-03T10:00:00.000+0000``) as a datetime."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def table(found: list[Found], now: dt.datetime | None = None) -> str:
    """The sweep's report: one line per resource with its age and what it costs per hour while it runs."""
    now = now or dt.datetime.now(dt.UTC)
    lines = [f"{'kind':<16} {'name':<60} {'status':<12} {'age (h)':>8} {'USD/hour':>9}"]
    for f in found:
        age = f.age_hours(now)
        lines.append(
            f"{f.kind:<16} {f.name:<60} {f.status:<12} {'' if age is None else age:>8} "
            f"{'' if f.usd_per_hour is None else round(f.usd_per_hour, 3):>9}"
        )
    running = sum(f.usd_per_hour or 0 for f in found)
    lines.append(f"{len(found)} resources; running ones cost about {running:.2f} USD per hour (on-demand prices).")
    return "\n".join(lines)


def _delete(sm, kind: Kind, name: str, timeout: float, poll: float) -> None:
    """Delete a resource, waiting while it is in a transition SageMaker refuses to delete from (an endpoint
    ``Creating`` or ``Updating``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = described(getattr(sm, kind.describe), **kind.name_param(name))
        status = None if found is None or kind.status_key is None else found[kind.status_key]
        if found is None or status == "Deleting":
            return
        if status not in TRANSITIONAL:
            remove(sm, kind, name)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{kind.label} {name} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def sweep(found: list[Found], timeout: float = TIMEOUT_SECONDS, poll: float = POLL_SECONDS) -> None:
    """Stop or delete everything in ``found`` (as :func:`find_lab_resources` ordered it): jobs stopped first, each
    SageMaker kind deleted and waited for before the next (endpoints before their configs and models), then
    functions, S3 objects and logs."""
    sm, logs, functions = (boto3.client(s) for s in ("sagemaker", "logs", "lambda"))
    for kind in KINDS:
        names = [f.name for f in found if f.kind == kind.label]
        if kind.job:
            for name in names:
                remove(sm, kind, name)
            continue
        for name in names:
            _delete(sm, kind, name, timeout, poll)
        left = set(names)
        wait(
            lambda kind=kind, left=left: sorted(left & {i[kind.name_key] for i in listed(sm, kind)}),
            kind.label + "s",
            timeout,
            poll,
        )
    for f in found:
        if f.kind == "lambda function":
            _ignore_missing(functions, functions.delete_function, FunctionName=f.name)
        elif f.kind == "s3 prefix":
            bucket, _, prefix = f.name.partition("/")
            delete_resources(prefix.rstrip("/"), bucket, [prefix], timeout, poll)
        elif f.kind == "log group":
            _ignore_missing(logs, logs.delete_log_group, logGroupName=f.name)
        elif f.kind == "log stream":
            group = next(g for g in SHARED_LOG_GROUPS if f.name.startswith(g + "/"))
            _ignore_missing(logs, logs.delete_log_stream, logGroupName=group, logStreamName=f.name[len(group) + 1 :])


def _ignore_missing(client, call, **params) -> None:
    try:
        call(**params)
    except client.exceptions.ResourceNotFoundException:
        pass


def _workshop_buckets() -> list[str]:
    """The buckets the labs write to: ``WORKSHOP_BUCKET`` if set, and the SDK's default bucket of this account."""
    session = boto3.session.Session()
    account = session.client("sts").get_caller_identity()["Account"]
    default = f"sagemaker-{session.region_name}-{account}"
    return sorted({name for name in (settings().bucket, default) if name})


def main(argv: list[str] | None = None) -> int:
    """``python -m common.sweep --all [--yes] [--bucket NAME]``: list (and with ``--yes`` delete) every
    resource any lab left in the account and region the AWS environment names."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m common.sweep", description=main.__doc__)
    parser.add_argument("--all", action="store_true", required=True, help="every lab's resources (labN-* or tagged)")
    parser.add_argument("--yes", action="store_true", help="delete them (default: only list them)")
    parser.add_argument("--bucket", action="append", default=[], help="another bucket to sweep (repeatable)")
    args = parser.parse_args(argv)
    found = find_lab_resources(_workshop_buckets() + args.bucket)
    print(table(found))
    if not found:
        return 0
    if not args.yes:
        print("Dry run: nothing was changed. Run again with --yes to stop and delete these.")
        return 0
    sweep(found)
    left = find_lab_resources(_workshop_buckets() + args.bucket)
    print(f"Swept {len(found)} resources; {len(left)} left.")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
