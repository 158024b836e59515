"""SDK v2 user code: ``HyperparameterTuner.attach`` to the tuning job v3_tuner.py made, as after a kernel restart.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py after v3_tuner.py; exits non-zero on the first
difference.
"""

import os

import sagemaker
from sagemaker.tuner import HyperparameterTuner

session = sagemaker.Session(default_bucket=os.environ["TEST_BUCKET"])
tuner = HyperparameterTuner.attach("v3-tuning", sagemaker_session=session)
assert tuner.objective_metric_name == "train:r2" and tuner.objective_type == "Maximize", tuner.objective_metric_name
assert tuner.early_stopping_type == "Auto", tuner.early_stopping_type
ranges = tuner.hyperparameter_ranges()
assert [r["Name"] for r in ranges["ContinuousParameterRanges"]] == ["alpha"], ranges
assert "_tuning_objective_metric" not in tuner.estimator.hyperparameters(), tuner.estimator.hyperparameters()
assert tuner.estimator.image_uri.endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3"), tuner.estimator.image_uri
frame = tuner.analytics().dataframe()
assert len(frame) == 2, frame
# The best job has the highest objective (a trial stopped before its first metric has none, NaN, and max skips it).
# Compared by value, not by name: two small alphas can print the same r2 to six places, and either may be named.
objectives = frame.set_index("TrainingJobName")["FinalObjectiveValue"]
assert objectives[tuner.best_training_job()] == objectives.max(), (tuner.best_training_job(), objectives)
print("SDK v2 attach: OK")
