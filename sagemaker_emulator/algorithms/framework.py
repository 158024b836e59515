"""Framework training images (``mxnet-training``, ...) in script mode: run the job's own entry point.

SDK v3's ``ModelTrainer(source_code=SourceCode(...))`` uploads the user's folder as channel ``code`` and its driver
scripts as channel ``sm_drivers``, and sets ``AlgorithmSpecification.ContainerEntrypoint`` / ``ContainerArguments``
to ``/bin/bash -c "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && /opt/ml/input/data/sm_drivers/sm_train.sh"``.
That script derives the ``SM_*`` variables from ``/opt/ml/input/config/*.json`` (``scripts/environment.py``), goes
to the code folder and runs the entry script with the hyperparameters as ``--name value`` flags. This runner
executes that same command in a subprocess, so any job launched this way runs as it would in the image, except:

- ``/opt/ml`` is the job folder. The command and the drivers name ``/opt/ml/...`` absolute paths, and mounting the
  job folder there needs root or a mount namespace, which macOS lacks and many Linux hosts (containers, Studio,
  Ubuntu's AppArmor defaults) refuse to unprivileged users. So ``/opt/ml`` is rewritten to the job folder in the
  command and in the text files of the ``sm_drivers`` channel (the SDK's own files; their stale ``__pycache__`` is
  removed), and the ``SM_*`` variables then name the job folder. The user's code is not rewritten: scripts take
  their paths from ``SM_*``, as the contract says, rather than hard-coding ``/opt/ml``.
- ``python3``, ``python``, ``pip3`` and ``pip`` on ``PATH`` are a virtual environment of the job's own, layered on
  the emulator's packages (``environments.py``): what the job installs never reaches the emulator's environment,
  and a ``requirements.txt`` that the toolkit or the SDK's driver installs comes from a cache keyed by its hash.
  The image's framework version (the ``1.9.0`` of ``mxnet-training:1.9.0-cpu-py38``) is taken as satisfied by what
  is installed locally, and the job's log says so. ``SM_NUM_GPUS`` counts local GPUs, whatever the instance type.
- A non-zero exit fails the job with ``AlgorithmError: `` and the text of ``output/failure`` (what the driver or the
  script wrote there, as AWS reports it), then the script's own exception line from the output, since SDK v3's
  driver writes only its own ``CalledProcessError`` traceback to that file; with no failure file, the output's
  last lines. A script that ran out of memory (:func:`out_of_memory`) raises ``ScriptOutOfMemory`` instead, which
  the container reports as SageMaker reports an out-of-memory job.
- The script inherits the container's environment (``os.environ``), sealed by the emulator: its boto3 reaches
  the emulator with the emulator's key, never the user's AWS account (``jobs/process.py``).

A job with no entry point but a ``sagemaker_program`` hyperparameter (SDK v2's framework estimators, SDK v3's
``HyperparameterTuner``) is run as the image's training toolkit runs it (``toolkit.py``), with the same shims,
environment and failure handling.
"""

from __future__ import annotations

import collections
import importlib.metadata
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from sagemaker_emulator.algorithms import environments, toolkit
from sagemaker_emulator.algorithms.base import AlgorithmError, ClientError, log
from sagemaker_emulator.algorithms.failures import ALGORITHM_ERROR, room
from sagemaker_emulator.algorithms.layout import JobLayout
from sagemaker_emulator.algorithms.registry import image_repository

CONTAINER_ROOT = "/opt/ml"
DRIVERS_CHANNEL = "sm_drivers"
CODE_CHANNEL = "code"  # SDK v3's SourceCode.source_dir
TAIL_LINES = 5
TAIL_CHARS = 400
OUTPUT_LINES = 200  # how much output is kept to find the script's error in
REASON_CHARS = room(ALGORITHM_ERROR)
STOP_GRACE_SECONDS = 5.0

# image repository → the distribution that stands in for the image's framework
FRAMEWORKS = {
    "mxnet-training": "mxnet",
    "pytorch-training": "torch",
    "tensorflow-training": "tensorflow",
    "sagemaker-scikit-learn": "scikit-learn",
}

_CONTAINER_PATH = re.compile(re.escape(CONTAINER_ROOT) + r"(?![\w.-])")
_SHELL_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+-]+")
# how a SIGKILL of the script shows: itself, through a shell (128 + 9), through the SDK driver's CalledProcessError
_KILLED_CODES = (-signal.SIGKILL, 128 + signal.SIGKILL)
_KILLED_TEXT = f"died with <Signals.SIGKILL: {signal.SIGKILL.value}>"
MXNET_OUT_OF_MEMORY = "Failed to allocate CPU Memory"  # mxnet's MemoryError
# MemoryError, and its subclasses by any dotted name (numpy's numpy.core._exceptions._ArrayMemoryError)
_OUT_OF_MEMORY_ERROR = re.compile(rf"(?:[\w.]*MemoryError\b|MXNetError: {re.escape(MXNET_OUT_OF_MEMORY)})")
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt)(?:: .*)?")


def container_path(text: str, root: Path) -> str:
    """``text`` with every ``/opt/ml`` path moved under ``root`` (``/opt/mlx`` and ``/opt/ml.d`` are left alone)."""
    return _CONTAINER_PATH.sub(lambda _: str(root), text)


def rewrite_drivers(layout: JobLayout) -> None:
    """Point the ``sm_drivers`` channel's text files at the job folder (binary files are left as they are)."""
    folder = layout.channel_dir(DRIVERS_CHANNEL)
    if not folder.is_dir():
        return
    for cache in [p for p in folder.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache)
    for path in (p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rewritten = container_path(text, layout.root)
        if rewritten != text:
            path.write_text(rewritten, encoding="utf-8")


def command(layout: JobLayout, entrypoint: list[str], arguments: list[str]) -> list[str]:
    """The container's command with ``/opt/ml`` moved to the job folder.

    Raises:
        ClientError: no entry point (a framework image given nothing to run), or the emulator's work folder has
            a path that would need shell quoting, which the SDK's driver lacks.
    """
    if not entrypoint:
        raise ClientError(
            "A framework image runs the job's own code, but AlgorithmSpecification.ContainerEntrypoint is empty "
            f"and no '{toolkit.PROGRAM}' hyperparameter names a script. Launch the script with "
            "ModelTrainer(training_image=..., source_code=SourceCode(source_dir=..., entry_script=...)), which "
            "sets the entry point, or with an SDK v2 framework estimator's entry_point."
        )
    if not _SHELL_SAFE_PATH.fullmatch(str(layout.root)):
        raise ClientError(
            f"The emulator's job folder '{layout.root}' stands in for /opt/ml, but the SDK's driver script uses it "
            "unquoted; start the emulator with a work folder whose path has only letters, digits and ._+-/"
        )
    return [container_path(part, layout.root) for part in [*entrypoint, *arguments]]


def _framework_note(image: str) -> str:
    repository = image_repository(image)
    distribution = FRAMEWORKS.get(repository)
    python = f"Python {platform.python_version()} ({sys.executable})"
    if distribution is None:
        return f"{image}: the entry point runs with the emulator's {python}."
    try:
        installed = f"{distribution} {importlib.metadata.version(distribution)} installed"
    except importlib.metadata.PackageNotFoundError:
        installed = f"{distribution} NOT installed: a script that imports it will fail"
    return (
        f"{image}: the entry point runs with the emulator's {python}, {installed}; the image's framework version "
        "is taken as satisfied by this local environment."
    )


def _python_shims(folder: Path, python: Path) -> None:
    """``python3``/``python``/``pip3``/``pip`` that run ``python`` (the job's environment's) for the driver's lookups."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in (("python3", ""), ("python", ""), ("pip3", " -m pip"), ("pip", " -m pip")):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec "{python}"{module} "$@"\n')
        shim.chmod(0o755)


_DRIVER_INSTALL = re.compile(r"install_requirements\.py\s+(\S+)")


def driver_requirements(layout: JobLayout) -> Path | None:
    """The requirements file that SDK v3's ``sm_train.sh`` installs from the ``code`` channel, if it names one."""
    script = layout.channel_dir(DRIVERS_CHANNEL) / "sm_train.sh"
    named = _DRIVER_INSTALL.search(script.read_text(errors="replace")) if script.is_file() else None
    if named is None:
        return None
    path = layout.channel_dir(CODE_CHANNEL) / named.group(1)
    return path if path.is_file() else None


def _end(process: subprocess.Popen) -> None:
    """Stop the entry point and what it started (all in this runner's process group), SIGTERM then SIGKILL."""
    if process.poll() is not None:
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    own_group = os.getpgrp() == os.getpid()
    if own_group:
        os.killpg(os.getpgrp(), signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        if own_group:
            os.killpg(os.getpgrp(), signal.SIGKILL)  # this runner too, as the emulator's own SIGKILL would
        process.kill()
        process.wait()


def last_error(lines: list[str], already_said: str) -> str | None:
    """The last Python exception line of the output (``ValueError: ...``) that ``already_said`` lacks.

    ``subprocess.CalledProcessError`` lines are passed over: that is the SDK driver reporting that the script
    failed (and its traceback is what the driver writes to the failure file), not the script's own error.
    """
    for line in reversed(lines):
        text = line.strip()
        if (
            _EXCEPTION_LINE.fullmatch(text)
            and not text.startswith("subprocess.CalledProcessError")
            and (text not in already_said)
        ):
            return text
    return None


def failure_reason(layout: JobLayout, code: int, output: list[str]) -> str:
    """The FailureReason after ``AlgorithmError: ``, within AWS's 1024 characters.

    It is the failure file's text (or the exit code when there is none), then the script's own error from the
    output (:func:`last_error`), or, when the output shows none, its last lines.
    """
    written = layout.failure_file.read_text(errors="replace").strip() if layout.failure_file.exists() else ""
    head = written or f"the training container exited with code {code}"
    error = last_error(output, head)
    if error is not None:
        extra = f"\nThe script's error: {error[:TAIL_CHARS]}"
    elif not written:
        extra = "\nLast lines of output:\n" + "".join(output[-TAIL_LINES:]).strip()[-TAIL_CHARS:]
    else:
        extra = ""
    budget = REASON_CHARS - len(extra)
    if len(head) > budget:
        head = "..." + head[-(budget - 3) :]
    return head + extra


class ScriptOutOfMemory(MemoryError):
    """The job's script ran out of memory; the message says how (its own error, or a SIGKILL)."""


def out_of_memory(layout: JobLayout, code: int, output: list[str]) -> str | None:
    """How the script ran out of memory, or None if it did not.

    Under the container's memory limit an allocation fails with ``MemoryError`` (mxnet: ``Failed to allocate CPU
    Memory``); beyond the machine's memory the kernel's OOM killer sends SIGKILL, the only SIGKILL a running job
    gets here (the emulator's own, after a stop, ends the job as Stopped whatever this says).
    """
    error = last_error(output, "")
    if error is not None and _OUT_OF_MEMORY_ERROR.match(error):
        return f"The script's error: {error[:TAIL_CHARS]}"
    written = layout.failure_file.read_text(errors="replace") if layout.failure_file.exists() else ""
    if code in _KILLED_CODES or _KILLED_TEXT in written:
        return f"the script was killed with SIGKILL (exit code {code}), as the kernel's out-of-memory killer does"
    return None


def run(layout: JobLayout, image: str, entrypoint: list[str], arguments: list[str]) -> None:
    """Run the job's container command; its output goes to stdout (the job's log) as it comes.

    Without an entry point, a job that names ``sagemaker_program`` runs as the image's training toolkit runs it
    (:func:`toolkit.command`). Either runs in an environment of its own (:func:`environments.job_environment`).

    Raises:
        ClientError: the job gives no entry point and names no program (see :func:`command`), or the toolkit
            cannot fetch or find its program.
        AlgorithmError: the command exited non-zero; the message is the job's FailureReason without its prefix.
        ScriptOutOfMemory: the command ran out of memory (:func:`out_of_memory`); the message says how.
    """
    output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
    with tempfile.TemporaryDirectory(prefix="sagemaker-emulator-python-") as scratch:
        if not entrypoint and toolkit.uses_toolkit(layout.hyperparameters()):
            args, cwd, extra = toolkit.command(layout)
            requirements = toolkit.requirements_file(cwd)
        else:
            args, cwd, extra = command(layout, entrypoint, arguments), layout.root, {}
            requirements = driver_requirements(layout)
        rewrite_drivers(layout)
        log(_framework_note(image))
        cache = Path(os.environ.get(environments.CACHE_VARIABLE) or Path(scratch, "requirements"))
        python = environments.job_environment(Path(scratch, "python"), requirements, cache)
        shims = Path(scratch, "bin")
        _python_shims(shims, python)
        env = dict(os.environ, **extra, PATH=os.pathsep.join([str(shims), os.environ.get("PATH", os.defpath)]))
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                output.append(line)
            code = process.wait()
        finally:
            _end(process)
    if code != 0:
        memory = out_of_memory(layout, code, list(output))
        if memory is not None:
            raise ScriptOutOfMemory(memory)
        raise AlgorithmError(failure_reason(layout, code, list(output)))


def load(model_dir: Path):
    """Framework training images do not serve in the emulator; say so rather than fail obscurely."""
    raise ClientError(
        "A framework training image cannot serve models in the local SageMaker emulator (framework inference "
        "images are not emulated); download the job's model.tar.gz and load the model where you need it."
    )
