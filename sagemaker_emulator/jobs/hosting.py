"""Hosting an endpoint: a model server per production variant, kept healthy as SageMaker keeps its instances.

The runner behind an endpoint's lifecycle (``jobs/endpoints.py``); like every runner it never imports a resource
module, so what the endpoint must learn comes back through the callback given to :meth:`Deployment.watch`.
``jobs/inference.py`` runs one container; this module runs a fleet.

Health: SageMaker replaces an instance that fails its health checks and the endpoint stays ``InService``.
- One monitor thread per deployment calls each model server's ``GET /ping`` every
  ``Timings.health_check_interval_seconds`` (5 s by default: a loopback ping costs nothing). A server whose
  process has exited, or that misses ``Timings.health_check_misses`` (3) pings in a row (no 200 within
  ``health_check_timeout_seconds``, 2 s), so that one slow answer under load is not taken for a hang, is killed
  and replaced: the model is downloaded again and a new container starts, under a new instance id and log stream.
  The failed instance's stream ends with a line saying why; the new stream starts with the one it replaces.
- While a variant has no live server, invocations routed to it are refused at once (``invocations.py`` answers
  ``ServiceUnavailable``) and call :meth:`Deployment.check_soon`, so the first request after a crash starts the
  replacement without waiting for the next tick.
- A model that keeps crashing: the ``Timings.max_instance_failures``-th (3) failure of one variant within
  ``instance_failure_window_seconds`` (600 s) ends the deployment and calls ``on_failure(reason)``, and the
  endpoint turns ``Failed``. A failure is an instance that died or went silent, or a replacement that did not
  start. Three, because one crash can be a fluke (a memory spike) and two a coincidence, while a model failing
  three times in ten minutes will go on failing, and every retry downloads and loads it again.
- :meth:`Deployment.stop` (emulator reset or stop) ends the monitor, cancels a replacement that is still starting
  and returns once no model server of the deployment is running.

Traffic: a model server gets requests once it has answered its first ``GET /ping`` (``health_check_misses``
tries of ``health_check_timeout_seconds``, as the monitor counts), as an instance joins an endpoint once it passes
the ping health check; so an update swaps configurations only once the new one answers.

Draining: an update or a delete must not cut off the invocations the old deployment is answering (a SIGTERM'd
model server drops them: before draining, ``tests/emulator/test_endpoint_traffic.py`` saw 2 to 5 ``ModelError``
answers in 4 updates). Each invocation is counted in with :meth:`Deployment.admit` under the endpoint's lock, the
lock an update holds while it swaps deployments and a delete while it moves the status; so after the swap none
reaches the old deployment, and :meth:`Deployment.retire` waits for the ones it has (at most
``invocation_timeout_seconds``, as long as any answer may take) before it stops the servers.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sagemaker_emulator.jobs.inference import HostingError, ModelServer, launch
from sagemaker_emulator.jobs.logs import LogShipper, endpoint_group, instance_id
from sagemaker_emulator.state import Services

LOG = logging.getLogger(__name__)

HEALTH = "[SageMaker health check]"  # marks the lines the emulator, not the container, writes to a stream


@dataclass
class VariantPlan:
    """What one production variant will run, read from the config and its model when the request is made."""

    name: str
    weight: float
    instance_type: str
    instance_count: int
    container: dict


class Variant:
    """One production variant: its plan and the instance serving it (``server`` is None while it is replaced)."""

    def __init__(self, plan: VariantPlan, instance: str, server: ModelServer, deployed_at: float):
        self.plan = plan
        self.instance = instance
        self.server: ModelServer | None = server
        self.deployed_at = deployed_at
        self.missed_pings = 0
        self.failures: list[float] = []  # clock times of recent failures, for the crash-loop window


def _note(logs: LogShipper, line: str) -> None:
    """Append one of the emulator's own lines to an instance's stream (also after the stream was closed)."""
    logs.write(f"{HEALTH} {line}")
    logs.flush()


def _exit_text(code: int) -> str:
    if code < 0:
        return f"the model server was killed by {signal.Signals(-code).name}"
    return f"the model server exited with code {code}"


class Deployment:
    """The model servers of one endpoint configuration: :meth:`launch`, then :meth:`watch`, finally :meth:`stop`."""

    def __init__(self, services: Services, region: str, endpoint: str):
        self.services = services
        self.region = region
        self.endpoint = endpoint
        self.root: Path = services.workdir / "endpoints" / f"{endpoint}-{uuid.uuid4().hex[:8]}"
        self.variants: list[Variant] = []
        self.failure: str | None = None  # set when the deployment gave up on a crashing model
        self._logs_client = services.client("logs", region)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None
        self._on_failure: Callable[[str], None] | None = None
        self._requests = 0  # invocations admitted and not yet answered
        self._idle = threading.Condition()

    @classmethod
    def launch(cls, services: Services, region: str, endpoint: str, plans: list[VariantPlan]) -> Deployment:
        """Start a model server per variant; if one fails, stop the others and raise its HostingError."""
        deployment = cls(services, region, endpoint)
        try:
            for plan in plans:
                instance = instance_id()
                server = deployment._start(plan, instance, deployment._logs(plan, instance))
                deployment.variants.append(Variant(plan, instance, server, services.clock.now()))
        except Exception:
            deployment.stop()
            raise
        return deployment

    def _logs(self, plan: VariantPlan, instance: str) -> LogShipper:
        return LogShipper(
            self._logs_client, endpoint_group(self.endpoint), f"{plan.name}/{instance}", self.services.clock.now
        )

    def _start(self, plan: VariantPlan, instance: str, logs: LogShipper) -> ModelServer:
        """Start a model server and have it pass its first health check, as an instance must before it gets traffic.

        Raises:
            HostingError: the server did not start, or did not answer ``health_check_misses`` pings in a row.
        """
        folder = self.root / plan.name / instance
        server = launch(self.services, self.region, plan.container, folder, logs, plan.name, self._stopping)
        timings = self.services.timings
        if any(server.ping(timings.health_check_timeout_seconds) for _ in range(timings.health_check_misses)):
            return server
        server.stop(grace_seconds=0.0)
        raise HostingError(
            f"The primary container for production variant {plan.name} did not pass the ping health check. Please "
            f"check CloudWatch logs for this endpoint. (It did not answer {timings.health_check_misses} GET /ping "
            f"health checks in a row within {timings.health_check_timeout_seconds:g} s each.)"
        )

    def watch(self, on_failure: Callable[[str], None]) -> None:
        """Start the health monitor; ``on_failure(reason)`` is called once if a variant keeps failing."""
        self._on_failure = on_failure
        self._monitor = threading.Thread(target=self._watch, name=f"health:{self.endpoint}", daemon=True)
        self._monitor.start()

    def check_soon(self) -> None:
        """Run the health checks now rather than at the next tick (an invocation found a variant down)."""
        self._wake.set()

    def admit(self) -> None:
        """Count in one invocation routed here; call it under the endpoint's lock (see the module's "Draining")."""
        with self._idle:
            self._requests += 1

    def release(self) -> None:
        """An admitted invocation is over, answered or not."""
        with self._idle:
            self._requests -= 1
            if self._requests == 0:
                self._idle.notify_all()

    def retire(self) -> None:
        """Stop once the invocations already admitted are over (update, delete: none can be admitted any more).

        The monitor ends first, since a server that fails now has no new traffic to be replaced for. Invocations
        still running after ``invocation_timeout_seconds`` are cut off, and the log says how many.
        """
        self._end_monitor()
        with self._idle:
            self._idle.wait_for(lambda: self._requests == 0, self.services.timings.invocation_timeout_seconds)
            cut_off = self._requests
        if cut_off:
            LOG.warning(
                "endpoint %s: %d invocations were still running when its servers stopped", self.endpoint, cut_off
            )
        self.stop()

    def stop(self) -> None:
        """End the monitor and every model server; returns once none is running. Calling it again does nothing."""
        self._end_monitor()
        self._stop_servers()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end_monitor(self) -> None:
        """End the health monitor and cancel a replacement that is still starting."""
        self._stopping.set()
        self._wake.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join()

    def _stop_servers(self) -> None:
        with self._lock:
            servers = [variant.server for variant in self.variants if variant.server is not None]
            for variant in self.variants:
                variant.server = None
        for server in servers:
            server.stop()

    def _watch(self) -> None:
        while not self._stopping.is_set() and self.failure is None:
            self._wake.wait(self.services.timings.health_check_interval_seconds)
            self._wake.clear()
            for variant in self.variants:
                if self._stopping.is_set() or self.failure is not None:
                    return
                try:
                    self._check(variant)
                except Exception:  # a fault of ours (say, CloudWatch unreachable): keep watching, retry next tick
                    LOG.exception("health check of endpoint %s, variant %s", self.endpoint, variant.plan.name)

    def _check(self, variant: Variant) -> None:
        """Replace the variant's server if it is unhealthy, or retry a replacement that did not start."""
        server = variant.server
        if server is not None:
            reason = self._diagnose(variant, server)
            if reason is None:
                return
            with self._lock:
                variant.server = None
            server.stop(grace_seconds=0.0)
            self._fail(variant, server.logs, f"Instance {variant.instance} failed its health check: {reason}.")
        if self.failure is None and not self._stopping.is_set():
            self._replace(variant)

    def _diagnose(self, variant: Variant, server: ModelServer) -> str | None:
        """Why the server is unhealthy, or None while it is (or may still be) healthy."""
        code = server.child.returncode
        if code is not None:
            return _exit_text(code)
        timeout = self.services.timings.health_check_timeout_seconds
        if server.ping(timeout):
            variant.missed_pings = 0
            return None
        variant.missed_pings += 1
        if variant.missed_pings < self.services.timings.health_check_misses:
            return None
        return f"it did not answer {variant.missed_pings} GET /ping health checks in a row within {timeout:g} s each"

    def _replace(self, variant: Variant) -> None:
        previous, instance = variant.instance, instance_id()
        logs = self._logs(variant.plan, instance)
        _note(logs, f"Instance {instance} replaces instance {previous} of production variant {variant.plan.name}.")
        try:
            server = self._start(variant.plan, instance, logs)
        except HostingError as error:
            variant.instance = instance
            if not self._stopping.is_set():
                self._fail(variant, logs, f"Instance {instance} did not start: {error}")
            return
        with self._lock:
            if not self._stopping.is_set():
                variant.instance, variant.server, variant.missed_pings = instance, server, 0
                return
        server.stop()

    def _fail(self, variant: Variant, logs: LogShipper, what: str) -> None:
        """Count a failure of ``variant``; log it, and give up on the deployment at the crash-loop threshold."""
        now = self.services.clock.now()
        window = self.services.timings.instance_failure_window_seconds
        variant.failures = [moment for moment in variant.failures if now - moment < window] + [now]
        if len(variant.failures) < self.services.timings.max_instance_failures:
            _note(logs, f"{what} Replacing it.")
            return
        self.failure = (
            f"The primary container for production variant {variant.plan.name} failed {len(variant.failures)} times "
            f"within {window:g} seconds, so its instance is no longer replaced. Please check CloudWatch logs for this "
            f"endpoint. Last failure: {what}"
        )
        _note(logs, f"{what} Not replacing it: {len(variant.failures)} failures within {window:g} s.")
        self._stop_servers()
        self._on_failure(self.failure)
