"""An endpoint's lifecycle in the background: create, update, host again after a restart, reweigh, delete.

The control plane (``resources/endpoints.py``) checks a request, moves the endpoint's status and calls one of the
functions here, which does the slow part in a thread of its own and moves the status on when it is done. The
endpoint comes in through :class:`Hosted`; the model servers of one configuration are a :class:`Deployment`
(``jobs/hosting.py``). What the rules are (a failed update rolls back; a crash during an update lets the update
decide; a model that keeps crashing turns an endpoint ``Failed``) is written in ``resources/endpoints.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Protocol

from sagemaker_emulator.algorithms.failures import INTERNAL_ERROR, failure_reason
from sagemaker_emulator.jobs.hosting import Deployment, VariantPlan
from sagemaker_emulator.jobs.inference import HostingError
from sagemaker_emulator.state import LIVE, EmulatorState

LOG = logging.getLogger(__name__)


class Hosted(Protocol):
    """What the lifecycle reads and changes of its endpoint."""

    name: str
    status: str
    lock: threading.RLock
    config_name: str
    deployment: Deployment | None
    failure_reason: str | None
    plans: list[dict]

    def advance(self, status: str, now: float) -> bool: ...


def create(state: EmulatorState, endpoint: Hosted, plans: list[VariantPlan]) -> None:
    """Start the model servers of a new endpoint; it turns ``InService``, or ``Failed`` with their reason."""
    _background(_create, state, endpoint, plans)


def update(state: EmulatorState, endpoint: Hosted, config_name: str, plans: list[VariantPlan]) -> None:
    """Start the new configuration's model servers beside the old ones, then swap (or roll back)."""
    _background(_update, state, endpoint, config_name, plans)


def rehost(state: EmulatorState, endpoint: Hosted) -> None:
    """Host an endpoint again from the variants it ran, after the emulator restarted."""
    _background(_rehost, state, endpoint)


def delete(state: EmulatorState, endpoint: Hosted) -> None:
    """Stop the endpoint's model servers, then forget it."""
    _background(_delete, state, endpoint)


def reweigh(state: EmulatorState, endpoint: Hosted, desired: dict[str, dict]) -> None:
    """Apply new weights and instance counts to the variants in service."""
    _background(_reweigh, state, endpoint, desired)


def stop_all(state: EmulatorState) -> None:
    """End every endpoint's model servers and health monitors (the emulator is resetting or stopping)."""
    for endpoint in state.endpoints:
        with endpoint.lock:
            deployment = endpoint.deployment
        if deployment is not None:
            deployment.stop()


def _failure_text(error: Exception) -> str:
    if isinstance(error, HostingError):
        return str(error)
    LOG.exception("endpoint deployment failed")
    return failure_reason(INTERNAL_ERROR, f"{type(error).__name__}: {error}")


def _serve(state: EmulatorState, endpoint: Hosted, deployment: Deployment) -> None:
    """Put ``deployment`` in service (the caller holds the endpoint's lock) and have it watch its health."""
    endpoint.deployment = deployment
    deployment.watch(_on_failure(state, endpoint, deployment))


def _on_failure(state: EmulatorState, endpoint: Hosted, deployment: Deployment) -> Callable[[str], None]:
    """What ``deployment`` calls when its model keeps crashing: an endpoint in service turns Failed.

    During an update the update decides instead.
    """

    def failed(reason: str) -> None:
        with endpoint.lock:
            if endpoint.deployment is deployment and endpoint.status == "InService":
                endpoint.advance("Failed", state.now())
                endpoint.failure_reason = reason

    return failed


def _rehost(state: EmulatorState, endpoint: Hosted) -> None:
    plans = [VariantPlan(**plan) for plan in endpoint.plans]
    try:
        deployment = Deployment.launch(state.services, state.region, endpoint.name, plans)
    except Exception as error:
        with endpoint.lock:
            if endpoint.advance("Failed", state.now()):
                endpoint.failure_reason = (
                    f"The endpoint could not be hosted again after a restart: {_failure_text(error)}"
                )
        return
    with endpoint.lock:
        if endpoint.status == "Creating":
            endpoint.advance("InService", state.now())
        if endpoint.status in LIVE and endpoint.deployment is None and not state.retired.is_set():
            _serve(state, endpoint, deployment)
            return
    deployment.stop()


def _create(state: EmulatorState, endpoint: Hosted, plans: list[VariantPlan]) -> None:
    try:
        deployment = Deployment.launch(state.services, state.region, endpoint.name, plans)
    except Exception as error:
        with endpoint.lock:
            if endpoint.advance("Failed", state.now()):
                endpoint.failure_reason = _failure_text(error)
        return
    with endpoint.lock:
        if endpoint.advance("InService", state.now()) and not state.retired.is_set():
            _serve(state, endpoint, deployment)
            return
    deployment.stop()


def _update(state: EmulatorState, endpoint: Hosted, config_name: str, plans: list[VariantPlan]) -> None:
    """Swap in the new configuration once its servers answer; the old one drains its invocations, then stops."""
    try:
        deployment = Deployment.launch(state.services, state.region, endpoint.name, plans)
    except Exception as error:
        with endpoint.lock:
            crashed = endpoint.deployment.failure if endpoint.deployment is not None else None
            if crashed is not None and endpoint.advance("Failed", state.now()):
                endpoint.failure_reason = crashed
            elif crashed is None and endpoint.advance("InService", state.now()):
                endpoint.failure_reason = f"Updating the endpoint to {config_name} failed: {_failure_text(error)}"
        return
    with endpoint.lock:
        if not state.retired.is_set() and endpoint.advance("InService", state.now()):
            old = endpoint.deployment
            _serve(state, endpoint, deployment)
            endpoint.config_name = config_name
            endpoint.plans = [asdict(plan) for plan in plans]
            endpoint.failure_reason = None
        else:
            old = deployment
    if old is not None:
        old.retire()


def _delete(state: EmulatorState, endpoint: Hosted) -> None:
    """The endpoint is ``Deleting``, so no invocation is admitted any more: drain the ones it has, then forget it."""
    with endpoint.lock:
        deployment = endpoint.deployment
    if deployment is not None:
        deployment.retire()
    if state.endpoints.find(endpoint.name) is endpoint:
        state.endpoints.remove(endpoint.name)


def _reweigh(state: EmulatorState, endpoint: Hosted, desired: dict[str, dict]) -> None:
    """Apply new weights and instance counts to the variants in service; the endpoint is back ``InService``."""
    with endpoint.lock:
        for variant in endpoint.deployment.variants:
            change = desired.get(variant.plan.name, {})
            variant.plan.weight = float(change.get("DesiredWeight", variant.plan.weight))
            variant.plan.instance_count = int(change.get("DesiredInstanceCount", variant.plan.instance_count))
        endpoint.plans = [asdict(variant.plan) for variant in endpoint.deployment.variants]
        endpoint.advance("InService", state.now())


def _background(target, *args) -> None:
    threading.Thread(target=target, args=args, name=f"{target.__name__}:{args[1].name}", daemon=True).start()
