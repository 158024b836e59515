"""SDK v2 user code: the first-party ``KNN`` class with a dense ``record_set()``, fit, deploy, predict, delete.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import os

import numpy as np
import sagemaker
from sagemaker import KNN

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

session = sagemaker.Session(default_bucket=BUCKET)
rng = np.random.default_rng(0)
centres = np.array([[0, 0, 0], [10, 10, 10]], np.float32)
labels = rng.integers(0, 2, 400).astype(np.float32)
points = (centres[labels.astype(int)] + rng.normal(0, 1, (400, 3))).astype(np.float32)
knn = KNN(
    role=ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    k=5,
    sample_size=400,
    predictor_type="classifier",
    sagemaker_session=session,
)
knn.fit(knn.record_set(points, labels), job_name="v2-knn", wait=False)
session.logs_for_job("v2-knn", wait=True, poll=1)
predictor = knn.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="v2-knn", wait=False)
session.wait_for_endpoint("v2-knn", poll=1)
answer = predictor.predict(centres)
predicted = [record.label["predicted_label"].float32_tensor.values[0] for record in answer]
assert predicted == [0.0, 1.0], predicted
predictor.delete_endpoint()
print("SDK v2 knn: OK")
