"""SageMaker Runtime's InvokeEndpoint: the data plane, kept apart from the endpoints' control plane.

A request goes to one production variant (``TargetVariant``, else chosen by weight), whose model server answers
it; the answer is relayed as it is, and a model's error status as ``ModelError`` (424).

While a variant's instance is being replaced (its model server died or stopped answering ``/ping``, see
``jobs/hosting.py``) a request gets ``ServiceUnavailable`` (503), and the monitor is told to check at once.
Of the errors botocore's service model documents for InvokeEndpoint
(``botocore/data/sagemaker-runtime/2017-05-13/service-2.json``) it is the one that fits: ``ServiceUnavailable``,
"The service is unavailable. Try your call again."; ``ModelNotReadyException`` (429) is documented for a serverless
variant still being provisioned or a multi-model endpoint still loading the target model; ``ModelError`` (424) for
a 4xx or 5xx answer from the model, and here no model answers; ``InternalFailure`` (500) for a fault of the
service itself. botocore retries a 503 in both its legacy and standard retry modes, so an SDK caller with default
settings rides through a replacement. The wording of the message is the emulator's own.

An UpdateEndpoint, an UpdateEndpointWeightsAndCapacities or a DeleteEndpoint fails no request: each invocation is
admitted by the deployment it goes to, and an update or delete stops the old deployment only once the requests it
admitted are answered (``jobs/hosting.py``, "Draining"); a request that comes after a delete finds no endpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sagemaker_emulator.errors import ModelError, RuntimeValidationError
from sagemaker_emulator.jobs.hosting import Deployment, Variant
from sagemaker_emulator.jobs.logs import endpoint_group
from sagemaker_emulator.jobs.model_client import ModelConnectionError, ModelTimeout
from sagemaker_emulator.resources.endpoints import Endpoint
from sagemaker_emulator.state import LIVE, EmulatorState


class ServiceUnavailable(RuntimeValidationError):
    """No instance can take the request right now; try again. A RuntimeValidationError only for its wire body."""

    code = "ServiceUnavailable"
    status = 503


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None = None


def _admit(state: EmulatorState, name: str, target: str | None) -> tuple[Endpoint, Deployment, Variant]:
    """Route one invocation to a variant of the deployment in service, which counts it in until it is released.

    All of it under the endpoint's lock, so that an update's swap or a delete's status change falls either before
    (the invocation goes to the new deployment, or finds no endpoint) or after (the old deployment answers it
    before it stops); and the weights are read as one consistent set while an UpdateEndpointWeightsAndCapacities
    changes them.
    """
    endpoint = state.endpoints.find(name)
    not_found = RuntimeValidationError(f"Endpoint {name} of account {state.account} not found.")
    if endpoint is None:
        raise not_found
    with endpoint.lock:
        if endpoint.status not in LIVE:
            raise not_found
        deployment = endpoint.deployment
        if deployment is None:
            raise ServiceUnavailable(
                f"Endpoint {name} is being hosted again after the emulator restarted. Try your call again."
            )
        variant = _choose(endpoint, deployment.variants, target)
        deployment.admit()
    return endpoint, deployment, variant


def _choose(endpoint: Endpoint, variants: list[Variant], target: str | None) -> Variant:
    if target is not None:
        for variant in variants:
            if variant.plan.name == target:
                return variant
        raise RuntimeValidationError(f"The variant {target} was not found for endpoint {endpoint.name}.")
    weights = [variant.plan.weight for variant in variants]
    if sum(weights) <= 0:
        raise RuntimeValidationError(f"Endpoint {endpoint.name} has no variant with a positive weight.")
    if len(variants) == 1:  # the usual endpoint: no draw to pay for on every request
        return variants[0]
    return random.choices(variants, weights=weights)[0]


def _unavailable(endpoint: Endpoint, variant: Variant) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Production variant {variant.plan.name} of endpoint {endpoint.name} has no healthy instance right now: "
        "an instance that failed its health check is being replaced. Try your call again."
    )


def invoke_endpoint(state: EmulatorState, params: dict) -> Invocation:
    """Forward the body to a variant's model server and relay its answer.

    Raises:
        RuntimeValidationError: no such endpoint in service (AWS's ``ValidationError``).
        ServiceUnavailable: the variant's instance is being replaced (HTTP 503).
        ModelError: the model answered with an error status or timed out (HTTP 424).
    """
    endpoint, deployment, variant = _admit(state, params["EndpointName"], params.get("TargetVariant"))
    try:
        return _forward(state, endpoint, deployment, variant, params)
    finally:
        deployment.release()


def _forward(
    state: EmulatorState, endpoint: Endpoint, deployment: Deployment, variant: Variant, params: dict
) -> Invocation:
    server = variant.server
    if server is None or not server.alive:
        deployment.check_soon()
        raise _unavailable(endpoint, variant)
    group = endpoint_group(endpoint.name)
    log_arn = f"arn:aws:logs:{state.region}:{state.account}:log-group:{group}"
    console = (
        f"See https://{state.region}.console.aws.amazon.com/cloudwatch/home?region={state.region}"
        f"#logEventViewer:group={group} in account {state.account} for more information."
    )
    try:
        reply = server.invoke(
            params["Body"], params.get("ContentType"), params.get("Accept"), params.get("CustomAttributes")
        )
    except ModelTimeout:
        raise ModelError(
            f"Your invocation timed out while waiting for a response from container primary. {console}",
            OriginalStatusCode=504,
            OriginalMessage="timed out",
            LogStreamArn=log_arn,
        ) from None
    except ModelConnectionError as error:
        if not server.alive:
            deployment.check_soon()
            raise _unavailable(endpoint, variant) from None
        raise ModelError(
            f'Received server error (500) from model with message "{error}". {console}',
            OriginalStatusCode=500,
            OriginalMessage=str(error),
            LogStreamArn=log_arn,
        ) from None
    if reply.status != 200:
        text = reply.body.decode("utf-8", "replace")
        side = "client" if 400 <= reply.status < 500 else "server"
        raise ModelError(
            f'Received {side} error ({reply.status}) from model with message "{text}". {console}',
            OriginalStatusCode=reply.status,
            OriginalMessage=text,
            LogStreamArn=log_arn,
        )
    return Invocation(reply.body, reply.content_type, variant.plan.name, None)
