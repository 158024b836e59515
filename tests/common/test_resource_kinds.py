"""common.resource_kinds: every row of the table names operations and keys that SageMaker's API really has."""

import botocore.session
import pytest
from botocore import xform_name

from common.resource_kinds import KINDS

MODEL = botocore.session.get_session().get_service_model("sagemaker")
OPERATIONS = {xform_name(name): name for name in MODEL.operation_names}


def _output_members(operation: str) -> dict:
    return MODEL.operation_model(OPERATIONS[operation]).output_shape.members


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.label)
def test_each_kind_names_real_operations_and_keys(kind):
    for operation in (kind.listing, kind.describe, kind.remove):
        assert operation in OPERATIONS, f"{kind.label}: SageMaker has no operation {operation}"
    items = _output_members(kind.listing)[kind.items]
    summary = items.member.members
    assert {kind.name_key, kind.arn_key, "CreationTime"} <= set(summary)
    assert kind.name_key in MODEL.operation_model(OPERATIONS[kind.remove]).input_shape.required_members
    if kind.status_key:
        assert kind.status_key in _output_members(kind.describe)
    if kind.job:
        assert (
            kind.status_key in summary
            and "StatusEquals" in MODEL.operation_model(OPERATIONS[kind.listing]).input_shape.members
        )


def test_a_labs_kinds_are_reported_under_distinct_keys():
    keys = [kind.lab_key for kind in KINDS if kind.lab_key]
    assert len(keys) == len(set(keys)) and "s3_objects" not in keys and "stopped_jobs" not in keys
