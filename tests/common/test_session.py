"""common.session: the mode decision, local mode against the emulator, its safety checks, and AWS mode's set-up."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from common import session
from common.settings import settings
from sagemaker_emulator.store import home as homes

ACCOUNT = "123456789012"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment (no AWS, WORKSHOP or proxy variables, no config files); restored afterwards.

    Proxy variables go too: an earlier session in this process may have added loopback to ``no_proxy``."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("AWS_", "WORKSHOP_", "SAGEMAKER_")) or name in ("CI", *PROXY_VARIABLES):
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-credentials")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["SAGEMAKER_EMULATOR_HOME"] = str(tmp_path / "emulator-home")
    monkeypatch.setattr(session, "_KERNEL", session._Kernel())
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def test_mode_variable_decides(env):
    env["WORKSHOP_MODE"] = "AWS"
    assert session.choose_mode(settings()) == "aws"
    env["WORKSHOP_MODE"] = "cloud"
    with pytest.raises(ValueError, match="WORKSHOP_MODE must be 'aws' or 'local', not 'cloud'."):
        session.choose_mode(settings())


def test_credentials_and_region_mean_aws_outside_ci(env):
    env.update(AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret", AWS_DEFAULT_REGION="eu-west-1")
    assert session.choose_mode(settings()) == "aws"
    env["CI"] = "true"
    assert session.choose_mode(settings()) == "local"


def test_no_credentials_means_local(env):
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    assert session.choose_mode(settings()) == "local"


def test_local_mode_points_the_kernel_at_the_emulator(env, emulator, capsys):
    env.update(WORKSHOP_MODE="local", WORKSHOP_EMULATOR_URL=emulator.url, **emulator.credentials.as_environment())
    ws = session.start_session()
    assert (ws.mode, ws.region, ws.emulator_url) == ("local", "us-east-1", emulator.url)
    assert ws.bucket == f"sagemaker-us-east-1-{ACCOUNT}"
    assert ws.role_arn == f"arn:aws:iam::{ACCOUNT}:role/SageMakerWorkshopRole"
    assert capsys.readouterr().out == (
        f"Local mode: SageMaker emulator at {emulator.url} (loopback only, no AWS account is used); "
        f"region us-east-1, bucket {ws.bucket}.\n"
    )
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == emulator.url
    assert env["AWS_ACCESS_KEY_ID"] == emulator.credentials.access_key_id
    config = open(env["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read()
    assert "TelemetryOptOut: true" in config and f"DefaultS3Bucket: {ws.bucket}" in config
    boto3.client("s3").head_bucket(Bucket=ws.bucket)
    trust = boto3.client("iam").get_role(RoleName="SageMakerWorkshopRole")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert ws.sagemaker_session.default_bucket() == ws.bucket
    again = session.start_session()
    assert (again.bucket, again.role_arn) == (ws.bucket, ws.role_arn)


def test_local_mode_never_asks_the_machines_proxy(env, emulator, refusing_proxy):
    """A laptop behind a corporate proxy: HTTP_PROXY/HTTPS_PROXY set and loopback not in NO_PROXY. Every call goes
    straight to the emulator, and the user's own NO_PROXY entries stay."""
    env.update(WORKSHOP_MODE="local", WORKSHOP_EMULATOR_URL=emulator.url, **emulator.credentials.as_environment())
    env.update(HTTP_PROXY=refusing_proxy.url, HTTPS_PROXY=refusing_proxy.url, NO_PROXY="corp.example")
    ws = session.start_session(sdk=False)
    boto3.client("s3").head_bucket(Bucket=ws.bucket)
    assert refusing_proxy.requests == []
    assert env["NO_PROXY"] == env["no_proxy"] == "corp.example,127.0.0.1"


def test_a_session_without_the_sdk_has_the_same_set_up_and_no_sdk_session(env, emulator):
    """What a boto3-only tool (Lab 2's demo server) asks for: importing the SDK would cost it seconds."""
    env.update(WORKSHOP_MODE="local", WORKSHOP_EMULATOR_URL=emulator.url, **emulator.credentials.as_environment())
    light = session.start_session(sdk=False)
    assert light.sagemaker_session is None
    assert (light.mode, light.bucket, light.emulator_url) == ("local", f"sagemaker-us-east-1-{ACCOUNT}", emulator.url)
    boto3.client("s3").head_bucket(Bucket=light.bucket)


def test_local_mode_shares_one_background_emulator_that_outlives_the_kernel(env):
    env["WORKSHOP_MODE"] = "local"
    try:
        first = session.start_session()
        assert first.emulator_url.startswith("http://127.0.0.1:")
        boto3.client("s3").put_object(Bucket=first.bucket, Key="kept.txt", Body=b"made by the first kernel")
        del env["WORKSHOP_MODE"]
        assert session.start_session().emulator_url == first.emulator_url
        for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            del env[name]
        later_kernel = subprocess.run(
            [
                sys.executable,
                "-c",
                "from common import session; import boto3; ws = session.start_session(); "
                "print(boto3.client('s3').get_object(Bucket=ws.bucket, Key='kept.txt')['Body'].read().decode())",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "WORKSHOP_MODE": "local"},
        )
        assert later_kernel.stdout.splitlines()[-1] == "made by the first kernel", later_kernel.stderr
    finally:
        session.stop_local_emulator()


def test_a_kernel_after_a_git_pull_is_told_why_the_emulator_keeps_the_old_code(env, monkeypatch, capsys):
    """Another kernel still uses the emulator when the code changes: this kernel gets it as it is, with one message
    that says why and until when, and the next session after that kernel has gone gets the new code."""
    env["WORKSHOP_MODE"] = "local"
    other = None
    try:
        first = session.start_session(sdk=False)
        other = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from common import session; import time; session.start_session(sdk=False); time.sleep(600)",
            ],
            env={name: value for name, value in env.items() if not name.startswith("AWS_ENDPOINT_URL")},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert other.stdout.readline().startswith(f"Local mode: SageMaker emulator at {first.emulator_url} ")
        monkeypatch.setattr(homes, "code_version", lambda: "after-a-git-pull")
        capsys.readouterr()
        assert session.start_session(sdk=False).emulator_url == first.emulator_url
        notice, mode = capsys.readouterr().out.splitlines()
        assert notice.startswith(f"The SageMaker emulator at {first.emulator_url} (pid ") and notice.endswith(
            f"not the code installed now (version after-a-git-pull), because it is busy: kernel pid {other.pid}. "
            "Once it is idle, the next start_session() (or `python -m sagemaker_emulator start`) restarts it on the "
            "new code, its state kept. To restart it now, ending what runs in it: `python -m sagemaker_emulator "
            "stop`, then start again."
        )
        assert mode.startswith(f"Local mode: SageMaker emulator at {first.emulator_url} ")
        other.kill()
        other.wait(30)
        assert session.start_session(sdk=False).emulator_url != first.emulator_url
    finally:
        if other is not None:
            other.kill()
            other.wait(30)
        session.stop_local_emulator()


def test_local_mode_refuses_a_non_loopback_endpoint(env, emulator):
    env.update(
        WORKSHOP_MODE="local",
        WORKSHOP_EMULATOR_URL=emulator.url,
        AWS_ENDPOINT_URL_S3="https://s3.amazonaws.com",
        **emulator.credentials.as_environment(),
    )
    with pytest.raises(RuntimeError) as excinfo:
        session.start_session()
    assert str(excinfo.value) == (
        "Local mode refuses to continue: AWS_ENDPOINT_URL_S3 is https://s3.amazonaws.com, which is not a loopback "
        "address, so a call could reach a real AWS account. Unset it, or choose AWS mode on purpose with "
        "WORKSHOP_MODE=aws."
    )


def test_local_mode_refuses_a_remote_emulator(env):
    env.update(WORKSHOP_MODE="local", WORKSHOP_EMULATOR_URL="http://10.1.2.3:5123")
    with pytest.raises(RuntimeError, match="WORKSHOP_EMULATOR_URL is http://10.1.2.3:5123, which is not a loopback"):
        session.start_session()


def test_aws_mode_creates_a_private_default_bucket(env, emulator, capsys):
    role = f"arn:aws:iam::{ACCOUNT}:role/Workshop"
    env.update(
        WORKSHOP_MODE="aws",
        WORKSHOP_ROLE_ARN=role,
        AWS_ENDPOINT_URL=emulator.url,
        AWS_DEFAULT_REGION="eu-west-1",
        **emulator.credentials.as_environment(),
    )
    ws = session.start_session()
    assert (ws.mode, ws.region, ws.role_arn, ws.bucket) == ("aws", "eu-west-1", role, f"sagemaker-eu-west-1-{ACCOUNT}")
    block = boto3.client("s3").get_public_access_block(Bucket=ws.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert capsys.readouterr().out.startswith(f"AWS mode: account {ACCOUNT}, region eu-west-1, role {role}, bucket ")
    env["WORKSHOP_BUCKET"] = "no-such-bucket"
    with pytest.raises(RuntimeError, match=r"The bucket no-such-bucket \(WORKSHOP_BUCKET\) does not exist."):
        session.start_session()


def test_local_mode_says_when_no_emulator_answers(env):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env.update(WORKSHOP_MODE="local", WORKSHOP_EMULATOR_URL=url, AWS_MAX_ATTEMPTS="1")
    with pytest.raises(
        RuntimeError, match="WORKSHOP_EMULATOR_URL is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    ):
        session.start_session()
    env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    with pytest.raises(RuntimeError, match=f"No SageMaker emulator answers at {url}; start one"):
        session.start_session()


def test_the_sdk_config_is_never_written_through_a_link_planted_in_the_home(env, tmp_path):
    target = tmp_path / "someone-elses-file"
    target.write_text("theirs\n")
    home = homes.prepare(homes.default_home())
    (home / "workshop-sagemaker-config.yaml").symlink_to(target)
    path = session._write_sdk_config("a-bucket", f"arn:aws:iam::{ACCOUNT}:role/a-role")
    assert target.read_text() == "theirs\n"
    assert not path.is_symlink() and "DefaultS3Bucket: a-bucket" in path.read_text()
