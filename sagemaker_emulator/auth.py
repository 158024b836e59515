"""Who may talk to the emulator: one key pair per emulator, checked on every request with AWS's SigV4.

The emulator runs code on request, so it is guarded like any local service that does (as Jupyter guards its
kernels with a token): a request must carry a valid SigV4 signature made with this emulator's secret key.
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from urllib.parse import parse_qs, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials as BotoCredentials

_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Credentials:
    """An AWS-style key pair; ``generate()`` makes a fresh random one."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> Credentials:
        access = "ASIAEMU" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(13))
        return cls(access, secrets.token_urlsafe(30))

    def as_boto3(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}

    def as_environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


class AuthFailure(Exception):
    """Why a request is refused; ``kind`` selects AWS's code and wording for the service's protocol."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(kind)
        self.kind = kind  # missing | unknown_key | bad_signature | expired | skewed
        self.detail = detail


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, taken from the wire as it arrived (path and query still percent-encoded)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes | None  # None when the signature does not cover it (S3 declares the hash in a header)


@dataclass(frozen=True)
class Scope:
    access_key_id: str
    date: str
    region: str
    service: str


_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW_SECONDS = 15 * 60  # AWS refuses SigV4 requests signed more than 15 minutes away from its clock
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


def _scope(credential: str) -> Scope:
    parts = unquote(credential).split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthFailure("missing", "malformed credential scope")
    return Scope(*parts[:4])


def _parse_time(text: str) -> float:
    try:
        return datetime.strptime(text, _TIMESTAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise AuthFailure("missing", f"malformed X-Amz-Date {text!r}") from None


class _Recomputed(SigV4Auth):
    """botocore's own SigV4 signer, fed exactly the headers and payload hash the client says it signed."""

    def __init__(self, credentials, scope: Scope, signed_headers, payload_hash: str):
        super().__init__(credentials, scope.service, scope.region)
        self._signed_headers = signed_headers
        self._payload_hash = payload_hash

    def headers_to_sign(self, request):
        return self._signed_headers

    def payload(self, request):
        return self._payload_hash

    def _normalize_url_path(self, path):
        return path if self._service_name == "s3" else super()._normalize_url_path(path)


class Verifier:
    """Checks SigV4 signatures (header or presigned query) against one emulator's key pair."""

    def __init__(self, credentials: Credentials, now=time.time):
        self._credentials = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
        self._now = now

    def verify(self, request: SignedRequest) -> Scope:
        """The request's credential scope if its signature is this emulator's; raises :class:`AuthFailure`."""
        query = parse_qs(request.query, keep_blank_values=True)
        header = request.headers.get("authorization", "")
        if header:
            match = _AUTH_HEADER.match(header)
            if not match:
                raise AuthFailure("missing", "the Authorization header is not AWS4-HMAC-SHA256")
            credential, signed, signature = match.group("credential", "signed", "signature")
            timestamp = request.headers.get("x-amz-date", "")
            canonical_query = request.query
            payload = request.headers.get("x-amz-content-sha256")
            if payload is None:
                payload = sha256(request.body or b"").hexdigest()
        elif "X-Amz-Signature" in query:
            credential = query.get("X-Amz-Credential", [""])[0]
            signed = query.get("X-Amz-SignedHeaders", [""])[0]
            signature = query["X-Amz-Signature"][0]
            timestamp = query.get("X-Amz-Date", [""])[0]
            canonical_query = "&".join(p for p in request.query.split("&") if not p.startswith("X-Amz-Signature="))
            payload = "UNSIGNED-PAYLOAD"
        else:
            raise AuthFailure("missing")
        scope = _scope(credential)
        if not hmac.compare_digest(scope.access_key_id, self._credentials.access_key):
            raise AuthFailure("unknown_key")
        signed_at = _parse_time(timestamp)
        if header:
            if abs(self._now() - signed_at) > MAX_SKEW_SECONDS:
                raise AuthFailure("skewed", timestamp)
        else:
            expires = int(query.get("X-Amz-Expires", ["0"])[0] or 0)
            if not 0 < expires <= MAX_PRESIGN_SECONDS or self._now() > signed_at + expires:
                raise AuthFailure("expired", timestamp)
        names = [name for name in signed.lower().split(";") if name]
        if "host" not in names or any(name not in request.headers for name in names):
            raise AuthFailure("bad_signature", "a signed header is missing")
        headers = HTTPHeaders()
        for name in names:
            headers[name] = request.headers[name]
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{request.headers['host']}{request.path}" + (f"?{canonical_query}" if canonical_query else ""),
            headers=headers,
        )
        aws_request.context["timestamp"] = timestamp
        signer = _Recomputed(self._credentials, scope, headers, payload)
        expected = signer.signature(
            signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
        )
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure("bad_signature")
        return scope
