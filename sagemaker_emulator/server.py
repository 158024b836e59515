"""HTTP for the whole emulator on one loopback port: SageMaker is ours, every other AWS service is moto's.

Requests are told apart by the SigV4 credential scope in ``Authorization`` (``.../<region>/sagemaker/aws4_request``)
or by ``X-Amz-Target: SageMaker.*``, so ``AWS_ENDPOINT_URL`` alone points every client here; the per-service
variables (``AWS_ENDPOINT_URL_SAGEMAKER``, ``..._SAGEMAKER_RUNTIME``) may name the same URL.

- SageMaker control plane: JSON 1.1, ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``; the body is
  validated against botocore's input shape before the handler runs.
- SageMaker Runtime: ``POST /endpoints/<name>/invocations`` (REST, raw body, ``Content-Type``/``Accept``).
- ``iam:SimulatePrincipalPolicy``, which moto lacks and SDK v3 calls to validate roles: every action ``allowed``.
- Everything else (S3, STS, IAM, CloudWatch Logs): moto's WSGI application.
This is the only module that sees HTTP.
"""
from __future__ import annotations

import io
import json
import logging
import re
import uuid
from typing import Callable
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

import botocore.session
from werkzeug.wrappers import Request, Response

from sagemaker_emulator.errors import (
    InternalFailure,
    RuntimeValidationError,
    SerializationException,
    ServiceError,
    UnknownOperationException,
    ValidationException,
)
from sagemaker_emulator.operations import operations
from sagemaker_emulator.resources.endpoints import invoke_endpoint
from sagemaker_emulator.state import EmulatorState
from sagemaker_emulator.validation import validate

LOG = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
TARGET_PREFIX = "SageMaker."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_RUNTIME_HEADERS = {
    "ContentType": "Content-Type",
    "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes",
    "TargetModel": "X-Amzn-SageMaker-Target-Model",
    "TargetVariant": "X-Amzn-SageMaker-Target-Variant",
    "TargetContainerHostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id",
}


def credential_scope(environ: dict) -> tuple[str | None, str | None]:
    """(service, region) from a SigV4 ``Authorization`` header or a presigned URL's ``X-Amz-Credential``."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^,\s]+)", auth)
    credential = match.group(1) if match else None
    if credential is None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [None])[0]
    if not credential:
        return None, None
    parts = unquote(credential).split("/")
    if len(parts) != 5:
        return None, None
    return parts[3].lower(), parts[2]


class EmulatorApp:
    """The WSGI application: routes each request to our SageMaker handlers, the IAM shim or moto."""

    def __init__(self, state_for: Callable[[str], EmulatorState], moto_app):
        self.state_for = state_for
        self.moto_app = moto_app
        self.handlers = operations()
        session = botocore.session.get_session()
        self.sagemaker_model = session.get_service_model("sagemaker")
        self.runtime_shape = session.get_service_model("sagemaker-runtime").operation_model("InvokeEndpoint").input_shape

    def __call__(self, environ, start_response):
        service, region = credential_scope(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if service == "sagemaker" or target.startswith(TARGET_PREFIX):
            response = self._sagemaker(Request(environ), region or DEFAULT_REGION)
            return response(environ, start_response)
        if service == "iam" and environ.get("REQUEST_METHOD") == "POST":
            body = _buffer_body(environ)
            form = parse_qs(body.decode("utf-8", "replace"))
            if form.get("Action") == ["SimulatePrincipalPolicy"]:
                return _simulate_principal_policy(form)(environ, start_response)
        return self.moto_app(environ, start_response)

    def _sagemaker(self, request: Request, region: str) -> Response:
        invocation = _INVOCATIONS.match(request.path)
        if invocation and request.method == "POST":
            return self._invoke(request, unquote(invocation.group("name")), region)
        try:
            target = request.headers.get("X-Amz-Target", "")
            if request.method != "POST" or request.path != "/" or not target.startswith(TARGET_PREFIX):
                raise UnknownOperationException(f"No SageMaker operation at {request.method} {request.path}.")
            return _json(200, self._call(target[len(TARGET_PREFIX) :], request.get_data(), region))
        except ServiceError as error:
            return _json(error.status, error.body(), error.code)
        except Exception as error:  # a bug of ours: answer like AWS, keep the trace in our log
            LOG.exception("internal error in SageMaker operation")
            failure = InternalFailure(f"{type(error).__name__}: {error}")
            return _json(failure.status, failure.body(), failure.code)

    def _call(self, name: str, raw: bytes, region: str) -> dict:
        handler = self.handlers.get(name)
        if handler is None:
            known = name in self.sagemaker_model.operation_names
            raise UnknownOperationException(
                f"Operation {name} is {'not supported by the local SageMaker emulator' if known else 'unknown'}; "
                f"supported operations: {', '.join(sorted(self.handlers))}."
            )
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise SerializationException(f"The request body is not valid JSON: {error}") from None
        validate(self.sagemaker_model.operation_model(name).input_shape, params)
        return handler(self.state_for(region), params)

    def _invoke(self, request: Request, name: str, region: str) -> Response:
        params: dict = {"EndpointName": name, "Body": request.get_data()}
        for member, header in _RUNTIME_HEADERS.items():
            if header in request.headers:
                params[member] = request.headers[header]
        try:
            try:
                validate(self.runtime_shape, params)
            except (ValidationException, SerializationException) as error:
                raise RuntimeValidationError(error.message) from None
            result = invoke_endpoint(self.state_for(region), params)
        except ServiceError as error:
            if not isinstance(error, RuntimeValidationError):
                error = RuntimeValidationError(error.message)
            return _json(error.status, error.body(), error.code, content_type="application/json")
        except Exception as error:
            LOG.exception("internal error in InvokeEndpoint")
            return _json(500, {"Message": f"{type(error).__name__}: {error}"}, "InternalFailure", "application/json")
        headers = {"x-Amzn-Invoked-Production-Variant": result.variant, "x-amzn-RequestId": str(uuid.uuid4())}
        if result.custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
        return Response(result.body, status=200, headers=headers, content_type=result.content_type)


def _json(status: int, body: dict, error_code: str | None = None, content_type: str = JSON_CONTENT_TYPE) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_code:
        headers["x-amzn-ErrorType"] = f"{error_code}:"
    return Response(json.dumps(body), status=status, headers=headers, content_type=content_type)


def _buffer_body(environ: dict) -> bytes:
    """Read the request body and put it back, so moto can still read it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _members(form: dict, name: str) -> list[str]:
    keys = sorted((k for k in form if k.startswith(f"{name}.member.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    return [form[k][0] for k in keys]


def _simulate_principal_policy(form: dict) -> Response:
    """``allowed`` for every action and resource: local mode grants the role everything it asks for."""
    resources = _members(form, "ResourceArns") or ["*"]
    results = "".join(
        "<member>"
        f"<EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        "<EvalDecision>allowed</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/>"
        "</member>"
        for action in _members(form, "ActionNames")
        for resource in resources
    )
    xml = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
        f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return Response(xml, status=200, content_type="text/xml")
