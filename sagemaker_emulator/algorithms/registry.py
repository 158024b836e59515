"""Which plug-in runs an image: an explicit table, image repository name → module in this package.

The key is the repository name in the image URI, whatever the registry host, account, region or tag:
``382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1`` and
``174872318107.dkr.ecr.us-west-2.amazonaws.com/factorization-machines:latest`` both run
``factorization_machines``. Modules are imported only when a job or an endpoint needs them (some import mxnet).
Framework images (``mxnet-training`` and friends) are rows of the same table, all run by ``framework``: it
executes the job's own entry point (script mode) rather than a built-in algorithm.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from sagemaker_emulator.algorithms.base import ClientError

FRAMEWORK = "framework"

PLUGINS: dict[str, str] = {
    "factorization-machines": "factorization_machines",
    "knn": "knn",
    "object2vec": "object2vec",
    "mean-regressor": "mean_regressor",  # a tiny algorithm that exercises the contract in tests
    "mxnet-training": FRAMEWORK,
    "pytorch-training": FRAMEWORK,
    "tensorflow-training": FRAMEWORK,
    "sagemaker-scikit-learn": FRAMEWORK,
}


def image_repository(image: str) -> str:
    """The repository name of an image URI: the last path segment, without tag or digest."""
    without_digest = image.split("@", 1)[0]
    last = without_digest.rstrip("/").rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def module_name(repository: str) -> str:
    return f"{__package__}.{PLUGINS[repository]}"


def supported() -> list[str]:
    """The repositories whose plug-in module is present (found without importing it)."""
    return sorted(repo for repo in PLUGINS if importlib.util.find_spec(module_name(repo)) is not None)


def builtin() -> list[str]:
    """The supported repositories of built-in algorithms (each declares its hyperparameters), not framework images."""
    return [repo for repo in supported() if PLUGINS[repo] != FRAMEWORK]


def is_framework(image: str) -> bool:
    """Whether an image URI (or repository name) runs the job's own entry point (script mode)."""
    return PLUGINS.get(image_repository(image)) == FRAMEWORK


def load_plugin(image: str) -> ModuleType:
    """The plug-in module for an image URI (or a bare repository name).

    Raises:
        ClientError: no plug-in is registered (or present) for the image's repository.
    """
    repository = image_repository(image)
    if repository not in PLUGINS or importlib.util.find_spec(module_name(repository)) is None:
        raise ClientError(
            f"The image '{image}' (repository '{repository}') is not supported by the local SageMaker emulator. "
            f"Supported image repositories: {', '.join(supported())}."
        )
    return importlib.import_module(module_name(repository))
