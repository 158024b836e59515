"""Hyperparameter tuning jobs through boto3: strategies, limits, objective, counters, stopping, refusals.

The training jobs run the mean-regressor test algorithm, whose ``test:mse`` is smallest at ``scale`` = 2 on the
data below (train labels 1 and 3, mean 2, test labels 4): a tuner that works finds scales near 2.
"""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, BUCKET, IMAGE, REGION, ROLE, channel, error_of, put_csv, wait_for

from sagemaker_emulator.jobs.tuning import InOrderFeed, MedianStopping
from sagemaker_emulator.jobs.tuning_search import RandomSearch, parse_ranges

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job"


@pytest.fixture
def data(s3):
    return [
        channel("train", put_csv(s3, "tune/train.csv", "1,0\n3,0\n")),
        channel("test", put_csv(s3, "tune/test.csv", "4,0\n")),
    ]


def tuning_request(name: str, channels: list[dict], strategy: str = "Random", **config) -> dict:
    ranges = config.pop(
        "ParameterRanges", {"ContinuousParameterRanges": [{"Name": "scale", "MinValue": "0.5", "MaxValue": "4"}]}
    )
    static = config.pop("StaticHyperParameters", {})
    request = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "test:mse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": ranges,
            **config,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": static,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/tune/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
    return request


def finished_tuning(sm, name: str, timeout: float = 120) -> dict:
    return wait_for(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        lambda job: job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"),
        timeout,
        interval=0.2,
    )


def _trials(sm, name: str, **options) -> list[dict]:
    return sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, **options)[
        "TrainingJobSummaries"
    ]


def test_random_search_runs_its_budget_and_names_the_best(sm, data):
    request = tuning_request("tune-random", data, RandomSeed=7)
    request["Tags"] = [{"Key": "team", "Value": "recsys"}]
    answer = sm.create_hyper_parameter_tuning_job(**request)
    assert answer["HyperParameterTuningJobArn"] == f"{ARN}/tune-random"
    job = finished_tuning(sm, "tune-random")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"] == {
        "Completed": 4,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    trials = _trials(sm, "tune-random", SortBy="FinalObjectiveMetricValue", MaxResults=100)
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert values == sorted(values)
    assert job["BestTrainingJob"]["TrainingJobName"] == trials[0]["TrainingJobName"]
    assert all(0.5 <= float(t["TunedHyperParameters"]["scale"]) <= 4 for t in trials)
    child = sm.describe_training_job(TrainingJobName=trials[0]["TrainingJobName"])
    assert re.fullmatch(r"tune-random-00[1-4]-[0-9a-f]{8}", child["TrainingJobName"])
    assert child["TuningJobArn"] == f"{ARN}/tune-random"
    assert child["HyperParameters"]["_tuning_objective_metric"] == "test:mse"
    assert sm.list_tags(ResourceArn=child["TrainingJobArn"])["Tags"] == [{"Key": "team", "Value": "recsys"}]
    listed = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"]) for s in listed] == [("tune-random", "Random")]


def test_bayesian_search_improves_on_its_random_start(sm, data):
    request = tuning_request(
        "tune-bayes",
        data,
        "Bayesian",
        RandomSeed=3,
        ResourceLimits={"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2},
    )
    request["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0]["ScalingType"] = (
        "Logarithmic"
    )
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished_tuning(sm, "tune-bayes", timeout=240)
    assert job["ObjectiveStatusCounters"]["Succeeded"] == 8
    trials = sorted(_trials(sm, "tune-bayes", MaxResults=100), key=lambda t: t["CreationTime"])
    best = job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert best == min(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials)
    assert abs(float(job["BestTrainingJob"]["TunedHyperParameters"]["scale"]) - 2) < 0.5


def test_a_seeded_bayesian_search_proposes_the_same_trials_however_its_jobs_finish(sm, data):
    # sleep_seconds is tuned too, so trials finish in an order set by what was proposed and by the machine's load
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "scale", "MinValue": "0.5", "MaxValue": "4"},
            {"Name": "sleep_seconds", "MinValue": "0", "MaxValue": "1"},
        ]
    }
    proposed = []
    for name in ("tune-seeded-a", "tune-seeded-b"):
        limits = {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
        request = tuning_request(name, data, "Bayesian", RandomSeed=11, ParameterRanges=ranges, ResourceLimits=limits)
        sm.create_hyper_parameter_tuning_job(**request)
        assert finished_tuning(sm, name, timeout=240)["HyperParameterTuningJobStatus"] == "Completed"
        trials = sorted(_trials(sm, name, MaxResults=100), key=lambda t: t["TrainingJobName"])
        proposed.append([t["TunedHyperParameters"] for t in trials])
    assert proposed[0] == proposed[1]


class _RecordingSearch:
    def __init__(self):
        self.told = []

    def report(self, tuned, objective):
        self.told.append((tuned["trial"], objective))


def _summary(trial: int, finished: bool) -> dict:
    summary = {"TunedHyperParameters": {"trial": trial}, "ObjectiveStatus": "Succeeded" if finished else "Pending"}
    if finished:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"Value": float(trial)}
    return summary


def test_results_reach_the_search_in_launch_order_and_a_slot_waits_for_the_oldest_trial():
    search = _RecordingSearch()
    feed = InOrderFeed(search, parallel=2)
    assert feed.may_suggest(0) and feed.may_suggest(1)
    feed.learn([_summary(0, False), _summary(1, True)])  # the second trial finished first
    assert search.told == [] and not feed.may_suggest(2)
    feed.learn([_summary(0, True), _summary(1, True)])
    assert search.told == [(0, 0.0)] and feed.may_suggest(2)  # trial 1's result waits for the proposal after next
    feed.learn([_summary(0, True), _summary(1, True), _summary(2, False)])
    assert search.told == [(0, 0.0), (1, 1.0)] and feed.may_suggest(3)


def test_grid_search_runs_every_combination_once(sm, data):
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "statistic", "Values": ["mean", "median"]},
            {"Name": "scale", "Values": ["1", "2"]},
        ]
    }
    request = tuning_request("tune-grid", data, "Grid", ParameterRanges=ranges)
    del request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished_tuning(sm, "tune-grid")
    tried = sorted(
        (t["TunedHyperParameters"]["statistic"], t["TunedHyperParameters"]["scale"]) for t in _trials(sm, "tune-grid")
    )
    assert tried == [("mean", "1"), ("mean", "2"), ("median", "1"), ("median", "2")]
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.0


def test_target_objective_completes_early(sm, data):
    request = tuning_request(
        "tune-target",
        data,
        "Grid",
        ParameterRanges={"CategoricalParameterRanges": [{"Name": "scale", "Values": ["2", "1", "3", "4"]}]},
        ResourceLimits={"MaxParallelTrainingJobs": 1},
        TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 4.0},
    )
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished_tuning(sm, "tune-target")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["Completed"] == 1


def test_stop_stops_the_running_training_jobs(sm, data):
    request = tuning_request("tune-stop", data, StaticHyperParameters={"sleep_seconds": "60"})
    sm.create_hyper_parameter_tuning_job(**request)
    wait_for(lambda: _trials(sm, "tune-stop"), lambda trials: len(trials) == 2)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    job = finished_tuning(sm, "tune-stop")
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] == 2
    with pytest.raises(ClientError) as excinfo:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    assert error_of(excinfo) == (
        "ValidationException",
        "The request was rejected because the tuning job is in status Stopped.",
    )


def test_no_objective_fails_the_tuning_job_with_the_first_reason(sm, data):
    request = tuning_request("tune-fail", data, StaticHyperParameters={"statistic": "mode"})
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished_tuning(sm, "tune-fail")
    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        "No training job reported the objective metric test:mse. The first failure: "
    )
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 4
    assert "BestTrainingJob" not in job


def _continuous(low: str, high: str, scaling: str = "Linear") -> dict:
    return {"ContinuousParameterRanges": [{"Name": "scale", "MinValue": low, "MaxValue": high, "ScalingType": scaling}]}


@pytest.mark.parametrize(
    "strategy, config, static, message",
    [
        ("Hyperband", {}, {}, "Strategy Hyperband is not supported by the local SageMaker emulator"),
        ("Random", {"ParameterRanges": _continuous("0", "1", "Logarithmic")}, {}, "Logarithmic scaling of scale needs"),
        ("Random", {"ParameterRanges": _continuous("0.5", "1", "ReverseLogarithmic")}, {}, "ReverseLogarithmic"),
        ("Random", {"ParameterRanges": _continuous("x", "1")}, {}, "has a bound that is not a number: 'x'"),
        ("Random", {"ParameterRanges": _continuous("3", "1")}, {}, "The range of scale has MinValue 3.0 above"),
        ("Random", {"ParameterRanges": _continuous("nan", "1")}, {}, "must have finite bounds"),
        ("Random", {"ParameterRanges": {}}, {}, "ParameterRanges must name at least one hyperparameter"),
        ("Grid", {}, {}, "Grid search takes categorical ranges only; scale is not categorical."),
        ("Random", {}, {"scale": "2"}, "Hyperparameters ['scale'] are both static and tuned."),
        ("Random", {"ResourceLimits": {"MaxParallelTrainingJobs": 1}}, {}, "MaxNumberOfTrainingJobs is required"),
        ("Random", {"ResourceLimits": {"MaxNumberOfTrainingJobs": 9, "MaxParallelTrainingJobs": 5}}, {}, "limit"),
        ("Random", {"ResourceLimits": {"MaxNumberOfTrainingJobs": 501, "MaxParallelTrainingJobs": 1}}, {}, "500"),
    ],
)
def test_what_aws_or_the_emulator_refuses_creates_nothing(sm, data, strategy, config, static, message):
    request = tuning_request("tune-bad", data, strategy, StaticHyperParameters=static, **config)
    with pytest.raises(ClientError) as excinfo:
        sm.create_hyper_parameter_tuning_job(**request)
    code, text = error_of(excinfo)
    assert code in ("ValidationException", "ResourceLimitExceeded") and message in text
    assert sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_unknown_tuning_job_is_not_found(sm):
    for call in (sm.describe_hyper_parameter_tuning_job, sm.stop_hyper_parameter_tuning_job):
        with pytest.raises(ClientError) as excinfo:
            call(HyperParameterTuningJobName="ghost")
        assert error_of(excinfo) == ("ResourceNotFound", "Amazon SageMaker can't find a tuning job with name ghost")


def test_the_objective_must_be_a_defined_metric(sm, data):
    request = tuning_request("tune-metric", data)
    request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": "loss=(\\S+)"}
    ]
    with pytest.raises(ClientError) as excinfo:
        sm.create_hyper_parameter_tuning_job(**request)
    assert error_of(excinfo)[1] == "The objective metric test:mse is not among the metric definitions ['loss']."


@pytest.mark.parametrize(
    "scaling, low, high, check",
    [
        ("Linear", "0", "10", lambda v: 0 <= v <= 10),
        ("Logarithmic", "0.001", "1000", lambda v: 0.001 <= v <= 1000),
        ("ReverseLogarithmic", "0.9", "0.9999", lambda v: 0.9 <= v <= 0.9999),
    ],
)
def test_random_draws_stay_in_range_on_their_scale(scaling, low, high, check):
    search = RandomSearch(parse_ranges(_continuous(low, high, scaling)), seed=0)
    draws = [float(search.suggest()["scale"]) for _ in range(300)]
    assert all(check(v) for v in draws)
    if scaling == "Logarithmic":
        assert sum(v < 1 for v in draws) > 100  # half the draws below the geometric middle
    if scaling == "ReverseLogarithmic":
        assert sum(v > 0.99 for v in draws) > 100


def test_integer_ranges_give_integers_and_auto_picks_log_for_wide_ranges():
    ranges = parse_ranges(
        {"IntegerParameterRanges": [{"Name": "k", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Auto"}]}
    )
    assert ranges[0].scaling == "Logarithmic"
    draws = [RandomSearch(ranges, seed).suggest()["k"] for seed in range(50)]
    assert all(d.isdigit() and 1 <= int(d) <= 1000 for d in draws)


def test_sdk_v2_resource_config_is_read_and_one_is_required(sm, data):
    request = tuning_request("tune-v2", data, RandomSeed=1)
    definition = request["TrainingJobDefinition"]
    definition["HyperParameterTuningResourceConfig"] = definition.pop("ResourceConfig")
    sm.create_hyper_parameter_tuning_job(**request)
    assert finished_tuning(sm, "tune-v2")["ObjectiveStatusCounters"]["Succeeded"] == 4
    child = sm.describe_training_job(TrainingJobName=_trials(sm, "tune-v2")[0]["TrainingJobName"])
    assert child["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}
    del definition["HyperParameterTuningResourceConfig"]
    request["HyperParameterTuningJobName"] = "tune-none"
    with pytest.raises(ClientError) as excinfo:
        sm.create_hyper_parameter_tuning_job(**request)
    assert error_of(excinfo) == (
        "ValidationException",
        "TrainingJobDefinition needs ResourceConfig or HyperParameterTuningResourceConfig.",
    )


def test_describe_names_the_objective_among_the_static_hyperparameters_as_aws_does(sm, data):
    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-static", data, StaticHyperParameters={"bias": "0"}))
    job = finished_tuning(sm, "tune-static")
    assert job["TrainingJobDefinition"]["StaticHyperParameters"] == {
        "bias": "0",
        "_tuning_objective_metric": "test:mse",
    }
    assert job["HyperParameterTuningJobConfig"]["ParameterRanges"] == {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [{"Name": "scale", "MinValue": "0.5", "MaxValue": "4"}],
        "CategoricalParameterRanges": [],
    }
    definitions = job["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert [d["Name"] for d in definitions] == ["train:mse", "test:mse"]  # the algorithm's, as its trials ran it


class FakeTuning:
    """The part of a tuning job the median stopping rule sees: its objective, and the trials it stops."""

    name = "tune-median"

    def __init__(self, kind: str):
        self.objective = {"Type": kind, "MetricName": "loss"}
        self.stopped: dict[str, str] = {}

    def stop_trial(self, trial: str, message: str) -> bool:
        self.stopped[trial] = message
        return True


class FakeLogs:
    """Each trial's objective values so far, as TrialLogs reads them from the log streams."""

    def __init__(self, series: dict[str, list[float]]):
        self.series = series

    def read(self, trial: str) -> list[float]:
        return self.series.setdefault(trial, [])


def _summaries(statuses: dict[str, str]) -> list[dict]:
    return [{"TrainingJobName": name, "TrainingJobStatus": status} for name, status in statuses.items()]


def test_median_stopping_stops_a_trial_worse_than_the_earlier_running_averages_and_says_why():
    tuning = FakeTuning("Minimize")
    logs = FakeLogs({"a": [1.0, 0.5, 0.3], "b": [0.9, 0.45, 0.3], "c": [0.8, 0.6], "d": [0.85, 0.9]})
    MedianStopping(tuning, logs).check(
        _summaries({"a": "Completed", "b": "Completed", "c": "InProgress", "d": "InProgress"})
    )
    # c at epoch 2: 0.6, under the median of a's, b's running averages (0.75, 0.675); d at epoch 1: 0.85, under
    # 0.9 (of 1, 0.9, 0.8); d at epoch 2: 0.9, above the median of a's, b's and c's (0.75, 0.675, 0.7): stopped
    assert tuning.stopped == {
        "d": "Stopped early by hyperparameter tuning job tune-median (TrainingJobEarlyStoppingType Auto): loss at "
        "epoch 2 was 0.9, above 0.7, the median of 3 earlier training jobs' running averages at that epoch."
    }


def test_median_stopping_judges_each_epoch_once_and_never_the_first_trial():
    tuning = FakeTuning("Maximize")
    logs = FakeLogs({"a": [0.1], "b": [0.5]})
    rule = MedianStopping(tuning, logs)
    rule.check(_summaries({"a": "InProgress", "b": "InProgress"}))
    logs.series["a"] += [0.05, 0.01]  # a is the first trial: no earlier trial, never judged
    logs.series["b"] += [0.6]  # above a's running average (0.075) when maximising: not stopped
    rule.check(_summaries({"a": "InProgress", "b": "InProgress"}))
    assert tuning.stopped == {}
    logs.series["c"] = [0.01]  # below the median of a's and b's first epochs (0.1, 0.5) when maximising
    rule.check(_summaries({"a": "Completed", "b": "InProgress", "c": "InProgress"}))
    assert list(tuning.stopped) == ["c"] and "below 0.3" in tuning.stopped["c"]
