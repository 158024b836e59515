"""SDK v2 user code, run in the SDK v2 virtualenv against the emulator (tests/sdk_v2/test_sdk_v2.py starts it).

The first-party ``FactorizationMachines`` class with ``record_set()`` (dense RecordIO-protobuf, as the SDK writes
a numpy array), ``fit(wait=False)`` then polling and ``logs()``, ``Estimator.attach``, ``model_data``, ``deploy``
and ``predict`` through the SDK's protobuf serializer, ``transformer``, and deleting the endpoint (which lists its
monitoring schedules first). Exits non-zero, with the assertion, on the first difference.
"""

import os
import time

import numpy as np
import sagemaker
from botocore.exceptions import ClientError
from sagemaker import FactorizationMachines
from sagemaker.estimator import Estimator

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]


def planted(users=40, items=50, rows=2000, seed=0):
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, users, rows), rng.integers(0, items, rows)
    bias_u, bias_i = rng.normal(0, 0.5, users), rng.normal(0, 0.5, items)
    features = np.zeros((rows, users + items), np.float32)
    features[np.arange(rows), user] = 1
    features[np.arange(rows), users + item] = 1
    return features, (3 + bias_u[user] + bias_i[item]).astype(np.float32)


session = sagemaker.Session(default_bucket=BUCKET)
features, labels = planted()
fm = FactorizationMachines(
    role=ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    num_factors=4,
    predictor_type="regressor",
    epochs=30,
    mini_batch_size=200,
    sagemaker_session=session,
)
train = fm.record_set(features[:1600], labels[:1600], channel="train")
test = fm.record_set(features[1600:], labels[1600:], channel="test")
fm.fit([train, test], wait=False, job_name="v2-fm")
assert fm.model_data == f"s3://{BUCKET}/v2-fm/output/model.tar.gz", fm.model_data
while session.describe_training_job("v2-fm")["TrainingJobStatus"] == "InProgress":
    time.sleep(1)
fm.logs()
described = session.describe_training_job("v2-fm")
assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
assert metrics["test:rmse"] < np.sqrt(np.mean(labels**2)), metrics  # better than predicting zero

attached = Estimator.attach("v2-fm", sagemaker_session=session)
assert attached.model_data == described["ModelArtifacts"]["S3ModelArtifacts"]
predictor = fm.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="v2-fm", wait=False)
session.wait_for_endpoint("v2-fm", poll=1)
answer = predictor.predict(features[1600:1610])
scores = [record.label["score"].float32_tensor.values[0] for record in answer]
assert len(scores) == 10 and all(0 < s < 6 for s in scores), scores

transformer = attached.transformer(instance_count=1, instance_type="ml.m5.large", output_path=f"s3://{BUCKET}/v2-out")
transformer.transform(
    test.s3_data,
    data_type="ManifestFile",
    content_type="application/x-recordio-protobuf",
    split_type="RecordIO",
    job_name="v2-fm-transform",
    wait=False,
)
session.wait_for_transform_job("v2-fm-transform", poll=1)
assert session.describe_transform_job("v2-fm-transform")["TransformJobStatus"] == "Completed"
predictor.delete_endpoint()
try:  # the endpoint is being deleted or already gone
    assert session.sagemaker_client.describe_endpoint(EndpointName="v2-fm")["EndpointStatus"] == "Deleting"
except ClientError as error:
    assert "Could not find endpoint" in str(error), error
print("SDK v2 factorization-machines: OK")
