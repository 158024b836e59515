"""SageMaker Python SDK v3 against the emulator, end to end, through nothing but the environment.

ModelTrainer's wait polls every 5 s, so these tests take a few seconds each; they are kept few. The ``sdk``
fixture (the environment a local-mode notebook gets) is in ``conftest.py``.
"""

from __future__ import annotations

import json
import logging

import boto3
from emulator_helpers import BUCKET, IMAGE, ROLE, model_artifact, put_csv

RECORDIO = "application/x-recordio-protobuf"


def test_model_trainer_streams_the_algorithm_log_and_returns(sdk, s3, caplog):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition

    put_csv(s3, "sdk/train/a.csv", "1,0\n3,0\n")
    trainer = ModelTrainer(
        training_image=IMAGE,
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        base_job_name="sdk-mean",
        hyperparameters={"statistic": "mean", "scale": 2},
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/sdk/output"),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
    )
    with caplog.at_level(logging.INFO, logger="sagemaker.core.resources"):
        trainer.train(
            input_data_config=[
                InputData(channel_name="train", data_source=f"s3://{BUCKET}/sdk/train/", content_type="text/csv")
            ],
            wait=True,
            logs=True,
        )
    job = trainer._latest_training_job
    assert job.training_job_status == "Completed"
    assert job.model_artifacts.s3_model_artifacts.endswith(f"/sdk/output/{job.training_job_name}/output/model.tar.gz")
    assert any("Saved the model: mean x 2.0 = 4.0" in record.getMessage() for record in caplog.records)


def test_core_resources_create_invoke_delete(sdk, s3):
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

    model_data = model_artifact(s3, "sdk/model.tar.gz", value=0.25)
    model = Model.create(
        model_name="sdk-ep",
        primary_container=ContainerDefinition(image=IMAGE, model_data_url=model_data),
        execution_role_arn=ROLE,
    )
    config = EndpointConfig.create(
        endpoint_config_name="sdk-ep",
        production_variants=[
            ProductionVariant(
                variant_name="AllTraffic", model_name="sdk-ep", initial_instance_count=1, instance_type="ml.m5.large"
            )
        ],
    )
    endpoint = Endpoint.create(endpoint_name="sdk-ep", endpoint_config_name="sdk-ep")
    endpoint.wait_for_status(target_status="InService", poll=1)
    answer = endpoint.invoke(body=b"1,2\n", content_type="text/csv", accept="application/json")
    body = answer.body.read() if hasattr(answer.body, "read") else answer.body
    assert (answer.content_type, json.loads(body)) == ("application/json", {"predictions": [{"score": 0.25}]})
    endpoint.delete()
    endpoint.wait_for_delete(poll=1)
    config.delete()
    model.delete()
    assert boto3.client("sagemaker").list_models()["Models"] == []


def test_core_transform_job(sdk, s3):
    from sagemaker.core.resources import Model, TransformJob
    from sagemaker.core.shapes import (
        ContainerDefinition,
        TransformDataSource,
        TransformInput,
        TransformOutput,
        TransformResources,
        TransformS3DataSource,
    )

    Model.create(
        model_name="sdk-batch",
        primary_container=ContainerDefinition(image=IMAGE, model_data_url=model_artifact(s3, "sdk/m.tar.gz", 3.0)),
        execution_role_arn=ROLE,
    )
    put_csv(s3, "sdk/batch/in.csv", "1\n2\n")
    job = TransformJob.create(
        transform_job_name="sdk-batch",
        model_name="sdk-batch",
        transform_input=TransformInput(
            data_source=TransformDataSource(
                s3_data_source=TransformS3DataSource(s3_data_type="S3Prefix", s3_uri=f"s3://{BUCKET}/sdk/batch/")
            ),
            content_type="text/csv",
            split_type="Line",
        ),
        transform_output=TransformOutput(
            s3_output_path=f"s3://{BUCKET}/sdk/batch-out", accept="text/csv", assemble_with="Line"
        ),
        transform_resources=TransformResources(instance_type="ml.m5.large", instance_count=1),
    )
    job.wait(poll=1)
    assert job.transform_job_status == "Completed"
    assert s3.get_object(Bucket=BUCKET, Key="sdk/batch-out/in.csv.out")["Body"].read() == b"3.0\n3.0\n"


def test_hyperparameter_tuner_tunes_factorization_machines(sdk, s3):
    """SDK v3's tuner, as Lab 1 uses it: FM regressor, test:rmse minimised over factors, learning rates, decays."""
    import io

    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train.tuner import HyperparameterTuner
    from test_algorithm_factorization_machines import planted_ratings

    from recordio_protobuf import write_records

    train_x, train_y, test_x, test_y, *_ = planted_ratings()
    for name, features, labels in (("train", train_x, train_y), ("test", test_x, test_y)):
        buffer = io.BytesIO()
        write_records(buffer, features, labels)
        s3.put_object(Bucket=BUCKET, Key=f"fm/{name}/part-0.pbr", Body=buffer.getvalue())
    trainer = ModelTrainer(
        training_image="382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1",
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        hyperparameters={
            "feature_dim": train_x.shape[1],
            "predictor_type": "regressor",
            "epochs": 10,
            "mini_batch_size": 200,
        },
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/fm/output"),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
    )
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name="test:rmse",
        objective_type="Minimize",
        hyperparameter_ranges={
            "num_factors": IntegerParameter(2, 16),
            "factors_lr": ContinuousParameter(0.001, 0.1, scaling_type="Logarithmic"),
            "linear_lr": ContinuousParameter(0.001, 0.1, scaling_type="Logarithmic"),
            "factors_wd": ContinuousParameter(1e-6, 1e-2, scaling_type="Logarithmic"),
            "linear_wd": ContinuousParameter(1e-6, 1e-2, scaling_type="Logarithmic"),
        },
        strategy="Bayesian",
        max_jobs=4,
        max_parallel_jobs=2,
        random_seed=1,
    )
    tuner.tune(
        inputs=[
            InputData(channel_name=name, data_source=f"s3://{BUCKET}/fm/{name}/", content_type=RECORDIO)
            for name in ("train", "test")
        ],
        job_name="fm-tuning",
        wait=True,
    )
    job = tuner.describe()
    assert job.hyper_parameter_tuning_job_status == "Completed"
    assert job.objective_status_counters.succeeded == 4
    trials = tuner.analytics().dataframe()
    assert len(trials) == 4 and set(trials["TrainingJobStatus"]) == {"Completed"}
    assert tuner.best_training_job() == trials.sort_values("FinalObjectiveValue")["TrainingJobName"].iloc[0]
    assert (
        job.best_training_job.final_hyper_parameter_tuning_job_objective_metric.value
        == trials["FinalObjectiveValue"].min()
    )
