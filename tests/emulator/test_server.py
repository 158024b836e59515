"""The HTTP layer: routing by SigV4 scope, operation lookup, wire validation, error bodies, the IAM shim."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import IMAGE, REGION, ROLE, client, error_of, send

from sagemaker_emulator import server
from sagemaker_emulator.emulator import Emulator
from sagemaker_emulator.loopback import is_loopback, is_loopback_url


def _post(emulator, target: str, body: bytes) -> tuple[int, dict]:
    status, _, answer = send(
        emulator, "POST", "/", body, {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    )
    return status, json.loads(answer)


def test_unknown_operation_is_named(emulator):
    status, body = _post(emulator, "SageMaker.FlyToTheMoon", b"{}")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    assert body["message"].startswith("Operation FlyToTheMoon is unknown; supported operations: AddTags, ")


def test_unsupported_operation_is_named(emulator):
    status, body = _post(emulator, "SageMaker.CreateCluster", b"{}")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    assert body["message"].startswith("Operation CreateCluster is not supported by the local SageMaker emulator")


def test_malformed_json_is_a_serialization_exception(emulator):
    status, body = _post(emulator, "SageMaker.DescribeModel", b"{not json")
    assert status == 400
    assert body["__type"] == "SerializationException"
    assert body["message"].startswith("The request body is not valid JSON")


def test_missing_required_member(sm_unchecked):
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.describe_model()
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member must not be null",
    )


def test_every_fault_is_listed_with_its_path(sm_unchecked):
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.create_training_job(
            TrainingJobName="bad_name",
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "Sideways"},
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": "s3://b/o"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 0},
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "3 validation errors detected: "
        "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; "
        "Value 'Sideways' at 'algorithmSpecification.trainingInputMode' failed to satisfy constraint: Member must "
        "satisfy enum value set: [Pipe, File, FastFile]; "
        "Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have value "
        "greater than or equal to 1",
    )


def test_list_members_are_checked_with_their_index(sm_unchecked):
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.create_endpoint_config(
            EndpointConfigName="c", ProductionVariants=[{"VariantName": "bad_variant", "ModelName": "m"}]
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value 'bad_variant' at 'productionVariants.1.member.variantName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
    )


def test_wrong_json_type_is_a_serialization_exception(sm_unchecked):
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.list_models(MaxResults="ten")
    assert error_of(excinfo) == ("SerializationException", "Expected integer for 'maxResults', got str ('ten')")


def test_other_services_are_moto(emulator):
    sts = client(emulator, "sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    iam = client(emulator, "iam")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    assert iam.get_role(RoleName="r")["Role"]["Arn"] == "arn:aws:iam::123456789012:role/r"


def test_service_specific_endpoint_variables_work(emulator, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emulator.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", emulator.url)
    session = boto3.session.Session(region_name=REGION, **emulator.credentials.as_boto3())
    assert session.client("sagemaker").list_models()["Models"] == []
    with pytest.raises(ClientError) as excinfo:
        session.client("sagemaker-runtime").invoke_endpoint(EndpointName="none", Body=b"1")
    assert error_of(excinfo) == ("ValidationError", "Endpoint none of account 123456789012 not found.")


def test_non_loopback_hosts_are_refused():
    assert is_loopback("127.0.0.1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback(None)
    assert is_loopback_url("http://127.0.0.1:5000") and not is_loopback_url(
        "https://api.sagemaker.us-east-1.amazonaws.com"
    )
    with pytest.raises(ValueError, match="only listens on loopback addresses; '0.0.0.0' is not one"):
        Emulator("0.0.0.0")


@pytest.mark.parametrize("value", ["text/csv\r\nX-Injected: 1", "text/csv\nX-Injected: 1"], ids=["CRLF", "LF"])
def test_a_relayed_header_value_with_a_line_break_is_refused(value):
    with pytest.raises(ValueError, match="line break"):
        server._answer("200 OK", [("Content-Type", value)], b"")
