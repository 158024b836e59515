"""Training jobs: Create/Describe/List/StopTrainingJob. The work itself is in ``jobs/training.py``.

Status table (AWS's): ``InProgress → Completed | Failed | Stopping``, ``Stopping → Stopped`` (or ``Completed`` /
``Failed`` when the algorithm ends first). Secondary statuses, each with a start and end time and a message:
``Starting → Downloading → Training → Uploading → Completed``, or ``Failed``, ``Stopping → Stopped``, and
``MaxRuntimeExceeded`` when ``StoppingCondition.MaxRuntimeInSeconds`` ends the job: the job is then ``Stopped``,
as the service model documents (``DescribeTrainingJob.SecondaryStatus``: "MaxRuntimeExceeded - The job stopped
because it exceeded the maximum allowed runtime"), and what the algorithm saved is uploaded.
"""

from __future__ import annotations

import copy
import threading

from sagemaker_emulator.algorithms.layout import DEFAULT_INSTANCE_TYPE
from sagemaker_emulator.errors import ValidationException, limit_exceeded
from sagemaker_emulator.jobs import s3
from sagemaker_emulator.jobs.training import MESSAGES, start_training
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import RUNNING, EmulatorState, Resource, interrupted
from sagemaker_emulator.store.schema import REQUIRED

INTERRUPTED = interrupted("training job")


class TrainingJob(Resource):
    ARN_TYPE = "training-job"
    PERSISTED = {
        "params": REQUIRED,
        "secondary": REQUIRED,
        "failure_reason": None,
        "final_metrics": [],
        "start_time": None,
        "end_time": None,
    }
    TRANSITIONS = frozenset(
        {
            ("InProgress", "Completed"),
            ("InProgress", "Failed"),
            ("InProgress", "Stopping"),
            ("Stopping", "Stopped"),
            ("Stopping", "Completed"),
            ("Stopping", "Failed"),
        }
    )

    def __init__(self, state: EmulatorState, params: dict):
        name = params["TrainingJobName"]
        now = state.now()
        super().__init__(name, state.arn(self.ARN_TYPE, name), now, params.get("Tags"), "InProgress")
        self.params = copy.deepcopy(params)
        self.params.pop("Tags", None)
        self.params.setdefault("HyperParameters", {})
        self.params["AlgorithmSpecification"].setdefault("TrainingInputMode", "File")
        self.params["OutputDataConfig"].setdefault("CompressionType", "GZIP")
        self.params["ResourceConfig"].setdefault("InstanceType", DEFAULT_INSTANCE_TYPE)
        self.secondary: list[dict] = []
        self.failure_reason: str | None = None
        self.final_metrics: list[dict] = []
        self.start_time: float | None = None
        self.end_time: float | None = None
        # the runner's jobs.metrics.horizon (see _end_on_record); not saved, as CloudWatch metrics are not
        self.metrics_horizon: float | None = None
        self.stop_requested = threading.Event()
        self.max_runtime_exceeded = False  # set by the runner when MaxRuntimeInSeconds stops the job
        self.clock = state.clock
        self.enter("Starting", now)

    def after_restore(self, state: EmulatorState) -> None:
        """A job cannot go on after its emulator stopped: one that was running is failed, as a lost host fails it."""
        self.stop_requested = threading.Event()
        self.max_runtime_exceeded = False
        self.metrics_horizon = None
        self.clock = state.clock
        if self.status in RUNNING:
            self.finish("Failed", INTERRUPTED)

    @property
    def secondary_status(self) -> str:
        return self.secondary[-1]["Status"]

    @property
    def image(self) -> str:
        return self.params["AlgorithmSpecification"]["TrainingImage"]

    @property
    def instance_count(self) -> int:
        return self.params["ResourceConfig"].get("InstanceCount", 1)

    @property
    def artifact_uri(self) -> str:
        """Where the model goes, which AWS reports from the start (botocore marks ``ModelArtifacts`` required)."""
        return s3.join_uri(self.params["OutputDataConfig"]["S3OutputPath"], self.name, "output", "model.tar.gz")

    def enter(self, status: str, now: float, message: str | None = None) -> None:
        """Begin a secondary status, ending the current one."""
        with self.lock:
            if self.secondary:
                self.secondary[-1]["EndTime"] = now
            self.secondary.append({"Status": status, "StartTime": now, "StatusMessage": message or MESSAGES[status]})
            self.last_modified_time = now

    def note(self, message: str, now: float) -> None:
        """Update the current secondary status's message (AWS rewords it as a step progresses)."""
        with self.lock:
            self.secondary[-1]["StatusMessage"] = message
            self.last_modified_time = now

    def finish(self, status: str, reason: str | None = None) -> bool:
        """Reach a final status, and the secondary status that says why; False if the job could not move there.

        ``reason`` (a failure's) is the FailureReason and the last secondary status's message.
        """
        now = self.clock.now()
        secondary = "MaxRuntimeExceeded" if status == "Stopped" and self.max_runtime_exceeded else status
        with self.lock:
            if not self.advance(status, now):
                return False
            self.enter(secondary, now, reason)
            self.secondary[-1]["EndTime"] = now
            self.end_time = now
            if reason is not None:
                self.failure_reason = reason
            return True

    def request_stop(self, now: float) -> bool:
        """StopTrainingJob's effect: ``Stopping``, and the runner told; False if the job is not running."""
        with self.lock:
            if not self.advance("Stopping", now):
                return False
            self.enter("Stopping", now)
        self.stop_requested.set()
        return True

    def _end_on_record(self) -> float | None:
        """TrainingEndTime: the true end, or later if CloudWatch holds metric stamps past the SDK's window
        (``jobs/metrics.py`` says why); the seconds trained and billed stay true."""
        if self.end_time is None or self.metrics_horizon is None:
            return self.end_time
        return max(self.end_time, self.metrics_horizon)

    def _seconds(self) -> int | None:
        """TrainingTimeInSeconds and BillableTimeInSeconds: wall-clock seconds, whatever the InstanceCount. AWS's
        API reference (``DescribeTrainingJob.BillableTimeInSeconds``): "Billable time refers to the absolute
        wall-clock time. Multiply BillableTimeInSeconds by the number of instances (InstanceCount) ... to get the
        total compute time SageMaker bills you"; the bill counts every instance, the field does not."""
        if self.start_time is None or self.end_time is None:
            return None
        return max(1, round(self.end_time - self.start_time))

    def to_wire(self) -> dict:
        with self.lock:
            wire = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary_status,
                "SecondaryStatusTransitions": copy.deepcopy(self.secondary),
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "EnableNetworkIsolation": self.params.get("EnableNetworkIsolation", False),
                "EnableInterContainerTrafficEncryption": self.params.get(
                    "EnableInterContainerTrafficEncryption", False
                ),
                "EnableManagedSpotTraining": self.params.get("EnableManagedSpotTraining", False),
                "ModelArtifacts": {"S3ModelArtifacts": self.artifact_uri},
                "FailureReason": self.failure_reason,
                "TrainingStartTime": self.start_time,
                "TrainingEndTime": self._end_on_record(),
                "TrainingTimeInSeconds": self._seconds(),
                "BillableTimeInSeconds": self._seconds(),
                "FinalMetricDataList": list(self.final_metrics) or None,
            }
            for key in (
                "HyperParameters",
                "AlgorithmSpecification",
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
                "VpcConfig",
                "CheckpointConfig",
                "Environment",
                "DebugHookConfig",
                "ExperimentConfig",
                "RetryStrategy",
                "TuningJobArn",
            ):
                if key in self.params:
                    wire[key] = copy.deepcopy(self.params[key])
            wire["OutputDataConfig"].setdefault("KmsKeyId", "")
            return {key: value for key, value in wire.items() if value is not None}

    def summary(self) -> dict:
        with self.lock:
            entry = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary_status,
            }
            if self.end_time is not None:
                entry["TrainingEndTime"] = self._end_on_record()
            return entry


def _check_request(state: EmulatorState, params: dict) -> None:
    spec = params["AlgorithmSpecification"]
    if "TrainingImage" not in spec:
        raise ValidationException(
            "AlgorithmSpecification.TrainingImage is required: the local SageMaker emulator runs images, not "
            "AlgorithmName resources."
        )
    channels = [channel["ChannelName"] for channel in params.get("InputDataConfig", [])]
    if len(set(channels)) != len(channels):
        raise ValidationException(f"Channel names must be unique within a training job: {channels}.")
    resources = params["ResourceConfig"]
    limits = state.services.limits
    count = resources.get("InstanceCount", 1)
    if count > limits.instances_per_training_job:
        kind = resources.get("InstanceType", DEFAULT_INSTANCE_TYPE)
        raise limit_exceeded(f"{kind} for training job usage", limits.instances_per_training_job, 0, count)
    running = sum(job.instance_count for job in state.training_jobs if job.status in RUNNING)
    if running + count > limits.running_training_jobs:
        raise limit_exceeded(
            "Number of instances across all training jobs", limits.running_training_jobs, running, count
        )


@operation("CreateTrainingJob")
def create_training_job(state: EmulatorState, params: dict) -> dict:
    _check_request(state, params)
    job = state.training_jobs.add(TrainingJob(state, params))
    start_training(state, job)
    return {"TrainingJobArn": job.arn}


@operation("DescribeTrainingJob")
def describe_training_job(state: EmulatorState, params: dict) -> dict:
    return state.training_jobs.get(params["TrainingJobName"]).to_wire()


@operation("ListTrainingJobs")
def list_training_jobs(state: EmulatorState, params: dict) -> dict:
    return page(state.training_jobs, params, "TrainingJobSummaries", TrainingJob.summary, order="Ascending")


@operation("StopTrainingJob")
def stop_training_job(state: EmulatorState, params: dict) -> dict:
    job = state.training_jobs.get(params["TrainingJobName"])
    if not job.request_stop(state.now()):
        raise ValidationException(f"The request was rejected because the training job is in status {job.status}.")
    return {}
