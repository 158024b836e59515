"""Endpoints: Create/Describe/Delete/List/UpdateEndpoint and UpdateEndpointWeightsAndCapacities (hosting's control plane).

Each production variant runs one model server. Starting, health-checking, replacing and stopping them is the
runners' work (``jobs/endpoints.py``, each request's slow part in a thread; ``jobs/hosting.py``, a
:class:`Deployment` per configuration); InvokeEndpoint is the data plane's
(``invocations.py``). Status table (AWS's): ``Creating → InService | Failed``, ``InService → Updating →
InService``, and any of them ``→ Deleting`` (then gone). A model server that dies or stops answering ``/ping`` is
replaced while the endpoint stays ``InService``; a model that keeps crashing turns it ``InService → Failed`` with
the runner's ``FailureReason`` (then, as on AWS, DeleteEndpoint is the only operation left). The models and the
configuration are read when the request is made, so deleting them later leaves a running endpoint as it is, as
on AWS. A failed update rolls back: the endpoint stays ``InService`` on its previous configuration and
``FailureReason`` says why the update failed. While an update runs the old configuration keeps serving; if it
crashes for good meanwhile, the update decides: its success replaces it, its failure leaves the endpoint
``Failed``.
"""

from __future__ import annotations

from dataclasses import asdict

from sagemaker_emulator.errors import ValidationException, limit_exceeded
from sagemaker_emulator.jobs import endpoints as lifecycle
from sagemaker_emulator.jobs.hosting import Deployment, Variant, VariantPlan
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import EmulatorState, Resource
from sagemaker_emulator.store.schema import REQUIRED


def _variant_wire(variant: Variant) -> dict:
    image = variant.plan.container["Image"]
    return {
        "VariantName": variant.plan.name,
        "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": variant.deployed_at}],
        "CurrentWeight": variant.plan.weight,
        "DesiredWeight": variant.plan.weight,
        "CurrentInstanceCount": variant.plan.instance_count,
        "DesiredInstanceCount": variant.plan.instance_count,
    }


class Endpoint(Resource):
    ARN_TYPE = "endpoint"
    PERSISTED = {"config_name": REQUIRED, "failure_reason": None, "plans": []}
    TRANSITIONS = frozenset(
        {
            ("Creating", "InService"),
            ("Creating", "Failed"),
            ("InService", "Updating"),
            ("Updating", "InService"),
            ("InService", "Failed"),
            ("Updating", "Failed"),
            *((status, "Deleting") for status in ("Creating", "InService", "Updating", "Failed")),
        }
    )

    def __init__(self, state: EmulatorState, params: dict):
        name = params["EndpointName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"), "Creating")
        self.config_name: str = params["EndpointConfigName"]
        self.deployment: Deployment | None = None  # the configuration in service, set when it first is
        self.failure_reason: str | None = None
        self.plans: list[dict] = []  # what the configuration in service (or being created) runs, for a restart

    def after_restore(self, state: EmulatorState) -> None:
        """An endpoint that was serving (or being created or updated) is hosted again from the variants it ran.

        It keeps its status meanwhile, as AWS keeps an endpoint ``InService`` while it replaces its instances;
        requests in the gap get ``ServiceUnavailable``. An update that was under way is lost: the endpoint comes
        back on the configuration it served.
        """
        self.deployment = None
        if self.status == "Updating":
            self.status = "InService"
        if self.status in ("Creating", "InService"):
            lifecycle.rehost(state, self)

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
            if self.deployment is not None:
                wire["ProductionVariants"] = [_variant_wire(variant) for variant in self.deployment.variants]
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
    used = sum(len(e.deployment.variants) if e.deployment else 1 for e in state.endpoints if e.status != "Deleting")
    limit = state.services.limits.endpoints
    if used + len(plans) > limit:
        raise limit_exceeded(f"{plans[0].instance_type} for endpoint usage", limit, used, len(plans))


@operation("CreateEndpoint")
def create_endpoint(state: EmulatorState, params: dict) -> dict:
    plans = _plans(state, params["EndpointConfigName"])
    _check_limit(state, plans)
    endpoint = Endpoint(state, params)
    endpoint.plans = [asdict(plan) for plan in plans]
    state.endpoints.add(endpoint)
    lifecycle.create(state, endpoint, plans)
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
    lifecycle.delete(state, endpoint)
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
    lifecycle.update(state, endpoint, params["EndpointConfigName"], plans)
    return {"EndpointArn": endpoint.arn}


@operation("ListEndpoints")
def list_endpoints(state: EmulatorState, params: dict) -> dict:
    return page(state.endpoints, params, "Endpoints", Endpoint.summary)


@operation("UpdateEndpointWeightsAndCapacities")
def update_endpoint_weights_and_capacities(state: EmulatorState, params: dict) -> dict:
    """Weights take effect on the next request; an instance count is recorded (each variant runs one model server)."""
    endpoint = state.endpoints.get(params["EndpointName"])
    desired = {change["VariantName"]: change for change in params["DesiredWeightsAndCapacities"]}
    if len(desired) != len(params["DesiredWeightsAndCapacities"]):
        raise ValidationException("Each variant may appear only once in DesiredWeightsAndCapacities.")
    if any("ServerlessUpdateConfig" in change for change in desired.values()):
        raise ValidationException(
            "ServerlessUpdateConfig is not supported by the local SageMaker emulator: a serverless variant has no "
            "provisioned concurrency to change here."
        )
    with endpoint.lock:
        if endpoint.status != "InService" or endpoint.deployment is None:
            raise ValidationException(f'Cannot update endpoint "{endpoint.arn}" in status {endpoint.status}.')
        serving = {variant.plan.name for variant in endpoint.deployment.variants}
        unknown = sorted(set(desired) - serving)
        if unknown:
            raise ValidationException(
                f"The variant name(s) {unknown} are not present in the endpoint's current configuration "
                f"(variants: {sorted(serving)})."
            )
        endpoint.advance("Updating", state.now())
    lifecycle.reweigh(state, endpoint, desired)
    return {"EndpointArn": endpoint.arn}
