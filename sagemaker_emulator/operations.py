"""The table of SageMaker operations the emulator answers: ``@operation("DescribeEndpoint")`` registers one.

A handler takes the region's :class:`~sagemaker_emulator.state.EmulatorState` and the request parameters,
already validated against botocore's input shape, and returns the output shape as a dict. It raises
:class:`~sagemaker_emulator.errors.ServiceError` subclasses and never builds an error body itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

import botocore.session

from sagemaker_emulator.validation import validate

Handler = Callable[[object, dict], dict]

OPERATIONS: dict[str, Handler] = {}

RESOURCE_MODULES = (
    "training_jobs",
    "models",
    "endpoint_configs",
    "endpoints",
    "transform_jobs",
    "tags",
    "tuning_jobs",
    "unhosted_features",
)


def operation(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = handler
        return handler

    return register


@cache
def service_model():
    """botocore's model of the SageMaker API, which every request is validated against."""
    return botocore.session.get_session().get_service_model("sagemaker")


def call(state, name: str, params: dict) -> dict:
    """Run operation ``name`` as a request runs it: ``params`` validated against its input shape, then the handler.

    The server answers every SageMaker request through here; a tuning job launches its training jobs through here
    too, so they are checked like the ones a caller creates.
    """
    validate(service_model().operation_model(name).input_shape, params)
    return operations()[name](state, params)


def operations() -> dict[str, Handler]:
    """Every registered handler, importing the resource modules that register them."""
    for module in RESOURCE_MODULES:
        importlib.import_module(f"sagemaker_emulator.resources.{module}")
    return OPERATIONS
