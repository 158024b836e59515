"""Models: CreateModel, DescribeModel, DeleteModel, ListModels.

A model is a record (image, artifact URL, role); nothing runs until an endpoint or a transform job uses it.
As on AWS, deleting a model that an endpoint serves is allowed: the endpoint keeps what it loaded
(docs: API_DeleteModel "deletes only the model entry that was created in SageMaker").
"""

from __future__ import annotations

from sagemaker_emulator.errors import ValidationException
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import page
from sagemaker_emulator.state import EmulatorState, Resource


class Model(Resource):
    ARN_TYPE = "model"
    PERSISTED = {
        "primary_container": None,
        "containers": None,
        "execution_role_arn": None,
        "network_isolation": False,
        "inference_execution_config": None,
    }

    def __init__(self, state: EmulatorState, params: dict):
        name = params["ModelName"]
        super().__init__(name, state.arn(self.ARN_TYPE, name), state.now(), params.get("Tags"))
        self.primary_container: dict | None = params.get("PrimaryContainer")
        self.containers: list[dict] | None = params.get("Containers")
        self.execution_role_arn: str | None = params.get("ExecutionRoleArn")
        self.network_isolation: bool = params.get("EnableNetworkIsolation", False)
        self.inference_execution_config: dict | None = params.get("InferenceExecutionConfig")

    def container(self) -> dict:
        """The container an endpoint or transform job runs (the first one of an inference pipeline)."""
        return self.primary_container or self.containers[0]

    def to_wire(self) -> dict:
        wire = {
            "ModelName": self.name,
            "ModelArn": self.arn,
            "CreationTime": self.creation_time,
            "EnableNetworkIsolation": self.network_isolation,
        }
        if self.primary_container is not None:
            wire["PrimaryContainer"] = self.primary_container
        if self.containers is not None:
            wire["Containers"] = self.containers
        if self.execution_role_arn:
            wire["ExecutionRoleArn"] = self.execution_role_arn
        if self.inference_execution_config:
            wire["InferenceExecutionConfig"] = self.inference_execution_config
        return wire

    def summary(self) -> dict:
        return {"ModelName": self.name, "ModelArn": self.arn, "CreationTime": self.creation_time}


@operation("CreateModel")
def create_model(state: EmulatorState, params: dict) -> dict:
    if not params.get("PrimaryContainer") and not params.get("Containers"):
        raise ValidationException("Either PrimaryContainer or Containers must be specified for CreateModel.")
    if params.get("PrimaryContainer") and params.get("Containers"):
        raise ValidationException("PrimaryContainer and Containers cannot both be specified for CreateModel.")
    model = state.models.add(Model(state, params))
    return {"ModelArn": model.arn}


@operation("DescribeModel")
def describe_model(state: EmulatorState, params: dict) -> dict:
    return state.models.get(params["ModelName"]).to_wire()


@operation("DeleteModel")
def delete_model(state: EmulatorState, params: dict) -> dict:
    state.models.remove(params["ModelName"])
    return {}


@operation("ListModels")
def list_models(state: EmulatorState, params: dict) -> dict:
    return page(state.models, params, "Models", Model.summary)
