"""AddTags, ListTags, DeleteTags on resources by ARN."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, IMAGE, REGION, ROLE, error_of


@pytest.fixture
def model_arn(sm):
    return sm.create_model(
        ModelName="m1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE, Tags=[{"Key": "lab", "Value": "1"}]
    )["ModelArn"]


def test_tags_given_at_creation_are_listed(sm, model_arn):
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == [{"Key": "lab", "Value": "1"}]


def test_add_merges_by_key(sm, model_arn):
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": "lab", "Value": "2"}, {"Key": "owner", "Value": "me"}])
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == [
        {"Key": "lab", "Value": "2"},
        {"Key": "owner", "Value": "me"},
    ]


def test_delete_removes_keys(sm, model_arn):
    sm.delete_tags(ResourceArn=model_arn, TagKeys=["lab", "absent"])
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == []


def test_list_pages(sm, model_arn):
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": f"k{i:02d}", "Value": "v"} for i in range(49)])
    first = sm.list_tags(ResourceArn=model_arn, MaxResults=50)
    assert len(first["Tags"]) == 50 and "NextToken" not in first
    sm.delete_tags(ResourceArn=model_arn, TagKeys=["k00"])
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": "k00", "Value": "v"}])
    assert len(sm.list_tags(ResourceArn=model_arn)["Tags"]) == 50


def test_too_many_tags(sm, model_arn):
    with pytest.raises(ClientError) as excinfo:
        sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_of(excinfo) == (
        "ValidationException",
        f"Resource {model_arn} would have 51 tags; a resource can have at most 50.",
    )


def test_unknown_resource(sm):
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/ghost"
    with pytest.raises(ClientError) as excinfo:
        sm.list_tags(ResourceArn=arn)
    assert error_of(excinfo) == ("ValidationException", f"Resource {arn} does not exist.")
