"""IAM policy evaluation for ``iam:SimulatePrincipalPolicy``: identity policies only, as AWS documents it.

The rules followed (AWS IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements"):
- a request is denied unless some statement allows it (``implicitDeny``); an explicit ``Deny`` wins over any
  ``Allow`` (``explicitDeny``);
- a statement matches when its ``Action`` (or ``NotAction``) and ``Resource`` (or ``NotResource``) match;
- ``*`` matches any run of characters and ``?`` one character; actions compare case-insensitively, resources
  case-sensitively;
- a statement with a ``Condition`` is not applied, since the simulation is given no context values; its keys are
  reported in ``MissingContextValues``, as the simulator does.
Resource-based policies, permission boundaries and SCPs are not modelled (the workshop's role has none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Decision:
    """One (action, resource) verdict in the simulator's words: ``allowed``, ``explicitDeny``, ``implicitDeny``."""

    action: str
    resource: str
    decision: str
    matched: tuple[str, ...] = ()  # SourcePolicyId of each statement that decided it
    missing_context: tuple[str, ...] = field(default=())


@lru_cache(maxsize=1024)
def _segment(segment: str) -> re.Pattern:
    """A run of literal characters and ``?`` (no ``*``): fixed length, so searching for it cannot backtrack."""
    return re.compile("".join("." if c == "?" else re.escape(c) for c in segment), re.DOTALL)


def _fits(segment: str, value: str, start: int) -> bool:
    return _segment(segment).fullmatch(value, start, start + len(segment)) is not None


def matches(wildcard: str, value: str, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches an IAM wildcard pattern (``*`` any run, ``?`` one character).

    The pattern is split at its stars: the first piece must start the value, the last must end it, and each piece
    between is taken at its leftmost place after the one before (which is always a match if any is). So the time
    is linear in the value for each piece, never the exponential backtracking of a regex of ``.*`` runs, which a
    pattern like ``a*a*a*b`` against a long run of ``a`` turns into minutes.
    """
    if ignore_case:
        wildcard, value = wildcard.lower(), value.lower()
    first, *pieces = wildcard.split("*")
    if not pieces:
        return len(value) == len(first) and _fits(first, value, 0)
    last = pieces.pop()
    end = len(value) - len(last)
    if end < len(first) or not _fits(first, value, 0) or not _fits(last, value, end):
        return False
    position = len(first)
    for piece in pieces:
        found = _segment(piece).search(value, position, end)
        if found is None:
            return False
        position = found.end()
    return True


def _listed(statement: dict, key: str) -> list[str] | None:
    value = statement.get(key)
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: dict, action: str, resource: str) -> bool:
    actions, not_actions = _listed(statement, "Action"), _listed(statement, "NotAction")
    if actions is not None:
        action_ok = any(matches(p, action, ignore_case=True) for p in actions)
    else:
        action_ok = not_actions is not None and not any(matches(p, action, ignore_case=True) for p in not_actions)
    resources, not_resources = _listed(statement, "Resource"), _listed(statement, "NotResource")
    if resources is not None:
        resource_ok = any(matches(p, resource) for p in resources)
    else:
        resource_ok = not_resources is not None and not any(matches(p, resource) for p in not_resources)
    return action_ok and resource_ok


def _statements(document: dict) -> list[dict]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def evaluate(policies: dict[str, dict], action: str, resource: str = "*") -> Decision:
    """The verdict for ``action`` on ``resource`` under identity ``policies`` (policy id → document)."""
    allowed: list[str] = []
    missing: set[str] = set()
    for policy_id, document in policies.items():
        for statement in _statements(document):
            if not _applies(statement, action, resource):
                continue
            if statement.get("Condition"):
                missing.update(key for test in statement["Condition"].values() for key in test)
                continue
            if statement.get("Effect") == "Deny":
                return Decision(action, resource, "explicitDeny", (policy_id,))
            if statement.get("Effect") == "Allow":
                allowed.append(policy_id)
    if allowed:
        return Decision(action, resource, "allowed", tuple(dict.fromkeys(allowed)))
    return Decision(action, resource, "implicitDeny", (), tuple(sorted(missing)))


class NoSuchRole(LookupError):
    """``PolicySourceArn`` names no role this account has."""


def role_policies(iam, role_arn: str) -> dict[str, dict]:
    """The identity policies of the role ``role_arn`` (inline by name, attached by ARN), read from IAM with ``iam``.

    Raises:
        NoSuchRole: the ARN is not a role's, or the role does not exist.
    """
    from botocore.exceptions import ClientError

    kind, _, path_and_name = role_arn.partition(":role/")
    if not kind.startswith("arn:") or not path_and_name:
        raise NoSuchRole(f"PolicySourceArn {role_arn} is not the ARN of a role.")
    name = path_and_name.rsplit("/", 1)[-1]
    try:
        policies = {
            policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for policy in page["PolicyNames"]
        }
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page["AttachedPolicies"]:
                arn = attached["PolicyArn"]
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                policies[arn] = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchEntity":
            raise NoSuchRole(f"The role with name {name} cannot be found.") from None
        raise
    return {policy_id: _document(document) for policy_id, document in policies.items()}


def _document(document) -> dict:
    """A policy document as a dict: boto3 decodes IAM's URL-encoded JSON, but a string may still come back."""
    import json
    from urllib.parse import unquote

    return json.loads(unquote(document)) if isinstance(document, str) else document
