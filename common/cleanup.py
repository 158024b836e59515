"""Delete what a lab made, by its name prefix, and check that nothing is left.

Every resource a lab creates is named from its ``run_id``, so one prefix finds them all:

    delete_resources(run_id, bucket, [f"{run_id}/"])
    assert not leftovers(run_id, bucket, [f"{run_id}/"])

Order matters: endpoints first (they bill by the hour, and AWS deletes them asynchronously), then endpoint
configurations, then models. Training and transform jobs cannot be deleted; running ones are stopped. S3
objects under the given prefixes (keys in ``bucket``, or ``s3://bucket/prefix`` URIs) are deleted. The clients
come from the environment, so this works the same in AWS and local mode.

The room-wide sweep, ``python -m common.cleanup --all`` (dry run; ``--yes`` deletes), finds what *any* lab left in
the account and region (every run id starts ``labN-``; SageMaker resources also carry the ``workshop:lab`` tag),
prints it with its age and hourly cost, and stops or deletes it in dependency order: running training, transform
and tuning jobs; endpoints (waiting out ``Creating``/``Updating``, which cannot be deleted); endpoint configs;
models; Lambda functions; S3 prefixes in the workshop bucket; the labs' log groups and log streams.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import boto3
from botocore.exceptions import ClientError

from common import costs

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


# ---------------------------------------------------------------------------------------------- the room-wide sweep

LAB_NAME = re.compile(r"^lab\d+-")  # every run id: lab1-fm-..., lab1-dmf-..., lab2-o2v-...
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")
SHARED_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TransformJobs")
SWEEP_ORDER = (
    "training job",
    "transform job",
    "tuning job",
    "endpoint",
    "endpoint config",
    "model",
    "lambda function",
    "s3 prefix",
    "log group",
    "log stream",
)


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


def _labelled(sm, operation: str, key: str, name_key: str, arn_key: str, **filters) -> list[dict]:
    """Every item of a SageMaker ``List*`` named like a lab, or (for others) tagged with ``workshop:lab``."""
    pages = sm.get_paginator(operation).paginate(**filters)
    items = [item for page in pages for item in page[key]]
    return [i for i in items if _is_lab(i[name_key]) or _is_lab(i[name_key], _tags(sm, i[arn_key]))]


def _running(sm, operation, key, name_key, arn_key, kind, describe, instance) -> list[Found]:
    found = []
    for status in RUNNING:
        for item in _labelled(sm, operation, key, name_key, arn_key, StatusEquals=status):
            rate = instance(describe(item[name_key]))
            found.append(Found(kind, item[name_key], status, item.get("CreationTime"), rate))
    return found


def _training_rate(job: dict) -> float | None:
    resources = job["ResourceConfig"]
    rate = costs.price("training", resources["InstanceType"])
    return None if rate is None else rate * resources["InstanceCount"]


def _transform_rate(job: dict) -> float | None:
    resources = job["TransformResources"]
    rate = costs.price("transform", resources["InstanceType"])
    return None if rate is None else rate * resources["InstanceCount"]


def _endpoint_rate(sm, config_name: str) -> float | None:
    described = _described(sm.describe_endpoint_config, EndpointConfigName=config_name)
    rates = [
        (costs.price("hosting", v.get("InstanceType", "")), v.get("InitialInstanceCount", 1))
        for v in (described or {}).get("ProductionVariants", [])
    ]
    return sum(rate * count for rate, count in rates) if rates and all(r is not None for r, _ in rates) else None


def _tuning_jobs(sm) -> list[Found]:
    """Running tuning jobs; an emulator that does not serve tuning yet has none."""
    try:
        return [
            Found("tuning job", item["HyperParameterTuningJobName"], status, item.get("CreationTime"))
            for status in RUNNING
            for page in sm.get_paginator("list_hyper_parameter_tuning_jobs").paginate(StatusEquals=status)
            for item in page["HyperParameterTuningJobSummaries"]
            if _is_lab(item["HyperParameterTuningJobName"])
        ]
    except ClientError as error:
        if error.response["Error"]["Code"] == "UnknownOperationException":
            return []
        raise


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
    found = _running(
        sm,
        "list_training_jobs",
        "TrainingJobSummaries",
        "TrainingJobName",
        "TrainingJobArn",
        "training job",
        lambda name: sm.describe_training_job(TrainingJobName=name),
        _training_rate,
    )
    found += _running(
        sm,
        "list_transform_jobs",
        "TransformJobSummaries",
        "TransformJobName",
        "TransformJobArn",
        "transform job",
        lambda name: sm.describe_transform_job(TransformJobName=name),
        _transform_rate,
    )
    found += _tuning_jobs(sm)
    for item in _labelled(sm, "list_endpoints", "Endpoints", "EndpointName", "EndpointArn"):
        endpoint = _described(sm.describe_endpoint, EndpointName=item["EndpointName"]) or {}
        billed = endpoint.get("EndpointStatus") in ("InService", *TRANSITIONAL) and endpoint.get("EndpointConfigName")
        rate = _endpoint_rate(sm, endpoint["EndpointConfigName"]) if billed else None
        found.append(Found("endpoint", item["EndpointName"], item["EndpointStatus"], item["CreationTime"], rate))
    for operation, key, name_key, arn_key, kind in (
        ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn", "endpoint config"),
        ("list_models", "Models", "ModelName", "ModelArn", "model"),
    ):
        found += [
            Found(kind, i[name_key], "", i["CreationTime"]) for i in _labelled(sm, operation, key, name_key, arn_key)
        ]
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


def _delete_endpoint(sm, name: str, timeout: float, poll: float) -> None:
    """Delete an endpoint, waiting while it is in a transition SageMaker refuses to delete from."""
    deadline = time.monotonic() + timeout
    while True:
        found = _described(sm.describe_endpoint, EndpointName=name)
        if found is None or found["EndpointStatus"] == "Deleting":
            return
        if found["EndpointStatus"] not in TRANSITIONAL:
            _unless_done(
                sm.delete_endpoint, partial(_still_to_delete, sm.describe_endpoint, "EndpointStatus"), EndpointName=name
            )
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {name} still {found['EndpointStatus']} after {timeout:.0f} s")
        time.sleep(poll)


def sweep(found: list[Found], timeout: float = TIMEOUT_SECONDS, poll: float = POLL_SECONDS) -> None:
    """Stop or delete everything in ``found`` (as :func:`find_lab_resources` ordered it): jobs stopped first,
    endpoints deleted and waited for before their configs and models, then functions, S3 objects and logs."""
    sm, s3, logs, functions = (boto3.client(s) for s in ("sagemaker", "s3", "logs", "lambda"))
    stop = {
        "training job": (sm.stop_training_job, sm.describe_training_job, "TrainingJobName", "TrainingJobStatus"),
        "transform job": (sm.stop_transform_job, sm.describe_transform_job, "TransformJobName", "TransformJobStatus"),
        "tuning job": (
            sm.stop_hyper_parameter_tuning_job,
            sm.describe_hyper_parameter_tuning_job,
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobStatus",
        ),
    }
    for f in found:
        if f.kind in stop:
            call, describe, key, status = stop[f.kind]
            _unless_done(call, partial(_still_running, describe, status), **{key: f.name})
        elif f.kind == "endpoint":
            _delete_endpoint(sm, f.name, timeout, poll)
    endpoints = {f.name for f in found if f.kind == "endpoint"}
    _wait(lambda: sorted(endpoints & set(_all_endpoints(sm))), "endpoints", timeout, poll)
    for f in found:
        if f.kind == "endpoint config":
            _unless_done(
                sm.delete_endpoint_config,
                partial(_still_to_delete, sm.describe_endpoint_config, None),
                EndpointConfigName=f.name,
            )
        elif f.kind == "model":
            _unless_done(sm.delete_model, partial(_still_to_delete, sm.describe_model, None), ModelName=f.name)
        elif f.kind == "lambda function":
            _ignore_missing(functions, functions.delete_function, FunctionName=f.name)
        elif f.kind == "s3 prefix":
            bucket, _, prefix = f.name.partition("/")
            delete_resources(prefix.rstrip("/"), bucket, [prefix], timeout, poll)
        elif f.kind == "log group":
            _ignore_missing(logs, logs.delete_log_group, logGroupName=f.name)
        elif f.kind == "log stream":
            group = next(g for g in SHARED_LOG_GROUPS if f.name.startswith(g + "/"))
            _ignore_missing(logs, logs.delete_log_stream, logGroupName=group, logStreamName=f.name[len(group) + 1 :])


def _all_endpoints(sm) -> dict[str, str]:
    pages = sm.get_paginator("list_endpoints").paginate()
    return {item["EndpointName"]: item["EndpointStatus"] for page in pages for item in page["Endpoints"]}


def _ignore_missing(client, call, **params) -> None:
    try:
        call(**params)
    except client.exceptions.ResourceNotFoundException:
        pass


def _workshop_buckets() -> list[str]:
    """The buckets the labs write to: ``WORKSHOP_BUCKET`` if set, and the SDK's default bucket of this account."""
    from common.settings import settings

    session = boto3.session.Session()
    account = session.client("sts").get_caller_identity()["Account"]
    default = f"sagemaker-{session.region_name}-{account}"
    return sorted({name for name in (settings().bucket, default) if name})


def main(argv: list[str] | None = None) -> int:
    """``python -m common.cleanup --all [--yes] [--bucket NAME]``: list (and with ``--yes`` delete) every
    resource any lab left in the account and region the AWS environment names."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m common.cleanup", description=main.__doc__)
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
