"""The running emulator: one loopback HTTP server (ours + moto), its state, its scratch folder, its children.

    emulator = sagemaker_emulator.start()          # 127.0.0.1, a free port, in a background thread
    boto3.client("sagemaker", endpoint_url=emulator.url, ...)
    emulator.reset()                               # fresh state (tests); moto's too
    emulator.stop()                                # ends every job and model server it started

moto keeps its backends in process-wide globals, so two emulators in one process share S3, IAM and Logs.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.iam.actions import INTERNAL_HEADER, ActionRecorder
from sagemaker_emulator.iam.evaluation import role_policies
from sagemaker_emulator.jobs.endpoints import stop_all as stop_endpoints
from sagemaker_emulator.jobs.process import Supervisor
from sagemaker_emulator.loopback import is_loopback
from sagemaker_emulator.server import EmulatorApp, RequestHandler
from sagemaker_emulator.state import Clock, EmulatorState, Limits, Services, SystemClock, Timings
from sagemaker_emulator.store import persistence
from sagemaker_emulator.store.moto_store import MotoStore
from sagemaker_emulator.store.persistence import StateStore
from sagemaker_emulator.store.quarantine import Quarantine

LOG = logging.getLogger(__name__)

# moto's server grants every origin CORS by default; no browser page may reach the emulator, so it is off (the
# gate in server.py also refuses any request that carries an Origin header before moto sees it).
werkzeug_app.DISABLE_GLOBAL_CORS = True
IDLE_TIMEOUT_SECONDS = 60.0
# Saving state (a few MB of changed objects at most) and closing the server: about a second on a quiet machine, but
# the bound is for a stop that hangs, not one that is slow: a machine under heavy load (20 runnable processes on 2
# cores, measured) took over 20 s, and a stop cut short there exits 1 having killed its children.
STOP_MARGIN_SECONDS = 60.0

SCRATCH_PREFIX = "sagemaker-emulator-"


def sweep_scratch() -> list[Path]:
    """Remove scratch folders left by emulators that died without cleaning up (their pid is in the name)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


OWN_HEADER = "X-Emulator-Own"  # carries a per-emulator secret token on the requests of its own clients
_OWN_ENVIRON = "HTTP_" + OWN_HEADER.upper().replace("-", "_")


class _Closed:
    """The server's application while the emulator stops: its own requests (saving state, shipping its children's
    last log lines) pass, every other one is answered 503 with ``Connection: close``, so busy clients cannot hold up
    the save or the shutdown."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    def __call__(self, environ, start_response):
        if hmac.compare_digest(environ.get(_OWN_ENVIRON, ""), self.token):
            return self.app(environ, start_response)
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"The local SageMaker emulator is stopping.\n"]


class Emulator:
    """A local SageMaker on ``host:port`` (loopback only); ``port=0`` picks a free port.

    The assembly: it builds the state's collaborators (clock, clients, the child :class:`Supervisor`) and knobs
    (``limits``, ``timings``; ``stop_grace_seconds`` overrides the one timing callers most often change).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workdir: Path | None = None,
        clock: Clock | None = None,
        limits: Limits | None = None,
        timings: Timings | None = None,
        stop_grace_seconds: float | None = None,
        credentials: Credentials | None = None,
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        state_dir: Path | None = None,
        actions_file: Path | None = None,
    ):
        if not is_loopback(host):
            raise ValueError(f"The emulator only listens on loopback addresses; {host!r} is not one.")
        self._own_workdir = workdir is None
        if workdir is None:
            sweep_scratch()
        root = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        )
        self.restored = ""  # what start() brought back from state_dir, in words
        self.credentials = credentials or Credentials.generate()
        self._own_token = secrets.token_hex(16)
        self._states: dict[str, EmulatorState] = {}
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        app = EmulatorApp(self.state_for, DomainDispatcherApplication(create_backend_app), self.credentials)
        timings = timings or Timings()
        handler = RequestHandler.bounded(idle_timeout_seconds, timings.request_seconds)
        self._server = make_server(host, port, app, threaded=True, request_handler=handler)
        self.host = host
        self.port = self._server.server_address[1]
        app.serve_at(host, self.port)
        self.app = app
        app.role_policies = lambda arn: role_policies(self.internal_client("iam", "us-east-1"), arn)
        if actions_file is not None:
            app.recorder = ActionRecorder(Path(actions_file))
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"
        self.services = Services(
            clock=clock or SystemClock(),
            workdir=root,
            limits=limits or Limits(),
            client=self.client,
            credentials=self.credentials,
            url=self.url,
            supervisor=Supervisor(),
            timings=timings,
        )
        if stop_grace_seconds is not None:
            self.services.timings = dataclasses.replace(self.services.timings, stop_grace_seconds=stop_grace_seconds)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._moto_store = self._state_store = self.quarantine = None
        if state_dir is not None:
            saves = self.services.timings
            self.quarantine = Quarantine(Path(state_dir))
            self._moto_store = MotoStore(
                Path(state_dir) / "moto",
                self.internal_client,
                interval=saves.moto_save_seconds,
                quarantine=self.quarantine,
            )
            self._state_store = StateStore(
                Path(state_dir), interval=saves.state_save_seconds, quarantine=self.quarantine
            )
            app.on_moto_change = self._moto_store.mark_dirty

    def start(self) -> Emulator:
        """Serve; with a ``state_dir``, first bring back what it holds (moto's data, then SageMaker's resources)."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagemaker-emulator", daemon=True)
        self._thread.start()
        if self._moto_store is not None:
            self._restore()
        return self

    def _restore(self) -> None:
        started = time.monotonic()
        moto = self._moto_store.restore()
        counts: dict[str, int] = {}
        for region, records in self._state_store.load().items():
            for kind, count in persistence.restore(records, self.state_for(region), self.quarantine).items():
                counts[kind] = counts.get(kind, 0) + count
        self.quarantine.report()
        self._moto_store.start()
        self._state_store.watch(lambda: dict(self._states))
        sagemaker = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items() if count)
        self.restored = (
            f"State: {moto}; SageMaker resources restored: {sagemaker or 'none'} "
            f"({time.monotonic() - started:.1f} s in all; endpoints are hosted again in the background)."
        )
        if self.quarantine.losses:
            self.restored += (
                f" Lost at start: {len(self.quarantine.losses)} saved item(s) could not be loaded and were set "
                f"aside in {self.quarantine.root}: `python -m sagemaker_emulator status` lists them."
            )

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
                config = _client_config()
                client = session.client(service, endpoint_url=self.url, config=config)
                client.meta.events.register("before-send", self._mark_own)
                self._clients[key] = client
            return self._clients[key]

    def internal_client(self, service: str, region: str):
        """A client for the emulator's own bookkeeping (saving state, reading policies): its calls are not recorded
        as actions, since no notebook makes them."""
        key = ("internal", service, region)
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session(region_name=region, **self.credentials.as_boto3())
                config = _client_config()
                client = session.client(service, endpoint_url=self.url, config=config)
                client.meta.events.register("before-send", _mark_internal)
                client.meta.events.register("before-send", self._mark_own)
                self._clients[key] = client
            return self._clients[key]

    def _mark_own(self, request, **_) -> None:
        request.headers[OWN_HEADER] = self._own_token

    def _retire(self) -> None:
        """End every endpoint and job: every child gets SIGTERM at once and one grace in all (not one grace per
        child, one after the other), while the endpoints' monitors are stopped."""
        with self._lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            state.retired.set()
        children = threading.Thread(target=self._end_children, name="end-children", daemon=True)
        children.start()
        for state in states:
            stop_endpoints(state)
        children.join()
        self.services.supervisor.stop_all(grace_seconds=0.0)  # a replacement model server that started meanwhile

    def _end_children(self) -> None:
        live = self.services.supervisor.live()
        self.signal_children(signal.SIGTERM)
        deadline = time.monotonic() + children_grace_seconds(self.services.timings)
        for child in live:
            child.wait(max(0.0, deadline - time.monotonic()))
        self.services.supervisor.stop_all(grace_seconds=0.0)

    def signal_children(self, signum: int) -> None:
        """Send ``signum`` to every live child's processes (SIGKILL: the last resort of a stop that overran)."""
        for child in self.services.supervisor.live():
            child.signal(signum)

    def reset(self) -> None:
        """Forget every resource and end every child process; moto's backends are reset too."""
        from moto.moto_api._internal.models import moto_api_backend

        self._retire()
        moto_api_backend.reset()

    def stop(self) -> None:
        """Stop taking requests (but its own), save the state (with a ``state_dir``), end every child process, stop
        serving and remove the scratch folder; calling it again does nothing. Busy clients no longer compete with the
        save, so it fits in :func:`stop_bound_seconds` (which ``serve`` enforces)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.app = _Closed(self._server.app, self._own_token)
        if self._state_store is not None:
            self._state_store.close()
            self._moto_store.close()
        self._retire()
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._own_workdir:
            shutil.rmtree(self.services.workdir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _client_config() -> Config:
    """Path-style S3, a few retries, and no proxy: ``proxies={}`` keeps botocore from using ``HTTP_PROXY``, which
    would send these loopback requests to the proxy."""
    return Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}, proxies={})


def children_grace_seconds(timings: Timings) -> float:
    """How long a stopping emulator lets its jobs and model servers end on their own after SIGTERM."""
    return max(timings.stop_grace_seconds, timings.model_stop_grace_seconds)


def stop_bound_seconds(timings: Timings) -> float:
    """How long :meth:`Emulator.stop` may take: the children's grace, plus a margin for saving state and closing."""
    return children_grace_seconds(timings) + STOP_MARGIN_SECONDS


def _mark_internal(request, **_) -> None:
    request.headers[INTERNAL_HEADER] = "1"


def start(host: str = "127.0.0.1", port: int = 0, **options) -> Emulator:
    """Start an emulator serving in a background thread of this process; see :class:`Emulator` for options."""
    return Emulator(host, port, **options).start()
