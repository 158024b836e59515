"""The action recorder: which IAM action, on which resource ARN, each signed request performed.

A notebook run against a recording emulator leaves a JSON-lines file, one ``{"service", "action", "resource"}`` per
distinct triple, from which ``python -m sagemaker_emulator policy`` builds a least-privilege policy. Recording is on
when the emulator is served with ``SAGEMAKER_EMULATOR_ACTIONS`` naming the file (``serve`` reads it; in-process
emulators made by tests record only when given a path). Requests the emulator makes for itself (saving its state,
reading a role's policies) carry :data:`INTERNAL_HEADER` and are not recorded: no notebook performs them.

Actions are IAM's names, which differ from API names for S3 (``ListObjectsV2`` is ``s3:ListBucket``, ``HeadObject``
is ``s3:GetObject``), runtime calls (``sagemaker:InvokeEndpoint``) and Lambda; resources are the ARNs IAM authorizes
against (AWS Service Authorization Reference), ``*`` for calls that take none (``List*``, ``GetCallerIdentity``).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import unescape

ACTIONS_VARIABLE = "SAGEMAKER_EMULATOR_ACTIONS"
INTERNAL_HEADER = "X-Emulator-Internal"
ACCOUNT = "123456789012"  # moto's default account, the emulator's only one

# SageMaker request member naming a resource → the resource type in its ARN (names are lower-cased in ARNs).
SAGEMAKER_RESOURCES = {
    "TrainingJobName": "training-job",
    "TransformJobName": "transform-job",
    "HyperParameterTuningJobName": "hyper-parameter-tuning-job",
    "EndpointName": "endpoint",
    "EndpointConfigName": "endpoint-config",
    "ModelName": "model",
}
_LAMBDA = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/?(?P<name>[^/]+)?(?P<rest>/.*)?$")
_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_DELETED_KEY = re.compile(r"<Key>([^<]*)</Key>")  # DeleteObjects' body lists each key; read by pattern, not parsed


def _arn(service: str, region: str, resource: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def passed_roles(params: dict) -> list[str]:
    """Roles a SageMaker request hands to the service (``RoleArn``, ``ExecutionRoleArn``): the caller needs
    ``iam:PassRole`` on each."""
    found = [params.get("RoleArn"), params.get("ExecutionRoleArn")]
    definition = params.get("TrainingJobDefinition")
    if isinstance(definition, dict):
        found.append(definition.get("RoleArn"))
    return [role for role in found if isinstance(role, str)]


def sagemaker_action(operation: str, params: dict, region: str) -> tuple[str, str]:
    if "ResourceArn" in params:  # AddTags, ListTags, DeleteTags
        return f"sagemaker:{operation}", str(params["ResourceArn"])
    for member, kind in SAGEMAKER_RESOURCES.items():
        if isinstance(params.get(member), str):
            return f"sagemaker:{operation}", _arn("sagemaker", region, f"{kind}/{params[member].lower()}")
    return f"sagemaker:{operation}", "*"


def s3_action(method: str, path: str, query: dict) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "s3:ListAllMyBuckets", "*"
    if key:
        resource = f"arn:aws:s3:::{bucket}/{key}"
        if method in ("GET", "HEAD"):
            return "s3:GetObject", resource
        if method == "DELETE":
            return ("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"), resource
        return "s3:PutObject", resource  # PUT, multipart POSTs
    resource = f"arn:aws:s3:::{bucket}"
    if "publicAccessBlock" in query:
        verb = {"GET": "Get", "DELETE": "Put"}.get(method, "Put")  # IAM has no DeleteBucketPublicAccessBlock
        return f"s3:{verb}BucketPublicAccessBlock", resource
    if "location" in query:
        return "s3:GetBucketLocation", resource
    if method == "POST" and "delete" in query:
        return "s3:DeleteObject", f"{resource}/*"
    if method == "PUT":
        return "s3:CreateBucket", resource
    if method == "DELETE":
        return "s3:DeleteBucket", resource
    return "s3:ListBucket", resource


def lambda_action(method: str, path: str, region: str) -> tuple[str, str]:
    found = _LAMBDA.match(path)
    if not found or not found["name"]:
        return ("lambda:CreateFunction" if method == "POST" else "lambda:ListFunctions"), "*"
    resource = _arn("lambda", region, f"function:{found['name']}")
    rest = found["rest"] or ""
    if rest.startswith("/invocations"):
        return "lambda:InvokeFunction", resource
    if rest.startswith("/configuration"):
        return (
            "lambda:GetFunctionConfiguration" if method == "GET" else "lambda:UpdateFunctionConfiguration"
        ), resource
    return {"GET": "lambda:GetFunction", "DELETE": "lambda:DeleteFunction"}.get(
        method, "lambda:UpdateFunctionCode"
    ), resource


def logs_action(operation: str, params: dict, region: str) -> tuple[str, str]:
    group = params.get("logGroupName")
    if not isinstance(group, str):
        return f"logs:{operation}", "*"
    stream = params.get("logStreamName")
    suffix = f":log-stream:{stream}" if isinstance(stream, str) else ":*"
    return f"logs:{operation}", _arn("logs", region, f"log-group:{group}{suffix}")


def iam_action(operation: str, form: dict) -> tuple[str, str]:
    if form.get("PolicySourceArn"):
        return f"iam:{operation}", form["PolicySourceArn"][0]
    if form.get("RoleName"):
        return f"iam:{operation}", f"arn:aws:iam::{ACCOUNT}:role/{form['RoleName'][0]}"
    return f"iam:{operation}", "*"


def actions_of(service: str, region: str, environ: dict, body: bytes) -> list[tuple[str, str]]:
    """Every ``(action, resource)`` one signed request needs: its own, ``iam:PassRole`` for a role it passes, and
    ``sagemaker:AddTags`` when it creates a resource with tags."""
    found = [action_of(service, region, environ, body)]
    if found[0][0] == "s3:DeleteObject" and environ.get("REQUEST_METHOD", "").upper() == "POST":
        bucket = found[0][1].removesuffix("/*")
        keys = [unescape(key) for key in _DELETED_KEY.findall(body.decode("utf-8", "replace"))]
        found = [("s3:DeleteObject", f"{bucket}/{key}") for key in dict.fromkeys(keys)] or found
    if service == "sagemaker":
        params = _json(body)
        found += [("iam:PassRole", role) for role in passed_roles(params)]
        if params.get("Tags") and found[0][0].startswith("sagemaker:Create"):
            found.append(("sagemaker:AddTags", found[0][1]))  # AWS authorizes tags given at creation as AddTags
    return found


def action_of(service: str, region: str, environ: dict, body: bytes) -> tuple[str, str]:
    """``(action, resource)`` for one signed request, from its service, method, path, target and body."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = unquote(environ.get("PATH_INFO", "/"))
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    target = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    if service == "sagemaker":
        invocation = _INVOCATIONS.match(path)
        if invocation:
            return "sagemaker:InvokeEndpoint", _arn("sagemaker", region, f"endpoint/{invocation['name'].lower()}")
        return sagemaker_action(target, _json(body), region)
    if service == "s3":
        return s3_action(method, path, query)
    if service == "lambda":
        return lambda_action(method, path, region)
    if service == "logs":
        return logs_action(target, _json(body), region)
    if service == "monitoring":  # CloudWatch signs as "monitoring"; botocore sends /service/<id>/operation/<Op>
        operation = path.rpartition("/operation/")[2] if "/operation/" in path else target
        if operation:
            return f"cloudwatch:{operation}", "*"
    form = {**query, **parse_qs(body.decode("utf-8", "replace"))}
    operation = (form.get("Action") or [target or method])[0]
    if service == "monitoring":
        return f"cloudwatch:{operation}", "*"
    if service == "iam":
        return iam_action(operation, form)
    return f"{service}:{operation}", "*"


def _json(body: bytes) -> dict:
    try:
        found = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class ActionRecorder:
    """Appends each new ``(service, action, resource)`` to a JSON-lines file, once per distinct triple."""

    UNRECORDED_ENVIRON = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen = {tuple(entry.values()) for entry in read_actions(self.path)}
        self._lock = threading.Lock()

    def record(self, service: str, region: str, environ: dict, body: bytes) -> None:
        entries = [
            (action.partition(":")[0], action, resource)
            for action, resource in actions_of(service, region, environ, body)
        ]
        with self._lock:
            new = [entry for entry in dict.fromkeys(entries) if entry not in self._seen]
            self._seen.update(new)
            if new:
                with self.path.open("a", encoding="utf-8") as out:
                    out.writelines(json.dumps(dict(zip(("service", "action", "resource"), e))) + "\n" for e in new)


def read_actions(path: Path) -> list[dict[str, str]]:
    """The entries of a record file (none if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
