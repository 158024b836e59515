"""SDK v2 user code: ``SKLearn(entry_point=..., source_dir=...)``, script mode run by the image's training toolkit.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import io
import json
import os
import tarfile
from pathlib import Path

import boto3
import numpy as np
import sagemaker
from sagemaker.sklearn import SKLearn

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

rng = np.random.default_rng(0)
features = rng.normal(size=(200, 3))
labels = features @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in np.column_stack([labels, features]))
boto3.client("s3").put_object(Bucket=BUCKET, Key="sklearn/train/data.csv", Body=rows.encode())

estimator = SKLearn(
    entry_point="train.py",
    source_dir=str(Path(__file__).with_name("sklearn_source")),
    framework_version="1.2-1",
    py_version="py3",
    instance_type="ml.m5.large",
    instance_count=1,
    role=ROLE,
    hyperparameters={"alpha": 0.5},
    metric_definitions=[{"Name": "train:r2", "Regex": r"r2=([0-9.]+)"}],
    sagemaker_session=sagemaker.Session(default_bucket=BUCKET),
)
estimator.fit({"train": f"s3://{BUCKET}/sklearn/train"}, job_name="v2-sklearn")

job = estimator.latest_training_job.describe()
assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["train:r2"]
assert job["FinalMetricDataList"][0]["Value"] > 0.9, job["FinalMetricDataList"]
bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
archive = tarfile.open(fileobj=io.BytesIO(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))
assert sorted(archive.getnames()) == ["environment.json", "model.joblib"], archive.getnames()
seen = json.loads(archive.extractfile("environment.json").read())
assert seen["SM_CURRENT_HOST"] == "algo-1" and json.loads(seen["SM_HOSTS"]) == ["algo-1"], seen
assert seen["SM_HP_ALPHA"] == "0.5" and json.loads(seen["SM_USER_ARGS"]) == ["--alpha", "0.5"], seen
assert json.loads(seen["SM_CHANNELS"]) == ["train"], seen
assert seen["SM_MODULE_DIR"] == json.loads(job["HyperParameters"]["sagemaker_submit_directory"]), seen
assert int(seen["SM_NUM_CPUS"]) >= 1, seen
print("SDK v2 sklearn script: OK")
