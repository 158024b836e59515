"""The running emulator: one loopback HTTP server (ours + moto), its state, its scratch folder, its children.

    emulator = sagemaker_emulator.start()          # 127.0.0.1, a free port, in a background thread
    boto3.client("sagemaker", endpoint_url=emulator.url, ...)
    emulator.reset()                               # fresh state (tests); moto's too
    emulator.stop()                                # ends every job and model server it started

moto keeps its backends in process-wide globals, so two emulators in one process share S3, IAM and Logs.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.loopback import is_loopback
from sagemaker_emulator.resources.endpoints import stop_all as stop_endpoints
from sagemaker_emulator.server import EmulatorApp
from sagemaker_emulator.state import Clock, EmulatorState, Limits, Services, SystemClock

LOG = logging.getLogger(__name__)

class _QuietHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's per-request log line (it would flood a notebook)."""

    disable_nagle_algorithm = True  # headers and body go out in separate writes; don't wait for the ACK

    def log(self, type: str, message: str, *args) -> None:
        if type == "error":
            LOG.debug(message, *args)


class Emulator:
    """A local SageMaker on ``host:port`` (loopback only); ``port=0`` picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workdir: Path | None = None,
        clock: Clock | None = None,
        limits: Limits | None = None,
        stop_grace_seconds: float = 10.0,
        credentials: Credentials | None = None,
    ):
        if not is_loopback(host):
            raise ValueError(f"The emulator only listens on loopback addresses; {host!r} is not one.")
        self._own_workdir = workdir is None
        root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="sagemaker-emulator-"))
        self.credentials = credentials or Credentials.generate()
        self._states: dict[str, EmulatorState] = {}
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        app = EmulatorApp(self.state_for, DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self.host = host
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.services = Services(
            clock=clock or SystemClock(),
            workdir=root,
            limits=limits or Limits(),
            client=self.client,
            credentials=self.credentials,
            url=self.url,
            stop_grace_seconds=stop_grace_seconds,
        )
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> "Emulator":
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagemaker-emulator", daemon=True)
        self._thread.start()
        return self

    def state_for(self, region: str) -> EmulatorState:
        with self._lock:
            if region not in self._states:
                self._states[region] = EmulatorState(region, self.services)
            return self._states[region]

    def client(self, service: str, region: str):
        """A boto3 client for this emulator (the job runners use it to reach moto's S3 and Logs)."""
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                session = boto3.session.Session(region_name=region, **self.credentials.as_boto3())
                config = Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
                self._clients[key] = session.client(service, endpoint_url=self.url, config=config)
            return self._clients[key]

    def _retire(self) -> None:
        with self._lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            state.retired.set()
        for state in states:
            stop_endpoints(state)
        self.services.supervisor.stop_all()

    def reset(self) -> None:
        """Forget every resource and end every child process; moto's backends are reset too."""
        from moto.moto_api._internal.models import moto_api_backend

        self._retire()
        moto_api_backend.reset()

    def stop(self) -> None:
        """End every child process, stop serving and remove the scratch folder; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._retire()
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._own_workdir:
            shutil.rmtree(self.services.workdir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0, **options) -> Emulator:
    """Start an emulator serving in a background thread of this process; see :class:`Emulator` for options."""
    return Emulator(host, port, **options).start()
