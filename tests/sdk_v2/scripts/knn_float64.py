"""SDK v2 user code as AWS's k-NN covtype example writes it: float64 arrays (numpy's and pandas' default) through
``write_numpy_to_dense_tensor`` (which keeps float64 as Float64Tensor), uploaded with boto3, trained with a generic
``Estimator`` on the ``knn`` image; then the job's metric series through ``TrainingJobAnalytics``.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import io
import os

import boto3
import numpy as np
import sagemaker
from sagemaker import image_uris
from sagemaker.amazon.common import write_numpy_to_dense_tensor
from sagemaker.analytics import TrainingJobAnalytics
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

session = sagemaker.Session(default_bucket=BUCKET)
rng = np.random.default_rng(0)
centres = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])
labels = rng.integers(0, 2, 400).astype(float)
points = centres[labels.astype(int)] + rng.normal(0, 1, (400, 3))
assert points.dtype == labels.dtype == np.float64
for channel, rows in (("train", slice(0, 300)), ("test", slice(300, 400))):
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, points[rows], labels[rows])
    buffer.seek(0)
    boto3.resource("s3").Bucket(BUCKET).Object(f"knn-float64/{channel}/data").upload_fileobj(buffer)

knn = Estimator(
    image_uris.retrieve("knn", session.boto_region_name),
    ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    output_path=f"s3://{BUCKET}/knn-float64/output",
    sagemaker_session=session,
)
knn.set_hyperparameters(feature_dim=3, k=5, sample_size=300, predictor_type="classifier")
channels = {
    channel: TrainingInput(f"s3://{BUCKET}/knn-float64/{channel}", content_type="application/x-recordio-protobuf")
    for channel in ("train", "test")
}
knn.fit(channels, job_name="v2-knn-float64", logs="None")
job = session.describe_training_job("v2-knn-float64")
assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
final = {metric["MetricName"]: metric["Value"] for metric in job["FinalMetricDataList"]}
assert final["test:accuracy"] > 0.95, final
frame = TrainingJobAnalytics("v2-knn-float64", metric_names=["test:accuracy"], sagemaker_session=session).dataframe()
assert frame.value.tolist() == [final["test:accuracy"]], frame
print("SDK v2 knn float64: OK")
