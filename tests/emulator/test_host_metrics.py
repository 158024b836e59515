"""Instance metrics: each host of a training job in CloudWatch, ``Host`` = ``<job>/algo-<i>``, from its CPU seconds.

Transform jobs publish their model server's the same way, ``Host`` = ``<job>/<instance id>``. CloudWatch is already
routed by the emulator (moto's PutMetricData, GetMetricStatistics, ListMetrics), so no new operation faces hostile
input here.
"""

from __future__ import annotations

import datetime as dt

import pytest
from emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    channel,
    client,
    finished_training,
    model_artifact,
    put_csv,
    training_request,
    wait_for,
)

from common import costs
from sagemaker_emulator.jobs import host_metrics
from sagemaker_emulator.jobs.host_metrics import MEMORY_EVERY, HostMeter, Sample, metric_data, periods
from sagemaker_emulator.jobs.metrics import NAMESPACE


def test_samples_are_cut_into_periods_whose_cpu_seconds_add_up():
    samples = [Sample(0, 0.0, 100), Sample(30, 20.0, 100), Sample(70, 50.0, 300), Sample(130, 80.0, 100)]
    found = periods(samples, memory_limit=1000, period=60)
    assert [(p.start, p.seconds, p.cpu) for p in found] == [(0, 30, 20.0), (60, 40, 30.0), (120, 60, 30.0)]
    assert found[1].cpu_percents == (75.0,) and found[1].memory_percents == (30.0,)


def test_what_the_host_used_before_the_first_sample_counts_in_the_first_period():
    assert periods([Sample(0, 2.0, 0), Sample(1, 3.0, 0)], memory_limit=1)[0].cpu == 3.0


def test_a_process_gone_before_its_parent_reaped_it_neither_loses_nor_repeats_seconds():
    samples = [Sample(0, 0.0, 0), Sample(1, 5.0, 0), Sample(2, 3.0, 0), Sample(3, 6.0, 0)]
    assert sum(p.cpu for p in periods(samples, memory_limit=1, period=60)) == 6.0


def test_a_host_that_ended_between_two_samples_counts_the_cpu_it_used_as_it_ended():
    ticks = iter(range(100, 200))
    meter = HostMeter(lambda: [], lambda: float(next(ticks)), exit_cpu=lambda: 1.5).start()
    samples = meter.stop()
    assert sum(p.cpu for p in periods(samples, memory_limit=1 << 30)) == pytest.approx(1.5)


def test_a_host_whose_samples_saw_more_than_its_exit_reading_keeps_its_samples():
    meter = HostMeter(lambda: [], lambda: 100.0, exit_cpu=lambda: None).start()
    assert len(meter.stop()) == 1


def test_memory_is_read_every_few_samples_and_repeated_between(monkeypatch):
    readings = iter(range(1000, 2000))
    monkeypatch.setattr(host_metrics, "process_memory", lambda pid: (next(readings), 0))
    meter = HostMeter(lambda: [1], lambda: 100.0)
    for _ in range(2 * MEMORY_EVERY):
        meter._sample()
    memory = [sample.memory for sample in meter._samples]
    assert memory == [1000] * MEMORY_EVERY + [1001] * MEMORY_EVERY


def test_a_period_is_a_statistic_set_whose_sum_is_the_cpu_seconds_times_100():
    [cpu, memory] = metric_data("job/algo-1", periods([Sample(0, 0.0, 50), Sample(10, 15.0, 50)], 100))
    assert cpu["MetricName"] == "CPUUtilization" and cpu["Dimensions"] == [{"Name": "Host", "Value": "job/algo-1"}]
    assert cpu["StatisticValues"] == {"SampleCount": 10, "Sum": 1500.0, "Minimum": 150.0, "Maximum": 150.0}
    assert memory["StatisticValues"]["Sum"] / memory["StatisticValues"]["SampleCount"] == 50.0


def test_a_training_job_publishes_its_hosts_cpu_and_memory_utilization_which_the_cost_table_reads(emulator, s3, sm):
    train = put_csv(s3, "host-metrics/train.csv", "1,0.5\n2,0.5\n")
    sm.create_training_job(**training_request("host-metrics", [channel("train", train)]))
    job = finished_training(sm, "host-metrics")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    cloudwatch = client(emulator, "cloudwatch")
    window = {
        "StartTime": job["TrainingStartTime"] - dt.timedelta(minutes=1),
        "EndTime": job["TrainingEndTime"] + dt.timedelta(minutes=2),
        "Period": 60,
        "Statistics": ["Sum", "SampleCount", "Average"],
    }
    dimensions = [{"Name": "Host", "Value": "host-metrics/algo-1"}]
    rows = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="CPUUtilization", Dimensions=dimensions, **window
    )["Datapoints"]
    assert rows and all(row["Unit"] == "Percent" for row in rows)
    assert sum(row["Sum"] for row in rows) / 100 > 0  # the CPU seconds: a container that starts uses some
    memory = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="MemoryUtilization", Dimensions=dimensions, **window
    )["Datapoints"]
    # a job that ends between two samples has no memory reading (0), on a loaded machine or a quick one
    assert memory and all(0 <= row["Average"] <= 100 for row in memory)
    [line] = costs.usage("host-metrics", sm, cloudwatch=cloudwatch)
    assert line.cpu_seconds == pytest.approx(sum(row["Sum"] for row in rows) / 100)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_memory_limit_that_is_not_positive_is_refused(bad):
    with pytest.raises(ValueError, match="memory_limit"):
        periods([Sample(0, 0.0, 1), Sample(1, 1.0, 1)], memory_limit=bad)


def test_a_transform_job_publishes_its_instances_cpu_which_the_cost_table_prices(emulator, s3, sm):
    model_data = model_artifact(s3, "host-metrics/model.tar.gz", value=1.5)
    sm.create_model(
        ModelName="hm", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    put_csv(s3, "host-metrics/in/a.csv", "1\n2\n")
    sm.create_transform_job(
        TransformJobName="hm-top",
        ModelName="hm",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/host-metrics/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/host-metrics/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    job = wait_for(
        lambda: sm.describe_transform_job(TransformJobName="hm-top"),
        lambda job: job["TransformJobStatus"] not in ("InProgress", "Stopping"),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")

    cloudwatch = client(emulator, "cloudwatch")
    [host] = costs.transform_hosts(cloudwatch, "hm-top")
    assert host.startswith("hm-top/i-")
    [line] = costs.usage("hm-top", sm, cloudwatch=cloudwatch)
    assert line.cpu_seconds > 0 and costs.aws_seconds(line, None) == line.cpu_seconds + costs.AWS_DOWNLOAD_SECONDS
