"""What keeps a running emulator from being replaced by a newer copy of its code: work in it, and kernels using it.

Work is asked of the emulator itself, over its API and signed with its key, so an emulator that an earlier version
of this code started answers too: a training, transform or tuning job running or stopping, an endpoint being
created, updated or deleted, or one still being hosted again after a restart (``InService`` without its variants
yet). Restarting then would fail the job, or leave the endpoint half made.

Kernels register when they attach (:func:`attach`, one file per process in ``<home>/kernels/``): a restart gives the
emulator a new port and key pair, so a kernel still using the old ones would get connection errors with no hint
why. A registration carries the process's start time, so a pid the system reused is not mistaken for the kernel;
a kernel that has exited, or that attached to an earlier run of the emulator, no longer counts and is forgotten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

from sagemaker_emulator.store.files import private_folder, write_atomically
from sagemaker_emulator.store.running import Running

KERNELS = "kernels"
DEFAULT_REGION = "us-east-1"
RUNNING_JOB = ("InProgress", "Stopping")
CHANGING_ENDPOINT = ("Creating", "Updating", "Deleting")
# (operation, list member, name member, status member, what to call one)
JOB_LISTINGS = (
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus", "training job"),
    ("list_transform_jobs", "TransformJobSummaries", "TransformJobName", "TransformJobStatus", "transform job"),
    (
        "list_hyper_parameter_tuning_jobs",
        "HyperParameterTuningJobSummaries",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        "tuning job",
    ),
)
QUERY_TIMEOUT_SECONDS = 30.0


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if there is no such process of ours."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:  # gone, a zombie, or another user's (a pid reused since)
        return None


def attach(home: Path, running: Running, pid: int | None = None) -> None:
    """Note that process ``pid`` (default: this one) uses ``running``, the emulator serving ``home``."""
    pid = pid or os.getpid()
    record = {"pid": pid, "created": _started(pid), "emulator": running.pid, "started": running.started}
    write_atomically(private_folder(home / KERNELS) / f"{pid}.json", [json.dumps(record).encode()])


def attached(home: Path, running: Running) -> list[int]:
    """The pids of the live processes that attached to ``running``; every other registration is removed."""
    folder = home / KERNELS
    live = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            pid, created = int(record["pid"]), float(record["created"])
            same_emulator = (record["emulator"], record["started"]) == (running.pid, running.started)
        except (ValueError, KeyError, TypeError, OSError):
            same_emulator = False
        started = _started(pid) if same_emulator else None
        if started is not None and abs(started - created) < 0.01:
            live.append(pid)
        else:
            path.unlink(missing_ok=True)
    return live


def _regions(home: Path) -> list[str]:
    """The regions the emulator holds SageMaker resources in: the default one, and any its saved state names."""
    try:
        saved = json.loads((home / "state" / "sagemaker.json").read_text())["regions"]
    except (OSError, ValueError, KeyError, TypeError):
        saved = {}
    return sorted({DEFAULT_REGION, *saved})


def _rehosting(sagemaker, name: str) -> bool:
    """Whether an ``InService`` endpoint has no variants in service yet: a restart is hosting it again."""
    from botocore.exceptions import ClientError

    try:
        return "ProductionVariants" not in sagemaker.describe_endpoint(EndpointName=name)
    except ClientError:  # deleted since it was listed
        return False


def work(running: Running) -> list[str]:
    """What runs or changes in ``running`` now, in words (``training job 'fm-1' (InProgress)``); empty when idle.

    An emulator that does not answer is counted as busy (``no answer ...``): stopping it could lose what it runs.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(  # loopback never goes through a proxy; a busy emulator may be slow, a dead one fails fast
        proxies={},
        connect_timeout=5,
        read_timeout=QUERY_TIMEOUT_SECONDS,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    found = []
    try:
        for region in _regions(running.home):
            session = boto3.session.Session(region_name=region, **running.credentials.as_boto3())
            sagemaker = session.client("sagemaker", endpoint_url=running.url, config=config)
            for operation, member, name, status, kind in JOB_LISTINGS:
                for page in sagemaker.get_paginator(operation).paginate():
                    found += [
                        f"{kind} {job[name]!r} ({job[status]})" for job in page[member] if job[status] in RUNNING_JOB
                    ]
            for page in sagemaker.get_paginator("list_endpoints").paginate():
                for endpoint in page["Endpoints"]:
                    name, status = endpoint["EndpointName"], endpoint["EndpointStatus"]
                    if status in CHANGING_ENDPOINT:
                        found.append(f"endpoint {name!r} ({status})")
                    elif status == "InService" and _rehosting(sagemaker, name):
                        found.append(f"endpoint {name!r} (being hosted again after a restart)")
    except (BotoCoreError, ClientError) as error:
        found.append(f"no answer to a status query ({error})")
    return found


def reasons(home: Path, running: Running, caller: int | None = None) -> list[str]:
    """Everything that keeps ``running`` from a restart: its work, then the kernels attached other than ``caller``
    (default: this process, which asks because it wants the restart)."""
    caller = caller or os.getpid()
    kernels = [pid for pid in attached(home, running) if pid != caller]
    return work(running) + [f"kernel pid {pid}" for pid in kernels]
