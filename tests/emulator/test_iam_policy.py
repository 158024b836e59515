"""sagemaker_emulator.iam.evaluation: the evaluation rules SimulatePrincipalPolicy answers by."""

from __future__ import annotations

import threading

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


@pytest.mark.parametrize(
    "pattern, value, ignore_case, expected",
    [
        ("a*b*c", "abc", False, True),
        ("a*b*c", "axxbyyc", False, True),
        ("a*b*c", "acb", False, False),
        ("*?", "", False, False),
        ("?*", "x", False, True),
        ("a*?b", "ab", False, False),
        ("a*?b", "axb", False, True),
        ("*ab*ab*", "xabyab", False, True),
        ("*ab*ab*", "xaby", False, False),
        ("ab*ba", "aba", False, False),  # the prefix and suffix may not share a character
        ("S3:*OBJECT", "s3:GetObject", True, True),
        ("a\nb", "a\nb", False, True),
        ("a?b", "a\nb", False, True),
    ],
)
def test_wildcards_with_several_stars(pattern, value, ignore_case, expected):
    assert matches(pattern, value, ignore_case) is expected


def _answer_within(seconds: float, call):
    """Run ``call`` in a thread and fail if it is still running after ``seconds``: a hang check, not a timing."""
    result = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still matching after {seconds} s: the matcher backtracks"
    return result[0]


@pytest.mark.parametrize("ignore_case", [False, True])
def test_a_pathological_pattern_is_answered(ignore_case):
    """``a*a*...*b`` against 10,000 ``a``: a backtracking matcher tries every way to place the stars."""
    pattern, value = "a*" * 30 + "b", "a" * 10_000
    assert _answer_within(30, lambda: matches(pattern, value, ignore_case)) is False
    assert _answer_within(30, lambda: matches(pattern, value + "b", ignore_case)) is True
    assert _answer_within(30, lambda: matches("*?" * 30 + "b", value, ignore_case)) is False
