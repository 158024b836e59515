"""A 2-instance ``ShardedByS3Key`` factorization-machines job through SDK v3, as Lab 1a's full-scale switch runs
it (issue 24's "done when"): ``ModelTrainer`` with ``Compute(instance_count=2)``, the train channel sharded over
two objects, the test channel replicated; the job completes on two hosts, each with its own log stream naming only
its share of the objects, and the model it wrote deploys through the core resources and answers.
"""

from __future__ import annotations

import io
import json

import numpy as np
from emulator_helpers import BUCKET, REGION, ROLE
from test_algorithm_factorization_machines import GOOD, planted_ratings
from test_multi_instance import _streams

from recordio_protobuf import write_records

FM = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/factorization-machines:1"
RECORDIO = "application/x-recordio-protobuf"
SHARDS = ("part-0.pbr", "part-1.pbr")


def _upload(s3, prefix: str, features, labels, parts: int) -> str:
    for number, rows in enumerate(np.array_split(np.arange(features.shape[0]), parts)):
        buffer = io.BytesIO()
        write_records(buffer, features[rows], labels[rows])
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-{number}.pbr", Body=buffer.getvalue())
    return f"s3://{BUCKET}/{prefix}/"


def _channel(name: str, uri: str, distribution: str):
    from sagemaker.core.shapes import Channel, DataSource, S3DataSource

    source = S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type=distribution)
    return Channel(
        channel_name=name, content_type=RECORDIO, input_mode="File", data_source=DataSource(s3_data_source=source)
    )


def test_two_instance_sharded_fm_job_through_model_trainer_completes_and_serves(sdk, s3, logs):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model, TrainingJob
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, OutputDataConfig, StoppingCondition

    train_x, train_y, test_x, test_y, *_ = planted_ratings()
    channels = [
        _channel("train", _upload(s3, "multi/train", train_x, train_y, len(SHARDS)), "ShardedByS3Key"),
        _channel("test", _upload(s3, "multi/test", test_x, test_y, 1), "FullyReplicated"),
    ]
    trainer = ModelTrainer(
        training_image=FM,
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        base_job_name="sdk-fm-two",
        hyperparameters={"feature_dim": train_x.shape[1], "predictor_type": "regressor", **GOOD},
        compute=Compute(instance_type="ml.m5.large", instance_count=2),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/multi/output"),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
    )
    trainer.train(input_data_config=channels, wait=True, logs=False)
    job = TrainingJob.get(trainer._latest_training_job.training_job_name)
    assert job.training_job_status == "Completed", job.failure_reason
    assert job.resource_config.instance_count == 2

    lines = _streams(logs, job.training_job_name)
    assert sorted(lines) == ["algo-1", "algo-2"]
    for host, shard in zip(("algo-1", "algo-2"), SHARDS, strict=True):
        read = [line for line in lines[host] if "channel 'train'" in line]
        assert len(read) == 1 and read[0].endswith(f"from 1 file ({shard})"), read

    model = Model.create(
        model_name="sdk-fm-two",
        primary_container=ContainerDefinition(image=FM, model_data_url=job.model_artifacts.s3_model_artifacts),
        execution_role_arn=ROLE,
    )
    config = EndpointConfig.create(
        endpoint_config_name="sdk-fm-two",
        production_variants=[
            ProductionVariant(
                variant_name="AllTraffic",
                model_name="sdk-fm-two",
                initial_instance_count=1,
                instance_type="ml.m5.large",
            )
        ],
    )
    endpoint = Endpoint.create(endpoint_name="sdk-fm-two", endpoint_config_name="sdk-fm-two")
    endpoint.wait_for_status(target_status="InService", poll=1)
    rows = test_x[:5].toarray()
    request = json.dumps({"instances": [{"features": row.tolist()} for row in rows]})
    answer = endpoint.invoke(body=request, content_type="application/json", accept="application/json")
    body = answer.body.read() if hasattr(answer.body, "read") else answer.body
    scores = np.array([prediction["score"] for prediction in json.loads(body)["predictions"]])
    assert scores.shape == (5,) and np.sqrt(np.mean((scores - test_y[:5]) ** 2)) < 1.5
    endpoint.delete()
    endpoint.wait_for_delete(poll=1)
    config.delete()
    model.delete()
