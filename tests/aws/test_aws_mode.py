"""AWS mode's own code paths against a fake AWS seen exactly as AWS mode sees a real one: the emulator (moto's IAM,
STS, S3 and Lambda behind it) at AWS_ENDPOINT_URL, or moto in-process for an identity that is an assumed role.
Nothing here may reach the network: every socket beyond loopback fails the test."""

from __future__ import annotations

import json
import os
import socket
import zipfile
from io import BytesIO
from pathlib import Path

import boto3
import nbformat
import pytest

from common import costs, functions, session

ACCOUNT = "123456789012"
ROOT = Path(__file__).resolve().parents[2]
LAB1 = ROOT / "Lab1 - Introduction to Factorization Machines"
LAB2 = ROOT / "Lab2 - Introduction to Object2Vec"
TRUST = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}


@pytest.fixture
def offline(monkeypatch):
    """Any connection beyond loopback fails the test instead of reaching AWS."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a test tried to connect to {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def env(tmp_path, monkeypatch, offline):
    """No AWS or WORKSHOP variables and no config files; AWS mode chosen."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "WORKSHOP_")) or name in ("CI", "SAGEMAKER_VALIDATE_ROLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("WORKSHOP_MODE", "aws")
    monkeypatch.setattr(session, "_KERNEL", session._Kernel())
    return monkeypatch


@pytest.fixture
def fake_aws(env, emulator):
    env.setenv("AWS_ENDPOINT_URL", emulator.url)
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in emulator.credentials.as_environment().items():
        env.setenv(name, value)
    return emulator


def test_a_notebook_role_is_found_from_the_assumed_role_identity(env):
    from moto import mock_aws

    env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="Workshop", Path="/service-role/", AssumeRolePolicyDocument=json.dumps(TRUST))
        assumed = boto3.client("sts").assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="SageMaker")
        for name, key in (
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
        ):
            env.setenv(name, assumed["Credentials"][key])
        ws = session.start_session()
        assert ws.role_arn == f"arn:aws:iam::{ACCOUNT}:role/service-role/Workshop"
        assert ws.bucket == f"sagemaker-eu-west-1-{ACCOUNT}"
        s3 = boto3.client("s3")
        assert s3.get_bucket_location(Bucket=ws.bucket)["LocationConstraint"] == "eu-west-1"
        assert all(s3.get_public_access_block(Bucket=ws.bucket)["PublicAccessBlockConfiguration"].values())


def test_an_identity_that_is_not_a_role_names_the_ways_out(fake_aws):
    with pytest.raises(RuntimeError) as excinfo:
        session.start_session()
    assert "WORKSHOP_ROLE_ARN" in str(excinfo.value) and "WORKSHOP_MODE=local" in str(excinfo.value)


def test_a_given_role_and_bucket_are_used_as_they_are(fake_aws):
    boto3.client("s3").create_bucket(Bucket="room-bucket")
    fake_aws_role = f"arn:aws:iam::{ACCOUNT}:role/WorkshopStack-Role"
    os.environ.update(WORKSHOP_ROLE_ARN=fake_aws_role, WORKSHOP_BUCKET="room-bucket")
    try:
        ws = session.start_session()
    finally:
        for name in ("WORKSHOP_ROLE_ARN", "WORKSHOP_BUCKET"):
            os.environ.pop(name)
    assert (ws.role_arn, ws.bucket) == (fake_aws_role, "room-bucket")
    assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"


def test_the_lab2_package_holds_the_handler_module_at_its_root():
    archive = zipfile.ZipFile(BytesIO(functions.package(LAB2 / "lambda_function.py")))
    assert archive.namelist() == ["lambda_function.py"]
    assert archive.read("lambda_function.py") == (LAB2 / "lambda_function.py").read_bytes()


def test_lab2_functions_are_deployed_redeployed_and_deleted(fake_aws):
    role = boto3.client("iam").create_role(RoleName="Workshop", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    run = "lab2-o2v-20261203-120000"
    handlers = {
        f"{run}-predict": "lambda_function.predict_handler",
        f"{run}-similar": "lambda_function.similar_movies_handler",
    }
    code = functions.package(LAB2 / "lambda_function.py")
    environment = {"RATING_ENDPOINT": f"{run}-regressor", "CATALOGUE_URI": f"s3://b/{run}/lambda/catalogue.json"}
    assert functions.deploy(handlers, code, role["Arn"], environment, tags={"workshop:lab": "lab2"}) == list(handlers)
    client = boto3.client("lambda")
    config = client.get_function_configuration(FunctionName=f"{run}-similar")
    assert (config["Handler"], config["Role"], config["Runtime"]) == (
        "lambda_function.similar_movies_handler",
        role["Arn"],
        functions.RUNTIME,
    )
    assert config["Environment"]["Variables"] == environment
    assert config["MemorySize"] == functions.MEMORY_MB
    functions.deploy(handlers, code, role["Arn"], {**environment, "RATING_ENDPOINT": "changed"}, memory_mb=704)
    changed = client.get_function_configuration(FunctionName=f"{run}-predict")
    assert (changed["Environment"]["Variables"]["RATING_ENDPOINT"], changed["MemorySize"]) == ("changed", 704)
    assert sorted(functions.delete(run)) == sorted(handlers)
    assert functions.names(run) == []


@pytest.mark.parametrize(
    ("megabytes", "memory"),
    [(0.1, 256), (5, 256), (45, 704), (250, 3264)],  # ml-latest-small's catalogue is about 5 MB
)
def test_a_function_gets_memory_for_the_document_it_parses(megabytes, memory):
    assert functions.memory_for(int(megabytes * 1e6)) == memory


def test_a_document_too_large_for_any_function_is_refused():
    with pytest.raises(ValueError, match="more than Lambda's 10,240 MB: make it smaller"):
        functions.memory_for(900 * 10**6)


def test_an_empty_prefix_is_refused():
    with pytest.raises(ValueError, match="prefix"):
        functions.names("")


def test_local_mode_gives_its_role_the_stack_policy_so_simulations_answer_as_on_aws(env, emulator, tmp_path):
    """The SDK asks, before staging script-mode code, whether the role may write anywhere in the default bucket; with
    the workshop policy the answer is no (only lab* keys), locally as on AWS, and it stages under the job's prefix."""
    env.setenv("WORKSHOP_MODE", "local")
    env.setenv("WORKSHOP_EMULATOR_URL", emulator.url)
    env.setenv("SAGEMAKER_EMULATOR_HOME", str(tmp_path / "emulator-home"))
    for name, value in emulator.credentials.as_environment().items():
        env.setenv(name, value)
    ws = session.start_session()
    iam = boto3.client("iam")
    granted = iam.get_role_policy(RoleName=session.LOCAL_ROLE_NAME, PolicyName="workshop")["PolicyDocument"]
    assert "${" not in json.dumps(granted)

    def decision(resource: str) -> str:
        answer = iam.simulate_principal_policy(
            PolicySourceArn=ws.role_arn, ActionNames=["s3:PutObject"], ResourceArns=[resource]
        )
        return answer["EvaluationResults"][0]["EvalDecision"]

    assert decision(f"arn:aws:s3:::{ws.bucket}/lab1-dmf-1/output/source.tar.gz") == "allowed"
    assert decision(f"arn:aws:s3:::{ws.bucket}/*") == "implicitDeny"


def _full_scale_parameters(notebook: Path, monkeypatch, *extra_cells: str) -> dict:
    """Run a notebook's code up to its full-scale switch, with ``full_scale = True`` injected after the parameters
    cell (where papermill or a learner sets it), then the cells with the ids in ``extra_cells``; return its names."""
    cells = [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
    parameters = next(i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", []))
    sources = [cell.source for cell in cells[: parameters + 1]] + ["full_scale = True", cells[parameters + 1].source]
    sources += [cell.source for cell in cells if cell.get("id") in extra_cells]
    monkeypatch.chdir(notebook.parent)
    monkeypatch.syspath_prepend(str(notebook.parent))
    names: dict = {}
    for source in sources:
        exec(compile(source, str(notebook), "exec"), names)
    return names


@pytest.fixture
def aws_room(env, fake_aws):
    """AWS mode against the stand-in AWS, with the room's role and bucket given as a workshop stack gives them."""
    boto3.client("s3").create_bucket(Bucket="room-bucket")
    env.setenv("WORKSHOP_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/WorkshopStack-Role")
    env.setenv("WORKSHOP_BUCKET", "room-bucket")
    return fake_aws


def test_lab1a_at_full_scale_trains_fm_and_knn_on_two_instances_reading_sharded_files(aws_room, monkeypatch):
    names = _full_scale_parameters(LAB1 / "1a - Factorization Machines.ipynb", monkeypatch, "5ca1e1a4")
    assert names["workshop"].mode == "aws"
    assert (names["dataset"], names["training_instance_type"], names["training_instance_count"]) == (
        "ml-20m",
        "ml.c5.2xlarge",
        2,
    )
    assert names["inference_instance_type"] == "ml.c5.xlarge"
    channels = names["s3_channels"]({"train": "s3://room-bucket/run/train/", "test": "s3://room-bucket/run/test/"})
    distributions = {c.channel_name: c.data_source.s3_data_source.s3_data_distribution_type for c in channels}
    assert distributions == {"train": "ShardedByS3Key", "test": "FullyReplicated"}
    assert costs.full_scale_estimate("lab1a")[0] > 0


def test_lab1b_at_full_scale_runs_its_script_mode_job_on_a_g4dn_gpu(aws_room, monkeypatch):
    names = _full_scale_parameters(LAB1 / "1b - Deep Matrix Factorization with MXNet.ipynb", monkeypatch)
    assert (names["dataset"], names["instance_type"]) == ("ml-20m", "ml.g4dn.xlarge")
    assert costs.full_scale_estimate("lab1b")[0] > 0


def test_lab2_at_full_scale_trains_object2vec_on_one_g4dn_gpu(aws_room, monkeypatch):
    names = _full_scale_parameters(LAB2 / "2 - Object2Vec.ipynb", monkeypatch)
    assert (names["dataset"], names["training_instance_type"]) == ("ml-20m", "ml.g4dn.xlarge")
    assert names["inference_instance_type"] == "ml.c5.xlarge"
    assert costs.full_scale_estimate("lab2")[0] > 0
