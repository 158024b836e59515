"""Endpoint configurations: Create/Describe/Delete/List EndpointConfig(s).

The models a configuration names must exist when it is created. As on AWS, a configuration that a live
endpoint uses can be deleted; the endpoint keeps running (docs: API_DeleteEndpointConfig, "If you delete
the EndpointConfig of an endpoint that is active ... The endpoint must be deleted in order to stop
incurring charges").
"""

from __future__ import annotations

import copy

from sagemaker_emulator.errors import ValidationException
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import EmulatorState, Resource
from sagemaker_emulator.store.schema import REQUIRED

# API_ProductionVariantServerlessConfig: "MemorySizeInMB ... 1024 MB, 2048 MB, 3072 MB, 4096 MB, 5120 MB, or
# 6144 MB"; botocore's model only bounds it (1024..6144).
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)

_PASSED_THROUGH = (
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExecutionRoleArn",
    "EnableNetworkIsolation",
)


class EndpointConfig(Resource):
    ARN_TYPE = "endpoint-config"
    PERSISTED = {"production_variants": REQUIRED, "extra": {}}

    def __init__(self, state: EmulatorState, params: dict):
        name = params["EndpointConfigName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"))
        self.production_variants: list[dict] = []
        for variant in copy.deepcopy(params["ProductionVariants"]):
            variant.setdefault("InitialVariantWeight", 1.0)
            self.production_variants.append(variant)
        self.extra = {key: params[key] for key in _PASSED_THROUGH if key in params}

    def to_wire(self) -> dict:
        return {
            "EndpointConfigName": self.name,
            "EndpointConfigArn": self.arn,
            "ProductionVariants": self.production_variants,
            "CreationTime": self.creation_time,
            **self.extra,
        }

    def summary(self) -> dict:
        return {"EndpointConfigName": self.name, "EndpointConfigArn": self.arn, "CreationTime": self.creation_time}


@operation("CreateEndpointConfig")
def create_endpoint_config(state: EmulatorState, params: dict) -> dict:
    names = [variant["VariantName"] for variant in params["ProductionVariants"]]
    if len(set(names)) != len(names):
        raise ValidationException(f"Variant names must be unique within an endpoint configuration: {names}.")
    for index, variant in enumerate(params["ProductionVariants"], start=1):
        memory = variant.get("ServerlessConfig", {}).get("MemorySizeInMB", SERVERLESS_MEMORY_SIZES[0])
        if memory not in SERVERLESS_MEMORY_SIZES:
            raise ValidationException(
                f"1 validation error detected: Value '{memory}' at "
                f"'productionVariants.{index}.member.serverlessConfig.memorySizeInMB' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(map(str, SERVERLESS_MEMORY_SIZES))}]"
            )
        if "ModelName" not in variant:
            raise ValidationException(f"ModelName must be specified for production variant {variant['VariantName']}.")
        state.models.get(variant["ModelName"])
    config = state.endpoint_configs.add(EndpointConfig(state, params))
    return {"EndpointConfigArn": config.arn}


@operation("DescribeEndpointConfig")
def describe_endpoint_config(state: EmulatorState, params: dict) -> dict:
    return state.endpoint_configs.get(params["EndpointConfigName"]).to_wire()


@operation("DeleteEndpointConfig")
def delete_endpoint_config(state: EmulatorState, params: dict) -> dict:
    state.endpoint_configs.remove(params["EndpointConfigName"])
    return {}


@operation("ListEndpointConfigs")
def list_endpoint_configs(state: EmulatorState, params: dict) -> dict:
    return page(state.endpoint_configs, params, "EndpointConfigs", EndpointConfig.summary)
