"""Endpoints: Create/Describe/Delete/List/UpdateEndpoint and the runtime's InvokeEndpoint.

Each production variant runs one model server (``hosting.ModelServer``) loaded from its model's artifact.
Status table (AWS's): ``Creating → InService | Failed``, ``InService → Updating → InService``, and any of them
``→ Deleting`` (then gone). The models and the configuration are read when the request is made, so deleting
them later leaves a running endpoint as it is, as on AWS. A failed update rolls back: the endpoint stays
``InService`` on its previous configuration and ``FailureReason`` says why the update failed.
"""
from __future__ import annotations

import logging
import random
import shutil
import threading
import uuid
from dataclasses import dataclass, field

import urllib3

from sagemaker_emulator.errors import ModelError, RuntimeValidationError, ValidationException, limit_exceeded
from sagemaker_emulator.hosting import HostingError, ModelServer, launch
from sagemaker_emulator.jobs.logs import LogShipper, endpoint_group, instance_id
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import EmulatorState, Resource

LOG = logging.getLogger(__name__)

LIVE = ("InService", "Updating")


@dataclass
class VariantPlan:
    """What one production variant will run, read from the config and its model when the request is made."""

    name: str
    weight: float
    instance_type: str
    instance_count: int
    container: dict


@dataclass
class LiveVariant:
    plan: VariantPlan
    server: ModelServer
    deployed_at: float
    stopped: threading.Event = field(default_factory=threading.Event)

    def to_wire(self) -> dict:
        image = self.plan.container["Image"]
        return {
            "VariantName": self.plan.name,
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": self.deployed_at}],
            "CurrentWeight": self.plan.weight,
            "DesiredWeight": self.plan.weight,
            "CurrentInstanceCount": self.plan.instance_count,
            "DesiredInstanceCount": self.plan.instance_count,
        }


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None = None


class Endpoint(Resource):
    ARN_TYPE = "endpoint"
    TRANSITIONS = frozenset(
        {
            ("Creating", "InService"),
            ("Creating", "Failed"),
            ("InService", "Updating"),
            ("Updating", "InService"),
            *((status, "Deleting") for status in ("Creating", "InService", "Updating", "Failed")),
        }
    )

    def __init__(self, state: EmulatorState, params: dict):
        name = params["EndpointName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"), "Creating")
        self.config_name: str = params["EndpointConfigName"]
        self.variants: list[LiveVariant] = []
        self.failure_reason: str | None = None

    def to_wire(self) -> dict:
        with self.lock:
            wire = {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "EndpointConfigName": self.config_name,
                "EndpointStatus": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
            }
            if self.variants:
                wire["ProductionVariants"] = [variant.to_wire() for variant in self.variants]
            if self.failure_reason:
                wire["FailureReason"] = self.failure_reason
            return wire

    def summary(self) -> dict:
        return {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "EndpointStatus": self.status,
        }


def _plans(state: EmulatorState, config_name: str) -> list[VariantPlan]:
    config = state.endpoint_configs.get(config_name)
    plans = []
    for variant in config.production_variants:
        model = state.models.get(variant["ModelName"])
        plans.append(
            VariantPlan(
                name=variant["VariantName"],
                weight=float(variant.get("InitialVariantWeight", 1.0)),
                instance_type=variant.get("InstanceType", "serverless"),
                instance_count=int(variant.get("InitialInstanceCount", 1)),
                container=model.container(),
            )
        )
    return plans


def _check_limit(state: EmulatorState, plans: list[VariantPlan]) -> None:
    used = sum(len(e.variants) or 1 for e in state.endpoints if e.status != "Deleting")
    limit = state.services.limits.endpoints
    if used + len(plans) > limit:
        raise limit_exceeded(f"{plans[0].instance_type} for endpoint usage", limit, used, len(plans))


def _deploy(state: EmulatorState, endpoint: Endpoint, plans: list[VariantPlan]) -> list[LiveVariant]:
    """Start a model server per variant; if one fails, stop the others and raise its HostingError."""
    live: list[LiveVariant] = []
    root = state.services.workdir / "endpoints" / f"{endpoint.name}-{uuid.uuid4().hex[:8]}"
    logs_client = state.services.client("logs", state.region)
    try:
        for plan in plans:
            logs = LogShipper(logs_client, endpoint_group(endpoint.name), f"{plan.name}/{instance_id()}")
            server = launch(state.services, state.region, plan.container, root / plan.name, logs, plan.name)
            live.append(LiveVariant(plan, server, state.now()))
    except Exception:
        _stop(live)
        raise
    return live


def _stop(variants: list[LiveVariant]) -> None:
    for variant in variants:
        if not variant.stopped.is_set():
            variant.stopped.set()
            variant.server.stop()


def _failure_text(error: Exception) -> str:
    if isinstance(error, HostingError):
        return str(error)
    LOG.exception("endpoint deployment failed")
    return f"InternalServerError: {type(error).__name__}: {error}"


def _create(state: EmulatorState, endpoint: Endpoint, plans: list[VariantPlan]) -> None:
    try:
        variants = _deploy(state, endpoint, plans)
    except Exception as error:
        with endpoint.lock:
            if endpoint.advance("Failed", state.now()):
                endpoint.failure_reason = _failure_text(error)
        return
    with endpoint.lock:
        if endpoint.advance("InService", state.now()) and not state.retired.is_set():
            endpoint.variants = variants
            return
    _stop(variants)


def _update(state: EmulatorState, endpoint: Endpoint, config_name: str, plans: list[VariantPlan]) -> None:
    try:
        variants = _deploy(state, endpoint, plans)
    except Exception as error:
        with endpoint.lock:
            if endpoint.advance("InService", state.now()):
                endpoint.failure_reason = f"Updating the endpoint to {config_name} failed: {_failure_text(error)}"
        return
    with endpoint.lock:
        if endpoint.advance("InService", state.now()):
            old, endpoint.variants = endpoint.variants, variants
            endpoint.config_name = config_name
            endpoint.failure_reason = None
        else:
            old = variants
    _stop(old)


def _delete(state: EmulatorState, endpoint: Endpoint) -> None:
    with endpoint.lock:
        variants, endpoint.variants = endpoint.variants, []
    _stop(variants)
    if state.endpoints.find(endpoint.name) is endpoint:
        state.endpoints.remove(endpoint.name)


def _background(target, *args) -> None:
    threading.Thread(target=target, args=args, name=f"{target.__name__}:{args[1].name}", daemon=True).start()


@operation("CreateEndpoint")
def create_endpoint(state: EmulatorState, params: dict) -> dict:
    plans = _plans(state, params["EndpointConfigName"])
    _check_limit(state, plans)
    endpoint = state.endpoints.add(Endpoint(state, params))
    _background(_create, state, endpoint, plans)
    return {"EndpointArn": endpoint.arn}


@operation("DescribeEndpoint")
def describe_endpoint(state: EmulatorState, params: dict) -> dict:
    return state.endpoints.get(params["EndpointName"]).to_wire()


@operation("DeleteEndpoint")
def delete_endpoint(state: EmulatorState, params: dict) -> dict:
    endpoint = state.endpoints.get(params["EndpointName"])
    with endpoint.lock:
        if not endpoint.advance("Deleting", state.now()):
            raise ValidationException(f'Cannot delete endpoint "{endpoint.arn}" while it is being deleted.')
    _background(_delete, state, endpoint)
    return {}


@operation("UpdateEndpoint")
def update_endpoint(state: EmulatorState, params: dict) -> dict:
    endpoint = state.endpoints.get(params["EndpointName"])
    plans = _plans(state, params["EndpointConfigName"])
    with endpoint.lock:
        if endpoint.status in ("Creating", "Updating"):
            raise ValidationException(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if not endpoint.advance("Updating", state.now()):
            raise ValidationException(f'Cannot update endpoint "{endpoint.arn}" in status {endpoint.status}.')
    _background(_update, state, endpoint, params["EndpointConfigName"], plans)
    return {"EndpointArn": endpoint.arn}


@operation("ListEndpoints")
def list_endpoints(state: EmulatorState, params: dict) -> dict:
    return page(state.endpoints, params, "Endpoints", Endpoint.summary)


def _choose(endpoint: Endpoint, target: str | None) -> LiveVariant:
    with endpoint.lock:
        variants = list(endpoint.variants)
    if target is not None:
        for variant in variants:
            if variant.plan.name == target:
                return variant
        raise RuntimeValidationError(f"The variant {target} was not found for endpoint {endpoint.name}.")
    weights = [variant.plan.weight for variant in variants]
    if sum(weights) <= 0:
        raise RuntimeValidationError(f"Endpoint {endpoint.name} has no variant with a positive weight.")
    return random.choices(variants, weights=weights)[0]


def invoke_endpoint(state: EmulatorState, params: dict) -> Invocation:
    """The runtime's InvokeEndpoint: forward the body to a variant's model server and relay its answer.

    Raises:
        RuntimeValidationError: no such endpoint in service (AWS's ``ValidationError``).
        ModelError: the model answered with an error status, crashed or timed out (HTTP 424).
    """
    name = params["EndpointName"]
    endpoint = state.endpoints.find(name)
    if endpoint is None or endpoint.status not in LIVE:
        raise RuntimeValidationError(f"Endpoint {name} of account {state.account} not found.")
    variant = _choose(endpoint, params.get("TargetVariant"))
    group = endpoint_group(endpoint.name)
    log_arn = f"arn:aws:logs:{state.region}:{state.account}:log-group:{group}"
    console = (
        f"See https://{state.region}.console.aws.amazon.com/cloudwatch/home?region={state.region}"
        f"#logEventViewer:group={group} in account {state.account} for more information."
    )
    try:
        reply = variant.server.invoke(
            params["Body"], params.get("ContentType"), params.get("Accept"), params.get("CustomAttributes")
        )
    except urllib3.exceptions.ReadTimeoutError:
        raise ModelError(
            f"Your invocation timed out while waiting for a response from container primary. {console}",
            OriginalStatusCode=504, OriginalMessage="timed out", LogStreamArn=log_arn,
        ) from None
    except urllib3.exceptions.HTTPError as error:
        raise ModelError(
            f"Received server error (500) from model with message \"{error}\". {console}",
            OriginalStatusCode=500, OriginalMessage=str(error), LogStreamArn=log_arn,
        ) from None
    if reply.status != 200:
        text = reply.body.decode("utf-8", "replace")
        side = "client" if 400 <= reply.status < 500 else "server"
        raise ModelError(
            f'Received {side} error ({reply.status}) from model with message "{text}". {console}',
            OriginalStatusCode=reply.status, OriginalMessage=text, LogStreamArn=log_arn,
        )
    return Invocation(reply.body, reply.content_type, variant.plan.name, None)


def stop_all(state: EmulatorState) -> None:
    """End every endpoint's model servers (the emulator is resetting or stopping)."""
    for endpoint in state.endpoints:
        with endpoint.lock:
            variants, endpoint.variants = endpoint.variants, []
        _stop(variants)
    shutil.rmtree(state.services.workdir / "endpoints", ignore_errors=True)
