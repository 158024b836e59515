"""common.jobs: a training job followed with one progress bar, its log one call away."""

from __future__ import annotations

import pytest

from common import jobs

BUCKET = "cleanup-tests"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/mean-regressor:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _train(sm, s3, name: str, body: bytes, **hyperparameters) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{name}/train/a.csv", Body=body)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={key: str(value) for key, value in hyperparameters.items()},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{name}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def test_follow_shows_a_bar_and_one_closing_line(aws, capsys):
    sm, s3 = aws
    _train(sm, s3, "lab-follow-1", b"1\n2\n3\n", verbose="true")
    job = jobs.follow("lab-follow-1", poll_seconds=0.2)
    assert job["TrainingJobStatus"] == "Completed"
    shown = capsys.readouterr().out
    assert "lab-follow-1" in shown and "Read 3 training rows" not in shown  # the log stays in CloudWatch
    closing = shown.rstrip().splitlines()[-1]
    assert closing.startswith("Completed: ") and "jobs.print_log('lab-follow-1')" in closing
    jobs.print_log("lab-follow-1")
    assert "Read 3 training rows from 1 file(s)." in capsys.readouterr().out


def test_a_failed_job_shows_its_reason_and_last_log_lines(aws, capsys):
    sm, s3 = aws
    _train(sm, s3, "lab-follow-2", b"not,a,number\n")
    assert jobs.follow("lab-follow-2", poll_seconds=0.2)["TrainingJobStatus"] == "Failed"
    shown = capsys.readouterr().out
    assert "FailureReason: ClientError: Unable to read the 'train' channel's file a.csv as CSV numbers" in shown
    assert "Last log lines:" in shown


def test_follow_tuning_shows_one_bar_of_the_trials_and_one_closing_line(aws, capsys):
    sm, s3 = aws
    s3.put_object(Bucket=BUCKET, Key="lab-tune/train/a.csv", Body=b"1,0\n3,0\n")
    s3.put_object(Bucket=BUCKET, Key="lab-tune/test/a.csv", Body=b"4,0\n")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="lab-tune-1",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "test:mse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "scale", "MinValue": "1", "MaxValue": "3"}]},
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [
                {
                    "ChannelName": name,
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/lab-tune/{name}/"}
                    },
                }
                for name in ("train", "test")
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/lab-tune/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    )
    job = jobs.follow_tuning("lab-tune-1", poll_seconds=0.2)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    shown = capsys.readouterr().out
    assert "lab-tune-1" in shown and "2/2 jobs" in shown and "best test:mse" in shown
    assert shown.rstrip().splitlines()[-1].startswith("Completed: training jobs {'Completed': 2")


def test_latest_job_name_is_the_newest_of_the_prefix(aws):
    sm, s3 = aws
    for name in ("lab-latest-a", "lab-latest-b", "lab-latestother"):
        _train(sm, s3, name, b"1\n")
    assert jobs.latest_job_name("lab-latest-") == "lab-latest-b"
    with pytest.raises(LookupError, match="No training job is named lab-none-..."):
        jobs.latest_job_name("lab-none")


@pytest.mark.parametrize(
    "line, progress, metric",
    [
        ("#progress_metric: host=algo-1, completed 30.0 % of epochs", 30.0, None),
        ("#quality_metric: host=algo-1, epoch=2, train rmse <loss>=0.9512", None, "epoch 2: train rmse=0.9512"),
        ("epoch=4 train_rmse=0.9512 validation_rmse=0.9307", None, "epoch 4: train_rmse=0.9512 validation_rmse=0.9307"),
        ("#quality_metric: host=algo-1, epoch=2, batch=0 train rmse <loss>=0.97", None, None),
        ("Saved the model", None, None),
    ],
)
def test_progress_and_metric_lines_are_read_from_the_algorithms_log(line, progress, metric):
    match = jobs.PROGRESS.search(line)
    assert (float(match.group(1)) if match else None) == progress
    assert jobs._latest_metric([line]) == metric
