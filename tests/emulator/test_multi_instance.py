"""Multi-instance training jobs: N hosts, each with AWS's resourceconfig.json, SM_* variables, its share of the data
and its own log stream; FM and k-NN trained data-parallel through MXNet's kvstore, as good as on one host.

The contract tests run a shell entry point on a framework image (it prints what its host sees into the host's log
stream); the algorithm tests train small FM and k-NN jobs, since N hosts share this machine's two cores.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from emulator_helpers import BUCKET, REGION, channel, deploy, finished_training, put_csv, training_request
from test_algorithm_factorization_machines import GOOD, planted_ratings, recordio

from sagemaker_emulator.algorithms.layout import create_layout

MXNET = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38"
FM = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/factorization-machines:1"
KNN = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/knn:1"
OBJECT2VEC = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/object2vec:1"
RECORDIO = "application/x-recordio-protobuf"
REPORT = (
    "cat /opt/ml/input/config/resourceconfig.json; echo; echo SM_HOSTS=$SM_HOSTS SM_CURRENT_HOST=$SM_CURRENT_HOST; "
    "echo files: $(ls /opt/ml/input/data/train)"
)
# Measured on the planted data (GOOD settings, data seeds 0-2): one host's test RMSE 0.249-0.255, two hosts' within
# 0.004 of it on each seed; 0.01 is the seeds' spread plus margin.
RMSE_TOLERANCE = 0.01


def _shell_job(name: str, s3, script: str, count: int, objects: int = 3, distribution: str = "ShardedByS3Key"):
    for number in range(objects):
        put_csv(s3, f"{name}/train/part-{number}.csv", f"{number},1\n")
    train = channel("train", f"s3://{BUCKET}/{name}/train/")
    train["DataSource"]["S3DataSource"]["S3DataDistributionType"] = distribution
    request = training_request(name, [train], image=MXNET)
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sh", "-c", script]
    request["ResourceConfig"]["InstanceCount"] = count
    return request


def _streams(logs, job: str) -> dict[str, list[str]]:
    """Each host's log lines, by host name (``<job>/algo-<i>-<epoch>``)."""
    group = "/aws/sagemaker/TrainingJobs"
    found = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
    lines = {}
    for stream in found:
        name = stream["logStreamName"]
        host = name.removeprefix(f"{job}/").rsplit("-", 1)[0]
        events = logs.get_log_events(logGroupName=group, logStreamName=name, startFromHead=True)["events"]
        lines[host] = [event["message"] for event in events]
    return lines


def _seen(lines: list[str]) -> tuple[dict, str, list[str]]:
    resource = json.loads(next(line for line in lines if line.startswith("{")))
    variables = next(line for line in lines if line.startswith("SM_HOSTS="))
    files = next(line for line in lines if line.startswith("files:")).split()[1:]
    return resource, variables, files


def test_each_host_gets_its_resourceconfig_variables_and_log_stream(sm, s3, logs):
    sm.create_training_job(**_shell_job("hosts", s3, REPORT, 2))
    job = finished_training(sm, "hosts")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = _streams(logs, "hosts")
    assert sorted(lines) == ["algo-1", "algo-2"]
    for host in ("algo-1", "algo-2"):
        resource, variables, _ = _seen(lines[host])
        assert resource == {
            "current_host": host,
            "current_instance_type": "ml.m5.large",
            "current_group_name": "homogeneousCluster",
            "hosts": ["algo-1", "algo-2"],
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": "ml.m5.large",
                    "hosts": ["algo-1", "algo-2"],
                }
            ],
            "network_interface_name": "lo",
        }
        assert variables == f'SM_HOSTS=["algo-1","algo-2"] SM_CURRENT_HOST={host}'


def test_sharded_by_s3_key_deals_the_objects_to_the_hosts(sm, s3, logs):
    sm.create_training_job(**_shell_job("shards", s3, REPORT, 2))
    assert finished_training(sm, "shards")["TrainingJobStatus"] == "Completed"
    lines = _streams(logs, "shards")
    assert _seen(lines["algo-1"])[2] == ["part-0.csv", "part-2.csv"]
    assert _seen(lines["algo-2"])[2] == ["part-1.csv"]


def test_fully_replicated_gives_every_host_every_object(sm, s3, logs):
    sm.create_training_job(**_shell_job("replicas", s3, REPORT, 2, distribution="FullyReplicated"))
    assert finished_training(sm, "replicas")["TrainingJobStatus"] == "Completed"
    lines = _streams(logs, "replicas")
    for host in ("algo-1", "algo-2"):
        assert _seen(lines[host])[2] == ["part-0.csv", "part-1.csv", "part-2.csv"]


def test_a_host_beyond_the_last_object_gets_no_data(sm, s3, logs):
    """AWS: "Don't choose more ML compute instances for training than available S3 objects. If you do, some nodes
    won't get any data" (S3DataSource.S3DataDistributionType)."""
    sm.create_training_job(**_shell_job("sparse", s3, REPORT, 3, objects=2))
    assert finished_training(sm, "sparse")["TrainingJobStatus"] == "Completed"
    lines = _streams(logs, "sparse")
    assert [_seen(lines[host])[2] for host in ("algo-1", "algo-2", "algo-3")] == [["part-0.csv"], ["part-1.csv"], []]


def test_billable_time_is_wall_clock_as_aws_reports_it(sm, s3):
    """DescribeTrainingJob.BillableTimeInSeconds: "the absolute wall-clock time. Multiply BillableTimeInSeconds by
    the number of instances (InstanceCount) ... to get the total compute time SageMaker bills you"."""
    sm.create_training_job(**_shell_job("billed", s3, "true", 2))
    job = finished_training(sm, "billed")
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"] >= 1
    assert job["ResourceConfig"]["InstanceCount"] == 2


def test_a_failing_host_fails_the_job_with_its_reason(sm, s3):
    script = 'if [ "$SM_CURRENT_HOST" = algo-2 ]; then echo "algo-2 gives up" >&2; exit 3; fi; sleep 60'
    sm.create_training_job(**_shell_job("one-fails", s3, script, 2))
    job = finished_training(sm, "one-fails")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ")
    assert "exited with code 3" in job["FailureReason"] and "algo-2 gives up" in job["FailureReason"]


def test_object2vec_refuses_more_than_one_instance(sm, s3):
    request = training_request("o2v-two", [channel("train", put_csv(s3, "o2v/train.csv", "1,2\n"))], image=OBJECT2VEC)
    request["ResourceConfig"]["InstanceCount"] = 2
    sm.create_training_job(**request)
    job = finished_training(sm, "o2v-two")
    assert job["FailureReason"] == (
        f"ClientError: Unable to initialize the algorithm. The algorithm in image '{OBJECT2VEC}' supports only "
        "single-machine training: InstanceCount must be 1, got 2 (caused by ValidationError)"
    )


def test_resourceconfig_defaults_to_one_host(tmp_path):
    layout = create_layout(tmp_path, {}, {})
    assert layout.hosts() == ["algo-1"] and layout.current_host() == "algo-1"


# --------------------------------------------------------------------------------------------- algorithms


@pytest.fixture(scope="module")
def ratings():
    return planted_ratings()


def _put_shards(s3, prefix: str, features, labels, shards: int) -> str:
    for number, rows in enumerate(np.array_split(np.arange(features.shape[0]), shards)):
        body = recordio(features[rows], labels[rows])
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-{number}.pbr", Body=body)
    return f"s3://{BUCKET}/{prefix}/"


def _algorithm_job(s3, name, image, ratings, count, hyperparameters, data_type=RECORDIO):
    train_x, train_y, test_x, test_y, *_ = ratings
    train = channel("train", _put_shards(s3, f"{name}/train", train_x, train_y, 2), RECORDIO)
    train["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    test = channel("test", _put_shards(s3, f"{name}/test", test_x, test_y, 1), RECORDIO)
    request = training_request(name, [train, test], image=image)
    request["HyperParameters"] = {key: str(value) for key, value in hyperparameters.items()}
    request["ResourceConfig"]["InstanceCount"] = count
    return request


def _metric(job: dict, name: str) -> float:
    return {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}[name]


def test_two_host_fm_is_as_good_as_one_host_and_serves(sm, s3, logs, runtime, ratings):
    hyperparameters = {"feature_dim": ratings[0].shape[1], "predictor_type": "regressor", **GOOD}
    for name, count in (("fm-one", 1), ("fm-two", 2)):
        sm.create_training_job(**_algorithm_job(s3, name, FM, ratings, count, hyperparameters))
    one, two = finished_training(sm, "fm-one", 300), finished_training(sm, "fm-two", 300)
    assert two["TrainingJobStatus"] == "Completed", two.get("FailureReason")
    streams = _streams(logs, "fm-two")
    assert sorted(streams) == ["algo-1", "algo-2"]
    for host, lines in streams.items():  # every host's metric lines name that host, as AWS's hosts' do
        hosts_named = {re.search(r"#\w+_metric: host=(\S+),", line)[1] for line in lines if "_metric: host=" in line}
        assert hosts_named == {host}
    assert abs(_metric(two, "test:rmse") - _metric(one, "test:rmse")) <= RMSE_TOLERANCE

    endpoint = deploy(sm, "fm-two", two["ModelArtifacts"]["S3ModelArtifacts"], image=FM)
    assert endpoint["EndpointStatus"] == "InService"
    rows = ratings[2][:5].toarray()
    body = json.dumps({"instances": [{"features": row.tolist()} for row in rows]})
    answer = runtime.invoke_endpoint(EndpointName="fm-two", Body=body, ContentType="application/json")
    scores = [p["score"] for p in json.load(io.BytesIO(answer["Body"].read()))["predictions"]]
    assert np.sqrt(np.mean((np.array(scores) - ratings[3][:5]) ** 2)) < 1.5


def test_two_host_knn_indexes_what_one_host_indexes(sm, s3, ratings):
    """With ``sample_size`` at least the data, each host keeps its whole shard and the gathered index holds every
    record, as one host's does: the test scores are equal."""
    train_x = ratings[0]
    hyperparameters = {
        "feature_dim": train_x.shape[1],
        "k": 5,
        "predictor_type": "regressor",
        "sample_size": train_x.shape[0],
    }
    for name, count in (("knn-one", 1), ("knn-two", 2)):
        sm.create_training_job(**_algorithm_job(s3, name, KNN, ratings, count, hyperparameters))
    one, two = finished_training(sm, "knn-one", 300), finished_training(sm, "knn-two", 300)
    assert two["TrainingJobStatus"] == "Completed", two.get("FailureReason")
    assert _metric(two, "test:mse") == pytest.approx(_metric(one, "test:mse"), rel=1e-6)


def test_an_fm_host_without_data_fails_the_job_with_its_reason(sm, s3, ratings):
    """One object for two hosts: ``algo-2`` gets none and fails as a one-host job without data does; ``algo-1``,
    waiting for it in the kvstore, is ended."""
    hyperparameters = {"feature_dim": ratings[0].shape[1], "predictor_type": "regressor", **GOOD}
    request = _algorithm_job(s3, "fm-starved", FM, ratings, 2, hyperparameters)
    train_x, train_y = ratings[0], ratings[1]
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = _put_shards(
        s3, "fm-starved/one", train_x, train_y, 1
    )
    sm.create_training_job(**request)
    job = finished_training(sm, "fm-starved", 300)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Channel 'train' has no data files"
