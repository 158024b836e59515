"""Jobs are contained: a hostile script-mode job cannot read the user's files, write outside its folder, see other
processes or outlive its job, and its pip never installs into the emulator's environment.

The emulator under test gets a HOME of the test's own, holding a secret file. Each job reports what it could do in
``report.json`` in its model folder, so the test reads the answer from the job's artifact.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest
from emulator_helpers import (
    BUCKET,
    REGION,
    assert_healthy,
    channel,
    deploy,
    finished_training,
    model_artifact,
    training_request,
    wait_for,
)

import sagemaker_emulator
from sagemaker_emulator.jobs import sandbox
from sagemaker_emulator.jobs.process import Supervisor

MXNET = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38"
SECRET = "the-users-private-notes"

SANDBOX, WHY_NOT = sandbox.find()
needs_sandbox = pytest.mark.skipif(SANDBOX is None, reason=f"no sandbox here: {WHY_NOT}")


@pytest.fixture
def user_home(monkeypatch):
    """A HOME for the emulator under test, with a file the jobs must not read (under ``build/``, not ``/tmp``,
    which the sandbox replaces with the job's own anyway)."""
    home = Path(sagemaker_emulator.__file__).parents[1] / "build" / f"home-{uuid.uuid4().hex[:8]}"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SECRET)
    monkeypatch.setenv("HOME", str(home))
    yield home
    shutil.rmtree(home)


def script_job(sm, s3, name: str, script: str, environment: dict | None = None, files: dict | None = None) -> dict:
    """A script-mode job running ``script`` (and ``files`` beside it) with its model folder as argument."""
    for file, body in {"train.py": textwrap.dedent(script), **(files or {})}.items():
        s3.put_object(Bucket=BUCKET, Key=f"{name}/code/{file}", Body=body.encode() if isinstance(body, str) else body)
    request = training_request(name, [channel("code", f"s3://{BUCKET}/{name}/code", "text/x-python")], image=MXNET)
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["python3", "/opt/ml/input/data/code/train.py"], ContainerArguments=["/opt/ml/model"]
    )
    request["Environment"] = environment or {}
    sm.create_training_job(**request)
    return finished_training(sm, name, timeout=180)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for this machine's init to reap it does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def report_of(s3, job: dict) -> dict:
    key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as archive:
        return json.loads(archive.extractfile("report.json").read())


PROBE = """
    import json, os, pathlib, sys

    def attempt(action):
        try:
            action()
            return "done"
        except OSError as error:
            return type(error).__name__

    targets = json.loads(os.environ["PROBE_TARGETS"])
    seen = {
        "secret": attempt(lambda: pathlib.Path(targets["secret"]).read_text()),
        "home_listing": sorted(os.listdir(targets["home"])) if os.path.isdir(targets["home"]) else None,
        "writes": {name: attempt(lambda p=path: pathlib.Path(p).write_text("x")) for name, path in targets["writes"].items()},
        "own_tmp": attempt(lambda: pathlib.Path("/tmp/scratch").write_text("x")),
        "processes": [pathlib.Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
                      for p in os.listdir("/proc") if p.isdigit()],
        "emulator_environ": attempt(lambda: pathlib.Path(f"/proc/{targets['emulator_pid']}/environ").read_bytes()),
    }
    pathlib.Path(sys.argv[1], "report.json").write_text(json.dumps(seen))
"""


@needs_sandbox
def test_a_job_cannot_read_the_home_write_outside_its_folder_or_see_other_processes(sm, s3, emulator, user_home):
    package = Path(sagemaker_emulator.__file__).parent
    venv_packages = Path(psutil.__file__).parent.parent
    writes = {
        "home": user_home / "planted",
        "code": package / "planted.py",
        "venv": venv_packages / "planted.pth",
        "scratch": emulator.services.workdir / "planted",
    }
    targets = {
        "secret": str(user_home / ".ssh" / "id_rsa"),
        "home": str(user_home),
        "writes": {name: str(path) for name, path in writes.items()},
        "emulator_pid": os.getpid(),
    }
    job = script_job(sm, s3, "hostile", PROBE, {"PROBE_TARGETS": json.dumps(targets)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = report_of(s3, job)
    assert seen["secret"] == "FileNotFoundError"
    assert seen["home_listing"] == []
    assert seen["writes"]["code"] == seen["writes"]["venv"] == "OSError"  # EROFS: read-only file system
    assert seen["own_tmp"] == "done"
    assert not any(path.exists() for path in writes.values())  # what went into the hidden folders stayed in the job
    assert seen["emulator_environ"] == "FileNotFoundError"
    assert "\0".join(psutil.Process().cmdline()) + "\0" not in seen["processes"]
    assert len(seen["processes"]) == 3  # the sandbox's first process, the container, the script
    assert (user_home / ".ssh" / "id_rsa").read_text() == SECRET
    assert_healthy(emulator)


@needs_sandbox
def test_a_daemon_a_job_leaves_behind_dies_with_the_job(sm, s3, emulator):
    marker = f"daemon-{uuid.uuid4().hex}"
    script = f"""
        import pathlib, subprocess, sys
        subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", "{marker}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pathlib.Path(sys.argv[1], "report.json").write_text("{{}}")
    """
    job = script_job(sm, s3, "daemon", script)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert not [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert_healthy(emulator)


@needs_sandbox
def test_a_stopped_job_leaves_no_daemon(sm, s3, emulator):
    marker = f"daemon-{uuid.uuid4().hex}"
    script = f"""
        import subprocess, time
        subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", "{marker}"], start_new_session=True)
        time.sleep(600)
    """
    s3.put_object(Bucket=BUCKET, Key="stopped/code/train.py", Body=textwrap.dedent(script).encode())
    request = training_request(
        "stopped", [channel("code", f"s3://{BUCKET}/stopped/code", "text/x-python")], image=MXNET
    )
    request["AlgorithmSpecification"].update(ContainerEntrypoint=["python3", "/opt/ml/input/data/code/train.py"])
    sm.create_training_job(**request)

    def daemons():
        return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]

    wait_for(daemons, bool, timeout=120)
    sm.stop_training_job(TrainingJobName="stopped")
    assert finished_training(sm, "stopped")["TrainingJobStatus"] == "Stopped"
    assert not daemons()
    assert_healthy(emulator)


def test_requirements_install_into_the_jobs_environment_never_the_emulators(sm, s3, emulator, tmp_path):
    """An already installed package is satisfied from the emulator's environment; a new one goes to the cache."""
    import zipfile

    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("psutil/__init__.py", "version_info = (0, 1)\n__version__ = 'planted'\n")
        info = "psutil-0.1.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: psutil\nVersion: 0.1\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    script = """
        import json, os, pathlib, sys
        import numpy, psutil
        pathlib.Path(sys.argv[1], "report.json").write_text(json.dumps({
            "psutil": psutil.__version__, "psutil_file": psutil.__file__, "numpy_file": numpy.__file__,
            "prefix": sys.prefix,
        }))
    """
    before = importlib.metadata.version("psutil")
    files = {"requirements.txt": "numpy\npsutil==0.1\n", "psutil-0.1-py3-none-any.whl": wheel.getvalue()}
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "."}
    # SDK v3's driver installs the code channel's requirements; the toolkit does the same with its own. Here the
    # script's shell does what the driver does, the entry point being a plain script.
    command = "python3 -m pip install -r requirements.txt && exec python3 train.py /opt/ml/model"
    for file, body in {"train.py": textwrap.dedent(script), **files}.items():
        s3.put_object(Bucket=BUCKET, Key=f"pip/code/{file}", Body=body.encode() if isinstance(body, str) else body)
    request = training_request("pip", [channel("code", f"s3://{BUCKET}/pip/code", "text/x-python")], image=MXNET)
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["/bin/sh", "-c", f"cd /opt/ml/input/data/code && {command}"]
    )
    request["Environment"] = offline
    sm.create_training_job(**request)
    job = finished_training(sm, "pip", timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = report_of(s3, job)
    assert seen["psutil"] == "planted"
    assert seen["numpy_file"].startswith(str(Path(psutil.__file__).parent.parent))  # already satisfied here
    assert not seen["psutil_file"].startswith(str(Path(psutil.__file__).parent.parent))
    assert importlib.metadata.version("psutil") == before
    assert_healthy(emulator)


def test_an_uninstallable_requirement_fails_the_job_as_the_toolkit_reports_it(sm, s3, emulator):
    from test_script_mode import _put_sourcedir

    source = _put_sourcedir(
        s3, "broken/sourcedir.tar.gz", {"train.py": b"print('never runs')\n", "requirements.txt": b"numpy==0.0.1\n"}
    )
    request = training_request(
        "broken-requirements",
        [channel("train", f"s3://{BUCKET}/broken/")],
        image=MXNET,
        HyperParameters={"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(source)},
    )
    request["Environment"] = {"PIP_NO_INDEX": "1"}
    sm.create_training_job(**request)
    job = finished_training(sm, "broken-requirements", timeout=180)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith('AlgorithmError: InstallRequirementsError:\nExitCode 1\nErrorMessage "ERROR: ')
    assert "numpy==0.0.1" in reason and "-m pip install" in reason
    assert_healthy(emulator)


def test_without_bubblewrap_jobs_run_as_before_and_the_log_says_so_once(
    sm, s3, emulator, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.setattr(emulator.services, "supervisor", Supervisor())
    caplog.set_level(logging.INFO, logger="sagemaker_emulator.jobs.process")
    script = "import pathlib, sys\npathlib.Path(sys.argv[1], 'report.json').write_text('{}')\n"
    for name in ("unsandboxed-1", "unsandboxed-2"):
        assert script_job(sm, s3, name, script)["TrainingJobStatus"] == "Completed"
    warnings = [r.getMessage() for r in caplog.records if "without a sandbox" in r.getMessage()]
    assert warnings == [
        "Jobs and model servers run without a sandbox: bubblewrap is not installed (Debian/Ubuntu: apt-get install "
        "bubblewrap). They can read your files."
    ]
    assert_healthy(emulator)


def test_without_bubblewrap_a_jobs_temporary_files_go_with_its_folder(sm, s3, emulator, monkeypatch, tmp_path):
    """A job killed before it tidies up (a stopped script-mode job: its Python's scratch folder) leaves nothing in
    the machine's temporary folder: TMPDIR is the job folder's own, as the sandbox's /tmp is."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.setattr(emulator.services, "supervisor", Supervisor())
    marker = f"left-by-a-job-{uuid.uuid4().hex[:8]}-"
    script = f"""
        import json, os, pathlib, sys, tempfile
        left = tempfile.mkdtemp(prefix="{marker}")
        report = {{"left": left, "cwd": os.getcwd()}}
        pathlib.Path(sys.argv[1], "report.json").write_text(json.dumps(report))
    """
    job = script_job(sm, s3, "tidy-temporaries", script)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    report = report_of(s3, job)
    job_folder = Path(report["left"]).parents[1]  # <job folder>/tmp/<the folder the job left>
    assert Path(report["left"]).parent.name == sandbox.PRIVATE_TMP and Path(report["cwd"]).is_relative_to(job_folder)
    assert not Path(report["left"]).exists()  # removed with the job's folder
    assert not list(Path(tempfile.gettempdir()).glob(f"{marker}*"))


@needs_sandbox
def test_model_servers_run_in_the_sandbox_too(sm, s3, emulator):
    deploy(sm, "boxed", model_artifact(s3, "boxed/model.tar.gz"))
    wait_for(lambda: sm.describe_endpoint(EndpointName="boxed")["EndpointStatus"], lambda s: s == "InService")
    (server,) = emulator.services.supervisor.live()
    inside = server.processes()
    assert inside and all(sandbox.pid_namespace(pid) != sandbox.pid_namespace(os.getpid()) for pid in inside)
    sm.delete_endpoint(EndpointName="boxed")
    wait_for(emulator.services.supervisor.live, lambda live: not live)
    wait_for(lambda: [pid for pid in inside if _running(pid)], lambda running: not running, timeout=10)
    assert_healthy(emulator)


def test_mounts_apply_shallowest_first_so_code_under_a_hidden_home_shows_through(tmp_path, monkeypatch):
    home = tmp_path / "home"
    repo = home / "workshop"
    emulator_home = repo / "build" / "emulator"
    job = emulator_home / "scratch" / "job-1"
    for folder in (job, home / ".ssh"):
        folder.mkdir(parents=True)
    monkeypatch.setattr(sandbox, "code_paths", lambda: [home, repo])
    command = sandbox.Sandbox("bwrap").command(["true"], job, [home, emulator_home])
    mounts = [command[i : i + 2] for i, part in enumerate(command) if part in ("--tmpfs", "--ro-bind", "--bind")]
    assert mounts[-4:] == [
        ["--tmpfs", str(home)],  # a code path that is the hidden HOME itself is not bound back
        ["--ro-bind", str(repo)],
        ["--tmpfs", str(emulator_home)],
        ["--bind", str(job)],
    ]
    assert command[command.index("--") + 1 :] == ["true"]


def test_a_requirements_environment_is_installed_once_and_later_jobs_cannot_change_it(sm, s3, logs, emulator):
    """Two sources with the same requirements.txt: the second job reuses the first's environment, read-only."""
    from test_script_mode import _put_sourcedir, _wheel

    report = b"""
pathlib.Path(os.environ["SM_MODEL_DIR"], "report.json").write_text(json.dumps({"value": tinycache.VALUE, "write": wrote}))
"""
    reads = b"import json, os, pathlib, tinycache\nwrote = None\n" + report
    writes = (
        b"""import json, os, pathlib, tinycache
try:
    pathlib.Path(tinycache.__file__).write_text("VALUE = 'poisoned'\\n")
    wrote = "done"
except OSError as error:
    wrote = type(error).__name__
"""
        + report
    )
    wheel = "tinycache-0.1-py3-none-any.whl"
    requirements = {"requirements.txt": f"./{wheel}\n".encode(), wheel: _wheel("tinycache", "VALUE = 7\n")}
    reports = []
    for name, script in (("cached-1", reads), ("cached-2", writes)):
        source = _put_sourcedir(s3, f"{name}/sourcedir.tar.gz", {"train.py": script, **requirements})
        request = training_request(
            name,
            [channel("train", f"s3://{BUCKET}/{name}/")],
            image=MXNET,
            HyperParameters={"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(source)},
        )
        request["Environment"] = {"PIP_NO_INDEX": "1"}
        sm.create_training_job(**request)
        job = finished_training(sm, name, timeout=180)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        reports.append(report_of(s3, job))
    assert reports[0] == {"value": 7, "write": None}
    assert reports[1] == {"value": 7, "write": "OSError" if SANDBOX else "done"}  # read-only to a later job
    (stream,) = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="cached-2/")[
        "logStreams"
    ]
    messages = [
        event["message"]
        for event in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert any("its environment is already installed, reused" in message for message in messages)
    assert_healthy(emulator)


def test_a_bubblewrap_that_refuses_a_jobs_options_is_not_used(tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Unknown option --size' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert sandbox.find() == (None, f"{fake} is refused here (bwrap: Unknown option --size)")
