"""``python -m sagemaker_emulator serve | start | status | stop``: one emulator per home, its key pair printed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import boto3
import pytest
from emulator_helpers import EXIT_HANG_SECONDS, REGION

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.store import home as homes


def _cli(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sagemaker_emulator", *args], capture_output=True, text=True, timeout=120, **options
    )


def _serve(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sagemaker_emulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _exports(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        for pair in line.removeprefix("export ").split():
            name, _, value = pair.partition("=")
            found[name] = value
    return found


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "home"
    homes.stop(tmp_path / "home")


def test_serve_prints_its_key_pair_and_answers_only_to_it(home):
    process = _serve("--port", "0", "--home", str(home))
    try:
        first = process.stdout.readline()
        assert first.startswith("SageMaker emulator listening on http://127.0.0.1:")
        assert process.stdout.readline().strip() == "To use it from a shell:"
        exports = _exports([process.stdout.readline().strip() for _ in range(5)])
        assert process.stdout.readline().strip() == "Press Ctrl-C to stop."
        assert exports["AWS_ACCESS_KEY_ID"].startswith("ASIAEMU") and len(exports["AWS_SECRET_ACCESS_KEY"]) >= 40
        assert exports["AWS_DEFAULT_REGION"] == REGION
        assert "TelemetryOptOut: true" in open(exports["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read()
        sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=REGION,
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        assert sagemaker.list_endpoints()["Endpoints"] == []
        runtime_file = home / homes.RUNTIME_FILE
        assert stat.S_IMODE(runtime_file.stat().st_mode) == 0o600 and stat.S_IMODE(home.stat().st_mode) == 0o700
        assert json.loads(runtime_file.read_text())["secret_access_key"] == exports["AWS_SECRET_ACCESS_KEY"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(EXIT_HANG_SECONDS) == 0
    assert not (home / homes.RUNTIME_FILE).exists()


def test_serve_takes_a_fixed_key_pair(home):
    env = dict(os.environ, SAGEMAKER_EMULATOR_ACCESS_KEY_ID="AKIDFIXED", SAGEMAKER_EMULATOR_SECRET_ACCESS_KEY="s3cr3t")
    process = _serve("--port", "0", "--home", str(home), env=env)
    try:
        process.stdout.readline()
        process.stdout.readline()
        exports = _exports([process.stdout.readline().strip() for _ in range(5)])
        assert (exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]) == ("AKIDFIXED", "s3cr3t")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(EXIT_HANG_SECONDS) == 0


def test_start_status_stop(home):
    assert _cli("status", "--home", str(home)).returncode == 3
    started = _cli("start", "--home", str(home))
    assert started.returncode == 0, started.stderr
    running = homes.find(home)
    assert running is not None and f"at {running.url} (pid {running.pid})" in started.stdout
    assert _cli("start", "--home", str(home)).stdout.startswith(
        f"SageMaker emulator at {running.url} (pid {running.pid})"
    )
    status = _cli("status", "--home", str(home))
    assert (status.returncode, status.stdout.splitlines()) == (
        0,
        [
            f"SageMaker emulator running at {running.url} (pid {running.pid}), home {home}.",
            f"  checkout {running.checkout}, code {running.code}, idle.",
        ],
    )
    second = _serve("--port", "0", "--home", str(home))
    assert second.wait(60) == 1
    assert f"An emulator already serves {home} at {running.url}" in second.stderr.read()
    assert _cli("stop", "--home", str(home)).stdout.strip() == f"Stopped the SageMaker emulator of {home}."
    assert homes.find(home) is None
    assert _cli("stop", "--home", str(home)).stdout.strip() == f"No emulator is running for {home}."


def test_a_stale_runtime_file_is_not_an_emulator(home):
    homes.prepare(home)
    (home / homes.RUNTIME_FILE).write_text(
        json.dumps(
            {"url": "http://127.0.0.1:1", "pid": 1, "access_key_id": "a", "secret_access_key": "b", "started": 0}
        )
    )
    assert homes.find(home) is None


def test_serve_refuses_a_public_host(home):
    process = _serve("--host", "0.0.0.0", "--port", "0", "--home", str(home))
    assert process.wait(60) == 2
    assert process.stderr.read().strip() == (
        "Refusing to listen on '0.0.0.0': the emulator only listens on loopback (e.g. 127.0.0.1)."
    )


def test_an_emulator_running_other_code_is_restarted_with_its_state(home, monkeypatch):
    first = homes.ensure(home)
    try:
        s3 = boto3.client("s3", endpoint_url=first.url, region_name=REGION, **first.credentials.as_boto3())
        s3.create_bucket(Bucket="kept")
        assert homes.ensure(home).pid == first.pid and first.code == homes.code_version()  # same code: reused
        monkeypatch.setattr(homes, "code_version", lambda: "after-a-git-pull")  # as if the checkout had changed
        second = homes.ensure(home)
        assert second.pid != first.pid
        s3 = boto3.client("s3", endpoint_url=second.url, region_name=REGION, **second.credentials.as_boto3())
        assert [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]] == ["kept"]
    finally:
        homes.stop(home)


def test_setup_examples_creates_the_role_and_bucket_and_sdk_defaults_that_aws_examples_expect(home):
    first = _cli("setup-examples", "--home", str(home))
    assert first.returncode == 0, first.stderr
    again = _cli("setup-examples", "--home", str(home))  # idempotent: a second run changes nothing
    assert again.returncode == 0, again.stderr
    exports = _exports([line for line in again.stdout.splitlines() if line.startswith("export ")])
    keys = {
        "aws_access_key_id": exports["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": exports["AWS_SECRET_ACCESS_KEY"],
    }
    iam = boto3.client("iam", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=REGION, **keys)
    role = iam.get_role(RoleName="AmazonSageMaker-ExecutionRole-Emulator")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    checked = ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "ec2:DescribeVpcs", "s3:PutObject"]
    decisions = iam.simulate_principal_policy(PolicySourceArn=role["Arn"], ActionNames=checked)["EvaluationResults"]
    assert [d["EvalDecision"] for d in decisions] == ["allowed"] * len(checked)
    s3 = boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=REGION, **keys)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [f"sagemaker-{REGION}-123456789012"]
    config = open(exports["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read()
    assert "TelemetryOptOut: true" in config and f"DefaultS3Bucket: sagemaker-{REGION}-123456789012" in config
    assert f"RoleArn: {role['Arn']}" in config and f"ExecutionRoleArn: {role['Arn']}" in config
    example = (  # an AWS example passes no role: SDK v3 takes the config's and checks it (SimulatePrincipalPolicy)
        "from sagemaker.core import image_uris; from sagemaker.train import ModelTrainer;"
        f"print(ModelTrainer(training_image=image_uris.retrieve('knn', '{REGION}')).role)"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    resolved = subprocess.run(
        [sys.executable, "-c", example],
        env={**environment, **exports},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resolved.stdout.strip().splitlines()[-1] == role["Arn"], resolved.stderr


@pytest.mark.parametrize("command", ["serve", "start", "status", "stop"])
def test_a_home_others_can_write_is_refused(tmp_path, command):
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    (home / homes.RUNTIME_FILE).write_text("{}")  # what a runtime file planted by another user would be
    refused = _cli(command, "--home", str(home), *(["--port", "0"] if command == "serve" else []))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"Refusing the emulator home {home}: it is writable by group or others (mode 0777), and it would hold the "
        f"key pair; remove it, or choose a folder of your own with --home or {homes.HOME_VARIABLE}."
    )
    assert sorted(path.name for path in home.iterdir()) == [homes.RUNTIME_FILE]  # nothing written in it
    home.chmod(0o700)
    assert _cli("status", "--home", str(home)).returncode == 3  # healthy after: a private home is accepted


def test_a_home_of_another_user_is_refused(tmp_path):
    home = homes.prepare(tmp_path / "home")
    homes.check_home(home, uid=os.geteuid())
    with pytest.raises(homes.UnsafeHome) as refused:
        homes.check_home(home, uid=os.geteuid() + 1)
    assert str(refused.value) == (
        f"Refusing the emulator home {home}: it is owned by uid {os.geteuid()}, not by you (uid {os.geteuid() + 1}) "
        f"(mode 0700), and it would hold the key pair; remove it, or choose a folder of your own with --home or "
        f"{homes.HOME_VARIABLE}."
    )


def test_a_secret_on_the_command_line_is_refused(home):
    refused = _cli("serve", "--home", str(home), "--access-key-id", "AKIDFIXED", "--secret-access-key", "s3cr3t")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "Refusing --secret-access-key: a command line is visible to every user of this machine (ps), so the secret "
        "is no longer one; choose a new secret and give it in the environment (SAGEMAKER_EMULATOR_SECRET_ACCESS_KEY) "
        "or in a file of mode 0600 (--secret-access-key-file)."
    )
    assert not home.exists()


def test_serve_reads_the_secret_from_a_private_file(home, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("SAGEMAKER_EMULATOR_SECRET_ACCESS_KEY",)}
    args = ["--port", "0", "--home", str(home), "--access-key-id", "AKIDFIXED", "--secret-access-key-file"]
    process = _serve(*args, str(secret), env=env)
    try:
        process.stdout.readline()
        process.stdout.readline()
        exports = _exports([process.stdout.readline().strip() for _ in range(5)])
        assert (exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]) == ("AKIDFIXED", "s3cr3t")
        assert "s3cr3t" not in " ".join(open(f"/proc/{process.pid}/cmdline").read().split("\0"))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(EXIT_HANG_SECONDS) == 0


def test_a_secret_file_others_can_read_is_refused(home, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(0o644)
    refused = _cli(
        "serve", "--home", str(home), "--access-key-id", "AKIDFIXED", "--secret-access-key-file", str(secret)
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Refusing the secret access key file {secret} (owner uid {os.geteuid()}, mode 0644): it must be a file of "
        f"yours that nobody else can read; run chmod 600 {secret}."
    )


def test_the_printed_exports_add_the_emulator_to_no_proxy_in_a_shell(tmp_path):
    """Pasted into a shell behind a proxy, the exports keep what NO_PROXY held and add loopback, so boto3 does not
    send the signed local requests to the proxy."""
    running = homes.Running(
        url="http://127.0.0.1:5123", pid=1, credentials=Credentials.generate(), home=tmp_path, started=0.0
    )
    script = f'NO_PROXY=corp.example; unset no_proxy\n{running.exports(REGION)}\necho "$NO_PROXY|$no_proxy"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert shell.stdout.strip() == "corp.example,127.0.0.1|127.0.0.1"
