"""The SageMaker resource kinds the cleanup tools know, one row each in :data:`KINDS`.

Both tools work from this table: ``common.cleanup`` (one lab's resources, by its run id) and ``common.sweep`` (every
lab's, room-wide). A row says how to list a kind, describe it, remove it (delete it, or stop it for a job, which
cannot be deleted), where its status is, under which key a lab's cleanup reports it, and what it costs per hour;
the table's order is the sweep's order (jobs stopped first, then endpoints before the configs and models they use).
Adding a SageMaker kind is adding a row.

Whether a resource is gone or done is decided by its status, never by an error message's wording: a refused call
(``ValidationException``) is ignored only when a fresh ``Describe*`` shows that someone else removed it meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from common import costs

RUNNING = ("InProgress", "Stopping")
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")


@dataclass(frozen=True)
class Kind:
    """One SageMaker resource kind; operation names are boto3's (``list_endpoints``)."""

    label: str  # how the sweep names it: "endpoint config"
    listing: str  # the List* operation
    items: str  # the key of the items in each page of the listing
    name_key: str
    arn_key: str
    describe: str
    remove: str  # the Delete* operation, or Stop* for a job
    status_key: str | None = None
    job: bool = False  # only running ones count, and they are stopped, not deleted
    lab_key: str | None = None  # its key in what a lab's cleanup returns; None: only the room-wide sweep sees it
    hourly: Callable[[object, dict], float | None] | None = None  # USD per hour while it runs, from its description

    def name_param(self, name: str) -> dict[str, str]:
        return {self.name_key: name}


def _training_rate(sm, job: dict) -> float | None:
    resources = job["ResourceConfig"]
    rate = costs.price("training", resources["InstanceType"])
    return None if rate is None else rate * resources["InstanceCount"]


def _transform_rate(sm, job: dict) -> float | None:
    resources = job["TransformResources"]
    rate = costs.price("transform", resources["InstanceType"])
    return None if rate is None else rate * resources["InstanceCount"]


def _endpoint_rate(sm, endpoint: dict) -> float | None:
    """What an endpoint costs while it is billed (in service or changing), from its config's instances."""
    if endpoint.get("EndpointStatus") not in ("InService", *TRANSITIONAL) or not endpoint.get("EndpointConfigName"):
        return None
    config = described(sm.describe_endpoint_config, EndpointConfigName=endpoint["EndpointConfigName"])
    rates = [
        (costs.price("hosting", v.get("InstanceType", "")), v.get("InitialInstanceCount", 1))
        for v in (config or {}).get("ProductionVariants", [])
    ]
    return sum(rate * count for rate, count in rates) if rates and all(r is not None for r, _ in rates) else None


KINDS = (
    Kind(
        "training job",
        "list_training_jobs",
        "TrainingJobSummaries",
        "TrainingJobName",
        "TrainingJobArn",
        "describe_training_job",
        "stop_training_job",
        "TrainingJobStatus",
        job=True,
        lab_key="running_training_jobs",
        hourly=_training_rate,
    ),
    Kind(
        "transform job",
        "list_transform_jobs",
        "TransformJobSummaries",
        "TransformJobName",
        "TransformJobArn",
        "describe_transform_job",
        "stop_transform_job",
        "TransformJobStatus",
        job=True,
        lab_key="running_transform_jobs",
        hourly=_transform_rate,
    ),
    Kind(
        "tuning job",
        "list_hyper_parameter_tuning_jobs",
        "HyperParameterTuningJobSummaries",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobArn",
        "describe_hyper_parameter_tuning_job",
        "stop_hyper_parameter_tuning_job",
        "HyperParameterTuningJobStatus",
        job=True,
    ),
    Kind(
        "endpoint",
        "list_endpoints",
        "Endpoints",
        "EndpointName",
        "EndpointArn",
        "describe_endpoint",
        "delete_endpoint",
        "EndpointStatus",
        lab_key="endpoints",
        hourly=_endpoint_rate,
    ),
    Kind(
        "endpoint config",
        "list_endpoint_configs",
        "EndpointConfigs",
        "EndpointConfigName",
        "EndpointConfigArn",
        "describe_endpoint_config",
        "delete_endpoint_config",
        lab_key="endpoint_configs",
    ),
    Kind(
        "model",
        "list_models",
        "Models",
        "ModelName",
        "ModelArn",
        "describe_model",
        "delete_model",
        lab_key="models",
    ),
)
BY_LABEL = {kind.label: kind for kind in KINDS}


def listed(sm, kind: Kind, **filters) -> list[dict]:
    """Every item of the kind's ``List*`` operation, every page; none when the service does not serve the kind."""
    try:
        pages = sm.get_paginator(kind.listing).paginate(**filters)
        return [item for page in pages for item in page[kind.items]]
    except ClientError as error:
        if error.response["Error"]["Code"] == "UnknownOperationException":
            return []
        raise


def running(sm, kind: Kind, **filters) -> list[dict]:
    """The jobs of ``kind`` that are running (``InProgress`` or ``Stopping``)."""
    return [item for status in RUNNING for item in listed(sm, kind, StatusEquals=status, **filters)]


def described(describe, **params) -> dict | None:
    """What ``describe`` says of a resource, or None when SageMaker answers that it does not exist."""
    try:
        return describe(**params)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            return None
        raise


def still_to_remove(sm, kind: Kind, **params) -> bool:
    """Whether the resource is still there to remove: a job still running; anything else existing and (when it has
    a status) not already being deleted."""
    found = described(getattr(sm, kind.describe), **params)
    if found is None:
        return False
    if kind.job:
        return found[kind.status_key] == "InProgress"
    return kind.status_key is None or found[kind.status_key] != "Deleting"


def unless_done(call, still_needed: Callable[..., bool], **params) -> None:
    """``call(**params)``; a ValidationException is ignored when ``still_needed(**params)`` then says someone else
    deleted or stopped the resource meanwhile (another kernel, the console). Decided by status, not message wording.
    """
    try:
        call(**params)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ValidationException" or still_needed(**params):
            raise


def remove(sm, kind: Kind, name: str) -> None:
    """Delete the resource, or stop it for a job, unless it is already gone or done."""
    unless_done(getattr(sm, kind.remove), lambda **params: still_to_remove(sm, kind, **params), **kind.name_param(name))


def wait(check: Callable[[], list], what: str, timeout: float, poll: float) -> None:
    """Poll ``check`` until it returns nothing.

    Raises:
        TimeoutError: ``check`` still returns something after ``timeout`` seconds; the message lists it.
    """
    deadline = time.monotonic() + timeout
    while left := check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still there after {timeout:.0f} s: {left}")
        time.sleep(poll)
