"""What runs inside an emulated algorithm container: ``train`` a job, or ``serve`` a model over HTTP.

    python -m sagemaker_emulator.algorithms.container train <image> <job_root> [--report FILE]
        [--entrypoint JSON_LIST --arguments JSON_LIST] [--memory-limit BYTES --memory-note TEXT]
    python -m sagemaker_emulator.algorithms.container serve <image> <model_dir> --port-file FILE [--failure FILE]

``train`` follows SageMaker's training-container contract on a folder laid out like ``/opt/ml``: it checks the
job's hyperparameters and channels against the plug-in's declarations, calls ``train(layout, hyperparameters)``
and on failure writes ``output/failure`` (``ClientError: ...`` for the caller's faults, ``AlgorithmError: ...``
for the algorithm's). SIGTERM (StopTrainingJob, MaxRuntimeInSeconds) ends training; whatever the algorithm has
saved in ``model/`` by then is still uploaded. ``--report`` receives the plug-in's metric definitions.
``--memory-limit`` caps the container's memory (:func:`limit_memory`); running out of it (a ``MemoryError``) fails
the job with SageMaker's out-of-memory reason (``failures.out_of_memory_reason``), ``--memory-note`` saying which limit.
A framework image (script mode, ``framework.py``) instead runs the job's ``ContainerEntrypoint`` and
``ContainerArguments`` (``--entrypoint``, ``--arguments``), as ``docker run --entrypoint`` would; its hyperparameters
and channels are the script's business, so they are not checked here.

``serve`` loads the model with the plug-in's ``load(model_dir)`` and answers the inference-container contract
(``GET /ping``, ``POST /invocations``) on a loopback port, written to ``--port-file`` once it is ready.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from sagemaker_emulator.algorithms.base import AlgorithmError, Channel, ClientError, log, parse_hyperparameters
from sagemaker_emulator.algorithms.failures import (
    ALGORITHM_ERROR,
    CLIENT_ERROR,
    failure_reason,
    out_of_memory_reason,
)
from sagemaker_emulator.algorithms.framework import MXNET_OUT_OF_MEMORY, ScriptOutOfMemory
from sagemaker_emulator.algorithms.layout import JobLayout
from sagemaker_emulator.algorithms.media import parse_media_type
from sagemaker_emulator.algorithms.registry import is_framework, load_plugin
from sagemaker_emulator.errors import JobInputError

EXIT_CLIENT_ERROR = 1
EXIT_ALGORITHM_ERROR = 2
EXIT_STOPPED = 143  # 128 + SIGTERM, what a container stopped by SageMaker reports
EXIT_OUT_OF_MEMORY = 137  # 128 + SIGKILL, what a container killed for its memory reports

NO_MEMORY_LIMIT = "this machine's memory"


class Stopped(BaseException):
    """Raised in the algorithm when SageMaker sends SIGTERM; a BaseException so ``except Exception`` keeps out."""


def _on_sigterm(signum, frame):
    raise Stopped()


def check_channels(declared: dict[str, Channel], given: dict[str, dict]) -> None:
    """The job's channels against the plug-in's ``CHANNELS``: none unknown, none required missing, types accepted.

    Raises:
        ClientError: naming the offending channel and what the algorithm accepts.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(f"'{n}'" for n in unknown)
        raise ClientError(
            f"Unable to initialize the algorithm. Failed to validate input data configuration: channel(s) {names} "
            f"are not supported; supported channels: {', '.join(sorted(declared))} (caused by ValidationError)"
        )
    missing = sorted(name for name, channel in declared.items() if channel.required and name not in given)
    if missing:
        names = ", ".join(f"'{n}'" for n in missing)
        raise ClientError(
            f"Unable to initialize the algorithm. Failed to validate input data configuration: required channel(s) "
            f"{names} not given (caused by ValidationError)"
        )
    for name, config in given.items():
        accepted = declared[name].content_types
        content_type = config.get("ContentType")
        if accepted and content_type and parse_media_type(content_type)[0] not in accepted:
            raise ClientError(
                f"Unable to initialize the algorithm. Channel '{name}' has content type '{content_type}'; this "
                f"algorithm reads {', '.join(accepted)} (caused by ValidationError)"
            )


def check_instances(plugin, image: str, layout: JobLayout) -> None:
    """Several hosts only for a plug-in that trains on several (``MULTI_INSTANCE``), as AWS's FM and k-NN do;
    Object2Vec and the others are single-machine algorithms on AWS.

    Raises:
        ClientError: naming the InstanceCount and the limit.
    """
    count = len(layout.hosts())
    if count > 1 and not getattr(plugin, "MULTI_INSTANCE", False):
        raise ClientError(
            f"Unable to initialize the algorithm. The algorithm in image '{image}' supports only single-machine "
            f"training: InstanceCount must be 1, got {count} (caused by ValidationError)"
        )


def metric_definitions(plugin) -> list[dict]:
    """A plug-in's built-in ``METRIC_DEFINITIONS`` as the API's ``[{"Name", "Regex"}]`` (a name → regex dict also works)."""
    declared = getattr(plugin, "METRIC_DEFINITIONS", [])
    if isinstance(declared, dict):
        return [{"Name": name, "Regex": regex} for name, regex in declared.items()]
    return list(declared)


def limit_memory(limit: int, note: str) -> None:
    """Cap this process and every process it starts at ``limit`` bytes of data (``RLIMIT_DATA``, soft and hard).

    A SageMaker container has its instance's memory and is killed beyond it; here an allocation beyond the limit
    fails at once (numpy raises ``MemoryError``) instead of the kernel's OOM killer ending the job, or the laptop's
    other programs, much later. ``RLIMIT_DATA`` rather than ``RLIMIT_AS``: since Linux 4.7 it counts every private
    writable mapping (numpy's and mxnet's arrays included) but not shared libraries and address space reserved and
    never written. Measured after importing mxnet: 0.6 GiB of data in 1.4 GiB of address space, and under
    ``RLIMIT_AS`` = 1 GiB the import aborts ("terminate called without an active exception") while under
    ``RLIMIT_DATA`` = 1 GiB it works. macOS enforces neither limit (``setrlimit`` is refused with EINVAL or accepted
    and ignored), so there the log says so.

    It is per process and leaves out shared memory, so the emulator also counts the whole job from outside
    (``jobs/memory_guard.py``); this stays the first line of defence, failing one oversized allocation before a
    page of it is touched, with the algorithm's own ``MemoryError`` in the log.
    """
    if sys.platform == "darwin":
        log(f"Memory limit {note}: not applied, macOS does not enforce RLIMIT_DATA.", level="WARNING")
        return
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ValueError, OSError) as error:
        log(f"Memory limit {note}: not applied ({error}).", level="WARNING")
        return
    log(f"Memory limit: {note} (RLIMIT_DATA).")


def _fail(layout: JobLayout, reason: str) -> None:
    log(reason, level="ERROR")
    layout.failure_file.parent.mkdir(parents=True, exist_ok=True)
    layout.failure_file.write_text(reason)


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` so that a reader never sees it half written: the emulator reads it while this process runs."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def train(
    image: str,
    root: Path,
    report: Path | None,
    entrypoint: list[str],
    arguments: list[str],
    memory_limit: int | None = None,
    memory_note: str = NO_MEMORY_LIMIT,
) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    layout = JobLayout(root)
    if memory_limit is not None:
        limit_memory(memory_limit, memory_note)
    try:
        plugin = load_plugin(image)
        if report is not None:
            _write_whole(report, json.dumps({"metric_definitions": metric_definitions(plugin)}))
        if is_framework(image):
            plugin.run(layout, image, entrypoint, arguments)
            return 0
        if entrypoint or arguments:
            raise ClientError(
                f"The image '{image}' runs a built-in algorithm; the local SageMaker emulator runs "
                "AlgorithmSpecification.ContainerEntrypoint/ContainerArguments only for framework images."
            )
        check_instances(plugin, image, layout)
        hyperparameters = parse_hyperparameters(plugin.HYPERPARAMETERS, layout.hyperparameters())
        check_channels(plugin.CHANNELS, layout.input_data_config())
        plugin.train(layout, hyperparameters)
    except Stopped:
        log("Received SIGTERM: training stopped.")
        return EXIT_STOPPED
    except (ClientError, JobInputError) as error:  # JobInputError: a channel or file name the layout refused
        _fail(layout, failure_reason(CLIENT_ERROR, str(error)))
        return EXIT_CLIENT_ERROR
    except AlgorithmError as error:
        _fail(layout, failure_reason(ALGORITHM_ERROR, str(error)))
        return EXIT_ALGORITHM_ERROR
    except ScriptOutOfMemory as error:
        _fail(layout, out_of_memory_reason(memory_note, str(error)))
        return EXIT_OUT_OF_MEMORY
    except Exception as error:
        traceback.print_exc(file=sys.stdout)
        if isinstance(error, MemoryError) or MXNET_OUT_OF_MEMORY in str(error):
            what = f"MemoryError: {error}" if isinstance(error, MemoryError) else MXNET_OUT_OF_MEMORY
            _fail(layout, out_of_memory_reason(memory_note, what))
            return EXIT_OUT_OF_MEMORY
        _fail(layout, failure_reason(ALGORITHM_ERROR, f"{type(error).__name__}: {error}"))
        return EXIT_ALGORITHM_ERROR
    return 0


def serve(image: str, model_dir: Path, port_file: Path, failure: Path | None) -> int:
    from sagemaker_emulator.algorithms.model_server import serve_forever

    log(f"Loading the model from {model_dir} for {image}")
    try:
        predictor = load_plugin(image).load(model_dir)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        traceback.print_exc(file=sys.stdout)
        if failure is not None:
            failure.write_text(reason)
        return EXIT_CLIENT_ERROR if isinstance(error, ClientError) else EXIT_ALGORITHM_ERROR
    serve_forever(predictor, port_file)
    return 0


def _end_with_parent(grace_seconds: float = 5.0) -> None:
    """If the emulator's process dies (a killed kernel), stop as SageMaker stops a container: SIGTERM, then exit."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_seconds)
        os._exit(EXIT_STOPPED)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagemaker_emulator.algorithms.container")
    commands = parser.add_subparsers(dest="command", required=True)
    train_args = commands.add_parser("train")
    train_args.add_argument("image")
    train_args.add_argument("root", type=Path)
    train_args.add_argument("--report", type=Path)
    train_args.add_argument("--entrypoint", type=json.loads, default=[], help="a JSON list (ContainerEntrypoint)")
    train_args.add_argument("--arguments", type=json.loads, default=[], help="a JSON list (ContainerArguments)")
    train_args.add_argument("--memory-limit", type=int, help="bytes (RLIMIT_DATA)")
    train_args.add_argument("--memory-note", default=NO_MEMORY_LIMIT, help="where the limit comes from")
    serve_args = commands.add_parser("serve")
    serve_args.add_argument("image")
    serve_args.add_argument("model_dir", type=Path)
    serve_args.add_argument("--port-file", type=Path, required=True)
    serve_args.add_argument("--failure", type=Path)
    args = parser.parse_args(argv)
    _end_with_parent()
    if args.command == "train":
        return train(
            args.image, args.root, args.report, args.entrypoint, args.arguments, args.memory_limit, args.memory_note
        )
    return serve(args.image, args.model_dir, args.port_file, args.failure)


if __name__ == "__main__":
    sys.exit(main())
