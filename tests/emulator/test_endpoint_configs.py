"""CreateEndpointConfig, DescribeEndpointConfig, DeleteEndpointConfig, ListEndpointConfigs."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, IMAGE, REGION, ROLE, error_of

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def _variant(model: str, name: str = "AllTraffic") -> dict:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}


@pytest.fixture
def model(sm):
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    return "m1"


def test_create_then_describe_at_once(sm, model):
    answer = sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[_variant(model)])
    assert answer["EndpointConfigArn"] == f"{ARN}:endpoint-config/c1"
    config = sm.describe_endpoint_config(EndpointConfigName="c1")
    assert config["ProductionVariants"] == [{**_variant(model), "InitialVariantWeight": 1.0}]


def test_unknown_model_is_refused(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[_variant("ghost")])
    assert error_of(excinfo) == ("ValidationException", f'Could not find model "{ARN}:model/ghost".')


def test_duplicate_name_is_refused(sm, model):
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[_variant(model)])
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[_variant(model)])
    assert error_of(excinfo) == (
        "ValidationException",
        f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/c1".',
    )


def test_variant_names_must_differ(sm, model):
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[_variant(model), _variant(model)])
    assert error_of(excinfo) == (
        "ValidationException",
        "Variant names must be unique within an endpoint configuration: ['AllTraffic', 'AllTraffic'].",
    )


def test_delete_unknown_config(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.delete_endpoint_config(EndpointConfigName="ghost")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
    )


def test_list_by_name(sm, model):
    for name in ("c-b", "c-a", "x-c"):
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[_variant(model)])
    listed = sm.list_endpoint_configs(NameContains="c-", SortBy="Name", SortOrder="Ascending")["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == ["c-a", "c-b"]


@pytest.mark.parametrize("memory", [1111, 5000])
def test_serverless_memory_must_be_a_whole_gigabyte_in_range(sm_unchecked, model, memory):
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": 1},
    }
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant])
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "productionVariants.1.member.serverlessConfig.memorySizeInMB" in message
    assert sm_unchecked.list_endpoint_configs()["EndpointConfigs"] == []
