"""The emulator's side of a model server: fetch and unpack ``model.tar.gz``, start the container, forward requests.

One :class:`ModelServer` is one inference container (``container serve`` in a child process, in the jobs' sandbox
where the machine has one: its folder writable, HOME hidden, its own pid namespace) serving one model on a
loopback port. Endpoints run one per production variant; batch transform jobs run one for their duration.
Faults while preparing become :class:`HostingError` with AWS's wording for ``FailureReason``.
"""

from __future__ import annotations

import shutil
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sagemaker_emulator.errors import JobInputError
from sagemaker_emulator.jobs import s3
from sagemaker_emulator.jobs.logs import LogShipper
from sagemaker_emulator.jobs.model_client import ModelClient, ModelConnectionError, ModelTimeout
from sagemaker_emulator.jobs.process import ChildProcess, container_command
from sagemaker_emulator.state import Services


class HostingError(Exception):
    """A model that cannot be served; the message is the resource's ``FailureReason``."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str


def fetch_model(client, model_data_url: str | None, folder: Path) -> Path:
    """Download and unpack a model artifact into ``folder/model`` (left empty when there is no artifact).

    Members are confined by :func:`sagemaker_emulator.algorithms.archives.extract`, on every Python from 3.11.0.
    """
    from sagemaker_emulator.algorithms import archives

    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if not model_data_url:
        return model_dir
    archive = folder / "model.tar.gz"
    bucket, key = s3.split_uri(model_data_url)
    try:
        archive.write_bytes(s3.read_object(client, model_data_url))
    except JobInputError:
        raise HostingError(
            f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an object "
            "located at the URL and that the role passed to CreateModel has permissions to download the model."
        ) from None
    try:
        archives.extract(archive, model_dir)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise HostingError(
            f'Failed to extract model data archive from URL "{model_data_url}". Please ensure that the object '
            f"located at the URL is a valid tar.gz archive. ({error})"
        ) from None
    finally:
        archive.unlink(missing_ok=True)
    return model_dir


class ModelServer:
    """One running inference container; :meth:`invoke` forwards a request, :meth:`ping` checks it, :meth:`stop` ends it.

    Setting ``cancel`` while the container starts stops it and raises :class:`HostingError`, so that deleting an
    endpoint need not wait for a model that is still loading.
    """

    def __init__(
        self,
        services: Services,
        region: str,
        image: str,
        folder: Path,
        environment: dict | None,
        logs: LogShipper,
        variant: str = "AllTraffic",
        cancel: threading.Event | None = None,
    ):
        self.services = services
        self.variant = variant
        self.cancel = cancel
        self.image = image
        self.folder = folder
        self.logs = logs
        self.port_file = folder / "port"
        self.failure_file = folder / "failure"
        self.child = ChildProcess(
            container_command(
                "serve",
                image,
                str(folder / "model"),
                "--port-file",
                str(self.port_file),
                "--failure",
                str(self.failure_file),
            ),
            cwd=folder,
            env={str(k): str(v) for k, v in (environment or {}).items()},
            services=services,
            region=region,
            home=folder / "home",
        )
        logs.follow(self.child.stdout)
        try:
            self.port = self._wait_ready()
        except HostingError:
            self.stop()
            raise
        self._client = ModelClient(self.port)

    def _wait_ready(self) -> int:
        limit = self.services.timings.model_ready_timeout_seconds
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.cancel is not None and self.cancel.is_set():
                raise HostingError(f"The model server of production variant {self.variant} was stopped while starting.")
            if self.port_file.exists():
                return int(self.port_file.read_text())
            if self.child.returncode is not None:
                self.child.reap()
                detail = self.failure_file.read_text() if self.failure_file.exists() else "the container exited"
                raise HostingError(
                    f"The primary container for production variant {self.variant} did not pass the ping health check. "
                    f"Please check CloudWatch logs for this endpoint. ({detail})"
                )
            time.sleep(0.02)
        raise HostingError(f"The model server did not become ready within {limit:.0f} seconds.")

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None, custom_attributes: str | None = None
    ) -> Reply:
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        answer = self._client.request(
            "POST", "/invocations", body, headers, timeout=self.services.timings.invocation_timeout_seconds
        )
        return Reply(answer.status, answer.body, answer.headers.get("content-type", "application/octet-stream"))

    def ping(self, timeout: float) -> bool:
        """SageMaker's health check: does ``GET /ping`` answer 200 within ``timeout`` seconds?"""
        try:
            return self._client.request("GET", "/ping", b"", {}, timeout=timeout).status == 200
        except (ModelTimeout, ModelConnectionError):
            return False

    @property
    def alive(self) -> bool:
        return self.child.returncode is None

    def stop(self, grace_seconds: float | None = None) -> None:
        """End the container (SIGTERM, SIGKILL after ``grace_seconds``, by default ``model_stop_grace_seconds``),
        ship its last log lines, remove its folder."""
        if grace_seconds is None:
            grace_seconds = self.services.timings.model_stop_grace_seconds
        self.child.terminate(grace_seconds=grace_seconds)
        self.logs.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def launch(
    services: Services,
    region: str,
    container: dict,
    folder: Path,
    logs: LogShipper,
    variant: str,
    cancel: threading.Event | None = None,
) -> ModelServer:
    """Fetch a model's artifact and start its container; on failure nothing is left running.

    Raises:
        HostingError: the artifact cannot be fetched or unpacked, or the model does not load.
    """
    try:
        fetch_model(services.client("s3", region), container.get("ModelDataUrl"), folder)
    except HostingError:
        logs.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ModelServer(
        services, region, container["Image"], folder, container.get("Environment"), logs, variant, cancel
    )
