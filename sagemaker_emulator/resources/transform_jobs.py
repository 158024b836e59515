"""Batch transform jobs: Create/Describe/List/StopTransformJob. The work itself is in ``jobs/transform.py``.

Status table (AWS's): ``InProgress → Completed | Failed | Stopping``, ``Stopping → Stopped`` (or ``Completed`` /
``Failed`` when the job ends first). The model is read when the job is created.
"""

from __future__ import annotations

import copy
import threading

from sagemaker_emulator.errors import ValidationException, limit_exceeded
from sagemaker_emulator.jobs.transform import start_transform
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import RUNNING, EmulatorState, Resource, interrupted
from sagemaker_emulator.store.schema import REQUIRED

MAX_PAYLOAD_MB = 100
INTERRUPTED = interrupted("transform job")


class TransformJob(Resource):
    ARN_TYPE = "transform-job"
    PERSISTED = {
        "params": REQUIRED,
        "container": REQUIRED,
        "failure_reason": None,
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

    def __init__(self, state: EmulatorState, params: dict, container: dict):
        name = params["TransformJobName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"), "InProgress")
        self.params = copy.deepcopy(params)
        self.params.pop("Tags", None)
        self.params.setdefault("BatchStrategy", "MultiRecord")
        self.params.setdefault("MaxPayloadInMB", 6)
        self.params.setdefault("MaxConcurrentTransforms", 1)
        self.params["TransformInput"].setdefault("SplitType", "None")
        self.params["TransformInput"].setdefault("CompressionType", "None")
        self.params["TransformOutput"].setdefault("AssembleWith", "None")
        self.container = container
        self.failure_reason: str | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.stop_requested = threading.Event()
        self.clock = state.clock

    def after_restore(self, state: EmulatorState) -> None:
        """A job cannot go on after its emulator stopped: one that was running is failed, as a lost host fails it."""
        self.stop_requested = threading.Event()
        self.clock = state.clock
        if self.status in RUNNING:
            self.finish("Failed", INTERRUPTED)

    def finish(self, status: str, reason: str | None = None) -> bool:
        """Reach a final status (with a failure's ``reason``); False if the job could not move there."""
        now = self.clock.now()
        with self.lock:
            if not self.advance(status, now):
                return False
            self.end_time = now
            self.failure_reason = reason
            return True

    def to_wire(self) -> dict:
        with self.lock:
            wire = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "TransformJobStatus": self.status,
                "CreationTime": self.creation_time,
                "TransformStartTime": self.start_time,
                "TransformEndTime": self.end_time,
                "FailureReason": self.failure_reason,
            }
            for key in (
                "ModelName",
                "MaxConcurrentTransforms",
                "MaxPayloadInMB",
                "BatchStrategy",
                "Environment",
                "TransformInput",
                "TransformOutput",
                "TransformResources",
                "DataProcessing",
                "ModelClientConfig",
                "DataCaptureConfig",
                "ExperimentConfig",
            ):
                if key in self.params:
                    wire[key] = copy.deepcopy(self.params[key])
            return {key: value for key, value in wire.items() if value is not None}

    def summary(self) -> dict:
        with self.lock:
            entry = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "TransformJobStatus": self.status,
            }
            if self.end_time is not None:
                entry["TransformEndTime"] = self.end_time
            if self.failure_reason:
                entry["FailureReason"] = self.failure_reason
            return entry


def _check_request(state: EmulatorState, params: dict) -> None:
    payload = params.get("MaxPayloadInMB", 6)
    if payload > MAX_PAYLOAD_MB:
        raise ValidationException(f"MaxPayloadInMB must be at most {MAX_PAYLOAD_MB}, got {payload}.")
    if "S3DataSource" not in params["TransformInput"]["DataSource"]:
        raise ValidationException("TransformInput.DataSource.S3DataSource is required.")
    running = sum(1 for job in state.transform_jobs if job.status in RUNNING)
    limit = state.services.limits.running_transform_jobs
    if running >= limit:
        raise limit_exceeded("Number of instances across all transform jobs", limit, running, 1)


@operation("CreateTransformJob")
def create_transform_job(state: EmulatorState, params: dict) -> dict:
    _check_request(state, params)
    model = state.models.get(params["ModelName"])
    container = dict(model.container())
    container["Environment"] = {**container.get("Environment", {}), **params.get("Environment", {})}
    job = state.transform_jobs.add(TransformJob(state, params, container))
    start_transform(state, job)
    return {"TransformJobArn": job.arn}


@operation("DescribeTransformJob")
def describe_transform_job(state: EmulatorState, params: dict) -> dict:
    return state.transform_jobs.get(params["TransformJobName"]).to_wire()


@operation("ListTransformJobs")
def list_transform_jobs(state: EmulatorState, params: dict) -> dict:
    return page(state.transform_jobs, params, "TransformJobSummaries", TransformJob.summary)


@operation("StopTransformJob")
def stop_transform_job(state: EmulatorState, params: dict) -> dict:
    job = state.transform_jobs.get(params["TransformJobName"])
    with job.lock:
        if not job.advance("Stopping", state.now()):
            raise ValidationException(f"The request was rejected because the transform job is in status {job.status}.")
    job.stop_requested.set()
    return {}
