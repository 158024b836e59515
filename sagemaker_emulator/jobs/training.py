"""Running one training job: the ``/opt/ml`` tree, data from S3, the algorithm process, logs, metrics, artifact.

Steps, each a secondary status: Starting, Downloading (channels from S3 into ``input/data/<channel>``),
Training (``container train`` in a child process, with the request's ``ContainerEntrypoint`` and
``ContainerArguments`` for framework images, its output shipped to CloudWatch and matched against the
metric definitions), Uploading (``model/`` as ``<S3OutputPath>/<job>/output/model.tar.gz``, ``output/data/`` as
``output.tar.gz``). ``InstanceCount`` = N runs N hosts (``algo-1`` … ``algo-N``), each its own ``/opt/ml`` tree,
container process and log stream ``<job>/algo-<i>-<epoch>``, with AWS's ``resourceconfig.json``, ``SM_HOSTS`` and
``SM_CURRENT_HOST``, and the address of the job's kvstore scheduler (``algorithms/distributed.py``); a channel's
``ShardedByS3Key`` deals its objects to the hosts in key order (host i gets objects i, i + N, …: "approximately 1/n
of the number of S3 objects", and none to a host beyond the last object), ``FullyReplicated`` gives each all.
The first host to fail ends the others and gives the job its reason; ``algo-1``'s model and metrics are the job's.
StopTrainingJob and ``MaxRuntimeInSeconds`` send SIGTERM, wait the grace period, then SIGKILL;
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
import socket
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
from sagemaker_emulator.algorithms.layout import JobLayout, create_layout, host_names
from sagemaker_emulator.errors import JobInputError
from sagemaker_emulator.jobs import host_metrics, metrics, s3
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
        self.hosts = host_names(job.params["ResourceConfig"].get("InstanceCount", 1))
        self.layouts: dict[str, JobLayout] = {}
        self.custom_metrics = job.params["AlgorithmSpecification"].get("MetricDefinitions", [])
        self.metrics = MetricCollector(state.now, self.custom_metrics)
        self.report = self.folder / self.hosts[0] / "container-report.json"
        self._builtin_loaded = False
        self.out_of_memory: str | None = None  # what the job used when the memory guard killed it
        self.environments = self.services.workdir / "environments"  # requirements' environments, by hash
        self.environments.mkdir(parents=True, exist_ok=True)
        self.memory = memory_limit(
            job.params["ResourceConfig"]["InstanceType"],
            self.services.limits.training_memory_bytes,
        )

    @property
    def layout(self) -> JobLayout | None:
        """The first host's tree, whose model and output the job uploads (None until the trees are made)."""
        return self.layouts.get(self.hosts[0])

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
        hyperparameters = {key: str(value) for key, value in job.params["HyperParameters"].items()}
        for host in self.hosts:
            self.layouts[host] = create_layout(
                self.folder / host / "opt_ml",
                hyperparameters,
                channels,
                job.params["ResourceConfig"]["InstanceType"],
                self.hosts,
                host,
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
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
            for position, host in enumerate(self.hosts):
                shard = objects[position :: len(self.hosts)] if sharded else objects
                s3.download(s3_client, shard, self.layouts[host].channel_dir(channel["ChannelName"]))
        self._checkpoint()
        job.enter("Training", self._now(), "Downloading the training image")
        deciding, code = self._train()
        self._conclude(deciding, code)

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

    def _train(self) -> tuple[str, int]:
        """Run every host's container; returns the host that decides the outcome (the first to fail on its own,
        else ``algo-1``) and its exit code. The others are ended as soon as one fails: on AWS a failed host
        fails the job."""
        job = self.job
        epoch = int(self._now())
        cluster = cluster_environment(len(self.hosts))
        children: dict[str, ChildProcess] = {}
        meters: dict[str, host_metrics.HostMeter] = {}
        shippers: list[LogShipper] = []
        try:
            for host in self.hosts:
                shipper = LogShipper(
                    self.services.client("logs", self.state.region),
                    TRAINING_GROUP,
                    f"{job.name}/{host}-{epoch}",
                    self._now,
                    on_line=self._on_line if host == self.hosts[0] else None,
                )
                shippers.append(shipper)
                children[host] = self._start(host, cluster)
                meters[host] = host_metrics.HostMeter(
                    children[host].processes, self._now, lambda child=children[host]: child.exit_cpu
                ).start()
                shipper.follow(children[host].stdout)
            job.note(MESSAGES["Training"], self._now())
            failed = self._watch(children)
            deciding = self._deciding_host(failed)
            codes = {
                host: child.terminate(self.services.timings.stop_grace_seconds) for host, child in children.items()
            }
            self.out_of_memory = next((c.out_of_memory for c in children.values() if c.out_of_memory), None)
        finally:
            for child in children.values():
                if child.returncode is None:
                    child.terminate(self.services.timings.stop_grace_seconds)
            for shipper in shippers:
                shipper.close()
            samples = {host: meter.stop() for host, meter in meters.items()}
        self.job.final_metrics = self.metrics.final()
        self._publish_metrics(samples)
        return deciding, codes[deciding]

    def _start(self, host: str, cluster: dict[str, str]) -> ChildProcess:
        job = self.job
        layout = self.layouts[host]
        report = self.folder / host / "container-report.json"
        spec = job.params["AlgorithmSpecification"]
        command = container_command(
            "train",
            job.image,
            str(layout.root),
            "--report",
            str(report),
            "--memory-limit",
            str(self.memory.bytes),
            "--memory-note",
            self.memory.note,
        )
        for option, key in (("--entrypoint", "ContainerEntrypoint"), ("--arguments", "ContainerArguments")):
            if spec.get(key):
                command += [option, json.dumps(spec[key])]
        return ChildProcess(
            command,
            cwd=self.folder / host,
            env={
                # FM's compiled kernels, cached for this job only: a cache shared between jobs would let one job's
                # code plant compiled code that a later job runs (about 5 CPU-s to compile again, on large jobs only)
                "NUMBA_CACHE_DIR": str(self.folder / host / "numba-cache"),
                **{str(k): str(v) for k, v in job.params.get("Environment", {}).items()},
                "TRAINING_JOB_NAME": job.name,  # set in every training container on AWS
                "TRAINING_JOB_ARN": job.arn,
                "SM_HOSTS": json.dumps(self.hosts, separators=(",", ":")),
                "SM_CURRENT_HOST": host,
                **cluster,
                CACHE_VARIABLE: str(self.environments),
            },
            services=self.services,
            region=self.state.region,
            home=self.folder / host / "home",
            memory=self.memory,
            writable=[self.environments],
            read_only=installed(self.environments),
        )

    def _watch(self, children: dict[str, ChildProcess]) -> list[str]:
        """Wait until every host ends, one fails, or the job is stopped; returns the hosts that failed by then."""
        job = self.job
        first = children[self.hosts[0]]
        while True:
            codes = {host: child.returncode for host, child in children.items()}
            failed = [host for host, code in codes.items() if code not in (None, 0)]
            if failed or all(code is not None for code in codes.values()):
                return failed
            if self.state.retired.is_set() or job.stop_requested.is_set():
                return []
            if self._runtime_exceeded():
                job.max_runtime_exceeded = True
                return []
            first.wait(self.services.timings.training_poll_seconds)

    def _deciding_host(self, failed: list[str]) -> str:
        """Of the hosts that failed, the first that wrote its reason (the others may be its peers left waiting)."""
        for host in failed:
            if self.layouts[host].failure_file.exists():
                return host
        return failed[0] if failed else self.hosts[0]

    def _publish_metrics(self, samples: dict[str, list[host_metrics.Sample]]) -> None:
        """Every matched value to CloudWatch metrics, where ``TrainingJobAnalytics`` reads the curves, and each
        host's instance metrics, where ``common.costs`` reads the CPU seconds."""
        stamped = metrics.cloudwatch_series(self.metrics.series())
        instance = [
            entry
            for host, taken in samples.items()
            for entry in host_metrics.metric_data(
                f"{self.job.name}/{host}", host_metrics.periods(taken, self.memory.bytes)
            )
        ]
        try:
            cloudwatch = self.services.client("cloudwatch", self.state.region)
            metrics.publish(cloudwatch, self.job.name, stamped)
            metrics.put(cloudwatch, instance)
        except Exception:
            LOG.warning("training job %s: could not publish its metrics to CloudWatch", self.job.name, exc_info=True)
            return
        self.job.metrics_horizon = metrics.horizon(stamped)

    def _conclude(self, host: str, code: int) -> None:
        job, layout = self.job, self.layouts[host]
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
                    f"the algorithm process on {host} exited with code {code}; see the job's log stream "
                    f"in {TRAINING_GROUP}",
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


def cluster_environment(count: int) -> dict[str, str]:
    """What every host of a multi-instance job needs to find the kvstore's scheduler (none for one host).

    The scheduler's port is taken free now and left for ``algo-1``'s container to bind a moment later.
    """
    if count == 1:
        return {}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {
        "DMLC_PS_ROOT_URI": "127.0.0.1",
        "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NUM_WORKER": str(count),
        "DMLC_NUM_SERVER": str(count),
    }
