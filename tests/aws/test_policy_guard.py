"""The guard: every AWS action the notebooks performed in this test run is granted by the committed policy.

It runs after the last notebook (the root conftest.py orders it last, and deselects it when no notebook runs), on the
actions the run's emulator recorded. When it fails, a notebook started using an action the policy lacks: regenerate
the policy from the run (INSTRUCTOR.md, "Regenerating the policy") and review the difference before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagemaker_emulator.iam.actions import ACCOUNT, ACTIONS_VARIABLE, read_actions
from sagemaker_emulator.iam.policy import fill, missing

AWS = Path(__file__).resolve().parents[2] / "aws"
REGION = "us-east-1"
LOCAL_VALUES = {  # what local mode's session uses in place of the stack's bucket and role
    "Bucket": f"sagemaker-{REGION}-{ACCOUNT}",
    "Role.Arn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerWorkshopRole",
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
}


@pytest.mark.policy_guard
def test_the_committed_policy_grants_every_action_the_notebooks_performed():
    local_only = set(json.loads((AWS / "policy-inputs.json").read_text())["local_only"])
    performed = [e for e in read_actions(Path(os.environ[ACTIONS_VARIABLE])) if e["action"] not in local_only]
    assert performed, f"the notebooks ran but {os.environ[ACTIONS_VARIABLE]} recorded no action"
    policy = fill(json.loads((AWS / "workshop-policy.json").read_text()), LOCAL_VALUES)
    denied = missing(performed, policy)
    assert not denied, (
        "The notebooks used actions aws/workshop-policy.json does not grant (regenerate it: INSTRUCTOR.md, "
        f"'Regenerating the policy'): {json.dumps(denied, indent=1)}"
    )
