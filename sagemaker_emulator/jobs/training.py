"""Running one training job: the ``/opt/ml`` tree, data from S3, the algorithm process, logs, metrics, artifact.

Steps, each a secondary status: Starting, Downloading (channels from S3 into ``input/data/<channel>``),
Training (``container train`` in a child process, with the request's ``ContainerEntrypoint`` and
``ContainerArguments`` for framework images, its output shipped to CloudWatch and matched against the
metric definitions), Uploading (``model/`` as ``<S3OutputPath>/<job>/output/model.tar.gz``, ``output/data/`` as
``output.tar.gz``). StopTrainingJob and ``MaxRuntimeInSeconds`` send SIGTERM, wait the grace period, then SIGKILL;
what the algorithm saved is still uploaded. A fault in what the caller sent fails the job with ``ClientError: ...``.

The container is sealed (``process.sealed_environment``: the emulator is its AWS, its HOME is the job folder's
``home``), sandboxed where the machine allows (``jobs/sandbox.py``) and its memory limited to the instance type's
(``process.memory_limit``) over all its processes; running out of it, by a ``MemoryError``, the memory guard or the
kernel's SIGKILL, fails the job with SageMaker's out-of-memory reason.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import uuid
from pathlib import Path
from typing import Protocol

from sagemaker_emulator.algorithms.environments import CACHE_VARIABLE, installed
from sagemaker_emulator.algorithms.failures import (
    ALGORITHM_ERROR,
    CLIENT_ERROR,
    INTERNAL_ERROR,
    capped,
    failure_reason,
    out_of_memory_reason,
)
from sagemaker_emulator.algorithms.layout import CURRENT_HOST, JobLayout, create_layout
from sagemaker_emulator.errors import JobInputError
from sagemaker_emulator.jobs import metrics, s3
from sagemaker_emulator.jobs.logs import TRAINING_GROUP, LogShipper
from sagemaker_emulator.jobs.metrics import MetricCollector
from sagemaker_emulator.jobs.process import ChildProcess, container_command, memory_limit
from sagemaker_emulator.state import EmulatorState

LOG = logging.getLogger(__name__)

_CHANNEL_KEYS = ("ContentType", "RecordWrapperType", "CompressionType", "ShuffleConfig")

# What each secondary status says (AWS's StatusMessage wording). The runner says what a step is doing; the
# resource records it, so the resource imports this table, never the other way round.
MESSAGES = {
    "Starting": "Launching requested ML instances",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job exceeded MaxRuntimeInSeconds provided",
}


class Training(Protocol):
    """What the runner reads and changes of its training job (``resources/training_jobs.py``)."""

    name: str
    arn: str
    params: dict
    lock: threading.RLock
    stop_requested: threading.Event
    start_time: float | None
    final_metrics: list[dict]
    metrics_horizon: float | None
    max_runtime_exceeded: bool

    @property
    def image(self) -> str: ...

    @property
    def artifact_uri(self) -> str: ...

    def enter(self, status: str, now: float, message: str | None = None) -> None: ...

    def note(self, message: str, now: float) -> None: ...

    def request_stop(self, now: float) -> bool: ...

    def finish(self, status: str, reason: str | None = None) -> bool: ...


def start_training(state: EmulatorState, job: Training) -> threading.Thread:
    thread = threading.Thread(target=TrainingRun(state, job).run, name=f"training:{job.name}", daemon=True)
    thread.start()
    return thread


class _Ended(Exception):
    """The job left InProgress while it was being prepared (stopped, or the emulator reset)."""


def reported_metric_definitions(report: Path) -> list[dict] | None:
    """The metric definitions in a container's report; None while it is missing or not yet whole."""
    try:
        return json.loads(report.read_text()).get("metric_definitions", [])
    except (OSError, ValueError):
        return None


class TrainingRun:
    def __init__(self, state: EmulatorState, job: Training):
        self.state = state
        self.job = job
        self.services = state.services
        self.folder = self.services.workdir / "training" / f"{job.name}-{uuid.uuid4().hex[:8]}"
        self.layout: JobLayout | None = None
        self.custom_metrics = job.params["AlgorithmSpecification"].get("MetricDefinitions", [])
        self.metrics = MetricCollector(state.now, self.custom_metrics)
        self.report = self.folder / "container-report.json"
        self._builtin_loaded = False
        self.out_of_memory: str | None = None  # what the job used when the memory guard killed it
        self.environments = self.services.workdir / "environments"  # requirements' environments, by hash
        self.environments.mkdir(parents=True, exist_ok=True)
        self.memory = memory_limit(
            job.params["ResourceConfig"]["InstanceType"],
            self.services.limits.training_memory_bytes,
        )

    def run(self) -> None:
        try:
            self._run()
        except _Ended:
            self._end_stopped()
        except JobInputError as error:
            self._fail(failure_reason(CLIENT_ERROR, str(error)))
        except Exception as error:
            LOG.exception("training job %s: emulator fault", self.job.name)
            internal = f"We encountered an internal error. ({type(error).__name__}: {error})"
            self._fail(failure_reason(INTERNAL_ERROR, internal))
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _now(self) -> float:
        return self.state.now()

    def _checkpoint(self) -> None:
        if self.state.retired.is_set() or self.job.stop_requested.is_set():
            raise _Ended()
        if self._runtime_exceeded():
            self.job.max_runtime_exceeded = True
            raise _Ended()

    def _runtime_exceeded(self) -> bool:
        limit = self.job.params.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        return bool(limit) and self.job.start_time is not None and self._now() - self.job.start_time >= limit

    def _run(self) -> None:
        job = self.job
        job.note("Preparing the instances for training", self._now())
        self._checkpoint()
        job.start_time = self._now()
        job.enter("Downloading", self._now())
        channels = {
            channel["ChannelName"]: {
                "TrainingInputMode": channel.get(
                    "InputMode", job.params["AlgorithmSpecification"]["TrainingInputMode"]
                ),
                "S3DistributionType": channel["DataSource"]
                .get("S3DataSource", {})
                .get("S3DataDistributionType", "FullyReplicated"),
                **{key: channel[key] for key in _CHANNEL_KEYS if key in channel},
            }
            for channel in job.params.get("InputDataConfig", [])
        }
        self.layout = create_layout(
            self.folder / "opt_ml",
            {key: str(value) for key, value in job.params["HyperParameters"].items()},
            channels,
            job.params["ResourceConfig"]["InstanceType"],
        )
        s3_client = self.services.client("s3", self.state.region)
        for channel in job.params.get("InputDataConfig", []):
            self._checkpoint()
            source = channel["DataSource"].get("S3DataSource")
            if source is None:
                raise JobInputError(
                    f"Channel '{channel['ChannelName']}': only S3DataSource is supported by the local SageMaker emulator."
                )
            objects = s3.list_source(s3_client, source, self.state.region, job.params.get("RoleArn"))
            s3.download(s3_client, objects, self.layout.channel_dir(channel["ChannelName"]))
        self._checkpoint()
        job.enter("Training", self._now(), "Downloading the training image")
        code = self._train()
        self._conclude(code)

    def _on_line(self, line: str) -> None:
        if not self._builtin_loaded:
            self._load_builtin_metrics()
        self.metrics.feed(line)

    def _load_builtin_metrics(self) -> None:
        """Until the container's report can be read, each line tries again, so no metric line of the algorithm is
        read without the plug-in's definitions (the report is written whole before the algorithm prints)."""
        builtin = reported_metric_definitions(self.report)
        if builtin is None:
            return
        self._builtin_loaded = True
        self.metrics.add(builtin)
        if builtin and not self.custom_metrics:
            with self.job.lock:
                self.job.params["AlgorithmSpecification"]["MetricDefinitions"] = builtin

    def _train(self) -> int:
        job = self.job
        logs = LogShipper(
            self.services.client("logs", self.state.region),
            TRAINING_GROUP,
            f"{job.name}/{CURRENT_HOST}-{int(self._now())}",
            self._now,
            on_line=self._on_line,
        )
        spec = job.params["AlgorithmSpecification"]
        command = container_command(
            "train",
            job.image,
            str(self.layout.root),
            "--report",
            str(self.report),
            "--memory-limit",
            str(self.memory.bytes),
            "--memory-note",
            self.memory.note,
        )
        for option, key in (("--entrypoint", "ContainerEntrypoint"), ("--arguments", "ContainerArguments")):
            if spec.get(key):
                command += [option, json.dumps(spec[key])]
        child = ChildProcess(
            command,
            cwd=self.folder,
            env={
                # FM's compiled kernels, cached for this job only: a cache shared between jobs would let one job's
                # code plant compiled code that a later job runs (about 5 CPU-s to compile again, on large jobs only)
                "NUMBA_CACHE_DIR": str(self.folder / "numba-cache"),
                **{str(k): str(v) for k, v in job.params.get("Environment", {}).items()},
                "TRAINING_JOB_NAME": job.name,  # set in every training container on AWS
                "TRAINING_JOB_ARN": job.arn,
                CACHE_VARIABLE: str(self.environments),
            },
            services=self.services,
            region=self.state.region,
            home=self.folder / "home",
            memory=self.memory,
            writable=[self.environments],
            read_only=installed(self.environments),
        )
        logs.follow(child.stdout)
        job.note(MESSAGES["Training"], self._now())
        try:
            while child.wait(self.services.timings.training_poll_seconds) is None:
                if self.state.retired.is_set() or job.stop_requested.is_set():
                    break
                if self._runtime_exceeded():
                    job.max_runtime_exceeded = True
                    break
            code = child.terminate(self.services.timings.stop_grace_seconds)
            self.out_of_memory = child.out_of_memory
        finally:
            logs.close()
        self.job.final_metrics = self.metrics.final()
        self._publish_metrics()
        return code

    def _publish_metrics(self) -> None:
        """Every matched value to CloudWatch metrics, where ``TrainingJobAnalytics`` reads the curves."""
        stamped = metrics.cloudwatch_series(self.metrics.series())
        if not stamped:
            return
        try:
            metrics.publish(self.services.client("cloudwatch", self.state.region), self.job.name, stamped)
        except Exception:
            LOG.warning("training job %s: could not publish its metrics to CloudWatch", self.job.name, exc_info=True)
            return
        self.job.metrics_horizon = metrics.horizon(stamped)

    def _conclude(self, code: int) -> None:
        job, layout = self.job, self.layout
        if job.max_runtime_exceeded or job.stop_requested.is_set() or self.state.retired.is_set():
            self._end_stopped()
            return
        if self.out_of_memory is not None:
            self._fail(out_of_memory_reason(self.memory.note, self.out_of_memory))
            return
        if code == -signal.SIGKILL:  # the emulator's own SIGKILL only follows a stop, handled above
            self._fail(
                out_of_memory_reason(
                    self.memory.note,
                    f"the algorithm process was killed with SIGKILL (exit code {code}), as the "
                    "kernel's out-of-memory killer does",
                )
            )
            return
        if layout.failure_file.exists() or code != 0:
            reason = (
                capped(layout.failure_file.read_text().strip())
                if layout.failure_file.exists()
                else failure_reason(
                    ALGORITHM_ERROR,
                    f"the algorithm process exited with code {code}; see the job's log stream in {TRAINING_GROUP}",
                )
            )
            self._fail(reason)
            return
        job.enter("Uploading", self._now())
        self._upload()
        job.finish("Completed")

    def _upload(self, only_if_saved: bool = False) -> None:
        layout = self.layout
        if layout is None or (only_if_saved and not any(layout.model_dir.iterdir())):
            return
        client = self.services.client("s3", self.state.region)
        base = s3.join_uri(self.job.params["OutputDataConfig"]["S3OutputPath"], self.job.name, "output")
        s3.upload_file(client, s3.tar_folder(layout.model_dir, self.folder / "model.tar.gz"), self.job.artifact_uri)
        if any(layout.output_data_dir.iterdir()):
            archive = s3.tar_folder(layout.output_data_dir, self.folder / "output.tar.gz")
            s3.upload_file(client, archive, f"{base}/output.tar.gz")

    def _end_stopped(self) -> None:
        job = self.job
        if self.state.retired.is_set():
            return
        if job.max_runtime_exceeded:
            job.request_stop(self._now())
        try:
            self._upload(only_if_saved=True)
        except Exception:
            LOG.warning("training job %s: could not upload what was saved before the stop", job.name, exc_info=True)
        job.finish("Stopped")

    def _fail(self, reason: str) -> None:
        if self.state.retired.is_set():
            return
        self.job.finish("Failed", reason)
