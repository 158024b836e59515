"""common.costs: usage read from DescribeTrainingJob / DescribeEndpoint / DescribeTransformJob, priced per hour."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber

from common import costs

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
RUN = "lab1-fm-20261203-110000"


def _stubbed(training=(), endpoints=(), transforms=()):
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sm)
    stub.add_response(
        "list_training_jobs",
        {"TrainingJobSummaries": [_summary("TrainingJobName", n) for n, *_ in training]},
        {"NameContains": RUN},
    )
    for name, instance, count, seconds in training:
        stub.add_response(
            "describe_training_job",
            {
                **_training(name),
                "ResourceConfig": {"InstanceType": instance, "InstanceCount": count, "VolumeSizeInGB": 1},
                "BillableTimeInSeconds": seconds,
            },
        )
    stub.add_response(
        "list_endpoints",
        {"Endpoints": [_endpoint_summary(n) for n, *_ in endpoints]},
        {"NameContains": RUN},
    )
    for name, instance, count, created in endpoints:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": name,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}",
                "EndpointConfigName": name,
                "EndpointStatus": "InService",
                "CreationTime": created,
                "LastModifiedTime": created,
            },
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": name,
                "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:1:endpoint-config/{name}",
                "CreationTime": created,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": name,
                        "InstanceType": instance,
                        "InitialInstanceCount": count,
                    }
                ],
            },
        )
    stub.add_response(
        "list_transform_jobs",
        {"TransformJobSummaries": [_summary("TransformJobName", n) for n, *_ in transforms]},
        {"NameContains": RUN},
    )
    for name, instance, start, end in transforms:
        stub.add_response("describe_transform_job", _transform(name, instance, start, end))
    stub.activate()
    return sm, stub


def _summary(key: str, name: str) -> dict:
    status = "TrainingJobStatus" if key == "TrainingJobName" else "TransformJobStatus"
    arn = "TrainingJobArn" if key == "TrainingJobName" else "TransformJobArn"
    return {key: name, arn: f"arn:aws:sagemaker:us-east-1:1:job/{name}", "CreationTime": NOW, status: "Completed"}


def _endpoint_summary(name: str) -> dict:
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "EndpointStatus": "InService",
    }


def _training(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "StoppingCondition": {},
        "CreationTime": NOW,
        "TrainingStartTime": NOW - dt.timedelta(minutes=10),
        "TrainingEndTime": NOW - dt.timedelta(minutes=5),
    }


def _cloudwatch(*answers):
    """A CloudWatch client answering, in order: for a list of numbers, GetMetricStatistics with those
    CPUUtilization Sums (one host); for a dict of host names, ListMetrics with those hosts' metrics."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cloudwatch)
    for answer in answers:
        if isinstance(answer, dict):
            metrics = [
                {"Namespace": costs.CPU_NAMESPACES["transform job"], "MetricName": costs.CPU_METRIC, "Dimensions": d}
                for d in ([{"Name": "Host", "Value": host}] for host in answer["hosts"])
            ]
            stub.add_response("list_metrics", {"Metrics": metrics})
            continue
        rows = [{"Timestamp": NOW, "Sum": total, "Unit": "Percent"} for total in answer]
        stub.add_response("get_metric_statistics", {"Label": costs.CPU_METRIC, "Datapoints": rows})
    stub.activate()
    return cloudwatch, stub


def _transform(name: str, instance: str, start, end) -> dict:
    return {
        "TransformJobName": name,
        "TransformJobArn": f"arn:aws:sagemaker:us-east-1:1:transform-job/{name}",
        "TransformJobStatus": "Completed",
        "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i"}}},
        "TransformResources": {"InstanceType": instance, "InstanceCount": 1},
        "CreationTime": NOW,
        "TransformStartTime": start,
        "TransformEndTime": end,
    }


def test_each_resource_is_priced_by_its_own_use_and_instance():
    hour = dt.timedelta(hours=1)
    sm, stub = _stubbed(
        training=[(f"{RUN}-fm", "ml.c5.xlarge", 2, 1800)],
        endpoints=[(f"{RUN}-ep", "ml.m5.large", 1, NOW - 2 * hour)],
        transforms=[(f"{RUN}-top", "ml.m5.large", NOW - hour, NOW - hour / 2)],
    )
    found = {u.kind: u for u in costs.usage(RUN, sm, NOW)}
    stub.assert_no_pending_responses()
    c5, m5 = costs.PRICES["training"]["ml.c5.xlarge"], costs.PRICES["hosting"]["ml.m5.large"]
    assert found["training job"].usd == round(c5 * 2 * 0.5, 4)
    assert found["endpoint"].seconds == 7200 and found["endpoint"].usd == round(m5 * 2, 4)
    assert found["transform job"].usd == round(costs.PRICES["transform"]["ml.m5.large"] * 0.5, 4)


def test_the_table_totals_its_lines_and_names_its_source():
    sm, _ = _stubbed(
        training=[(f"{RUN}-a", "ml.c5.xlarge", 1, 3600), (f"{RUN}-b", "ml.m5.xlarge", 1, 3600)],
    )
    table = costs.cost_table(RUN, sm=sm, now=NOW)
    assert list(table["kind"]) == ["training job", "training job", "total"]
    total = costs.PRICES["training"]["ml.c5.xlarge"] + costs.PRICES["training"]["ml.m5.xlarge"]
    assert table["AWS USD"].iloc[-1] == pytest.approx(total) == table.attrs["aws_usd"]
    assert costs.PRICES_DATE in table.attrs["note"] and "aws.amazon.com" in table.attrs["note"]
    assert "ESTIMATE" not in table.attrs["note"]


def test_a_local_run_is_priced_as_the_same_steps_on_aws():
    hour = dt.timedelta(hours=1)
    sm, _ = _stubbed(
        training=[(f"{RUN}-fm", "ml.c5.xlarge", 1, 20)],
        endpoints=[(f"{RUN}-ep", "ml.m5.large", 1, NOW - dt.timedelta(seconds=30))],
        transforms=[(f"{RUN}-top", "ml.m5.large", NOW - hour, NOW - hour + dt.timedelta(seconds=4))],
    )
    # 15 CPU seconds in two periods; the transform job's model server 3, on its one instance
    cloudwatch, stub = _cloudwatch(
        [1000.0, 500.0], {"hosts": [f"{RUN}-top/i-1", f"{RUN}-other/i-2", f"{RUN}-top-2/i-3"]}, [300.0]
    )
    table = costs.cost_table(RUN, mode="local", endpoint_minutes=10, sm=sm, now=NOW, cloudwatch=cloudwatch).set_index(
        "kind"
    )
    download = costs.AWS_DOWNLOAD_SECONDS
    assert table.loc["training job", "seconds here"] == 20 and table.loc["training job", "CPU seconds here"] == 15
    assert table.loc["training job", "AWS seconds"] == 15 + download
    assert table.loc["endpoint", "seconds here"] == 30 and table.loc["endpoint", "AWS seconds"] == 600
    stub.assert_no_pending_responses()
    assert table.loc["transform job", "CPU seconds here"] == 3
    assert table.loc["transform job", "AWS seconds"] == 3 + download
    expected = (
        costs.PRICES["training"]["ml.c5.xlarge"] * (15 + download)
        + costs.PRICES["hosting"]["ml.m5.large"] * 600
        + costs.PRICES["transform"]["ml.m5.large"] * (3 + download)
    ) / 3600
    assert table.loc["total", "AWS USD"] == pytest.approx(expected, abs=1e-3)
    note = table.attrs["note"]
    assert "ESTIMATE" in note and "assumed" in note and "10 min" in note and costs.PRICES_DATE in note
    assert "as fast as one core here" in note and "no CPU metric" not in note and costs.BASIS_DATE in note


def test_a_job_on_several_hosts_lasts_as_long_as_its_busiest_host():
    sm, _ = _stubbed(training=[(f"{RUN}-fm", "ml.c5.2xlarge", 2, 50)])
    cloudwatch, stub = _cloudwatch([3000.0], [4000.0, 500.0])
    [line] = costs.usage(RUN, sm, NOW, cloudwatch)
    stub.assert_no_pending_responses()
    assert line.cpu_seconds == 45.0 and costs.aws_seconds(line, None) == 45.0 + costs.AWS_DOWNLOAD_SECONDS


def test_a_job_without_a_cpu_metric_is_priced_by_its_wall_seconds_and_the_note_says_so():
    sm, _ = _stubbed(training=[(f"{RUN}-old", "ml.c5.xlarge", 1, 20)])
    cloudwatch, _ = _cloudwatch([])
    table = costs.cost_table(RUN, mode="local", sm=sm, now=NOW, cloudwatch=cloudwatch).set_index("kind")
    assert table.loc["training job", "AWS seconds"] == 20 + costs.AWS_DOWNLOAD_SECONDS
    assert f"{RUN}-old had no CPU metric" in table.attrs["note"] and "wall seconds" in table.attrs["note"]


def test_the_aws_bill_reads_no_cpu_metric():
    sm, _ = _stubbed(training=[(f"{RUN}-fm", "ml.c5.xlarge", 1, 20)])
    cloudwatch, stub = _cloudwatch()
    table = costs.cost_table(RUN, sm=sm, now=NOW, cloudwatch=cloudwatch).set_index("kind")
    assert table.loc["training job", "AWS seconds"] == 20 and table.loc["training job", "CPU seconds here"] is None


def test_a_local_endpoint_needs_its_minutes_at_the_agendas_pace():
    sm, _ = _stubbed(endpoints=[(f"{RUN}-ep", "ml.m5.large", 1, NOW)])
    with pytest.raises(ValueError, match="endpoint_minutes"):
        costs.cost_table(RUN, mode="local", sm=sm, now=NOW, cloudwatch=_cloudwatch()[0])


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="'aws' or 'local'"):
        costs.cost_table(RUN, mode="cloud")


def test_an_instance_type_missing_from_the_table_is_shown_without_a_price():
    sm, _ = _stubbed(training=[(f"{RUN}-x", "ml.x99.huge", 1, 60)])
    [line] = costs.usage(RUN, sm, NOW)
    assert line.usd is None and line.seconds == 60


def test_an_empty_run_id_is_refused():
    with pytest.raises(ValueError, match="run id"):
        costs.usage("")


def test_tags_name_the_lab_and_the_run():
    assert costs.tags("lab1", RUN) == [
        {"Key": costs.TAG_LAB, "Value": "lab1"},
        {"Key": costs.TAG_RUN, "Value": RUN},
    ]


def test_sdk_tags_are_the_same_tags_as_sdk_shapes():
    assert [(t.key, t.value) for t in costs.sdk_tags("lab2", RUN)] == [(costs.TAG_LAB, "lab2"), (costs.TAG_RUN, RUN)]


def test_a_full_scale_estimate_adds_every_planned_step_and_states_its_basis(monkeypatch):
    monkeypatch.setitem(
        costs.FULL_SCALE_PLANS,
        "lab9",
        (
            costs.Planned("training", "ml.c5.2xlarge", 2, 0.5, times=3),
            costs.Planned("hosting", "ml.m5.large", 1, 2.0),
        ),
    )
    usd, note = costs.full_scale_estimate("lab9")
    assert usd == round(0.408 * 2 * 0.5 * 3 + 0.115 * 2.0, 2)
    assert "ESTIMATE" in note and costs.FULL_SCALE_DATE in note and costs.PRICES_DATE in note
    assert "3 x 2 ml.c5.2xlarge training for 0.5 h" in note


def test_every_lab_has_a_priced_full_scale_plan():
    for lab in ("lab1a", "lab1b", "lab2"):
        usd, _ = costs.full_scale_estimate(lab)
        assert usd > 0


def test_a_full_scale_estimate_names_the_labs_that_have_a_plan():
    with pytest.raises(KeyError, match="no full-scale plan for 'lab7'; plans: lab1a"):
        costs.full_scale_estimate("lab7")


def test_a_plan_on_an_unpriced_instance_is_refused(monkeypatch):
    monkeypatch.setitem(costs.FULL_SCALE_PLANS, "lab9", (costs.Planned("training", "ml.x9.huge", 1, 1.0),))
    with pytest.raises(ValueError, match="no training price for ml.x9.huge"):
        costs.full_scale_estimate("lab9")
