"""What a lab would cost on AWS: its training jobs, endpoints and transform jobs times on-demand prices.

    tags=costs.sdk_tags("lab1", run_id)        # on every job, model and endpoint a lab creates
    costs.cost_table(run_id)                   # at the end of the notebook, before the cleanup

Both modes answer the same calls, so a lab run locally shows what it would have cost on AWS. What is counted:
- a training job: ``BillableTimeInSeconds`` (DescribeTrainingJob) x instance count x the training price;
- an endpoint: from its creation until now (the table is printed before the cleanup deletes it) x the instance
  count of each production variant x the hosting price;
- a batch transform job: from ``TransformStartTime`` to ``TransformEndTime`` (or now) x instance count x the batch
  transform price.
Not counted: S3 storage and requests, CloudWatch Logs, data transfer, the notebook instance itself, Lambda.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import boto3

TAG_LAB = "workshop:lab"
TAG_RUN = "workshop:run-id"

PRICES_DATE = "2026-12-03"
PRICES_REGION = "us-east-1"
PRICES_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (On-Demand Pricing, US East (N. Virginia))"
# USD per instance-hour, by use and instance type. Batch transform bills at the real-time inference rates. Entered
# on PRICES_DATE without online access to the page; re-check against PRICES_SOURCE before quoting them.
PRICES: dict[str, dict[str, float]] = {
    "training": {
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.c5.xlarge": 0.204,
        "ml.c5.2xlarge": 0.408,
        "ml.p3.2xlarge": 3.825,
        "ml.g4dn.xlarge": 0.7364,
    },
    "hosting": {
        "ml.t2.medium": 0.056,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.c5.large": 0.102,
        "ml.c5.xlarge": 0.204,
        "ml.g4dn.xlarge": 0.7364,
    },
}
PRICES["transform"] = PRICES["hosting"]


def tags(lab: str, run_id: str) -> list[dict[str, str]]:
    """The tags every resource of a lab carries (SageMaker's ``Tags``): the sweep and the cost table find it by them."""
    return [{"Key": TAG_LAB, "Value": lab}, {"Key": TAG_RUN, "Value": run_id}]


def sdk_tags(lab: str, run_id: str) -> list:
    """:func:`tags` as the SDK's ``Tag`` shapes, for ``ModelTrainer(tags=...)`` and the core resources' ``create``."""
    from sagemaker.core.shapes import Tag

    return [Tag(key=tag["Key"], value=tag["Value"]) for tag in tags(lab, run_id)]


def price(use: str, instance_type: str) -> float | None:
    """USD per hour of ``instance_type`` for ``use`` (training, hosting, transform); None when not in the table."""
    return PRICES[use].get(instance_type)


@dataclass(frozen=True)
class Usage:
    """One resource's use: ``seconds`` of ``count`` instances of ``instance_type``."""

    kind: str
    name: str
    instance_type: str
    count: int
    seconds: float

    @property
    def usd_per_hour(self) -> float | None:
        return price(
            {"training job": "training", "endpoint": "hosting"}.get(self.kind, "transform"), self.instance_type
        )

    @property
    def usd(self) -> float | None:
        rate = self.usd_per_hour
        return None if rate is None else round(rate * self.count * self.seconds / 3600, 4)


def _names(sm, operation: str, key: str, name_key: str, prefix: str) -> list[str]:
    pages = sm.get_paginator(operation).paginate(NameContains=prefix)
    return [item[name_key] for page in pages for item in page[key] if item[name_key].startswith(prefix)]


def _seconds(start, end, now: dt.datetime) -> float:
    return max(0.0, ((end or now) - start).total_seconds()) if start else 0.0


def usage(run_id: str, sm=None, now: dt.datetime | None = None) -> list[Usage]:
    """What the resources named ``run_id...`` used so far, read from SageMaker (AWS or the emulator)."""
    if not run_id:
        raise ValueError("A run id is required: an empty one would count every resource in the account.")
    sm = sm or boto3.client("sagemaker")
    now = now or dt.datetime.now(dt.UTC)
    found = []
    for name in _names(sm, "list_training_jobs", "TrainingJobSummaries", "TrainingJobName", run_id):
        job = sm.describe_training_job(TrainingJobName=name)
        resources = job["ResourceConfig"]
        found.append(
            Usage(
                "training job",
                name,
                resources["InstanceType"],
                resources["InstanceCount"],
                float(job.get("BillableTimeInSeconds", 0)),
            )
        )
    for name in _names(sm, "list_endpoints", "Endpoints", "EndpointName", run_id):
        endpoint = sm.describe_endpoint(EndpointName=name)
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            found.append(
                Usage(
                    "endpoint",
                    name,
                    variant.get("InstanceType", "serverless"),
                    variant.get("InitialInstanceCount", 1),
                    _seconds(endpoint["CreationTime"], None, now),
                )
            )
    for name in _names(sm, "list_transform_jobs", "TransformJobSummaries", "TransformJobName", run_id):
        job = sm.describe_transform_job(TransformJobName=name)
        resources = job["TransformResources"]
        found.append(
            Usage(
                "transform job",
                name,
                resources["InstanceType"],
                resources["InstanceCount"],
                _seconds(job.get("TransformStartTime"), job.get("TransformEndTime"), now),
            )
        )
    return found


def cost_table(run_id: str, sm=None, now: dt.datetime | None = None):
    """A pandas table of :func:`usage` with each line's on-demand cost and a total; prices from :data:`PRICES`."""
    import pandas as pd

    rows = [
        {
            "kind": u.kind,
            "name": u.name,
            "instance type": u.instance_type,
            "instances": u.count,
            "seconds": round(u.seconds),
            "USD/hour": u.usd_per_hour,
            "USD": u.usd,
        }
        for u in usage(run_id, sm, now)
    ]
    table = pd.DataFrame(rows, columns=["kind", "name", "instance type", "instances", "seconds", "USD/hour", "USD"])
    total = pd.DataFrame([{"kind": "total", "name": "", "USD": round(table["USD"].sum(min_count=0), 4)}])
    table = pd.concat([table, total], ignore_index=True) if len(table) else total
    table.attrs["note"] = f"On-demand prices in {PRICES_REGION} on {PRICES_DATE}, from {PRICES_SOURCE}."
    return table
