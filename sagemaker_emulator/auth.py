"""Who may talk to the emulator: one key pair per emulator, checked on every request with AWS's SigV4.

The emulator runs code on request, so it is guarded like any local service that does (as Jupyter guards its
kernels with a token): a request must carry a valid SigV4 signature made with this emulator's secret key, over the
payload hash AWS's rules for its service give, so that a captured request cannot be replayed with another body.
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha256
from urllib.parse import parse_qs, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
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

    def __init__(self, kind: str, detail: str = "", fields: dict[str, str] | None = None):
        super().__init__(kind)
        self.kind = kind  # missing | unknown_key | bad_signature | expired | skewed | one of PAYLOAD_KINDS
        self.detail = detail
        self.fields = fields or {}  # extra elements of S3's error document (``HeadersNotSigned``, the two hashes)


# S3's own refusals of a payload hash header it cannot take (the other services have no rules for that header).
PAYLOAD_KINDS = ("payload_missing", "payload_invalid", "payload_streaming", "unsigned_header")
PAYLOAD_HEADER = "x-amz-content-sha256"
EMPTY_SHA256 = sha256(b"").hexdigest()
# What S3 takes instead of a hash: the body is then not covered by the signature, as the client chose.
UNSIGNED_PAYLOADS = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
# Bodies sent as chunks each signed on its own; boto3 never sends them, and we do not check chunk signatures.
CHUNK_SIGNED_PAYLOADS = frozenset(
    f"STREAMING-{algorithm}-PAYLOAD{trailer}"
    for algorithm in ("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")
    for trailer in ("", "-TRAILER")
)
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str | None) -> bool:
    return value is not None and _HEX_SHA256.match(value) is not None


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, taken from the wire as it arrived (path and query still percent-encoded); the
    body is not part of it, so that a request can be judged before its body is read."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True)
class Scope:
    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class Signature:
    """A request's SigV4 signature as its headers state it, with this emulator's key and within its time.

    ``payload_hash`` is the hash the signature covers when the request declares it in a signed header (or
    ``UNSIGNED-PAYLOAD`` where S3 takes it): the signature can then be checked before the body is read, and the body
    against that hash as it streams. ``None``: the signature covers the SHA-256 of the body, which must be read first.
    """

    scope: Scope
    signed_headers: tuple[str, ...]
    value: str
    timestamp: str
    canonical_query: str
    payload_hash: str | None


_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_TIMESTAMP = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
MAX_SKEW_SECONDS = 15 * 60  # AWS refuses SigV4 requests signed more than 15 minutes away from its clock
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


def _scope(credential: str) -> Scope:
    parts = unquote(credential).split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthFailure("missing", "malformed credential scope")
    return Scope(*parts[:4])


def _parse_time(text: str) -> float:
    """SigV4's basic ISO 8601 time (``20261207T024500Z``) in seconds; five times cheaper than ``strptime``."""
    match = _TIMESTAMP.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        return datetime(*map(int, match.groups()), tzinfo=UTC).timestamp()
    except ValueError:
        raise AuthFailure("missing", f"malformed X-Amz-Date {text!r}") from None


def _declared_payload(service: str, headers: dict[str, str], signed: list[str]) -> str | None:
    """The payload hash a header-signed request declares, by AWS's rules for its service.

    S3 requires ``x-amz-content-sha256``, signed like every ``x-amz-*`` header, holding a SHA-256 or one of its
    unsigned forms. The other services hash the body themselves and ignore the header unless it is signed; a signed
    one holding anything but a SHA-256 can only fail the signature check, which the body's own hash then does.
    """
    value = headers.get(PAYLOAD_HEADER)
    if service != "s3":
        return value if PAYLOAD_HEADER in signed and is_sha256(value) else None
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise AuthFailure("unsigned_header", ", ".join(unsigned), {"HeadersNotSigned": ", ".join(unsigned)})
    if value is None:
        raise AuthFailure("payload_missing")
    if value in CHUNK_SIGNED_PAYLOADS:
        raise AuthFailure("payload_streaming", value)
    if value not in UNSIGNED_PAYLOADS and not is_sha256(value):
        raise AuthFailure("payload_invalid", value)
    return value


class _SignedHeaders(dict):
    """The signed headers, one value each (repeats arrive joined), read the way botocore's signer reads them: a plain
    dict where botocore's ``HTTPHeaders`` (an ``email.message.Message``) cost a third of a signature check."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


@lru_cache(maxsize=32)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's key for one day, region and service: four HMACs that every request of the day would repeat."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), sha256).digest()
    return key


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

    def signature(self, string_to_sign, request):
        date = request.context["timestamp"][0:8]
        key = _signing_key(self.credentials.secret_key, date, self._region_name, self._service_name)
        return hmac.new(key, string_to_sign.encode(), sha256).hexdigest()


class Verifier:
    """Checks SigV4 signatures (header or presigned query) against one emulator's key pair, in two steps: what the
    headers alone can tell (:meth:`authenticate`), then the signature over the payload hash (:meth:`verify`)."""

    def __init__(self, credentials: Credentials, now=time.time):
        self._credentials = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
        self._now = now

    def authenticate(self, request: SignedRequest) -> Signature:
        """The request's signature if its key, time and signed headers are right; raises :class:`AuthFailure`.

        Reads no body, so a client without this emulator's key is refused before it can make us read one.
        """
        query = parse_qs(request.query, keep_blank_values=True)
        header = request.headers.get("authorization", "")
        if header:
            match = _AUTH_HEADER.match(header)
            if not match:
                raise AuthFailure("missing", "the Authorization header is not AWS4-HMAC-SHA256")
            credential, signed, signature = match.group("credential", "signed", "signature")
            timestamp = request.headers.get("x-amz-date", "")
            canonical_query = request.query
        elif "X-Amz-Signature" in query:
            credential = query.get("X-Amz-Credential", [""])[0]
            signed = query.get("X-Amz-SignedHeaders", [""])[0]
            signature = query["X-Amz-Signature"][0]
            timestamp = query.get("X-Amz-Date", [""])[0]
            canonical_query = "&".join(p for p in request.query.split("&") if not p.startswith("X-Amz-Signature="))
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
        if header:
            payload = _declared_payload(scope.service.lower(), request.headers, names)
        else:  # a presigned URL: S3's signature never covers the body; the others' covers its hash
            payload = "UNSIGNED-PAYLOAD" if scope.service.lower() == "s3" else None
        return Signature(scope, tuple(names), signature, timestamp, canonical_query, payload)

    def verify(self, request: SignedRequest, signature: Signature, payload_hash: str) -> Scope:
        """The request's credential scope if ``signature`` is this emulator's signature of it with ``payload_hash``
        (the declared one, or the body's); raises :class:`AuthFailure`."""
        headers = _SignedHeaders((name, request.headers[name]) for name in signature.signed_headers)
        query = signature.canonical_query
        # The signed headers go to the signer alone: botocore would take a request's X-Amz-Content-SHA256 over
        # the payload hash it is given, and the body's hash must win over whatever the header says.
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{request.headers['host']}{request.path}" + (f"?{query}" if query else ""),
        )
        aws_request.context["timestamp"] = signature.timestamp
        signer = _Recomputed(self._credentials, signature.scope, headers, payload_hash)
        expected = signer.signature(
            signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
        )
        if not hmac.compare_digest(expected, signature.value):
            raise AuthFailure("bad_signature")
        return signature.scope
