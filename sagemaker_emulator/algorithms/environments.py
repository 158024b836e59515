"""A script-mode job's own Python: a virtual environment layered on the emulator's, so no job installs into it.

On SageMaker a job's ``pip install`` changes its container's image and nothing else. Here the image's Python is the
emulator's, which also serves the notebook: AWS's own train-to-inference example pins ``torch<2.0``, and its
``requirements.txt`` used to replace torch in the notebook's environment. So a script-mode job runs a virtual
environment of its own (``python``, ``python3``, ``pip`` on its ``PATH`` are that environment's), whose
``site-packages`` come first, then the environment of its ``requirements.txt``, then the emulator's packages
(added by a ``.pth`` file, so everything the workshop installed stays importable and pip counts it as installed).
Whatever the job's pip installs (the toolkit's ``requirements.txt``, the SDK driver's ``install_requirements.py``,
a script's own ``pip install``) lands in the job's own environment.

A ``requirements.txt`` is installed once per content: into ``<cache>/<sha256 of the file>`` (the emulator's
``environments`` folder, ``CACHE_VARIABLE``), with pip run from an environment layered the same way, so only what
the emulator lacks is downloaded. A failed install fails the job as the training toolkit reports it
(``InstallRequirementsError``).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

from sagemaker_emulator.algorithms.base import AlgorithmError, log

CACHE_VARIABLE = "SAGEMAKER_EMULATOR_ENVIRONMENTS"  # where the emulator keeps requirements' environments
LAYERS_FILE = "_sagemaker_emulator_layers.pth"
COMPLETE = "complete"  # written last into a cached environment: one without it is half installed
ERROR_CHARS = 600


def site_packages(environment: Path) -> Path:
    return environment / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def emulator_packages() -> list[Path]:
    """The emulator's own package folders, in import order: what every job environment is layered on."""
    folders = [Path(folder) for folder in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        folders.append(Path(site.getusersitepackages()))
    return [folder for folder in folders if folder.is_dir()]


def create(environment: Path, layers: list[Path]) -> Path:
    """A virtual environment at ``environment`` that imports ``layers`` after its own packages; returns its python.

    ``site.addsitedir`` (not a bare path line) so that the layers' own ``.pth`` files are honoured too.
    """
    venv.EnvBuilder(symlinks=True, with_pip=False).create(environment)
    additions = "; ".join(f"site.addsitedir({str(layer)!r})" for layer in layers)
    (site_packages(environment) / LAYERS_FILE).write_text(f"import site; {additions}\n")
    return environment / "bin" / "python"


def installed(cache: Path) -> list[Path]:
    """The environments in ``cache`` installed in full: the sandbox shows them read-only to every later job."""
    return sorted(path for path in cache.iterdir() if (path / COMPLETE).exists()) if cache.is_dir() else []


def install_requirements(requirements: Path, cache: Path) -> Path:
    """The packages folder of ``requirements``' environment, installed now unless the cache has it already.

    Raises:
        AlgorithmError: pip failed (``InstallRequirementsError``, with pip's exit code, last error and command).
    """
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    environment = cache / digest
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two jobs with the same requirements install them once
        if (environment / COMPLETE).exists():
            log(f"{requirements.name} (sha256 {digest[:12]}): its environment is already installed, reused.")
            return site_packages(environment)
        shutil.rmtree(environment, ignore_errors=True)
        python = create(environment, emulator_packages())
        command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)]
        log(f"Installing {requirements.name} into an environment of its own: {' '.join(command)}")
        # in the file's folder, as the toolkit runs it, so that a line like ./wheels/x.whl is found
        result = subprocess.run(
            command, cwd=requirements.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            shutil.rmtree(environment, ignore_errors=True)
            errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
            error = (errors[-1] if errors else result.stdout.strip()[-ERROR_CHARS:])[:ERROR_CHARS]
            raise AlgorithmError(
                f'InstallRequirementsError:\nExitCode {result.returncode}\nErrorMessage "{error}"\n'
                f'Command "{" ".join(command)}"'
            )
        (environment / COMPLETE).touch()
    return site_packages(environment)


def job_environment(folder: Path, requirements: Path | None, cache: Path) -> Path:
    """The job's own environment in ``folder`` (its python is returned), on its requirements' and the emulator's.

    Raises:
        AlgorithmError: see :func:`install_requirements`.
    """
    layers = emulator_packages()
    if requirements is not None:
        layers.insert(0, install_requirements(requirements, cache))
    return create(folder, layers)
