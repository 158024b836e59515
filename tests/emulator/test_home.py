"""Checkouts coexist (``store/home.py``, ``store/busy.py``): one emulator per checkout, and a newer copy of the code
replaces a running emulator only once nothing runs in it and no other kernel uses it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from emulator_helpers import BUCKET, REGION, channel, finished_training, put_csv, training_request, wait_for

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.store import busy
from sagemaker_emulator.store import home as homes

ROOT = Path(__file__).resolve().parents[2]
ATTACH = (
    "from sagemaker_emulator.store import home; running = home.ensure(); print(running.url, running.pid, flush=True)"
)


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """A user's folder of emulators of its own; every emulator in it is stopped afterwards."""
    folder = tmp_path / "emulators"
    monkeypatch.setenv(homes.HOME_VARIABLE, str(folder))
    yield folder
    homes.stop_all(folder)


def _s3(running):
    return boto3.client("s3", endpoint_url=running.url, region_name=REGION, **running.credentials.as_boto3())


def _sagemaker(running):
    return boto3.client("sagemaker", endpoint_url=running.url, region_name=REGION, **running.credentials.as_boto3())


def _kernel(*code: str, cwd: Path = ROOT, pythonpath: str = str(ROOT)) -> subprocess.Popen:
    """Another Python process (a notebook kernel) that runs ``code``, with the environment of this one."""
    return subprocess.Popen(
        [sys.executable, "-c", "; ".join(code)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": pythonpath},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _clone(tmp_path: Path) -> Path:
    """A second checkout of the emulator's code, one comment apart: another code root, another code version."""
    clone = tmp_path / "colleagues-fork"
    shutil.copytree(ROOT / "sagemaker_emulator", clone / "sagemaker_emulator", ignore=shutil.ignore_patterns("__py*"))
    with open(clone / "sagemaker_emulator" / "__init__.py", "a") as init:
        init.write("# the fork's own change\n")
    return clone


def test_each_checkout_has_its_own_emulator_and_state(user_home, tmp_path):
    ours = homes.ensure()
    assert ours.home == user_home / "checkouts" / homes.checkout_name(ROOT) and ours.checkout == str(ROOT)
    _s3(ours).create_bucket(Bucket="ours")
    clone = _clone(tmp_path)
    fork = _kernel(ATTACH, cwd=clone, pythonpath=f"{clone}{os.pathsep}{ROOT}")
    out, err = fork.communicate(timeout=180)
    assert fork.returncode == 0, err
    theirs = homes.find(user_home / "checkouts" / homes.checkout_name(clone))
    assert theirs is not None and out.split() == [theirs.url, str(theirs.pid)]
    assert theirs.checkout == str(clone) and theirs.code != ours.code and theirs.url != ours.url
    assert homes.ensure() == ours  # the fork's start left ours running, and ours leaves theirs
    assert [bucket["Name"] for bucket in _s3(theirs).list_buckets()["Buckets"]] == []  # state separated
    assert [bucket["Name"] for bucket in _s3(ours).list_buckets()["Buckets"]] == ["ours"]
    assert homes.stop() and homes.find(theirs.home) == theirs  # `stop` stops this checkout's only
    assert homes.stop_all(user_home) == [theirs.home]


def test_after_an_emulator_is_killed_the_next_start_gives_the_new_ones_address(user_home):
    """Killed outright (the OOM killer sends SIGKILL), an emulator leaves its runtime file behind; the next kernel's
    start must wait for the new emulator's own, not hand out the dead one's address while the new one restores."""
    killed = homes.ensure()
    os.kill(killed.pid, signal.SIGKILL)
    wait_for(lambda: homes.find(killed.home), lambda found: found is None, timeout=30)
    assert (killed.home / homes.RUNTIME_FILE).exists()  # the dead emulator's record is still there
    started = homes.ensure()
    assert (started.pid, started.url) != (killed.pid, killed.url)
    assert _s3(started).list_buckets()["Buckets"] == []  # it answers, with its own key


def test_status_lists_every_checkouts_emulator(user_home, tmp_path):
    ours = homes.ensure()
    theirs_home = user_home / "checkouts" / "another-checkout-0123456789ab"
    theirs = homes.ensure(theirs_home)
    status = subprocess.run(
        [sys.executable, "-m", "sagemaker_emulator", "status"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [
        f"SageMaker emulator running at {ours.url} (pid {ours.pid}), home {ours.home}.",
        f"  checkout {ROOT}, code {ours.code}, idle; kernels attached: pid {os.getpid()}.",
        f"SageMaker emulator running at {theirs.url} (pid {theirs.pid}), home {theirs_home}.",
        f"  checkout {ROOT}, code {theirs.code}, idle; kernels attached: pid {os.getpid()}.",
    ]
    stopped = subprocess.run(
        [sys.executable, "-m", "sagemaker_emulator", "stop", "--all"], capture_output=True, text=True, timeout=120
    )
    assert sorted(stopped.stdout.splitlines()) == sorted(
        f"Stopped the SageMaker emulator of {home}." for home in (ours.home, theirs_home)
    )
    assert homes.find(ours.home) is None and homes.find(theirs_home) is None


def test_a_code_change_while_a_job_trains_waits_for_the_job(user_home, monkeypatch):
    first = homes.ensure()
    _s3(first).create_bucket(Bucket=BUCKET)
    sm = _sagemaker(first)
    data = put_csv(_s3(first), "data/train.csv", "1,0\n3,0\n")
    sm.create_training_job(
        **training_request("long", [channel("train", data)], HyperParameters={"sleep_seconds": "20"})
    )
    wait_for(lambda: sm.describe_training_job(TrainingJobName="long")["SecondaryStatus"], lambda s: s == "Training")
    monkeypatch.setattr(homes, "code_version", lambda: "after-a-git-pull")  # as if the checkout had changed
    kept = homes.ensure()
    assert (kept.pid, kept.url) == (first.pid, first.url)
    assert kept.notice == (
        f"The SageMaker emulator at {first.url} (pid {first.pid}) keeps running the code it started with (version "
        f"{first.code}), not the code installed now (version after-a-git-pull), because it is busy: training job "
        "'long' (InProgress). Once it is idle, the next start_session() (or `python -m sagemaker_emulator start`) "
        "restarts it on the new code, its state kept. To restart it now, ending what runs in it: "
        "`python -m sagemaker_emulator stop`, then start again."
    )
    assert finished_training(sm, "long", timeout=300)["TrainingJobStatus"] == "Completed"
    second = homes.ensure()
    assert second.pid != first.pid and second.notice == (
        f"Restarted the SageMaker emulator on the code installed now (version {second.code}; it ran version "
        f"{first.code}), its state kept; it is now at {second.url}."
    )
    job = _sagemaker(second).describe_training_job(TrainingJobName="long")
    assert (job["TrainingJobStatus"], job["ModelArtifacts"]["S3ModelArtifacts"]) == (
        "Completed",
        f"s3://{BUCKET}/output/long/output/model.tar.gz",
    )


def test_a_live_kernel_keeps_the_old_code_and_a_dead_one_does_not(user_home, monkeypatch):
    first = homes.ensure()
    gone = _kernel(ATTACH)
    assert gone.wait(120) == 0, gone.stderr.read()  # attached, then exited: no longer counts
    live = _kernel(ATTACH, "import time", "time.sleep(600)")
    try:
        assert live.stdout.readline().split() == [first.url, str(first.pid)]
        monkeypatch.setattr(homes, "code_version", lambda: "after-a-git-pull")
        kept = homes.ensure()
        assert kept.pid == first.pid and kept.notice.endswith(
            f"because it is busy: kernel pid {live.pid}. Once it is idle, the next start_session() (or `python -m "
            "sagemaker_emulator start`) restarts it on the new code, its state kept. To restart it now, ending what "
            "runs in it: `python -m sagemaker_emulator stop`, then start again."
        )
    finally:
        live.kill()
        live.wait(30)
    second = homes.ensure()
    assert second.pid != first.pid and second.notice == (
        f"Restarted the SageMaker emulator on the code installed now (version {second.code}; it ran version "
        f"{first.code}), its state kept; it is now at {second.url}."
    )
    assert sorted(path.name for path in (second.home / busy.KERNELS).iterdir()) == [f"{os.getpid()}.json"]


def test_a_reused_pid_is_not_the_kernel_that_registered(user_home, monkeypatch):
    first = homes.ensure()
    impostor = {"pid": 1, "created": 0.0, "emulator": first.pid, "started": first.started}  # pid 1 started later
    (first.home / busy.KERNELS / "1.json").write_text(json.dumps(impostor))
    assert busy.attached(first.home, first) == [os.getpid()]
    assert not (first.home / busy.KERNELS / "1.json").exists()


def test_an_earlier_versions_emulator_is_used_not_stopped_and_its_state_adopted(user_home):
    earlier = subprocess.Popen(  # what an earlier version started: its files at the top of the user's folder
        [sys.executable, "-m", "sagemaker_emulator", "serve", "--home", str(user_home), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running = wait_for(lambda: homes.find(user_home), lambda found: found is not None, timeout=120)
        _s3(running).create_bucket(Bucket="made-before-the-upgrade")
        used = homes.ensure()
        assert (used.url, used.home) == (running.url, user_home) and used.notice == (
            "Using the SageMaker emulator an earlier version of this workshop started for all checkouts, at "
            f"{running.url} (pid {running.pid}, folder {user_home}): it may serve other checkouts' kernels, so it "
            "is not stopped from here. When nothing runs in it, `python -m sagemaker_emulator stop --all` stops it; "
            "the next start then gives this checkout an emulator of its own, which takes over its state."
        )
        assert homes.stop_all(user_home) == [user_home]
        assert earlier.wait(60) == 0
    finally:
        earlier.kill()
        earlier.wait(30)
    own = homes.ensure()
    assert own.home == homes.default_home() and not (user_home / homes.STATE_FOLDER).exists()
    assert [bucket["Name"] for bucket in _s3(own).list_buckets()["Buckets"]] == ["made-before-the-upgrade"]


def test_work_names_the_jobs_that_run_and_nothing_when_idle(emulator, sm, s3, tmp_path):
    running = homes.Running(emulator.url, os.getpid(), emulator.credentials, tmp_path, 0.0)
    assert busy.work(running) == []
    data = put_csv(s3, "data/train.csv", "1,0\n")
    sm.create_training_job(
        **training_request("busy", [channel("train", data)], HyperParameters={"sleep_seconds": "600"})
    )
    assert busy.work(running) == ["training job 'busy' (InProgress)"]
    sm.stop_training_job(TrainingJobName="busy")
    finished_training(sm, "busy")
    assert busy.work(running) == []


def test_an_emulator_that_does_not_answer_counts_as_busy(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    running = homes.Running(url, 1, Credentials("AKID", "secret"), tmp_path, 0.0)
    [reason] = busy.work(running)
    assert reason.startswith(f'no answer to a status query (Could not connect to the endpoint URL: "{url}/"')
