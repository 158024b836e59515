"""Ship a child's output to CloudWatch Logs (moto), line by line, as SageMaker does for its containers.

Streams follow AWS's names: ``/aws/sagemaker/TrainingJobs`` ``<job>/algo-1-<epoch>``,
``/aws/sagemaker/Endpoints/<endpoint>`` ``<variant>/i-<id>``, ``/aws/sagemaker/TransformJobs``
``<job>/i-<id>-<epoch>``. Lines are batched (every ``flush_seconds`` or ``MAX_BATCH`` lines) and every line
is on CloudWatch before :meth:`LogShipper.close` returns, so a job reaches its final status only after its
last line can be read (the SDK reads the logs one last time when it sees the final status).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import TextIO

LOG = logging.getLogger(__name__)

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
MAX_BATCH = 1000
MAX_MESSAGE_CHARS = 200_000  # CloudWatch caps one event at 256 KiB


def endpoint_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


class LogShipper:
    """Puts lines into one log stream; lines come from :meth:`write` or a pipe given to :meth:`follow`."""

    def __init__(
        self,
        client,
        group: str,
        stream: str,
        now: Callable[[], float],
        on_line: Callable[[str], None] | None = None,
        flush_seconds: float = 0.2,
    ):
        """``now`` is the emulator's clock (seconds since the epoch), which stamps every event."""
        self.client = client
        self._now = now
        self.group = group
        self.stream = stream
        self._on_line = on_line
        self._flush_seconds = flush_seconds
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._readers: list[threading.Thread] = []
        self._ensure_stream()
        self._flusher = threading.Thread(target=self._flush_loop, name=f"logs:{stream}", daemon=True)
        self._flusher.start()

    def _ensure_stream(self) -> None:
        errors = self.client.exceptions
        try:
            self.client.create_log_group(logGroupName=self.group)
        except errors.ResourceAlreadyExistsException:
            pass
        try:
            self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except errors.ResourceAlreadyExistsException:
            pass

    def write(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if self._on_line is not None:
            self._on_line(line)
        event = {"timestamp": int(self._now() * 1000), "message": line[:MAX_MESSAGE_CHARS] or " "}
        with self._lock:
            self._pending.append(event)
            full = len(self._pending) >= MAX_BATCH
        if full:
            self.flush()

    def follow(self, pipe: TextIO) -> None:
        """Read ``pipe`` to its end in a background thread, writing each line."""

        def read() -> None:
            for line in pipe:
                self.write(line)

        reader = threading.Thread(target=read, name=f"logs-read:{self.stream}", daemon=True)
        reader.start()
        self._readers.append(reader)

    def flush(self) -> None:
        with self._send_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self.client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
            except Exception:  # a log line must never fail a job; keep going
                LOG.warning("could not put %d log events to %s %s", len(batch), self.group, self.stream, exc_info=True)

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_seconds):
            self.flush()

    def close(self, timeout: float = 10.0) -> None:
        """Wait for the followed pipes to end, then send what is left."""
        for reader in self._readers:
            reader.join(timeout)
        self._closed.set()
        self._flusher.join(timeout)
        self.flush()
