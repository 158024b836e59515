"""SDK v2 user code: the per-epoch series of a first-party ``FactorizationMachines`` job, as notebooks plot it with
``TrainingJobAnalytics(job, metric_names=[...]).dataframe()`` (GetMetricStatistics, 60-second periods).

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import os

import numpy as np
import sagemaker
from sagemaker import FactorizationMachines
from sagemaker.analytics import TrainingJobAnalytics

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

session = sagemaker.Session(default_bucket=BUCKET)
rng = np.random.default_rng(0)
features = (rng.random((300, 10)) < 0.3).astype(np.float32)
fm = FactorizationMachines(
    role=ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    num_factors=2,
    predictor_type="regressor",
    epochs=5,
    sagemaker_session=session,
)
fm.fit(fm.record_set(features, features.sum(axis=1)), job_name="v2-fm-analytics", logs="None")
frame = TrainingJobAnalytics("v2-fm-analytics", metric_names=["train:progress"], sagemaker_session=session).dataframe()
assert frame.value.tolist() == [20.0, 40.0, 60.0, 80.0, 100.0], frame
assert frame.metric_name.unique().tolist() == ["train:progress"], frame
everything = TrainingJobAnalytics("v2-fm-analytics", sagemaker_session=session).dataframe()  # every definition
assert set(everything.metric_name) == {"train:progress", "train:throughput"}, everything
print("SDK v2 training analytics: OK")
