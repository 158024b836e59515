"""SDK v2 user code: ``HyperparameterTuner`` over the first-party ``FactorizationMachines`` with ``record_set()``.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import os

import numpy as np
import sagemaker
from sagemaker import FactorizationMachines
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

session = sagemaker.Session(default_bucket=BUCKET)
rng = np.random.default_rng(0)
user, item = rng.integers(0, 30, 1500), rng.integers(0, 40, 1500)
features = np.zeros((1500, 70), np.float32)
features[np.arange(1500), user] = 1
features[np.arange(1500), 30 + item] = 1
labels = (3 + rng.normal(0, 0.5, 30)[user] + rng.normal(0, 0.5, 40)[item]).astype(np.float32)
fm = FactorizationMachines(
    role=ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    num_factors=4,
    predictor_type="regressor",
    epochs=5,
    mini_batch_size=200,
    sagemaker_session=session,
)
tuner = HyperparameterTuner(
    fm,
    objective_metric_name="test:rmse",
    objective_type="Minimize",
    hyperparameter_ranges={
        "num_factors": IntegerParameter(2, 8),
        "factors_lr": ContinuousParameter(0.001, 0.1, scaling_type="Logarithmic"),
    },
    max_jobs=3,
    max_parallel_jobs=2,
)
train = fm.record_set(features[:1200], labels[:1200], channel="train")
test = fm.record_set(features[1200:], labels[1200:], channel="test")
tuner.fit([train, test], job_name="v2-tuning", include_cls_metadata=False)
tuner.wait()
assert tuner.describe()["HyperParameterTuningJobStatus"] == "Completed"
frame = tuner.analytics().dataframe()
assert len(frame) == 3, frame
assert tuner.best_training_job() == frame.sort_values("FinalObjectiveValue")["TrainingJobName"].iloc[0]
print("SDK v2 tuner: OK")
