"""The SageMaker training-container directory layout (what AWS mounts at ``/opt/ml``), rooted anywhere.

AWS's container contract: ``input/config/hyperparameters.json`` (every value a string),
``input/config/inputdataconfig.json`` (per channel: ContentType, TrainingInputMode, ...),
``input/config/resourceconfig.json`` (current_host, hosts, the instance group), ``input/data/<channel>/`` (the channel's
files), ``model/`` (whatever is written here becomes ``model.tar.gz``), ``output/failure`` (its text
becomes ``FailureReason``) and ``output/data/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sagemaker_emulator.algorithms.paths import confined

CURRENT_HOST = "algo-1"  # the first host: the only one of a one-instance job, the leader of a multi-instance one
INSTANCE_GROUP = "homogeneousCluster"  # the group name AWS gives a job's hosts when it names no instance groups
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"  # a training job's, when its ResourceConfig names none


@dataclass(frozen=True)
class JobLayout:
    """Paths of one job's ``/opt/ml`` tree."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    def channel_dir(self, name: str) -> Path:
        """``input/data/<name>``; botocore's ChannelName pattern admits ``.`` and ``..``, which are refused.

        Raises:
            JobInputError: the name is not a plain folder name (see :mod:`sagemaker_emulator.algorithms.paths`).
        """
        return confined(self.data_dir, name, f'The channel name "{name}"')

    def hyperparameters(self) -> dict[str, str]:
        return json.loads((self.config_dir / "hyperparameters.json").read_text())

    def input_data_config(self) -> dict[str, dict]:
        return json.loads((self.config_dir / "inputdataconfig.json").read_text())

    def resource_config(self) -> dict:
        return json.loads((self.config_dir / "resourceconfig.json").read_text())

    def hosts(self) -> list[str]:
        return self.resource_config()["hosts"]

    def current_host(self) -> str:
        return self.resource_config()["current_host"]

    def channel_files(self, name: str) -> list[Path]:
        """Every regular file of a channel, in a stable (sorted) order, hidden files excluded."""
        folder = self.channel_dir(name)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def host_names(count: int) -> list[str]:
    """AWS's host names for a job of ``count`` instances: ``algo-1`` … ``algo-<count>``."""
    return [f"algo-{number}" for number in range(1, count + 1)]


def create_layout(
    root: Path,
    hyperparameters: dict[str, str],
    input_data_config: dict[str, dict],
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    hosts: list[str] | None = None,
    current_host: str = CURRENT_HOST,
) -> JobLayout:
    """Write the config files and empty folders of a job tree; channel data is copied in by the caller.

    Args:
        root: the folder that plays ``/opt/ml``.
        hyperparameters: name → value, all strings (as CreateTrainingJob carries them).
        input_data_config: channel name → its config (``ContentType``, ``TrainingInputMode``, ...).
        instance_type: recorded in resourceconfig.json as AWS does.
        hosts: every host of the job (``host_names(InstanceCount)``); one host, ``algo-1``, when omitted.
        current_host: the host this tree belongs to.
    """
    hosts = hosts or [CURRENT_HOST]
    layout = JobLayout(Path(root))
    for folder in (layout.config_dir, layout.model_dir, layout.output_data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for name in input_data_config:
        layout.channel_dir(name).mkdir(parents=True, exist_ok=True)
    (layout.config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (layout.config_dir / "inputdataconfig.json").write_text(json.dumps(input_data_config))
    resource = {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": INSTANCE_GROUP,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": INSTANCE_GROUP, "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": "lo",
    }
    (layout.config_dir / "resourceconfig.json").write_text(json.dumps(resource))
    return layout
