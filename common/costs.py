"""What a lab would cost on AWS: its training jobs, endpoints and transform jobs times on-demand prices.

    tags=costs.sdk_tags("lab1", run_id)        # on every job, model and endpoint a lab creates
    costs.cost_table(run_id, mode=workshop.mode, endpoint_minutes=10)   # at the end, before the cleanup

What this run used is read from SageMaker (AWS or the emulator):
- a training job: ``BillableTimeInSeconds`` (DescribeTrainingJob) x instance count x the training price;
- an endpoint: from its creation until now (the table is printed before the cleanup deletes it) x the instance
  count of each production variant x the hosting price;
- a batch transform job: from ``TransformStartTime`` to ``TransformEndTime`` (or now) x instance count x the batch
  transform price.
On AWS those seconds are the bill. The emulator's seconds are not: it skips the image download that AWS bills, its
endpoints live only as long as a run without a reader, and its wall seconds stretch on a loaded machine (Lab 2's
estimate rose from 0.95 to 1.40 USD at load 20 when it priced them). So a local run prices an estimate of the same
steps on AWS (:func:`aws_seconds`): AWS's measured download time plus, for a training job, the CPU seconds its
busiest host used here, read back from the host's ``CPUUtilization`` in CloudWatch as AWS publishes it (a loaded
machine hardly changes CPU seconds), the same for a transform job's model server, and each endpoint for the minutes
it stays up at the agenda's pace, which the notebook states. A job without the metric is priced by its wall seconds,
and the note says so.
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

# AWS-side durations for a local run's estimate. Measured on AWS, from the stored log of AWS's k-NN covtype example
# (amazon-sagemaker-examples @18fc469ba, run of 2021-06-07): a built-in job was billed 191 s for about 38 s of
# training, the rest being the download of its image and data, which AWS bills (from TrainingStartTime on).
AWS_TIMINGS_SOURCE = "the stored log of AWS's k-NN covtype example (2021-06-07): 191 s billed for 38 s of training"
AWS_DOWNLOAD_SECONDS = 191 - 38
# Assumed, not measured: a host's work takes as many seconds on the instance as CPU seconds here (one core here
# computes as fast as the whole instance: its other cores are not counted, which errs high for threaded work), the
# job lasts as long as its busiest host, and a batch transform job downloads its image like a training job.
DOWNLOAD_BASIS = (
    f"+ {AWS_DOWNLOAD_SECONDS} s each for the image and data download (measured on AWS: {AWS_TIMINGS_SOURCE})"
)
JOBS_BASIS = (
    "training and transform jobs: the CPU seconds of the job's busiest host here, from its CPUUtilization in "
    "CloudWatch (assumed: the instance type computes as fast as one core here, and a job lasts as long as its "
    "busiest host)"
)
NO_CPU_METRIC = (
    "{names} had no CPU metric (a job of an older emulator), so {them} priced by this run's wall seconds, which a "
    "loaded machine stretches"
)
BASIS_DATE = "2026-12-07"  # when the estimate's basis last changed: CPU seconds instead of wall seconds
CPU_METRIC = "CPUUtilization"
CPU_NAMESPACES = {"training job": "/aws/sagemaker/TrainingJobs", "transform job": "/aws/sagemaker/TransformJobs"}
ENDPOINTS_BASIS = "endpoints: {minutes:g} min each, created to deleted at the agenda's pace (assumed)"


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
    """One resource's use: ``seconds`` of ``count`` instances of ``instance_type``; for a job read with a CloudWatch
    client, ``cpu_seconds``: the CPU seconds of its busiest host (None without a CPU metric)."""

    kind: str
    name: str
    instance_type: str
    count: int
    seconds: float
    cpu_seconds: float | None = None

    @property
    def usd_per_hour(self) -> float | None:
        return price(
            {"training job": "training", "endpoint": "hosting"}.get(self.kind, "transform"), self.instance_type
        )

    @property
    def usd(self) -> float | None:
        rate = self.usd_per_hour
        return None if rate is None else round(rate * self.count * self.seconds / 3600, 4)


def aws_seconds(usage: Usage, endpoint_minutes: float | None) -> float:
    """The seconds AWS would bill for ``usage``, a resource of a local run (see the module's docstring).

    Raises:
        ValueError: an endpoint is priced without ``endpoint_minutes``, or with a negative number of them.
    """
    if usage.kind == "endpoint":
        if endpoint_minutes is None or endpoint_minutes < 0:
            raise ValueError(
                f"Pricing endpoint {usage.name} on AWS needs endpoint_minutes, the minutes it stays up at the "
                f"agenda's pace (a number >= 0), not {endpoint_minutes!r}."
            )
        return 60.0 * endpoint_minutes
    work = usage.cpu_seconds if usage.cpu_seconds is not None else usage.seconds
    return work + AWS_DOWNLOAD_SECONDS


def host_cpu_seconds(cloudwatch, kind: str, hosts: list[str], start: dt.datetime, end: dt.datetime) -> float | None:
    """The CPU seconds of the busiest of ``hosts`` (the ``Host`` dimension: ``<job>/algo-<i>`` for a training job)
    of a ``kind`` job that ran from ``start`` to ``end``, from each host's ``CPUUtilization``: the emulator publishes
    one sample per second, so a period's Sum / 100 is its CPU seconds. None when no host has the metric."""
    found = []
    for host in hosts:
        rows = cloudwatch.get_metric_statistics(
            Namespace=CPU_NAMESPACES[kind],
            MetricName=CPU_METRIC,
            Dimensions=[{"Name": "Host", "Value": host}],
            StartTime=start - dt.timedelta(minutes=1),
            EndTime=end + dt.timedelta(minutes=2),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        if rows:
            found.append(sum(row["Sum"] for row in rows) / 100)
    return max(found) if found else None


def transform_hosts(cloudwatch, name: str) -> list[str]:
    """The ``Host`` dimensions of transform job ``name`` (``<job>/<instance id>``, the instance ids AWS chose)."""
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=CPU_NAMESPACES["transform job"], MetricName=CPU_METRIC
    )
    return sorted(
        {
            dimension["Value"]
            for page in pages
            for metric in page["Metrics"]
            for dimension in metric.get("Dimensions", [])
            if dimension["Name"] == "Host" and dimension["Value"].startswith(f"{name}/")
        }
    )


def _names(sm, operation: str, key: str, name_key: str, prefix: str) -> list[str]:
    pages = sm.get_paginator(operation).paginate(NameContains=prefix)
    return [item[name_key] for page in pages for item in page[key] if item[name_key].startswith(prefix)]


def _seconds(start, end, now: dt.datetime) -> float:
    return max(0.0, ((end or now) - start).total_seconds()) if start else 0.0


def usage(run_id: str, sm=None, now: dt.datetime | None = None, cloudwatch=None) -> list[Usage]:
    """What the resources named ``run_id...`` used so far, read from SageMaker (AWS or the emulator), and with
    ``cloudwatch`` each job's CPU seconds (:func:`host_cpu_seconds`)."""
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
                None
                if cloudwatch is None
                else host_cpu_seconds(
                    cloudwatch,
                    "training job",
                    [f"{name}/algo-{i}" for i in range(1, resources["InstanceCount"] + 1)],
                    job.get("TrainingStartTime") or job["CreationTime"],
                    job.get("TrainingEndTime") or now,
                ),
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
                None
                if cloudwatch is None
                else host_cpu_seconds(
                    cloudwatch,
                    "transform job",
                    transform_hosts(cloudwatch, name),
                    job.get("TransformStartTime") or job["CreationTime"],
                    job.get("TransformEndTime") or now,
                ),
            )
        )
    return found


COLUMNS = [
    "kind",
    "name",
    "instance type",
    "instances",
    "seconds here",
    "CPU seconds here",
    "AWS seconds",
    "USD/hour",
    "AWS USD",
]


def cost_table(
    run_id: str,
    mode: str = "aws",
    endpoint_minutes: float | None = None,
    sm=None,
    now: dt.datetime | None = None,
    cloudwatch=None,
):
    """A pandas table of :func:`usage`: each line's seconds in this run, what AWS bills for it, and a total.

    Args:
        run_id: the prefix of every name the run created.
        mode: the session's mode. ``"aws"``: the AWS columns are this run's seconds, the bill itself. ``"local"``:
            they are an estimate of the same steps on AWS (:func:`aws_seconds`), and the note says on what basis.
        endpoint_minutes: local mode only: how long each endpoint stays up on AWS at the agenda's pace.
        cloudwatch: local mode only: where the jobs' CPU seconds are read (``boto3.client("cloudwatch")`` if None).

    Returns:
        The table, with ``attrs["note"]`` (prices, their date and source; the estimate's basis) and
        ``attrs["aws_usd"]`` (the total).

    Raises:
        ValueError: an unknown mode, an empty run id, or an endpoint to estimate without ``endpoint_minutes``.
    """
    import pandas as pd

    if mode not in ("aws", "local"):
        raise ValueError(f"mode must be 'aws' or 'local', not {mode!r}.")
    if mode == "local":
        cloudwatch = cloudwatch or boto3.client("cloudwatch")
    found = usage(run_id, sm, now, cloudwatch if mode == "local" else None)
    rows = []
    for u in found:
        billed = u.seconds if mode == "aws" else aws_seconds(u, endpoint_minutes)
        rate = u.usd_per_hour
        rows.append(
            {
                "kind": u.kind,
                "name": u.name,
                "instance type": u.instance_type,
                "instances": u.count,
                "seconds here": round(u.seconds),
                "CPU seconds here": None if u.cpu_seconds is None else round(u.cpu_seconds),
                "AWS seconds": round(billed),
                "USD/hour": rate,
                "AWS USD": None if rate is None else round(rate * u.count * billed / 3600, 4),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    total_usd = round(table["AWS USD"].sum(min_count=0), 4) if len(table) else 0.0
    total = pd.DataFrame([{"kind": "total", "name": "", "AWS USD": total_usd}], columns=COLUMNS)
    table = pd.concat([table, total], ignore_index=True) if len(table) else total
    prices = f"On-demand prices in {PRICES_REGION} on {PRICES_DATE}, from {PRICES_SOURCE}."
    if mode == "aws":
        table.attrs["note"] = f"AWS seconds: what this run was billed. {prices}"
    else:
        basis = local_basis(found)
        if endpoint_minutes is not None:
            basis += "; " + ENDPOINTS_BASIS.format(minutes=endpoint_minutes)
        table.attrs["note"] = (
            f"Local run: nothing was billed. AWS seconds and AWS USD are an ESTIMATE of the same steps on AWS, "
            f"on the basis of {BASIS_DATE}: {basis}. {prices}"
        )
    table.attrs["aws_usd"] = float(total_usd)
    return table


def local_basis(found: list[Usage]) -> str:
    """How a local run's jobs are priced, naming the jobs that fell back to wall seconds."""
    basis = JOBS_BASIS
    fallback = [u.name for u in found if u.kind != "endpoint" and u.cpu_seconds is None]
    if fallback:
        them = "it was" if len(fallback) == 1 else "they were"
        basis += "; " + NO_CPU_METRIC.format(names=", ".join(fallback), them=them)
    return f"{basis} {DOWNLOAD_BASIS}"


@dataclass(frozen=True)
class Planned:
    """One step of a run not made yet: ``count`` instances of ``instance_type`` for ``hours`` each, ``times`` over."""

    use: str
    instance_type: str
    count: int
    hours: float
    times: int = 1


FULL_SCALE_DATE = "2026-12-07"
# The labs at full scale (ml-20m; common/scale.py). Hours per step are ASSUMED, not measured on AWS: AWS's ~5 minutes
# of start-up and download per job (see AWS_TIMINGS_SOURCE) plus training at the local emulator's rates of issue 24
# (Object2Vec about 7.2 min per ml-20m epoch on a CPU, measured quiet on 2026-12-07 with benchmarks/object2vec.py,
# taken as the G4dn's too, and kept as a margin since the numpy step's 5.7; FM and k-NN 10 minutes on 2 instances).
FULL_SCALE_PLANS: dict[str, tuple[Planned, ...]] = {
    "lab1a": (
        Planned("training", "ml.c5.2xlarge", 2, 0.25, times=7),  # the 6 FM jobs and the k-NN job outside the tuner
        Planned("training", "ml.c5.2xlarge", 2, 0.25, times=4),  # the tuning job's 4 trials
        Planned("hosting", "ml.c5.xlarge", 1, 0.25),  # the classifier's endpoint
        Planned("transform", "ml.c5.xlarge", 1, 0.25),  # every user's top 10
    ),
    "lab1b": (Planned("training", "ml.g4dn.xlarge", 1, 1.0),),  # the script-mode DMF job, 5 epochs
    "lab2": (
        Planned("training", "ml.g4dn.xlarge", 1, 0.35, times=4),  # 2 epochs each: 2 x 7.2 min + 5 min, rounded up
        Planned("hosting", "ml.c5.xlarge", 1, 1.0, times=3),  # three endpoints
    ),
}


def full_scale_estimate(lab: str) -> tuple[float, str]:
    """What ``lab`` would cost on AWS at full scale: (USD, a sentence with the basis and the date).

    Raises:
        KeyError: ``lab`` has no plan (the message lists those that do).
        ValueError: a plan's instance type has no price in :data:`PRICES`.
    """
    if lab not in FULL_SCALE_PLANS:
        raise KeyError(f"no full-scale plan for {lab!r}; plans: {', '.join(FULL_SCALE_PLANS)}")
    usd = 0.0
    for step in FULL_SCALE_PLANS[lab]:
        rate = price(step.use, step.instance_type)
        if rate is None:
            raise ValueError(f"no {step.use} price for {step.instance_type}; priced: {', '.join(PRICES[step.use])}")
        usd += rate * step.count * step.hours * step.times
    usd = round(usd, 2)
    steps = "; ".join(
        f"{step.times} x {step.count} {step.instance_type} {step.use} for {step.hours:g} h"
        for step in FULL_SCALE_PLANS[lab]
    )
    note = (
        f"Full scale (ml-20m) on AWS: about ${usd:.2f}, an ESTIMATE made on {FULL_SCALE_DATE} from assumed hours "
        f"({steps}) at on-demand prices in {PRICES_REGION} of {PRICES_DATE}."
    )
    return usd, note
