"""``iam:SimulatePrincipalPolicy`` judged by the role's own policies, and SDK v3's role check that relies on it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import REGION, assert_healthy, client, error_of

BUCKET_OBJECTS = "arn:aws:s3:::workshop-bucket/*"

TRUST = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}


def _role(iam, name: str, inline: dict | None = None, attached: dict | None = None) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if inline:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    if attached:
        policy = iam.create_policy(PolicyName=f"{name}-attached", PolicyDocument=json.dumps(attached))["Policy"]
        iam.attach_role_policy(RoleName=name, PolicyArn=policy["Arn"])
    return arn


def _allow(actions, resources="*", effect="Allow") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": actions, "Resource": resources}]}


def _decisions(iam, arn: str, actions: list[str], resources: list[str] | None = None) -> dict[str, str]:
    extra = {"ResourceArns": resources} if resources else {}
    answer = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions, **extra)
    return {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in answer["EvaluationResults"]}


def test_a_role_without_policies_is_denied_everything(emulator):
    iam = client(emulator, "iam")
    arn = _role(iam, "bare")
    assert _decisions(iam, arn, ["s3:GetObject", "ecr:GetAuthorizationToken"]) == {
        ("s3:GetObject", "*"): "implicitDeny",
        ("ecr:GetAuthorizationToken", "*"): "implicitDeny",
    }


def test_inline_and_attached_policies_both_grant(emulator):
    iam = client(emulator, "iam")
    arn = _role(iam, "both", inline=_allow("ecr:Get*"), attached=_allow(["s3:getobject"], BUCKET_OBJECTS))
    decisions = _decisions(iam, arn, ["ecr:GetAuthorizationToken", "s3:GetObject"], ["arn:aws:s3:::workshop-bucket/a"])
    assert set(decisions.values()) == {"allowed"}


def test_resource_scoped_grants_do_not_cover_other_resources_or_star(emulator):
    iam = client(emulator, "iam")
    arn = _role(iam, "scoped", inline=_allow("s3:GetObject", BUCKET_OBJECTS))
    assert _decisions(iam, arn, ["s3:GetObject"], ["arn:aws:s3:::other-bucket/a"]) == {
        ("s3:GetObject", "arn:aws:s3:::other-bucket/a"): "implicitDeny"
    }
    assert _decisions(iam, arn, ["s3:GetObject"]) == {("s3:GetObject", "*"): "implicitDeny"}


def test_an_explicit_deny_wins(emulator):
    iam = client(emulator, "iam")
    arn = _role(iam, "denied", inline=_allow("*"), attached=_allow("iam:*", effect="Deny"))
    assert _decisions(iam, arn, ["iam:PassRole", "s3:PutObject"]) == {
        ("iam:PassRole", "*"): "explicitDeny",
        ("s3:PutObject", "*"): "allowed",
    }


def test_an_unknown_role_is_no_such_entity(emulator):
    iam = client(emulator, "iam")
    for arn in (
        "arn:aws:iam::123456789012:role/nobody",
        "arn:aws:s3:::not-a-role-at-all",
        "arn:aws:iam::123456789012:user/someone",
    ):
        with pytest.raises(ClientError) as excinfo:
            iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"])
        assert error_of(excinfo)[0] == "NoSuchEntity"


def test_sdk_role_check_refuses_a_role_the_simulation_denies_and_passes_one_it_allows(emulator, monkeypatch):
    """What ModelTrainer runs before each job: a definitive denial raises, a full grant passes."""
    from sagemaker.core.helper.iam_role_resolver import (
        RoleValidationError,
        _get_smoke_test_actions,
        resolve_and_validate_role,
    )

    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    for name, value in emulator.credentials.as_environment().items():
        monkeypatch.setenv(name, value)
    iam = client(emulator, "iam")
    narrow = _role(iam, "narrow", inline=_allow(["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"]))
    with pytest.raises(RoleValidationError, match="ec2:CreateNetworkInterface"):
        resolve_and_validate_role(narrow, role_type="training")
    full = _role(iam, "full", inline=_allow(_get_smoke_test_actions("training")))
    assert resolve_and_validate_role(full, role_type="training") == full
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    assert resolve_and_validate_role(narrow, role_type="training") == narrow


def test_hostile_action_and_resource_names_come_back_escaped_and_denied(emulator):
    iam = client(emulator, "iam")
    arn = _role(iam, "hostile", inline=_allow("s3:GetObject"))
    odd = "s3:Get</EvalActionName><EvalDecision>allowed</EvalDecision>&"
    resource = "arn:aws:s3:::b/<x>&amp;"
    assert _decisions(iam, arn, [odd], [resource]) == {(odd, resource): "implicitDeny"}


def test_a_pathological_wildcard_is_answered_and_the_emulator_stays_healthy(emulator):
    """A pattern whose stars a backtracking matcher would try every way to place (it froze the emulator)."""
    iam = client(emulator, "iam")
    arn = _role(iam, "stars", inline=_allow("s3:GetObject", "arn:aws:s3:::b/" + "a*" * 30 + "b"))
    long_a = "arn:aws:s3:::b/" + "a" * 2000
    assert _decisions(iam, arn, ["s3:GetObject"], [long_a, long_a + "b"]) == {
        ("s3:GetObject", long_a): "implicitDeny",
        ("s3:GetObject", long_a + "b"): "allowed",
    }
    assert_healthy(emulator)
