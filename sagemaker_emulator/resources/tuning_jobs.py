"""Hyperparameter tuning jobs: Create/Describe/List/StopHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob.

A tuning job runs training jobs (ordinary ones, listed and described like any other, launched by its driver in
``jobs/tuning.py`` through CreateTrainingJob as a request runs it) with hyperparameters from its strategy
(``jobs/tuning_search.py``), at most ``MaxParallelTrainingJobs`` at a time and
``MaxNumberOfTrainingJobs`` in all, and reads each one's objective from its final metrics. As on AWS
(API_CreateHyperParameterTuningJob, API_HyperParameterTrainingJobSummary):

- a training job is named ``<tuning job name>-<three-digit number>-<8 hex digits>``, carries the tuning job's tags
  ("Tags that you specify for the tuning job are also added to all training jobs that the tuning job launches")
  and its ARN (``TuningJobArn``), and gets the objective's name as the hyperparameter ``_tuning_objective_metric``;
- statuses: ``InProgress → Completed | Failed | Stopping``, ``Stopping → Stopped``. The job completes when its
  budget is spent (or ``TuningJobCompletionCriteria`` is met, or ``MaxRuntimeInSeconds`` runs out, which stops the
  running training jobs); it fails when no training job produced the objective;
- ``TrainingJobEarlyStoppingType: Auto`` stops a trial whose objective at an epoch is worse than the median of the
  earlier trials' running averages at that epoch (AWS's automatic-model-tuning-early-stopping page; the rule is
  in ``jobs/tuning.py``); the trial ends ``Stopped``;
- DescribeHyperParameterTuningJob shows ``_tuning_objective_metric`` among the static hyperparameters, all three
  lists of ``ParameterRanges`` and ``MetricDefinitions``, which SDK v2's ``HyperparameterTuner.attach`` reads.

The training jobs count against the emulator's training quota: ``MaxParallelTrainingJobs`` above it is refused,
and a training job that finds the quota used by others waits for room. Not emulated, each refused with a
ValidationException naming it: the ``Hyperband`` strategy, warm start, ``Autotune``, several
``TrainingJobDefinitions``, and completion on convergence.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
from functools import partial

from sagemaker_emulator.algorithms.base import TUNING_OBJECTIVE
from sagemaker_emulator.errors import ValidationException, limit_exceeded
from sagemaker_emulator.jobs.tuning import start_tuning
from sagemaker_emulator.jobs.tuning_search import STRATEGIES, GridSearch, make_search, parse_ranges
from sagemaker_emulator.operations import call, operation
from sagemaker_emulator.resources.listing import page, paginate
from sagemaker_emulator.resources.training_jobs import TrainingJob
from sagemaker_emulator.state import RUNNING, EmulatorState, Resource, interrupted
from sagemaker_emulator.store.schema import REQUIRED

RANGE_KINDS = ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
MAX_TRAINING_JOBS = 500  # AWS's quota of training jobs per tuning job
INTERRUPTED = interrupted("hyperparameter tuning job")
_COPIED = (
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)


class TuningJob(Resource):
    ARN_TYPE = "hyper-parameter-tuning-job"
    PERSISTED = {"params": REQUIRED, "trials": [], "failure_reason": None, "end_time": None}
    TRANSITIONS = frozenset(
        {
            ("InProgress", "Completed"),
            ("InProgress", "Failed"),
            ("InProgress", "Stopping"),
            ("Stopping", "Stopped"),
        }
    )

    def __init__(self, state: EmulatorState, params: dict):
        name = params["HyperParameterTuningJobName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"), "InProgress")
        self.params = copy.deepcopy(params)
        self.params.pop("Tags", None)
        config = self.params["HyperParameterTuningJobConfig"]
        config.setdefault("TrainingJobEarlyStoppingType", "Off")
        self.params["TrainingJobDefinition"].setdefault("StaticHyperParameters", {})
        self.trials: list[dict] = []  # {"name": training job, "tuned": its tuned hyperparameters}, in launch order
        self.failure_reason: str | None = None
        self.end_time: float | None = None
        self.stop_requested = threading.Event()
        self.state = state

    def after_restore(self, state: EmulatorState) -> None:
        """A tuning job cannot go on after its emulator stopped (its training jobs were failed too)."""
        self.state = state
        self.stop_requested = threading.Event()
        if self.status in RUNNING:
            self.status = "Failed"
            self.failure_reason = INTERRUPTED
            self.end_time = state.now()

    @property
    def objective(self) -> dict:
        return self.params["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]

    def jobs(self) -> list[tuple[dict, TrainingJob | None]]:
        return [(trial, self.state.training_jobs.find(trial["name"])) for trial in list(self.trials)]

    def objective_value(self, job: TrainingJob | None) -> float | None:
        if job is None or job.status not in ("Completed", "Stopped"):
            return None
        for metric in job.final_metrics:
            if metric["MetricName"] == self.objective["MetricName"] and math.isfinite(metric["Value"]):
                return float(metric["Value"])
        return None

    def trial_summary(self, trial: dict, job: TrainingJob | None) -> dict:
        summary = {
            "TrainingJobName": trial["name"],
            "TrainingJobArn": self.state.arn("training-job", trial["name"]),
            "TuningJobName": self.name,
            "CreationTime": trial["created"],
            "TrainingJobStatus": job.status if job else "Failed",
            "TunedHyperParameters": dict(trial["tuned"]),
            "ObjectiveStatus": "Failed",
        }
        if job is None:
            return summary
        with job.lock:
            if job.start_time is not None:
                summary["TrainingStartTime"] = job.start_time
            if job.end_time is not None:
                summary["TrainingEndTime"] = job.end_time
            if job.failure_reason:
                summary["FailureReason"] = job.failure_reason
        value = self.objective_value(job)
        if value is not None:
            summary["ObjectiveStatus"] = "Succeeded"
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective["Type"],
                "MetricName": self.objective["MetricName"],
                "Value": value,
            }
        elif job.status in RUNNING:
            summary["ObjectiveStatus"] = "Pending"
        return summary

    def summaries(self) -> list[dict]:
        return [self.trial_summary(trial, job) for trial, job in self.jobs()]

    def best(self, summaries: list[dict]) -> dict | None:
        scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
        if not scored:
            return None
        sign = 1 if self.objective["Type"] == "Minimize" else -1
        return min(scored, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])

    def counters(self, summaries: list[dict]) -> tuple[dict, dict]:
        statuses = [s["TrainingJobStatus"] for s in summaries]
        objectives = [s["ObjectiveStatus"] for s in summaries]
        training = {
            "Completed": statuses.count("Completed"),
            "InProgress": sum(statuses.count(status) for status in RUNNING),
            "RetryableError": 0,
            "NonRetryableError": statuses.count("Failed"),
            "Stopped": statuses.count("Stopped"),
        }
        objective = {kind: objectives.count(kind) for kind in ("Succeeded", "Pending", "Failed")}
        return training, objective

    def to_wire(self) -> dict:
        summaries = self.summaries()
        training, objective = self.counters(summaries)
        with self.lock:
            wire = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": self._config_wire(),
                "TrainingJobDefinition": self._definition_wire(),
                "HyperParameterTuningJobStatus": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatusCounters": training,
                "ObjectiveStatusCounters": objective,
            }
            best = self.best(summaries)
            if best is not None:
                wire["BestTrainingJob"] = best
            if self.end_time is not None:
                wire["HyperParameterTuningEndTime"] = self.end_time
                wire["ConsumedResources"] = {"RuntimeInSeconds": max(0, round(self.end_time - self.creation_time))}
            if self.failure_reason:
                wire["FailureReason"] = self.failure_reason
            return wire

    def _config_wire(self) -> dict:
        """The config as AWS describes it: every kind of ``ParameterRanges`` listed, empty or not."""
        config = copy.deepcopy(self.params["HyperParameterTuningJobConfig"])
        ranges = config.setdefault("ParameterRanges", {})
        for kind in RANGE_KINDS:
            ranges.setdefault(kind, [])
        return config

    def _definition_wire(self) -> dict:
        """The definition as AWS describes it: the objective among the static hyperparameters, metric definitions
        listed (a built-in algorithm's as its first trial ran it)."""
        definition = copy.deepcopy(self.params["TrainingJobDefinition"])
        definition["StaticHyperParameters"][TUNING_OBJECTIVE] = self.objective["MetricName"]
        spec = definition["AlgorithmSpecification"]
        if not spec.get("MetricDefinitions"):
            spec["MetricDefinitions"] = []
            first = next((job for _, job in self.jobs() if job is not None), None)
            if first is not None:
                with first.lock:
                    spec["MetricDefinitions"] = copy.deepcopy(
                        first.params["AlgorithmSpecification"].get("MetricDefinitions", [])
                    )
        return definition

    def objective_regex(self, trial: str) -> str | None:
        """The regex that finds the objective in a trial's log (its own metric definitions), or None."""
        job = self.state.training_jobs.find(trial)
        if job is None:
            return None
        with job.lock:
            definitions = job.params["AlgorithmSpecification"].get("MetricDefinitions", [])
            return next((d["Regex"] for d in definitions if d["Name"] == self.objective["MetricName"]), None)

    def stop_trial(self, trial: str, message: str) -> bool:
        """Stop one running trial (StopTrainingJob's effect), with ``message`` as its Stopping status message."""
        job = self.state.training_jobs.find(trial)
        if job is None or not job.request_stop(self.state.now()):
            return False
        job.note(message, self.state.now())
        return True

    def summary(self) -> dict:
        summaries = self.summaries()
        training, objective = self.counters(summaries)
        config = self.params["HyperParameterTuningJobConfig"]
        entry = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobStatus": self.status,
            "Strategy": config["Strategy"],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "TrainingJobStatusCounters": training,
            "ObjectiveStatusCounters": objective,
            "ResourceLimits": copy.deepcopy(config["ResourceLimits"]),
        }
        if self.end_time is not None:
            entry["HyperParameterTuningEndTime"] = self.end_time
        return entry

    def trial_request(self, tuned: dict[str, str]) -> dict:
        """The CreateTrainingJob request of the next trial: the definition, ``tuned`` on top of the static values."""
        return _training_request(self, len(self.trials) + 1, tuned)

    def add_trial(self, name: str, tuned: dict[str, str]) -> None:
        with self.lock:
            self.trials.append({"name": name, "tuned": tuned, "created": self.state.now()})
            self.last_modified_time = self.state.now()

    def stop_trials(self) -> None:
        """Ask every running training job of this tuning job to stop (StopTrainingJob's effect)."""
        for _, job in self.jobs():
            if job is not None:
                job.request_stop(self.state.now())

    def finish(self, status: str, reason: str | None = None) -> bool:
        with self.lock:
            if not self.advance(status, self.state.now()):
                return False
            self.end_time = self.state.now()
            self.failure_reason = reason
            return True


def _refuse_unemulated(params: dict) -> None:
    config = params["HyperParameterTuningJobConfig"]
    unemulated = {
        "Strategy Hyperband": config["Strategy"] == "Hyperband",
        "WarmStartConfig": "WarmStartConfig" in params,
        "Autotune": "Autotune" in params,
        "TrainingJobDefinitions (several training job definitions)": "TrainingJobDefinitions" in params,
        "CompleteOnConvergence Enabled": config.get("TuningJobCompletionCriteria", {})
        .get("ConvergenceDetected", {})
        .get("CompleteOnConvergence")
        == "Enabled",
    }
    for feature, used in unemulated.items():
        if used:
            raise ValidationException(
                f"{feature} is not supported by the local SageMaker emulator (strategies: {', '.join(STRATEGIES)}); "
                "run this tuning job on AWS."
            )


def _check_request(state: EmulatorState, params: dict) -> tuple[int, int]:
    """Validate what botocore's model cannot; returns (MaxNumberOfTrainingJobs, MaxParallelTrainingJobs)."""
    _refuse_unemulated(params)
    if "TrainingJobDefinition" not in params:
        raise ValidationException("TrainingJobDefinition is required.")
    definition = params["TrainingJobDefinition"]
    if "TrainingImage" not in definition["AlgorithmSpecification"]:
        raise ValidationException(
            "AlgorithmSpecification.TrainingImage is required: the local SageMaker emulator runs images, not "
            "AlgorithmName resources."
        )
    if _resource_config(definition) is None:
        raise ValidationException("TrainingJobDefinition needs ResourceConfig or HyperParameterTuningResourceConfig.")
    config = params["HyperParameterTuningJobConfig"]
    if "HyperParameterTuningJobObjective" not in config:
        raise ValidationException("HyperParameterTuningJobObjective is required for the strategy " + config["Strategy"])
    ranges = parse_ranges(config.get("ParameterRanges", {}))
    clash = sorted({r.name for r in ranges} & set(definition.get("StaticHyperParameters", {})))
    if clash:
        raise ValidationException(f"Hyperparameters {clash} are both static and tuned.")
    metric = config["HyperParameterTuningJobObjective"]["MetricName"]
    defined = [d["Name"] for d in definition["AlgorithmSpecification"].get("MetricDefinitions", [])]
    if defined and metric not in defined:
        raise ValidationException(f"The objective metric {metric} is not among the metric definitions {defined}.")
    limits = config["ResourceLimits"]
    if config["Strategy"] == "Grid":
        budget = limits.get("MaxNumberOfTrainingJobs", GridSearch.size(ranges))
    elif "MaxNumberOfTrainingJobs" in limits:
        budget = limits["MaxNumberOfTrainingJobs"]
    else:
        raise ValidationException(f"ResourceLimits.MaxNumberOfTrainingJobs is required for {config['Strategy']}.")
    if budget > MAX_TRAINING_JOBS:
        raise limit_exceeded("Number of training jobs per tuning job", MAX_TRAINING_JOBS, 0, budget)
    parallel = limits["MaxParallelTrainingJobs"]
    quota = state.services.limits.running_training_jobs
    if parallel > quota:
        raise limit_exceeded("Number of instances across all training jobs", quota, 0, parallel)
    make_search(config["Strategy"], ranges, config.get("RandomSeed"), budget, True)  # refuses what it cannot search
    return budget, parallel


def _resource_config(definition: dict) -> dict | None:
    """``ResourceConfig``, or the one ``HyperParameterTuningResourceConfig`` (what SDK v2 sends) describes."""
    if "ResourceConfig" in definition:
        return definition["ResourceConfig"]
    tuning = definition.get("HyperParameterTuningResourceConfig")
    if tuning is None:
        return None
    first = (tuning.get("InstanceConfigs") or [{}])[0]
    config = {key: tuning.get(key, first.get(key)) for key in ("InstanceType", "InstanceCount", "VolumeSizeInGB")}
    return {key: value for key, value in config.items() if value is not None}


def _training_request(tuning: TuningJob, index: int, tuned: dict[str, str]) -> dict:
    definition = tuning.params["TrainingJobDefinition"]
    spec = {
        key: copy.deepcopy(value)
        for key, value in definition["AlgorithmSpecification"].items()
        if key in ("TrainingImage", "TrainingInputMode", "MetricDefinitions")
    }
    request = {key: copy.deepcopy(definition[key]) for key in _COPIED if key in definition}
    request.setdefault("ResourceConfig", _resource_config(definition))
    request.update(
        TrainingJobName=f"{tuning.name}-{index:03d}-{secrets.token_hex(4)}",
        AlgorithmSpecification=spec,
        HyperParameters={
            **definition["StaticHyperParameters"],
            **tuned,
            TUNING_OBJECTIVE: tuning.objective["MetricName"],
        },
        TuningJobArn=tuning.arn,
    )
    if tuning.tags:
        request["Tags"] = copy.deepcopy(tuning.tags)
    return request


@operation("CreateHyperParameterTuningJob")
def create_tuning_job(state: EmulatorState, params: dict) -> dict:
    budget, parallel = _check_request(state, params)
    tuning = state.tuning_jobs.add(TuningJob(state, params))
    config = tuning.params["HyperParameterTuningJobConfig"]
    search = make_search(
        config["Strategy"],
        parse_ranges(config.get("ParameterRanges", {})),
        config.get("RandomSeed"),
        budget,
        tuning.objective["Type"] == "Minimize",
    )
    start_tuning(state, tuning, search, budget, parallel, partial(call, state, "CreateTrainingJob"))
    return {"HyperParameterTuningJobArn": tuning.arn}


@operation("DescribeHyperParameterTuningJob")
def describe_tuning_job(state: EmulatorState, params: dict) -> dict:
    return state.tuning_jobs.get(params["HyperParameterTuningJobName"]).to_wire()


@operation("ListHyperParameterTuningJobs")
def list_tuning_jobs(state: EmulatorState, params: dict) -> dict:
    return page(
        state.tuning_jobs,
        params,
        "HyperParameterTuningJobSummaries",
        TuningJob.summary,
        order="Ascending",
        sort_by="Name",
    )


_TRIAL_SORT_KEYS = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["TrainingJobStatus"],
    "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
}


@operation("ListTrainingJobsForHyperParameterTuningJob")
def list_training_jobs_for_tuning_job(state: EmulatorState, params: dict) -> dict:
    """Its training jobs; sorted by ``FinalObjectiveMetricValue``, only those that reported the objective."""
    tuning = state.tuning_jobs.get(params["HyperParameterTuningJobName"])
    summaries = tuning.summaries()
    if "StatusEquals" in params:
        summaries = [s for s in summaries if s["TrainingJobStatus"] == params["StatusEquals"]]
    sort_by = params.get("SortBy", "Name")
    if sort_by == "FinalObjectiveMetricValue":
        summaries = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    primary = _TRIAL_SORT_KEYS[sort_by]
    descending = params.get("SortOrder", "Ascending") == "Descending"
    summaries.sort(key=lambda s: (s["CreationTime"], s["TrainingJobName"]))
    summaries.sort(key=primary, reverse=descending)
    return paginate(
        summaries,
        params,
        "TrainingJobSummaries",
        lambda s: [primary(s), s["CreationTime"], s["TrainingJobName"]],
        descending,
    )


@operation("StopHyperParameterTuningJob")
def stop_tuning_job(state: EmulatorState, params: dict) -> dict:
    tuning = state.tuning_jobs.get(params["HyperParameterTuningJobName"])
    with tuning.lock:
        if not tuning.advance("Stopping", state.now()):
            raise ValidationException(f"The request was rejected because the tuning job is in status {tuning.status}.")
    tuning.stop_requested.set()
    return {}
