"""Every operation the emulator answers, called in the states a client sees, answers in botocore's output shape."""

from __future__ import annotations

import json

import botocore.session
import pytest
from emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    channel,
    deploy,
    finished_training,
    model_artifact,
    put_csv,
    training_request,
    wait_for,
)
from response_shapes import response_faults
from test_tuning_jobs import tuning_request

from sagemaker_emulator.operations import operations

MODEL = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture
def checked(sm):
    """``sm``, recording every successful answer's faults against its output shape by operation."""
    faults: dict[str, list[str]] = {}

    def check(http_response, model, **_):
        if http_response.status_code == 200:
            body = json.loads(http_response.content or b"{}")
            faults.setdefault(model.name, []).extend(response_faults(model.output_shape, body))

    sm.meta.events.register("after-call.sagemaker", check)
    return sm, faults


def _train(sm, name: str, data: dict, **hyperparameters) -> None:
    sm.create_training_job(**training_request(name, [channel("train", data["train"])], HyperParameters=hyperparameters))


def _tune(sm, data: dict) -> None:
    channels = [channel("train", data["train"]), channel("test", data["train"])]
    sm.create_hyper_parameter_tuning_job(
        **tuning_request("shape-tuning", channels, TrainingJobEarlyStoppingType="Auto")
    )
    sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="shape-tuning")
    done = wait_for(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="shape-tuning"),
        lambda job: job["HyperParameterTuningJobStatus"] == "Completed",
    )
    assert "BestTrainingJob" in done
    definition = done["TrainingJobDefinition"]  # what SDK v2's HyperparameterTuner.attach reads
    assert definition["StaticHyperParameters"]["_tuning_objective_metric"] == "test:mse"
    assert definition["AlgorithmSpecification"]["MetricDefinitions"]
    assert len(done["HyperParameterTuningJobConfig"]["ParameterRanges"]) == 3
    sm.create_hyper_parameter_tuning_job(**tuning_request("shape-tuning-stop", channels))
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="shape-tuning-stop")
    sm.list_hyper_parameter_tuning_jobs()
    sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="shape-tuning")


def _everything_once(sm, s3) -> None:
    data = {"train": put_csv(s3, "shapes/train.csv", "1,0.5\n3,0.5\n")}
    _train(sm, "shape-ok", data)
    sm.describe_training_job(TrainingJobName="shape-ok")
    finished_training(sm, "shape-ok")
    _train(sm, "shape-failed", data, scale="-1")
    finished_training(sm, "shape-failed")
    _train(sm, "shape-stopped", data, sleep_seconds="60")
    sm.stop_training_job(TrainingJobName="shape-stopped")
    sm.describe_training_job(TrainingJobName="shape-stopped")
    finished_training(sm, "shape-stopped")
    sm.list_training_jobs()
    _tune(sm, data)
    artifact = model_artifact(s3, "shapes/model.tar.gz")
    deploy(sm, "shape-endpoint", artifact)
    sm.describe_model(ModelName="shape-endpoint")
    sm.describe_endpoint_config(EndpointConfigName="shape-endpoint")
    sm.describe_endpoint(EndpointName="shape-endpoint")
    sm.list_models()
    sm.list_endpoint_configs()
    sm.list_endpoints()
    sm.list_monitoring_schedules(EndpointName="shape-endpoint")
    sm.list_inference_components(EndpointNameEquals="shape-endpoint")
    sm.update_endpoint_weights_and_capacities(
        EndpointName="shape-endpoint",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 2.0}],
    )
    wait_for(lambda: sm.describe_endpoint(EndpointName="shape-endpoint"), lambda e: e["EndpointStatus"] == "InService")
    sm.update_endpoint(EndpointName="shape-endpoint", EndpointConfigName="shape-endpoint")
    wait_for(lambda: sm.describe_endpoint(EndpointName="shape-endpoint"), lambda e: e["EndpointStatus"] == "InService")
    arn = sm.describe_model(ModelName="shape-endpoint")["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    sm.list_tags(ResourceArn=arn)
    sm.delete_tags(ResourceArn=arn, TagKeys=["k"])
    sm.create_transform_job(
        TransformJobName="shape-transform",
        ModelName="shape-endpoint",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data["train"]}},
            "ContentType": "text/csv",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/shapes/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sm.describe_transform_job(TransformJobName="shape-transform")
    wait_for(
        lambda: sm.describe_transform_job(TransformJobName="shape-transform"),
        lambda job: job["TransformJobStatus"] == "Completed",
    )
    sm.create_transform_job(
        TransformJobName="shape-transform-stopped",
        ModelName="shape-endpoint",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data["train"]}}},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/shapes/out2"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sm.stop_transform_job(TransformJobName="shape-transform-stopped")
    sm.list_transform_jobs()
    sm.delete_endpoint(EndpointName="shape-endpoint")
    sm.delete_endpoint_config(EndpointConfigName="shape-endpoint")
    sm.delete_model(ModelName="shape-endpoint")
    sm.create_model(ModelName="shape-containers", Containers=[{"Image": IMAGE}], ExecutionRoleArn=ROLE)
    sm.describe_model(ModelName="shape-containers")


def test_every_operation_answers_in_its_output_shape(checked, s3):
    sm, faults = checked
    _everything_once(sm, s3)
    assert sorted(set(operations()) - set(faults)) == [], "operations this test does not call"
    assert {name: found for name, found in faults.items() if found} == {}


def test_the_checker_finds_what_a_client_would_trip_on():
    shape = MODEL.operation_model("DescribeTrainingJob").output_shape
    faults = response_faults(shape, {"TrainingJobName": "x", "TrainingJobStatus": "Done", "Extra": 1})
    assert "ModelArtifacts: required member missing" in faults
    assert "TrainingJobStatus: 'Done' is not one of " + str(shape.members["TrainingJobStatus"].enum) in faults
    assert "Extra: not a member of DescribeTrainingJobResponse" in faults
    assert response_faults(shape.members["CreationTime"], "2024-01-01") == [
        "response: expected timestamp, got str '2024-01-01'"
    ]
