"""From recorded actions to a least-privilege IAM policy, and back: does a policy grant what a run used?

:func:`build` generalises each recorded ARN so it holds in any account: the account, region and partition become
CloudFormation pseudo parameters, the bucket ``${Bucket}``, the role ``${Role.Arn}``, and a resource name starting
with the workshop's prefix (``lab``) becomes ``lab*``; then it groups actions by the resources they need, one
statement per group. The result is written as JSON (``aws/workshop-policy.json``) and, when a CloudFormation
template is given, between its ``# BEGIN generated policy`` / ``# END generated policy`` markers as ``!Sub``
strings, so the template and the policy file never drift. :func:`missing` is the guard: the recorded actions a
policy, filled in for the emulator's account, does not allow.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from sagemaker_emulator.iam.actions import ACCOUNT
from sagemaker_emulator.iam.evaluation import evaluate

BEGIN, END = "# BEGIN generated policy", "# END generated policy"
_NAMED = re.compile(r"^(?P<head>arn:aws:(?:sagemaker|lambda):[^:]*:[^:]*:[a-z-]+[/:])(?P<name>.+)$")


def generalise(resource: str, *, bucket: str, role_arn: str, prefix: str, region: str) -> str:
    """One recorded ARN as a template resource (``${...}`` placeholders), or ``*``."""
    if resource == "*":
        return "*"
    if resource == role_arn:
        return "${Role.Arn}"
    if resource.startswith(f"arn:aws:s3:::{bucket}"):
        key = resource[len(f"arn:aws:s3:::{bucket}") :].lstrip("/")
        if not key:
            return "arn:${AWS::Partition}:s3:::${Bucket}"
        first = key.split("/", 1)[0]
        pattern = f"{prefix}*" if key.startswith(prefix) else (f"{first}/*" if "/" in key else key)
        return f"arn:${{AWS::Partition}}:s3:::${{Bucket}}/{pattern}"
    if resource.startswith("arn:aws:logs:"):
        resource = re.sub(r"(:log-group:[^:]+):.*$", r"\1:*", resource)
        resource = re.sub(rf"(:log-group:(?:[^:]*/)?){re.escape(prefix)}[^:/]*", rf"\g<1>{prefix}*", resource)
    named = _NAMED.match(resource)
    if named and named["name"].startswith(prefix):
        resource = named["head"] + prefix + "*"
    return (
        resource.replace("arn:aws:", "arn:${AWS::Partition}:", 1)
        .replace(f":{region}:", ":${AWS::Region}:", 1)
        .replace(f":{ACCOUNT}:", ":${AWS::AccountId}:", 1)
    )


def build(
    entries: Iterable[dict], *, bucket: str, role_arn: str, prefix: str, region: str, extra: Iterable[dict] = ()
) -> dict:
    """A policy document granting every recorded entry (and the ``extra`` ones, already generalised)."""
    resources_of: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        resources_of[entry["action"]].add(
            generalise(entry["resource"], bucket=bucket, role_arn=role_arn, prefix=prefix, region=region)
        )
    for entry in extra:
        resources_of[entry["action"]].add(entry["resource"])
    actions_of: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for action, resources in resources_of.items():
        actions_of[("*",) if "*" in resources else tuple(sorted(resources))].append(action)
    sids: dict[str, int] = defaultdict(int)
    statements = [
        {
            "Sid": _unique(_sid(actions, resources), sids),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": list(resources),
        }
        for resources, actions in sorted(actions_of.items(), key=lambda item: (item[0] == ("*",), sorted(item[1])))
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _unique(sid: str, seen: dict[str, int]) -> str:
    seen[sid] += 1
    return sid if seen[sid] == 1 else f"{sid}{seen[sid]}"


def _sid(actions: list[str], resources: tuple[str, ...]) -> str:
    services = sorted({action.partition(":")[0] for action in actions})
    scope = "Any" if resources == ("*",) else "Scoped"
    return "".join(part.title().replace("-", "") for part in services) + scope


def template_block(policy: dict, indent: int) -> str:
    """The policy's statements as CloudFormation YAML (resources as ``!Sub`` strings) at ``indent`` spaces."""
    pad = " " * indent
    lines = [f"{pad}Version: '2012-10-17'", f"{pad}Statement:"]
    for statement in policy["Statement"]:
        lines += [f"{pad}  - Sid: {statement['Sid']}", f"{pad}    Effect: Allow", f"{pad}    Action:"]
        lines += [f"{pad}      - {action}" for action in statement["Action"]]
        lines.append(f"{pad}    Resource:")
        lines += [
            f"{pad}      - " + ("'*'" if resource == "*" else f"!Sub '{resource}'")
            for resource in statement["Resource"]
        ]
    return "\n".join(lines)


def write_template(template: Path, policy: dict) -> None:
    """Replace the lines between the template's markers with the policy (indented like the ``BEGIN`` marker)."""
    text = template.read_text()
    begin, end = text.index(BEGIN), text.index(END)
    line_start = text.rindex("\n", 0, begin) + 1
    indent = begin - line_start
    head, tail = text[:begin], text[end:]
    template.write_text(f"{head}{BEGIN}\n{template_block(policy, indent)}\n{' ' * indent}{tail}")


def template_policy(template: Path) -> str:
    """The text between a template's markers (for the test that it matches the committed policy)."""
    text = template.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n").rstrip()


def fill(policy: dict, values: dict[str, str]) -> dict:
    """The policy with ``${name}`` placeholders replaced by ``values`` (e.g. the emulator's bucket and account)."""
    text = json.dumps(policy)
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)


def missing(entries: Iterable[dict], policy: dict) -> list[dict]:
    """The recorded entries the (filled-in) policy does not allow."""
    return [e for e in entries if evaluate({"policy": policy}, e["action"], e["resource"]).decision != "allowed"]
