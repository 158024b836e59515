"""Training metrics in CloudWatch: ``TrainingJobAnalytics`` (what notebooks plot) reads one row per reported value.

The SDK asks GetMetricStatistics for 60-second averages over the job's time, so ``jobs/metrics.py`` stamps a
metric's values at least 60 s apart (never earlier than reported) and the job's TrainingEndTime covers the stamps.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pytest
from emulator_helpers import BUCKET, REGION, ROLE, channel, finished_training, training_request

import recordio_protobuf as records
from sagemaker_emulator.jobs.metrics import PERIOD_SECONDS, cloudwatch_series, horizon

FM_IMAGE = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/factorization-machines:1"


def test_values_closer_than_a_period_are_stamped_one_period_apart_and_never_earlier():
    series = [("loss", 1.0, 100.0), ("acc", 0.5, 100.2), ("loss", 0.5, 100.5), ("loss", 0.4, 300.0)]
    stamped = cloudwatch_series(series)
    assert [(s.name, s.stamp) for s in stamped] == [("loss", 100.0), ("acc", 100.2), ("loss", 160.0), ("loss", 300.0)]
    assert all(s.stamp >= s.reported for s in stamped)
    assert horizon(stamped) == 300.0 - PERIOD_SECONDS + 1
    assert horizon([]) is None


def _analytics(job_name: str, metric_names: list[str]):
    from sagemaker.core.analytics import TrainingJobAnalytics
    from sagemaker.core.helper.session_helper import Session

    return TrainingJobAnalytics(job_name, metric_names=metric_names, sagemaker_session=Session()).dataframe()


def test_a_factorization_machines_job_gives_one_row_per_epoch(sdk, s3, sm):
    rng = np.random.default_rng(0)
    features = (rng.random((200, 8)) < 0.3).astype(np.float32)
    buffer = io.BytesIO()
    records.write_records(buffer, features, features.sum(axis=1).astype(np.float32))
    s3.put_object(Bucket=BUCKET, Key="fm-metrics/train/part-0", Body=buffer.getvalue())
    request = training_request(
        "fm-metrics",
        [channel("train", f"s3://{BUCKET}/fm-metrics/train", "application/x-recordio-protobuf")],
        image=FM_IMAGE,
        HyperParameters={"feature_dim": "8", "num_factors": "2", "predictor_type": "regressor", "epochs": "4"},
    )
    sm.create_training_job(**request)
    job = finished_training(sm, "fm-metrics")
    assert job["TrainingJobStatus"] == "Completed"

    frame = _analytics("fm-metrics", ["train:progress"])
    assert frame.value.tolist() == [25.0, 50.0, 75.0, 100.0]
    assert frame.timestamp.tolist() == [0.0, 60.0, 120.0, 180.0]  # a fast local epoch gets a minute of its own
    trained = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert trained >= 2 * PERIOD_SECONDS and job["TrainingTimeInSeconds"] < PERIOD_SECONDS  # billing stays true


SCRIPT = """
    for epoch in range(1, 4):
        print(f"epoch={epoch} loss={1 / epoch:.4f}", flush=True)
"""


def test_a_script_jobs_metric_definitions_give_one_row_per_value(sdk, s3, sm, tmp_path):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, MetricDefinition, SourceCode
    from sagemaker.train import ModelTrainer

    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(textwrap.dedent(SCRIPT))
    trainer = ModelTrainer(
        training_image=f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38",
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        base_job_name="script-metrics",
        source_code=SourceCode(source_dir=str(source), entry_script="train.py"),
        compute=Compute(instance_type="ml.c5.xlarge", instance_count=1),
    ).with_metric_definitions([MetricDefinition(name="train:loss", regex=r"loss=([0-9.]+)")])
    trainer.train(wait=False)
    name = trainer._latest_training_job.training_job_name
    assert finished_training(sm, name)["TrainingJobStatus"] == "Completed"

    frame = _analytics(name, ["train:loss"])
    assert frame.value.tolist() == pytest.approx([1.0, 0.5, 0.3333])
    assert frame.metric_name.unique().tolist() == ["train:loss"]
