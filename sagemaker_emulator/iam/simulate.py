"""``iam:SimulatePrincipalPolicy``, which moto lacks and SDK v3 calls to validate a role: the wire shim.

Each action on each resource (``*`` when none is given) is judged by the role's own inline and attached policies
(``iam.evaluation``), so a role lacking a permission is refused here as on AWS. The server hands over the request's
form and sends back the status and XML body this returns, in IAM's query-protocol wording.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from xml.sax.saxutils import escape

from sagemaker_emulator.iam.evaluation import NoSuchRole, evaluate

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"


def simulate_principal_policy(form: dict[str, list[str]], role_policies: Callable[[str], dict]) -> tuple[int, str]:
    """The (HTTP status, XML body) answering a SimulatePrincipalPolicy request's parsed form."""
    source = (form.get("PolicySourceArn") or [""])[0]
    actions = _members(form, "ActionNames")
    if not source or not actions:
        return _error(400, "ValidationError", "PolicySourceArn and ActionNames are required.")
    try:
        policies = role_policies(source)
    except NoSuchRole as error:
        return _error(404, "NoSuchEntity", str(error))
    resources = _members(form, "ResourceArns") or ["*"]
    results = "".join(
        _evaluation_result(evaluate(policies, action, resource)) for action in actions for resource in resources
    )
    return 200, (
        f'<SimulatePrincipalPolicyResponse xmlns="{NAMESPACE}">'
        "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )


def _members(form: dict, name: str) -> list[str]:
    keys = sorted((k for k in form if k.startswith(f"{name}.member.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    return [form[k][0] for k in keys]


def _error(status: int, code: str, message: str) -> tuple[int, str]:
    return status, (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    )


def _evaluation_result(decision) -> str:
    matched = "".join(f"<member><SourcePolicyId>{escape(p)}</SourcePolicyId></member>" for p in decision.matched)
    missing = "".join(f"<member>{escape(key)}</member>" for key in decision.missing_context)
    return (
        "<member>"
        f"<EvalActionName>{escape(decision.action)}</EvalActionName>"
        f"<EvalResourceName>{escape(decision.resource)}</EvalResourceName>"
        f"<EvalDecision>{decision.decision}</EvalDecision>"
        f"<MatchedStatements>{matched}</MatchedStatements><MissingContextValues>{missing}</MissingContextValues>"
        "</member>"
    )
