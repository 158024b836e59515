"""Which plug-in runs an image: an explicit table, image repository name → module in this package.

The key is the repository name in the image URI, whatever the registry host, account, region or tag:
``382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1`` and
``174872318107.dkr.ecr.us-west-2.amazonaws.com/factorization-machines:latest`` both run
``factorization_machines``. Modules are imported only when a job or an endpoint needs them (some import mxnet).
Framework images (``mxnet-training`` and friends) are rows of the same table, all run by ``framework``: it
executes the job's own entry point (script mode) rather than a built-in algorithm.

Plug-ins kept outside the package are added by ``SAGEMAKER_EMULATOR_PLUGINS``: ``<repository>=<file.py>`` entries
separated by ``os.pathsep``. The tests register their ``mean-regressor`` this way; an emulator started with the
variable passes it on to every container it runs (``jobs/process.py``), which is where plug-ins are loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from sagemaker_emulator.algorithms.base import ClientError

FRAMEWORK = "framework"
PLUGINS_VARIABLE = "SAGEMAKER_EMULATOR_PLUGINS"

PLUGINS: dict[str, str] = {
    "factorization-machines": "factorization_machines",
    "knn": "knn",
    "object2vec": "object2vec",
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


def registered() -> dict[str, str]:
    """Every repository with a plug-in: :data:`PLUGINS`, then the files ``SAGEMAKER_EMULATOR_PLUGINS`` adds.

    Raises:
        ValueError: an entry of the variable is not ``<repository>=<path of a .py file>``.
    """
    table = dict(PLUGINS)
    for entry in filter(None, os.environ.get(PLUGINS_VARIABLE, "").split(os.pathsep)):
        repository, _, path = entry.partition("=")
        if not repository or not path.endswith(".py"):
            raise ValueError(f"{PLUGINS_VARIABLE} entry {entry!r} is not <image repository>=<path of a .py file>.")
        table[repository] = path
    return table


def _spec(repository: str) -> ModuleSpec | None:
    """Where a registered repository's module is, found without importing it; None if it is not present."""
    target = registered()[repository]
    if target.endswith(".py"):
        return importlib.util.spec_from_file_location(Path(target).stem, target) if Path(target).is_file() else None
    return importlib.util.find_spec(f"{__package__}.{target}")


def supported() -> list[str]:
    """The repositories whose plug-in module is present (found without importing it)."""
    return sorted(repo for repo in registered() if _spec(repo) is not None)


def builtin() -> list[str]:
    """The supported repositories of built-in algorithms (each declares its hyperparameters), not framework images."""
    table = registered()
    return [repo for repo in supported() if table[repo] != FRAMEWORK]


def is_framework(image: str) -> bool:
    """Whether an image URI (or repository name) runs the job's own entry point (script mode)."""
    return registered().get(image_repository(image)) == FRAMEWORK


def load_plugin(image: str) -> ModuleType:
    """The plug-in module for an image URI (or a bare repository name).

    Raises:
        ClientError: no plug-in is registered (or present) for the image's repository.
    """
    repository = image_repository(image)
    spec = _spec(repository) if repository in registered() else None
    if spec is None:
        raise ClientError(
            f"The image '{image}' (repository '{repository}') is not supported by the local SageMaker emulator. "
            f"Supported image repositories: {', '.join(supported())}."
        )
    if not registered()[repository].endswith(".py"):
        return importlib.import_module(spec.name)
    if spec.name not in sys.modules:  # a file outside the package: imported once, under its file's stem
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules[spec.name]
