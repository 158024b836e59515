"""Batch transform: every input object through the model server, the answers written as ``<input>.out``.

SageMaker's rules, applied per input object:
- ``SplitType``: ``None`` sends the whole object as one record; ``Line`` splits at newlines (blank lines are
  dropped); ``RecordIO`` splits at RecordIO record boundaries (records stay framed). ``TFRecord`` is not emulated.
- ``BatchStrategy``: ``SingleRecord`` sends one record per request; ``MultiRecord`` packs as many records as fit
  in ``MaxPayloadInMB`` (0 = no limit), lines joined with newlines, RecordIO records concatenated. A record larger
  than the limit fails the job.
- ``AssembleWith``: ``Line`` ends each answer with a newline (unless it already ends with one); ``None``
  concatenates the answers as they are.
- The output object is ``<S3OutputPath>/<key relative to the input prefix>.out``, typed as ``Accept``.
The model server's CPUUtilization and MemoryUtilization go to CloudWatch as AWS publishes a transform job's
(``/aws/sagemaker/TransformJobs``, ``Host`` = ``<job>/<instance id>``; ``jobs/host_metrics.py``).
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from typing import Protocol

from sagemaker_emulator.algorithms.failures import CLIENT_ERROR, INTERNAL_ERROR, failure_reason
from sagemaker_emulator.errors import JobInputError
from sagemaker_emulator.jobs import host_metrics, metrics, s3
from sagemaker_emulator.jobs.inference import HostingError, launch
from sagemaker_emulator.jobs.logs import TRANSFORM_GROUP, LogShipper, instance_id
from sagemaker_emulator.jobs.process import memory_limit
from sagemaker_emulator.state import EmulatorState

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024
NAMESPACE = "/aws/sagemaker/TransformJobs"  # instance metrics, dimension Host = <job>/<instance id>


def split_records(data: bytes, split_type: str) -> list[bytes]:
    """One object's records under ``SplitType``."""
    if split_type == "None":
        return [data] if data else []
    if split_type == "Line":
        return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
    if split_type == "RecordIO":
        from recordio_protobuf import frame, iter_payloads

        try:
            return [frame(payload) for payload in iter_payloads(io.BytesIO(data))]
        except ValueError as error:
            raise JobInputError(f"The input is not valid RecordIO: {error}") from None
    raise JobInputError(
        f"SplitType {split_type} is not supported by the local SageMaker emulator (None, Line, RecordIO)."
    )


def batch_records(records: list[bytes], strategy: str, max_bytes: int, split_type: str) -> Iterator[bytes]:
    """Request bodies under ``BatchStrategy`` and ``MaxPayloadInMB`` (``max_bytes`` 0 = unlimited)."""
    separator = b"\n" if split_type == "Line" else b""
    for index, record in enumerate(records):
        if max_bytes and len(record) > max_bytes:
            raise JobInputError(
                f"Record {index + 1} is {len(record)} bytes, larger than MaxPayloadInMB ({max_bytes // MIB} MB)."
            )
    if strategy == "SingleRecord":
        yield from records
        return
    batch: list[bytes] = []
    size = 0
    for record in records:
        extra = len(record) + (len(separator) if batch else 0)
        if batch and max_bytes and size + extra > max_bytes:
            yield separator.join(batch)
            batch, size = [], 0
            extra = len(record)
        batch.append(record)
        size += extra
    if batch:
        yield separator.join(batch)


def assemble(answers: list[bytes], assemble_with: str) -> bytes:
    if assemble_with == "Line":
        return b"".join(answer if answer.endswith(b"\n") else answer + b"\n" for answer in answers)
    return b"".join(answers)


class Transform(Protocol):
    """What the runner reads and changes of its transform job (``resources/transform_jobs.py``)."""

    name: str
    params: dict
    container: dict
    stop_requested: threading.Event
    start_time: float | None

    def finish(self, status: str, reason: str | None = None) -> bool: ...


def start_transform(state: EmulatorState, job: Transform) -> threading.Thread:
    thread = threading.Thread(target=TransformRun(state, job).run, name=f"transform:{job.name}", daemon=True)
    thread.start()
    return thread


class _Stopped(Exception):
    pass


class TransformRun:
    def __init__(self, state: EmulatorState, job: Transform):
        self.state = state
        self.job = job
        self.services = state.services
        self.folder = self.services.workdir / "transform" / f"{job.name}-{uuid.uuid4().hex[:8]}"
        self.meter: host_metrics.HostMeter | None = None  # the model server's CPU and memory, while it runs

    def run(self) -> None:
        job = self.job
        instance = instance_id()
        logs = LogShipper(
            self.services.client("logs", self.state.region),
            TRANSFORM_GROUP,
            f"{job.name}/{instance}-{int(self.state.now())}",
            self.state.now,
        )
        server = None
        try:
            job.start_time = self.state.now()
            server = launch(self.services, self.state.region, job.container, self.folder, logs, "AllTraffic")
            self.meter = host_metrics.HostMeter(
                server.child.processes, self.state.now, lambda: server.child.exit_cpu
            ).start()
            self._transform(server)
            self._publish_instance_metrics(f"{job.name}/{instance}")
            job.finish("Completed")
        except _Stopped:
            job.finish("Stopped")
        except (JobInputError, HostingError) as error:
            self._fail(failure_reason(CLIENT_ERROR, str(error)))
        except Exception as error:
            LOG.exception("transform job %s: emulator fault", job.name)
            internal = f"We encountered an internal error. ({type(error).__name__}: {error})"
            self._fail(failure_reason(INTERNAL_ERROR, internal))
        finally:
            self._publish_instance_metrics(f"{job.name}/{instance}")
            if server is not None:
                server.stop()
            else:
                logs.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _publish_instance_metrics(self, host: str) -> None:
        """The model server's CPU and memory utilization to CloudWatch, once, as AWS publishes a transform job's."""
        meter, self.meter = self.meter, None
        if meter is None:
            return
        limit = memory_limit(self.job.params["TransformResources"]["InstanceType"]).bytes
        data = host_metrics.metric_data(host, host_metrics.periods(meter.stop(), limit))
        try:
            metrics.put(self.services.client("cloudwatch", self.state.region), data, NAMESPACE)
        except Exception:
            LOG.warning("transform job %s: could not publish its metrics to CloudWatch", self.job.name, exc_info=True)

    def _fail(self, reason: str) -> None:
        if not self.state.retired.is_set():
            self.job.finish("Failed", reason)

    def _check(self) -> None:
        if self.job.stop_requested.is_set() or self.state.retired.is_set():
            raise _Stopped()

    def _transform(self, server) -> None:
        params = self.job.params
        source = params["TransformInput"]["DataSource"]["S3DataSource"]
        split_type = params["TransformInput"]["SplitType"]
        content_type = params["TransformInput"].get("ContentType")
        strategy = params["BatchStrategy"]
        max_bytes = params["MaxPayloadInMB"] * MIB
        output = params["TransformOutput"]
        client = self.services.client("s3", self.state.region)
        for item in s3.list_source(client, source, self.state.region):
            self._check()
            records = split_records(s3.read_object(client, item.uri), split_type)
            answers = []
            for number, body in enumerate(batch_records(records, strategy, max_bytes, split_type), start=1):
                self._check()
                reply = server.invoke(body, content_type, output.get("Accept"))
                if reply.status != 200:
                    raise JobInputError(
                        f"The model answered request {number} for {item.uri} with status {reply.status}: "
                        f"{reply.body.decode('utf-8', 'replace')[:300]}. See the job's log stream in {TRANSFORM_GROUP}."
                    )
                answers.append(reply.body)
            target = s3.join_uri(output["S3OutputPath"], item.relative + ".out")
            s3.put_bytes(client, assemble(answers, output["AssembleWith"]), target, output.get("Accept"))
