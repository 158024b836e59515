"""The table of SageMaker operations the emulator answers: ``@operation("DescribeEndpoint")`` registers one.

A handler takes the region's :class:`~sagemaker_emulator.state.EmulatorState` and the request parameters,
already validated against botocore's input shape, and returns the output shape as a dict. It raises
:class:`~sagemaker_emulator.errors.ServiceError` subclasses and never builds an error body itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

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


def operations() -> dict[str, Handler]:
    """Every registered handler, importing the resource modules that register them."""
    for module in RESOURCE_MODULES:
        importlib.import_module(f"sagemaker_emulator.resources.{module}")
    return OPERATIONS
