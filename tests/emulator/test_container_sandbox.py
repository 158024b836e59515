"""Containers are sealed: a job's script, a model server, a transform see the emulator as their AWS, not the user's.

The host here is hostile on purpose (:func:`users_aws`): its HOME holds real-looking credentials with a marker key,
and its environment names a profile, a session token, endpoints of real AWS and the switch that makes botocore
ignore ``AWS_ENDPOINT_URL``. A script-mode job (framework image, raw ``ContainerEntrypoint``) then reports what its
boto3 would do; the model servers' environments (endpoint, transform) are read from ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import boto3
import pytest
from emulator_helpers import (
    BUCKET,
    IMAGE,
    REGION,
    ROLE,
    assert_healthy,
    channel,
    deploy,
    finished_training,
    model_artifact,
    training_request,
    wait_for,
)

MXNET = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38"
MARKER_KEY = "AKIAUSERSREALKEY0001"
MARKER_SECRET = "users-real-secret-do-not-leak"
HOST_REGION = "eu-west-3"  # the user's region; a job in us-east-1 must use its own
SEALED = {
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
}

PROBE = """
    import json, os, pathlib, sys
    import boto3
    from botocore.config import Config

    seen = {"home": os.environ["HOME"], "aws": {k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    home_credentials = pathlib.Path("~/.aws/credentials").expanduser()
    seen["home_credentials"] = home_credentials.read_text() if home_credentials.exists() else None
    session = boto3.Session()
    credentials = session.get_credentials()
    seen["access_key"] = credentials.access_key if credentials else None
    seen["region"] = session.region_name
    seen["endpoints"] = {name: session.client(name).meta.endpoint_url for name in ("s3", "sts", "sagemaker", "logs")}
    sts = session.client("sts")
    seen["account"] = sts.get_caller_identity()["Account"]
    s3 = session.client("s3")
    seen["buckets"] = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket=sys.argv[2], Key="sandbox/from-the-container.txt", Body=b"written inside the job")
    real = boto3.client("sts", endpoint_url="https://sts.amazonaws.com",
                        config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}))
    seen["real_aws_key"] = real._request_signer._credentials.access_key
    try:
        real.get_caller_identity()
        seen["real_aws"] = "answered"
    except Exception as error:
        seen["real_aws"] = type(error).__name__
    pathlib.Path(sys.argv[1], "seen.json").write_text(json.dumps(seen))
"""


@pytest.fixture
def users_aws(monkeypatch, tmp_path):
    """A host with the user's AWS set up everywhere botocore looks: HOME's ~/.aws, and AWS_* variables."""
    home = tmp_path / "user-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {MARKER_KEY}\naws_secret_access_key = {MARKER_SECRET}\n"
        f"[work]\naws_access_key_id = {MARKER_KEY}\naws_secret_access_key = {MARKER_SECRET}\n"
    )
    (home / ".aws" / "config").write_text(
        f"[default]\nregion = {HOST_REGION}\n[profile work]\nregion = {HOST_REGION}\n"
        "endpoint_url = https://sagemaker.eu-west-3.amazonaws.com\n"
    )
    monkeypatch.setenv("HOME", str(home))
    for name, value in {
        "AWS_PROFILE": "work",
        "AWS_SESSION_TOKEN": "users-session-token",
        "AWS_DEFAULT_REGION": HOST_REGION,
        "AWS_REGION": HOST_REGION,
        "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-3.amazonaws.com",
        "AWS_ENDPOINT_URL_STS": "https://sts.eu-west-3.amazonaws.com",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # this test's boto3.client() reads the user's config too
    return home


def _probe(emulator, sm, s3, name: str, environment: dict | None = None) -> dict:
    """Run :data:`PROBE` as a script-mode job; return what it saw (from its model.tar.gz)."""
    s3.put_object(Bucket=BUCKET, Key=f"{name}/code/probe.py", Body=textwrap.dedent(PROBE).encode())
    request = training_request(name, [channel("code", f"s3://{BUCKET}/{name}/code", "text/x-python")], image=MXNET)
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["python3", "/opt/ml/input/data/code/probe.py"],
        ContainerArguments=["/opt/ml/model", BUCKET],
    )
    if environment:
        request["Environment"] = environment
    sm.create_training_job(**request)
    job = finished_training(sm, name, timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as archive:
        return json.loads(archive.extractfile("seen.json").read())


def test_a_script_cannot_read_the_users_aws_credentials(emulator, sm, s3, users_aws):
    seen = _probe(emulator, sm, s3, "sealed-home")
    assert Path(seen["home"]) != users_aws and Path(seen["home"]).is_relative_to(emulator.services.workdir)
    assert seen["home_credentials"] == ""  # ~/.aws/credentials is the private, empty one
    assert seen["aws"]["AWS_SHARED_CREDENTIALS_FILE"] == str(Path(seen["home"], ".aws", "credentials"))
    assert seen["aws"]["AWS_CONFIG_FILE"] == str(Path(seen["home"], ".aws", "config"))
    assert MARKER_KEY not in json.dumps(seen) and MARKER_SECRET not in json.dumps(seen)
    assert_healthy(emulator)


def test_a_scripts_default_clients_resolve_to_the_emulator(emulator, sm, s3, users_aws):
    seen = _probe(emulator, sm, s3, "sealed-defaults")
    assert seen["endpoints"] == {name: emulator.url for name in ("s3", "sts", "sagemaker", "logs")}
    assert seen["access_key"] == emulator.credentials.access_key_id
    assert seen["region"] == REGION  # the job's region, not the user's eu-west-3
    assert seen["aws"]["AWS_EC2_METADATA_DISABLED"] == "true"
    assert_healthy(emulator)


def test_a_call_to_real_aws_fails_and_carries_no_user_credentials(emulator, sm, s3, users_aws):
    seen = _probe(emulator, sm, s3, "sealed-real-aws")
    assert seen["real_aws"] != "answered"  # no network here; with one, AWS would refuse the emulator's key
    assert seen["real_aws_key"] == emulator.credentials.access_key_id
    assert_healthy(emulator)


def test_plain_boto3_calls_reach_the_emulator(emulator, sm, s3, users_aws):
    seen = _probe(emulator, sm, s3, "sealed-calls")
    assert seen["account"] == "123456789012"  # moto's account, behind the emulator
    assert BUCKET in seen["buckets"]
    put = s3.get_object(Bucket=BUCKET, Key="sandbox/from-the-container.txt")["Body"].read()
    assert put == b"written inside the job"
    assert_healthy(emulator)


def test_none_of_the_users_aws_variables_reach_the_script(emulator, sm, s3, users_aws):
    seen = _probe(emulator, sm, s3, "sealed-variables")
    assert set(seen["aws"]) == SEALED  # no profile, session token, endpoint override or IGNORE switch
    assert seen["aws"]["AWS_ENDPOINT_URL"] == emulator.url
    assert seen["aws"]["AWS_SECRET_ACCESS_KEY"] == emulator.credentials.secret_access_key
    assert_healthy(emulator)


def test_the_jobs_environment_cannot_unseal_the_container(emulator, sm, s3, users_aws):
    unseal = {
        "AWS_ENDPOINT_URL": "https://sagemaker.us-east-1.amazonaws.com",
        "AWS_SHARED_CREDENTIALS_FILE": str(users_aws / ".aws" / "credentials"),
        "HOME": str(users_aws),
        "AWS_EC2_METADATA_DISABLED": "false",
        "CUSTOM_SETTING": "kept",
    }
    seen = _probe(emulator, sm, s3, "sealed-environment", unseal)
    assert seen["aws"]["AWS_ENDPOINT_URL"] == emulator.url and seen["home"] != str(users_aws)
    assert seen["access_key"] == emulator.credentials.access_key_id
    assert seen["aws"]["AWS_EC2_METADATA_DISABLED"] == "true"
    assert MARKER_KEY not in json.dumps(seen)
    assert_healthy(emulator)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads a child's environment from /proc")
def test_a_model_server_is_sealed_too(emulator, sm, s3, users_aws):
    deploy(sm, "sealed-endpoint", model_artifact(s3, "sealed/model.tar.gz"))
    servers = wait_for(
        lambda: [c for c in emulator.services.supervisor.live() if "serve" in c.popen.args], bool, timeout=30
    )
    env = _environ(servers[0].popen.pid)
    assert {name for name in env if name.startswith("AWS_")} == SEALED
    assert env["AWS_ENDPOINT_URL"] == emulator.url and env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_ACCESS_KEY_ID"] == emulator.credentials.access_key_id
    home = Path(env["HOME"])
    assert home.is_relative_to(emulator.services.workdir) and (home / ".aws" / "credentials").read_text() == ""
    assert MARKER_KEY not in json.dumps(env)
    assert_healthy(emulator)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads a child's environment from /proc")
def test_a_transform_container_is_sealed_too(emulator, sm, s3, users_aws):
    model_data = model_artifact(s3, "sealed-transform/model.tar.gz")
    sm.create_model(
        ModelName="sealed-transform",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data},
        ExecutionRoleArn=ROLE,
    )
    s3.put_object(Bucket=BUCKET, Key="sealed-transform/in/rows.csv", Body=b"1,2\n" * 2000)
    sm.create_transform_job(
        TransformJobName="sealed-transform",
        ModelName="sealed-transform",
        BatchStrategy="SingleRecord",  # 2000 requests: the container lives long enough to be read
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/sealed-transform/in"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/sealed-transform/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    servers = wait_for(
        lambda: [c for c in emulator.services.supervisor.live() if "serve" in c.popen.args], bool, timeout=30
    )
    env = _environ(servers[0].popen.pid)
    assert {name for name in env if name.startswith("AWS_")} == SEALED
    assert env["AWS_ENDPOINT_URL"] == emulator.url and env["AWS_REGION"] == REGION
    assert Path(env["HOME"]).is_relative_to(emulator.services.workdir)
    job = wait_for(
        lambda: sm.describe_transform_job(TransformJobName="sealed-transform"),
        lambda job: job["TransformJobStatus"] != "InProgress",
        timeout=120,
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert_healthy(emulator)
