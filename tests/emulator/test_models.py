"""CreateModel, DescribeModel, DeleteModel, ListModels (and the shared pager, through ListModels)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, IMAGE, REGION, ROLE, error_of

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.jobs.process import Supervisor
from sagemaker_emulator.resources.models import create_model, list_models
from sagemaker_emulator.state import EmulatorState, Limits, Services

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model"


class Ticking:
    """A clock that starts at 100 s and moves one second per reading."""

    def __init__(self):
        self.time = 99.0

    def now(self) -> float:
        self.time += 1.0
        return self.time


def _create(sm, name: str, **extra):
    return sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://b/m.tar.gz"},
        ExecutionRoleArn=ROLE,
        **extra,
    )


def test_create_then_describe_at_once(sm):
    assert _create(sm, "My-Model")["ModelArn"] == f"{ARN}/my-model"
    model = sm.describe_model(ModelName="My-Model")
    assert model["ModelName"] == "My-Model"
    assert model["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": "s3://b/m.tar.gz"}
    assert model["ExecutionRoleArn"] == ROLE
    assert model["ModelArn"] == f"{ARN}/my-model"


def test_duplicate_name_is_refused_and_keeps_the_first(sm):
    _create(sm, "m1")
    with pytest.raises(ClientError) as excinfo:
        sm.create_model(ModelName="M1", PrimaryContainer={"Image": "other"}, ExecutionRoleArn=ROLE)
    assert error_of(excinfo) == ("ValidationException", f'Cannot create already existing model "{ARN}/m1".')
    assert sm.describe_model(ModelName="m1")["PrimaryContainer"]["Image"] == IMAGE


def test_a_container_is_required(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.create_model(ModelName="m1", ExecutionRoleArn=ROLE)
    assert error_of(excinfo) == (
        "ValidationException",
        "Either PrimaryContainer or Containers must be specified for CreateModel.",
    )


def test_describe_unknown_model(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.describe_model(ModelName="ghost")
    assert error_of(excinfo) == ("ValidationException", f'Could not find model "{ARN}/ghost".')


def test_delete_then_gone(sm):
    _create(sm, "m1")
    sm.delete_model(ModelName="m1")
    with pytest.raises(ClientError) as excinfo:
        sm.delete_model(ModelName="m1")
    assert error_of(excinfo) == ("ValidationException", f'Could not find model "{ARN}/m1".')


def test_list_sorts_newest_first_and_pages(sm):
    for name in ("a-1", "b-2", "c-3", "d-4", "e-5"):
        _create(sm, name)
    first = sm.list_models(MaxResults=2)
    assert [m["ModelName"] for m in first["Models"]] == ["e-5", "d-4"]
    second = sm.list_models(MaxResults=2, NextToken=first["NextToken"])
    third = sm.list_models(MaxResults=2, NextToken=second["NextToken"])
    assert [m["ModelName"] for m in second["Models"] + third["Models"]] == ["c-3", "b-2", "a-1"]
    assert "NextToken" not in third


def test_list_filters_before_cutting_the_page(sm):
    for name in ("keep-1", "drop-1", "drop-2", "keep-2", "drop-3"):
        _create(sm, name)
    page = sm.list_models(NameContains="keep", MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in page["Models"]] == ["keep-1", "keep-2"]
    assert "NextToken" not in page


def test_list_time_filters(tmp_path):
    clock = Ticking()
    state = EmulatorState(
        REGION,
        Services(
            clock, tmp_path, Limits(), client=None, credentials=Credentials.generate(), url="", supervisor=Supervisor()
        ),
    )
    for name in ("old", "mid", "new"):
        create_model(state, {"ModelName": name, "PrimaryContainer": {"Image": IMAGE}})
    answer = list_models(state, {"CreationTimeAfter": 100.5, "CreationTimeBefore": "1970-01-01T00:01:42Z"})
    assert [m["ModelName"] for m in answer["Models"]] == ["mid"]


def test_a_page_resumes_after_its_last_item_even_once_that_item_is_gone(sm):
    for name in ("a-1", "b-2", "c-3", "d-4"):
        _create(sm, name)
    first = sm.list_models(MaxResults=2)
    for model in first["Models"]:
        sm.delete_model(ModelName=model["ModelName"])
    second = sm.list_models(MaxResults=2, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == ["b-2", "a-1"]


def test_a_token_reused_with_other_filters_is_refused(sm):
    for name in ("keep-1", "keep-2", "keep-3"):
        _create(sm, name)
    first = sm.list_models(NameContains="keep", MaxResults=2)
    with pytest.raises(ClientError) as excinfo:
        sm.list_models(NameContains="kee", MaxResults=2, NextToken=first["NextToken"])
    assert error_of(excinfo) == (
        "ValidationException",
        "The pagination token was issued for a request with other parameters; repeat that request's parameters "
        "with it, or start again without NextToken.",
    )
    second = sm.list_models(NameContains="keep", MaxResults=5, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == ["keep-1"]


def test_bad_next_token(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.list_models(NextToken="garbage!")
    assert error_of(excinfo) == ("ValidationException", "Invalid pagination token.")


def test_injected_clock_stamps_creation_time(tmp_path):
    state = EmulatorState(
        REGION,
        Services(
            Ticking(),
            tmp_path,
            Limits(),
            client=None,
            credentials=Credentials.generate(),
            url="",
            supervisor=Supervisor(),
        ),
    )
    create_model(state, {"ModelName": "m", "PrimaryContainer": {"Image": IMAGE}})
    assert state.models.get("m").to_wire()["CreationTime"] == 100.0
