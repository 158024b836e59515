"""sagemaker_emulator.iam.evaluation: the evaluation rules SimulatePrincipalPolicy answers by."""

from __future__ import annotations

import pytest

from sagemaker_emulator.iam.evaluation import evaluate, matches


@pytest.mark.parametrize(
    "pattern, value, ignore_case, expected",
    [
        ("s3:Get*", "s3:GetObject", False, True),
        ("s3:get*", "s3:GetObject", True, True),
        ("s3:get*", "s3:GetObject", False, False),
        ("arn:aws:s3:::b/lab?-*", "arn:aws:s3:::b/lab1-x/y", False, True),
        ("arn:aws:s3:::b/lab?-*", "arn:aws:s3:::b/lab12-x", False, False),
        ("arn:aws:s3:::b/a.c", "arn:aws:s3:::b/abc", False, False),  # a dot is a dot, not any character
        ("*", "", False, True),
    ],
)
def test_wildcards(pattern, value, ignore_case, expected):
    assert matches(pattern, value, ignore_case) is expected


def _policy(*statements) -> dict:
    return {"p": {"Version": "2012-10-17", "Statement": list(statements)}}


def test_not_action_and_not_resource_allow_everything_else():
    policy = _policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate(policy, "s3:GetObject", "arn:aws:s3:::open/x").decision == "allowed"
    assert evaluate(policy, "iam:PassRole", "*").decision == "implicitDeny"
    assert evaluate(policy, "s3:GetObject", "arn:aws:s3:::secret/x").decision == "implicitDeny"


def test_a_statement_with_a_condition_is_not_applied_and_its_keys_are_reported():
    policy = _policy(
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "v"}}}
    )
    decision = evaluate(policy, "s3:GetObject")
    assert (decision.decision, decision.missing_context) == ("implicitDeny", ("aws:SourceVpc",))


def test_a_single_statement_object_and_a_deny_anywhere():
    allow = {"p": {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}}
    assert evaluate(allow, "s3:PutObject").decision == "allowed"
    deny = {**allow, "q": {"Statement": [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}]}}
    decision = evaluate(deny, "s3:PutObject")
    assert (decision.decision, decision.matched) == ("explicitDeny", ("q",))
