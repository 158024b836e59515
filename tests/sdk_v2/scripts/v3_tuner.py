"""SDK v3 user code, run with the workshop's environment (not the SDK v2 one): a tuning job for attach.py.

The shape of AWS's v3 tuning example: ``HyperparameterTuner`` over a ``ModelTrainer`` with ``SourceCode`` on a
framework image, ``early_stopping_type="Auto"``. Exits non-zero on the first difference.
"""

import os
from pathlib import Path

import boto3
import numpy as np
from sagemaker.core import image_uris
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.parameter import ContinuousParameter
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode
from sagemaker.train import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

ROLE, BUCKET, REGION = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"], os.environ["AWS_DEFAULT_REGION"]

rng = np.random.default_rng(1)
features = rng.normal(size=(200, 3))
labels = features @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in np.column_stack([labels, features]))
boto3.client("s3").put_object(Bucket=BUCKET, Key="v3-tuning/train/data.csv", Body=rows.encode())

trainer = ModelTrainer(
    training_image=image_uris.retrieve("sklearn", REGION, version="1.2-1", image_scope="training"),
    role=ROLE,
    sagemaker_session=Session(default_bucket=BUCKET),
    base_job_name="v3-sklearn",
    source_code=SourceCode(source_dir=str(Path(__file__).with_name("sklearn_source")), entry_script="train.py"),
    compute=Compute(instance_type="ml.m5.large", instance_count=1),
    output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/v3-tuning/output"),
)
tuner = HyperparameterTuner(
    model_trainer=trainer,
    objective_metric_name="train:r2",
    metric_definitions=[{"Name": "train:r2", "Regex": r"r2=([0-9.]+)"}],
    objective_type="Maximize",
    hyperparameter_ranges={"alpha": ContinuousParameter(0.01, 100, scaling_type="Logarithmic")},
    strategy="Random",
    max_jobs=2,
    max_parallel_jobs=2,
    early_stopping_type="Auto",
    random_seed=7,  # not 0: SDK v3 sends the seed only when it is truthy
)
tuner.tune(
    inputs=[InputData(channel_name="train", data_source=f"s3://{BUCKET}/v3-tuning/train", content_type="text/csv")],
    job_name="v3-tuning",
    wait=True,
)
job = tuner.describe()
assert job.hyper_parameter_tuning_job_status == "Completed", job.failure_reason
assert job.objective_status_counters.succeeded == 2, job.objective_status_counters
print("SDK v3 tuner: OK")
