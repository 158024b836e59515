"""The SageMaker training toolkit's side of script mode: what a framework image does with ``sagemaker_program``.

SDK v2's framework estimators (``PyTorch(entry_point=...)``, ``SKLearn``, ``MXNet``) and SDK v3's
``HyperparameterTuner`` over a ``ModelTrainer`` with ``SourceCode`` send no ``ContainerEntrypoint``: the image's
toolkit (aws/sagemaker-training-toolkit) reads the hyperparameters instead. As its ``environment.py`` and
``entry_point.py`` do, this module JSON-decodes every hyperparameter (a value that is not JSON stays text), splits
off the toolkit's own (``sagemaker_*`` and ``_tuning_objective_metric``), downloads ``sagemaker_submit_directory``
(an S3 ``sourcedir.tar.gz``) into ``/opt/ml/code``, and runs ``python <sagemaker_program>`` there (a ``.sh`` or
other program as a command) with the user's hyperparameters as ``--name value`` in name order and the ``SM_*``
variables of ``Environment.to_env_vars``. A ``requirements.txt`` beside the program is installed, as the toolkit
installs it, before the program runs: into an environment of its own (``environments.py``), never into the
emulator's. A program that is a package (``setup.py``) is refused: the toolkit would pip-install it into the image's
Python.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

from sagemaker_emulator.algorithms import archives
from sagemaker_emulator.algorithms.base import ClientError
from sagemaker_emulator.algorithms.layout import JobLayout

PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
PREFIX = "sagemaker_"
# the toolkit's own hyperparameters (its params.SAGEMAKER_HYPERPARAMETERS); other sagemaker_* ones are framework
# parameters (SM_FRAMEWORK_PARAMS)
OWN = frozenset(
    {
        PROGRAM,
        SUBMIT_DIRECTORY,
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
    }
)
LOG_LEVEL_INFO = 20
# properties of the toolkit's Environment that to_env_vars leaves out (channels go as SM_CHANNELS/SM_CHANNEL_<NAME>)
NOT_VARIABLES = frozenset({"channel_input_dirs", "distribution_hosts", "is_master", "job_name", "master_hostname"})
REQUIREMENTS = "requirements.txt"


def uses_toolkit(hyperparameters: dict[str, str]) -> bool:
    """Whether a job leaves its script to the image's training toolkit (it names ``sagemaker_program``)."""
    return PROGRAM in hyperparameters


def decoded(value: str):
    """A hyperparameter as the toolkit reads it: its JSON value, or the text itself when it is not JSON."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def split(hyperparameters: dict[str, str]) -> tuple[dict, dict]:
    """(the toolkit's and framework's hyperparameters, the user's), each value decoded."""
    values = {name: decoded(value) for name, value in hyperparameters.items()}
    own = {name: value for name, value in values.items() if name in OWN or name.startswith(PREFIX)}
    return own, {name: value for name, value in values.items() if name not in own}


def _text(value) -> str:
    return "" if value is None else str(value)


def user_arguments(hyperparameters: dict) -> list[str]:
    """``--name value`` per hyperparameter in name order (``-n`` for a one-letter name; a dict as ``k=v,k=v``)."""
    arguments = []
    for name in sorted(hyperparameters):
        value = hyperparameters[name]
        if isinstance(value, dict):
            value = ",".join(f"{key}={item}" for key, item in sorted(value.items()))
        arguments += [f"--{name}" if len(name) > 1 else f"-{name}", _text(value)]
    return arguments


def _variable(value) -> str:
    """An ``SM_*`` value: text as it is, anything else as compact JSON with sorted keys."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def local_gpus() -> int:
    """How many GPUs ``nvidia-smi`` lists here (0 without it), as the toolkit counts the instance's."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listed = subprocess.run([smi, "--list-gpus"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.strip())


def environment(layout: JobLayout, own: dict, user: dict, program: str) -> dict[str, str]:
    """The ``SM_*`` variables the toolkit gives the program, with ``layout.root`` standing in for ``/opt/ml``.

    ``SM_TRAINING_ENV`` holds the toolkit's ``Environment`` properties; the other variables are its
    ``to_env_vars`` names (``SM_HPS``, ``SM_CHANNEL_<NAME>``, ``SM_HP_<NAME>``, ...).
    """
    resource = layout.resource_config()
    channels = {name: str(layout.channel_dir(name)) for name in layout.input_data_config()}
    hosts, host = resource["hosts"], resource["current_host"]
    instance_type = resource.get("current_instance_type", "local")
    group = resource.get("current_group_name", "homogeneousCluster")
    properties = {
        "additional_framework_parameters": {k: v for k, v in own.items() if k not in OWN},
        "channel_input_dirs": channels,
        "current_host": host,
        "current_instance_group": group,
        "current_instance_group_hosts": hosts,
        "current_instance_type": instance_type,
        "distribution_hosts": [],
        "distribution_instance_groups": [],
        "framework_module": os.environ.get("SAGEMAKER_TRAINING_MODULE"),
        "hosts": hosts,
        "hyperparameters": user,
        "input_config_dir": str(layout.config_dir),
        "input_data_config": layout.input_data_config(),
        "input_dir": str(layout.root / "input"),
        "instance_groups": [group],
        "instance_groups_dict": {group: {"instance_group_name": group, "instance_type": instance_type, "hosts": hosts}},
        "is_hetero": False,
        "is_master": host == hosts[0],
        "job_name": os.environ.get("TRAINING_JOB_NAME"),
        "log_level": own.get("sagemaker_container_log_level", LOG_LEVEL_INFO),
        "master_hostname": hosts[0],
        "model_dir": str(layout.model_dir),
        "module_dir": _text(own.get(SUBMIT_DIRECTORY, code_dir(layout))),
        "module_name": program.removesuffix(".py"),
        "network_interface_name": resource.get("network_interface_name", "eth0"),
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": local_gpus(),
        "num_neurons": 0,
        "output_data_dir": str(layout.output_data_dir),
        "output_dir": str(layout.output_dir),
        "output_intermediate_dir": str(layout.output_dir / "intermediate"),
        "resource_config": resource,
        "user_entry_point": program,
    }
    renamed = {"hyperparameters": "hps", "additional_framework_parameters": "framework_params"}
    settings = {renamed.get(key, key): value for key, value in properties.items() if key not in NOT_VARIABLES}
    settings.update(channels=sorted(channels), training_env=properties, user_args=user_arguments(user))
    settings.update({f"channel_{name}": path for name, path in channels.items()})
    settings.update({f"hp_{name}": value for name, value in user.items()})
    variables = {f"SM_{key.upper()}": _variable(value) for key, value in settings.items()}
    variables.update(
        SAGEMAKER_JOB_NAME=_text(own.get("sagemaker_job_name", "")),
        SAGEMAKER_REGION=_text(own.get("sagemaker_region", os.environ.get("AWS_REGION", ""))),
        CURRENT_HOST=host,
    )
    return variables


def code_dir(layout: JobLayout) -> Path:
    return layout.root / "code"


def fetch_code(layout: JobLayout, uri: str) -> Path:
    """Download and unpack ``sagemaker_submit_directory`` into ``/opt/ml/code``, as the toolkit does.

    Raises:
        ClientError: the value is not an S3 URI, the object cannot be read, or it is not a tar archive.
        JobInputError: a member of the archive would land outside the code folder.
    """
    import boto3
    import botocore.exceptions

    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ClientError(f"{SUBMIT_DIRECTORY} must be an S3 URI of a sourcedir.tar.gz, got {uri!r}.")
    bucket, key = uri[5:].split("/", 1)
    folder = code_dir(layout)
    folder.mkdir(parents=True, exist_ok=True)
    archive = layout.root / "sourcedir.tar.gz"
    try:
        boto3.client("s3").download_file(bucket, key, str(archive))
        archives.extract(archive, folder)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise ClientError(f"Could not download {SUBMIT_DIRECTORY} {uri}: {error}") from None
    except archives.UnsafeArchiveError as error:
        raise ClientError(f"{SUBMIT_DIRECTORY} {uri} holds a member outside its folder: {error}") from None
    except (tarfile.TarError, EOFError) as error:
        raise ClientError(f"{SUBMIT_DIRECTORY} {uri} is not a tar archive: {error}") from None
    finally:
        archive.unlink(missing_ok=True)
    return folder


def requirements_file(folder: Path) -> Path | None:
    """The code folder's ``requirements.txt``, which the toolkit installs before running the program; None without."""
    path = folder / REQUIREMENTS
    return path if path.is_file() else None


def command(layout: JobLayout) -> tuple[list[str], Path, dict[str, str]]:
    """(command, working folder, extra environment) of the toolkit-run program; the code is fetched first.

    The code folder goes first on ``PYTHONPATH``; its ``requirements.txt`` (:func:`requirements_file`) is the
    caller's to install.

    Raises:
        ClientError: no ``sagemaker_submit_directory``, the program is missing or is a package, or see
            :func:`fetch_code`.
    """
    own, user = split(layout.hyperparameters())
    program = _text(own[PROGRAM])
    if SUBMIT_DIRECTORY not in own:
        raise ClientError(f"{PROGRAM} is {program!r} but {SUBMIT_DIRECTORY} is missing: the code has no source.")
    folder = fetch_code(layout, _text(own[SUBMIT_DIRECTORY]))
    if (folder / "setup.py").exists():
        raise ClientError(
            f"{SUBMIT_DIRECTORY} is a Python package (setup.py), which the training toolkit would install into "
            "the image's Python; the local SageMaker emulator runs a program (a .py or .sh file) instead."
        )
    if not (folder / program).is_file():
        raise ClientError(f"{PROGRAM} {program!r} is not in {SUBMIT_DIRECTORY} {own[SUBMIT_DIRECTORY]}.")
    variables = environment(layout, own, user, program)
    arguments = user_arguments(user)
    if program.endswith(".py"):
        run = ["python", program, *arguments]
    else:
        (folder / program).chmod(0o755)
        run = ["/bin/sh", "-c", shlex.join([f"./{program}", *arguments])]
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return run, folder, variables
