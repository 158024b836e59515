"""auth.Verifier on its own: which payload hash a signature covers, by AWS's rules for each service."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from sagemaker_emulator.auth import EMPTY_SHA256, MAX_SKEW_SECONDS, AuthFailure, Credentials, SignedRequest, Verifier

HOST = "127.0.0.1:8080"
KEY = Credentials.generate()
BODY = b'{"ModelName": "m"}'


def _wire(request: AWSRequest) -> SignedRequest:
    """The request as the gate sees it: lower-case header names, the path and query as sent."""
    path, _, query = request.url.removeprefix(f"http://{HOST}").partition("?")
    headers = {name.lower(): value for name, value in request.headers.items()} | {"host": HOST}
    return SignedRequest(request.method, path, query, headers)


def _signed(service: str, headers: dict | None = None) -> SignedRequest:
    request = AWSRequest("POST", f"http://{HOST}/", data=BODY, headers=dict(headers or {}))
    SigV4Auth(BotoCredentials(KEY.access_key_id, KEY.secret_access_key), service, "us-east-1").add_auth(request)
    return _wire(request)


def test_a_sagemaker_signature_covers_the_bodys_own_hash():
    request = _signed("sagemaker")
    verifier = Verifier(KEY)
    signature = verifier.authenticate(request)
    assert signature.payload_hash is None  # the body must be hashed
    assert verifier.verify(request, signature, hashlib.sha256(BODY).hexdigest()).service == "sagemaker"
    with pytest.raises(AuthFailure) as excinfo:
        verifier.verify(request, signature, hashlib.sha256(b"{}").hexdigest())
    assert excinfo.value.kind == "bad_signature"


def test_a_hash_header_counts_only_when_signed():
    declared = hashlib.sha256(BODY).hexdigest()
    signed = _signed("sagemaker", {"X-Amz-Content-SHA256": declared})
    assert Verifier(KEY).authenticate(signed).payload_hash == declared
    unsigned = _signed("sagemaker")
    unsigned.headers["x-amz-content-sha256"] = declared
    assert Verifier(KEY).authenticate(unsigned).payload_hash is None


def test_unsigned_payload_counts_for_s3_only():
    sagemaker = _signed("sagemaker", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    verifier = Verifier(KEY)
    signature = verifier.authenticate(sagemaker)
    assert signature.payload_hash is None
    with pytest.raises(AuthFailure) as excinfo:  # signed over UNSIGNED-PAYLOAD, checked over the body's hash
        verifier.verify(sagemaker, signature, hashlib.sha256(BODY).hexdigest())
    assert excinfo.value.kind == "bad_signature"
    s3 = _signed("s3", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    signature = verifier.authenticate(s3)
    assert signature.payload_hash == "UNSIGNED-PAYLOAD"
    assert verifier.verify(s3, signature, signature.payload_hash).service == "s3"


def test_presigned_urls_cover_the_body_except_on_s3():
    verifier = Verifier(KEY)
    for signer, service, payload in ((S3SigV4QueryAuth, "s3", "UNSIGNED-PAYLOAD"), (SigV4QueryAuth, "sts", None)):
        request = AWSRequest("GET", f"http://{HOST}/?Action=GetCallerIdentity")
        signer(BotoCredentials(KEY.access_key_id, KEY.secret_access_key), service, "us-east-1", 60).add_auth(request)
        signed = _wire(request)
        signature = verifier.authenticate(signed)
        assert signature.payload_hash == payload, service
        assert verifier.verify(signed, signature, payload or EMPTY_SHA256).service == service


@pytest.mark.parametrize(
    "stamp",
    ["2026127T024500Z", "20261207T024500", "20261307T024500Z", "20261207T246000Z", "２０２６1207T024500Z", ""],
    ids=["short", "no Z", "month 13", "hour 24", "non-ASCII digits", "empty"],
)
def test_a_malformed_signing_time_is_refused(stamp):
    request = _signed("sagemaker")
    request.headers["x-amz-date"] = stamp
    with pytest.raises(AuthFailure) as excinfo:
        Verifier(KEY).authenticate(request)
    assert excinfo.value.kind == "missing" and "malformed X-Amz-Date" in excinfo.value.detail


def test_the_signing_time_is_read_as_utc():
    request = _signed("sagemaker")
    signed_at = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    Verifier(KEY, now=lambda: signed_at + MAX_SKEW_SECONDS).authenticate(request)
    with pytest.raises(AuthFailure) as excinfo:
        Verifier(KEY, now=lambda: signed_at + MAX_SKEW_SECONDS + 1).authenticate(request)
    assert excinfo.value.kind == "skewed"
