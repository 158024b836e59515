"""The gate in front of every API: signatures with the emulator's key, no browsers, no foreign Host, body limits.

Each case is an attack or a mistake, answered the way the AWS service it targets answers, and leaves the emulator
healthy and unchanged.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from emulator_helpers import BUCKET, REGION, ROLE, assert_healthy, client, error_of, send

from sagemaker_emulator.auth import Credentials as EmulatorCredentials
from sagemaker_emulator.emulator import Emulator
from sagemaker_emulator.server import BODY_LIMITS
from sagemaker_emulator.state import Timings

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key "
    "and signing method. Consult the service documentation for details."
)
ATTACK = {  # what a web page posted: a framework image told to run a shell command
    "TrainingJobName": "drive-by",
    "AlgorithmSpecification": {
        "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-cpu-py38",
        "TrainingInputMode": "File",
        "ContainerEntrypoint": ["/bin/sh", "-c", "touch {marker}"],
    },
    "RoleArn": ROLE,
    "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 60},
}
JSON_HEADERS = {"X-Amz-Target": "SageMaker.CreateTrainingJob", "Content-Type": "application/x-amz-json-1.1"}


def _other_client(emulator, service: str, access_key: str, secret: str, **config):
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def _wrong_secret(emulator, service: str, **config):
    return _other_client(emulator, service, emulator.credentials.access_key_id, "not-the-secret", **config)


def _unknown_key(emulator, service: str, **config):
    return _other_client(emulator, service, "AKIDSOMEONEELSE", "whatever", **config)


def _attack_body(tmp_path) -> tuple[bytes, object]:
    marker = tmp_path / "pwned"
    request = json.loads(json.dumps(ATTACK).replace("{marker}", str(marker)))
    return json.dumps(request).encode(), marker


def _no_job(emulator) -> None:
    assert client(emulator, "sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


# ------------------------------------------------------------------------------------------------ signatures


def test_an_unsigned_create_training_job_runs_nothing(emulator, s3, tmp_path):
    body, marker = _attack_body(tmp_path)
    status, headers, answer = send(emulator, "POST", "/", body, JSON_HEADERS, sign=False)
    assert status == 403 and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException:"
    assert json.loads(answer) == {
        "__type": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
    }
    time.sleep(0.5)
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


def test_a_wrong_secret_is_an_invalid_signature(emulator, s3):
    with pytest.raises(ClientError) as excinfo:
        _wrong_secret(emulator, "sagemaker").list_models()
    assert error_of(excinfo) == ("InvalidSignatureException", SIGNATURE_MISMATCH)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert_healthy(emulator)


def test_an_unknown_access_key_is_an_unrecognized_client(emulator, s3):
    with pytest.raises(ClientError) as excinfo:
        _unknown_key(emulator, "sagemaker").list_models()
    assert error_of(excinfo) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    assert_healthy(emulator)


def test_a_body_changed_after_signing_is_refused(emulator, s3, tmp_path):
    body, marker = _attack_body(tmp_path)
    status, headers, answer = send(emulator, "POST", "/", b"{}", JSON_HEADERS)
    assert status == 400  # the signed request itself is fine (and invalid as a job)
    signed = AWSRequest(method="POST", url=emulator.url + "/", data=b"{}", headers=dict(JSON_HEADERS))
    keys = emulator.credentials
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "sagemaker", REGION).add_auth(signed)
    tampered = urllib.request.Request(emulator.url + "/", data=body, method="POST", headers=dict(signed.headers))
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(tampered, timeout=30)
    assert excinfo.value.code == 403
    assert json.loads(excinfo.value.read())["__type"] == "InvalidSignatureException"
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


def test_a_request_signed_long_ago_is_refused(emulator, s3, monkeypatch):
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    with pytest.raises(ClientError) as excinfo:
        client(emulator, "sagemaker").list_models()
    code, message = error_of(excinfo)
    assert code == "InvalidSignatureException" and message.startswith("Signature expired")
    monkeypatch.undo()
    assert_healthy(emulator)


def test_s3_answers_with_its_own_codes(emulator, s3):
    s3.put_object(Bucket=BUCKET, Key="secret.txt", Body=b"training data")
    status, _, answer = send(emulator, "GET", f"/{BUCKET}/secret.txt", sign=False)
    assert status == 403 and b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in answer
    with pytest.raises(ClientError) as excinfo:
        _wrong_secret(emulator, "s3").get_object(Bucket=BUCKET, Key="secret.txt")
    assert error_of(excinfo)[0] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as excinfo:
        _unknown_key(emulator, "s3").list_objects_v2(Bucket=BUCKET)
    assert error_of(excinfo) == (
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    )
    assert s3.get_object(Bucket=BUCKET, Key="secret.txt")["Body"].read() == b"training data"
    assert_healthy(emulator)


def test_an_unsigned_s3_write_changes_nothing(emulator, s3):
    status, _, _ = send(emulator, "PUT", f"/{BUCKET}/planted.txt", b"evil", sign=False)
    assert status == 403
    status, _, _ = send(emulator, "DELETE", f"/{BUCKET}", sign=False)
    assert status == 403
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def test_presigned_urls_need_sigv4_and_expire(emulator, s3, monkeypatch):
    s3.put_object(Bucket=BUCKET, Key="shared.txt", Body=b"hello")
    v4 = client(emulator, "s3", signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "shared.txt"}, ExpiresIn=60)
    assert urllib.request.urlopen(url, timeout=30).read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as excinfo:  # SigV2 (boto3's default presigner for S3) is refused
        urllib.request.urlopen(
            client(emulator, "s3").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "shared.txt"}),
            timeout=30,
        )
    assert excinfo.value.code == 403
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    expired = v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "shared.txt"}, ExpiresIn=60)
    monkeypatch.undo()
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(expired, timeout=30)
    assert excinfo.value.code == 403 and b"<Message>Request has expired</Message>" in excinfo.value.read()
    assert_healthy(emulator)


def test_query_apis_answer_with_their_own_codes(emulator):
    with pytest.raises(ClientError) as excinfo:
        _unknown_key(emulator, "sts").get_caller_identity()
    assert error_of(excinfo) == ("InvalidClientTokenId", "The security token included in the request is invalid.")
    with pytest.raises(ClientError) as excinfo:
        _wrong_secret(emulator, "iam").create_role(RoleName="backdoor", AssumeRolePolicyDocument="{}")
    assert error_of(excinfo) == ("SignatureDoesNotMatch", SIGNATURE_MISMATCH)
    status, _, answer = send(
        emulator,
        "POST",
        "/",
        b"Action=ListRoles&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded"},
        sign=False,
    )
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in answer
    assert client(emulator, "iam").list_roles()["Roles"] == []
    assert_healthy(emulator)


def test_logs_and_runtime_need_signatures_too(emulator):
    with pytest.raises(ClientError) as excinfo:
        _wrong_secret(emulator, "logs").create_log_group(logGroupName="/planted")
    assert error_of(excinfo) == ("InvalidSignatureException", SIGNATURE_MISMATCH)
    status, _, answer = send(
        emulator, "POST", "/endpoints/any/invocations", b"1", {"Content-Type": "text/csv"}, sign=False
    )
    assert status == 403 and json.loads(answer)["__type"] == "MissingAuthenticationTokenException"
    assert client(emulator, "logs").describe_log_groups()["logGroups"] == []
    assert_healthy(emulator)


def test_motos_own_api_is_not_reachable(emulator, s3):
    s3.put_object(Bucket=BUCKET, Key="keep.txt", Body=b"x")
    for method, path in (("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json"), ("GET", "/moto-api/")):
        assert send(emulator, method, path, sign=False)[0] == 403
        assert send(emulator, method, path)[0] == 403
    assert s3.get_object(Bucket=BUCKET, Key="keep.txt")["Body"].read() == b"x"
    assert_healthy(emulator)


# ------------------------------------------------------------------------------------------------ browsers


def test_a_cors_preflight_is_refused_without_cors_headers(emulator):
    status, headers, _ = send(
        emulator,
        "OPTIONS",
        "/",
        headers={
            "Origin": "https://attacker.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target",
        },
        sign=False,
    )
    assert status == 403
    assert not any(name.lower().startswith("access-control-") for name in headers)
    assert_healthy(emulator)


def test_a_request_with_an_origin_is_refused_even_when_signed(emulator, s3, tmp_path):
    body, marker = _attack_body(tmp_path)
    status, headers, answer = send(emulator, "POST", "/", body, {**JSON_HEADERS, "Origin": "https://attacker.example"})
    assert status == 403 and json.loads(answer)["__type"] == "AccessDeniedException"
    assert not any(name.lower().startswith("access-control-") for name in headers)
    status, _, _ = send(emulator, "GET", f"/{BUCKET}", headers={"Origin": "null"}, service="s3")
    assert status == 403
    time.sleep(0.5)
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


def test_a_foreign_host_is_refused(emulator, s3):
    """DNS rebinding: a page on attacker.example, whose name now resolves to 127.0.0.1, sends its own Host."""
    for host in (
        "attacker.example",
        f"attacker.example:{emulator.port}",
        f"127.0.0.1:{emulator.port + 1}",
        f"localhost.attacker.example:{emulator.port}",
    ):
        status, _, answer = send(emulator, "GET", "/", headers={"Host": host}, service="s3")
        assert status == 403 and b"<Code>AccessDenied</Code>" in answer, host
    status, _, _ = send(emulator, "GET", "/", headers={"Host": f"localhost:{emulator.port}"}, service="s3")
    assert status == 200
    assert_healthy(emulator)


# ------------------------------------------------------------------------------------------------ bodies and connections


def _raw(emulator, head: str, timeout: float = 10.0) -> bytes:
    """Send only a request head (no body) and return what the server answers (it closes the connection after)."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=timeout) as connection:
        connection.sendall(head.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_an_oversized_invocation_is_refused_before_it_is_read(emulator):
    head = (
        f"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\n"
        "Content-Type: text/csv\r\nContent-Length: 524288000\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(emulator, head)
    assert answer.startswith(b"HTTP/1.1 400") and b"ValidationError" in answer
    assert time.monotonic() - started < 5  # answered without waiting for 500 MB
    assert_healthy(emulator)


def test_an_oversized_s3_put_and_a_length_free_body_are_refused(emulator, s3):
    head = f"PUT /{BUCKET}/huge HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\nContent-Length: {6 * 1024**3}\r\n\r\n"
    assert b"EntityTooLarge" in _raw(emulator, head)
    chunked = f"PUT /{BUCKET}/chunked HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = _raw(emulator, chunked)
    assert answer.startswith(b"HTTP/1.1 411") and b"MissingContentLength" in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def _closed_by_server(connection: socket.socket) -> bool:
    """Read until the server closes the connection (True), or give up after the socket's timeout (False)."""
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def test_a_connection_that_never_sends_its_body_is_closed():
    with Emulator(idle_timeout_seconds=1.0, credentials=EmulatorCredentials.generate()).start() as emulator:
        stalled = [socket.create_connection(("127.0.0.1", emulator.port), timeout=10) for _ in range(20)]
        try:
            for connection in stalled:
                connection.sendall(
                    f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\nContent-Length: 100\r\n"
                    "X-Amz-Target: SageMaker.ListModels\r\n\r\n{".encode()
                )
            assert_healthy(emulator)  # twenty stalled clients do not block a real one
            for connection in stalled:
                assert _closed_by_server(connection)
        finally:
            for connection in stalled:
                connection.close()
        assert_healthy(emulator)


def _drip(port: int, head: bytes, trickle: bytes) -> bytes:
    """Send ``head``, then ``trickle`` one byte every 0.5 s until the server answers; return its answer."""
    answered = threading.Event()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)

        def drip() -> None:
            for byte in trickle:
                if answered.wait(0.5):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answered.set()
                answer += chunk
        except TimeoutError:
            pytest.fail(f"the server did not cut the dripping client off; it answered {answer!r}")
        finally:
            answered.set()
            dripper.join()
        return answer


def _signed_list_models_head(emulator, size: int) -> bytes:
    """The head of a signed ListModels with a body of ``size`` bytes, which the gate reads to check the signature."""
    request = AWSRequest(
        method="POST",
        url=f"{emulator.url}/",
        data=b"{" * size,
        headers={"X-Amz-Target": "SageMaker.ListModels", "Content-Length": str(size)},
    )
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    SigV4Auth(keys, "sagemaker", REGION).add_auth(request)
    lines = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    return f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\n{lines}\r\n".encode()


def _signed_s3_put_head(emulator, key: str, size: int) -> bytes:
    """The head of a signed PUT of ``size`` bytes to S3 (moto reads its body, not the gate)."""
    request = AWSRequest(
        method="PUT",
        url=f"{emulator.url}/{BUCKET}/{key}",
        data=b"x" * size,
        headers={"Content-Length": str(size), "Host": f"127.0.0.1:{emulator.port}"},
    )
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    S3SigV4Auth(keys, "s3", REGION).add_auth(request)
    lines = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    return f"PUT /{BUCKET}/{key} HTTP/1.1\r\n{lines}\r\n".encode()


@pytest.mark.parametrize("part", ["headers", "body", "s3 body"])
def test_a_request_dripping_a_byte_at_a_time_is_cut_off_at_its_time_limit(part):
    """Each byte comes well within the idle timeout, so only the limit on the whole request ends it; a body that
    moto reads is cut off the same way (not answered with a 500 by moto's web framework)."""
    timings = Timings(request_seconds=2.0)
    with Emulator(timings=timings, credentials=EmulatorCredentials.generate()).start() as emulator:
        s3 = client(emulator, "s3")
        s3.create_bucket(Bucket=BUCKET)
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\nX-Amz-Target: SageMaker.ListModels\r\n"
        if part == "headers":
            answer = _drip(emulator.port, head.encode(), b"X-Slow: " + b"a" * 100)
        elif part == "body":
            answer = _drip(emulator.port, _signed_list_models_head(emulator, 100), b"{" * 100)
        else:
            answer = _drip(emulator.port, _signed_s3_put_head(emulator, "slow", 100), b"x" * 100)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"Connection: close" in answer
        assert answer.endswith(
            b"The request was not received in full within 2 seconds of its first byte; the local SageMaker "
            b"emulator closes the connection."
        )
        assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
        assert_healthy(emulator)  # requests that arrive at once are untouched by the limit


# ------------------------------------------------------------------------------------------------ what the signature covers


def _signed_headers(emulator, method: str, path: str, body: bytes, headers: dict, service: str) -> dict:
    """The headers botocore signs a request with (S3's signer declares the payload hash in a header)."""
    request = AWSRequest(method=method, url=emulator.url + path, data=body, headers=dict(headers))
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    (S3SigV4Auth if service == "s3" else SigV4Auth)(keys, service, REGION).add_auth(request)
    return dict(request.headers)


def _replay(emulator, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """Send ``body`` with ``headers`` as they are (urllib would otherwise call any body a form)."""
    headers = {"Content-Type": "application/octet-stream", **headers}
    request = urllib.request.Request(emulator.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("declared", ["signed body", "replayed body"])
def test_a_replayed_request_with_another_body_and_an_unsigned_hash_header_is_refused(emulator, s3, tmp_path, declared):
    """A captured CreateTrainingJob, replayed with a body that runs a command and an added X-Amz-Content-Sha256 the
    signature does not cover: the header is not trusted, the body's own hash is what the signature is checked with."""
    body, marker = _attack_body(tmp_path)
    captured = _signed_headers(emulator, "POST", "/", b"{}", JSON_HEADERS, "sagemaker")
    headers = {**captured, "X-Amz-Content-Sha256": _sha256(b"{}" if declared == "signed body" else body)}
    status, answer = _replay(emulator, "POST", "/", body, headers)
    assert status == 403
    assert json.loads(answer) == {"__type": "InvalidSignatureException", "message": SIGNATURE_MISMATCH}
    time.sleep(0.5)
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


def test_a_signed_hash_header_that_does_not_match_the_json_body_is_refused(emulator, s3, tmp_path):
    body, marker = _attack_body(tmp_path)
    honest = json.dumps({"ModelName": "m"}).encode()
    declared = {**JSON_HEADERS, "X-Amz-Target": "SageMaker.DescribeModel", "X-Amz-Content-Sha256": _sha256(honest)}
    signed = _signed_headers(emulator, "POST", "/", honest, declared, "sagemaker")
    status, answer = _replay(emulator, "POST", "/", honest, signed)
    assert status == 400 and json.loads(answer)["__type"] == "ValidationException"  # signed and whole: answered
    signed = _signed_headers(emulator, "POST", "/", honest, {**declared, **JSON_HEADERS}, "sagemaker")
    status, answer = _replay(emulator, "POST", "/", body, signed)
    assert status == 403
    assert json.loads(answer) == {"__type": "InvalidSignatureException", "message": SIGNATURE_MISMATCH}
    time.sleep(0.5)
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


def test_an_s3_put_whose_body_does_not_match_its_signed_hash_is_not_stored(emulator, s3):
    signed = _signed_headers(emulator, "PUT", f"/{BUCKET}/model.tar.gz", b"the real model", {}, "s3")
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/model.tar.gz", b"a planted one", signed)
    assert status == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in answer
    assert b"<Message>The provided 'x-amz-content-sha256' header does not match what was computed.</Message>" in answer
    assert f"<S3ComputedContentSHA256>{_sha256(b'a planted one')}</S3ComputedContentSHA256>".encode() in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    status, _ = _replay(emulator, "PUT", f"/{BUCKET}/model.tar.gz", b"the real model", signed)
    assert status == 200
    assert s3.get_object(Bucket=BUCKET, Key="model.tar.gz")["Body"].read() == b"the real model"
    assert_healthy(emulator)


def test_an_empty_s3_body_is_checked_against_its_hash_too(emulator, s3):
    signed = _signed_headers(emulator, "PUT", f"/{BUCKET}/empty", b"declared", {}, "s3")
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/empty", b"", {**signed, "Content-Length": "0"})
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def test_s3_needs_its_payload_hash_header_signed(emulator, s3):
    request = AWSRequest(method="PUT", url=f"{emulator.url}/{BUCKET}/planted", data=b"planted")
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    SigV4Auth(keys, "s3", REGION).add_auth(request)  # the generic signer sends no payload hash header
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/planted", b"planted", dict(request.headers))
    assert status == 400
    assert b"<Code>InvalidRequest</Code>" in answer
    assert b"<Message>Missing required header for this request: x-amz-content-sha256</Message>" in answer
    added = {**request.headers, "X-Amz-Content-Sha256": _sha256(b"planted")}  # present, but not signed
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/planted", b"planted", added)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in answer
    assert b"<HeadersNotSigned>x-amz-content-sha256</HeadersNotSigned>" in answer
    captured = _signed_headers(emulator, "GET", f"/{BUCKET}", b"", {}, "s3")
    replaced = {**captured, "X-Amz-Content-SHA256": _sha256(b"planted")}  # the signed header, swapped
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/planted", b"planted", replaced)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def test_unsigned_x_amz_headers_are_refused_by_s3(emulator, s3):
    signed = _signed_headers(emulator, "PUT", f"/{BUCKET}/copy", b"", {}, "s3")
    planted = {**signed, "X-Amz-Meta-Owner": "someone-else"}
    status, answer = _replay(emulator, "PUT", f"/{BUCKET}/copy", b"", planted)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in answer
    assert b"<Message>There were headers present in the request which were not signed</Message>" in answer
    assert b"<HeadersNotSigned>x-amz-meta-owner</HeadersNotSigned>" in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def test_unsigned_payload_is_accepted_by_s3_only(emulator, s3, tmp_path):
    unsigned = {"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}
    request = AWSRequest(method="PUT", url=f"{emulator.url}/{BUCKET}/unsigned.txt", data=b"hello", headers=unsigned)
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    SigV4Auth(keys, "s3", REGION).add_auth(request)  # the generic signer keeps the header the caller set
    assert _replay(emulator, "PUT", f"/{BUCKET}/unsigned.txt", b"hello", dict(request.headers))[0] == 200
    assert s3.get_object(Bucket=BUCKET, Key="unsigned.txt")["Body"].read() == b"hello"
    body, marker = _attack_body(tmp_path)
    status, _, answer = send(emulator, "POST", "/", body, {**JSON_HEADERS, **unsigned})
    assert status == 403 and json.loads(answer)["__type"] == "InvalidSignatureException"
    assert not marker.exists()
    _no_job(emulator)
    assert_healthy(emulator)


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", 501, b"NotImplemented"),
        ("not-a-hash", 400, b"InvalidArgument"),
    ],
)
def test_s3_payload_hashes_it_cannot_check_are_refused(emulator, s3, value, status, code):
    """Chunk-signed uploads (which boto3 never sends) are refused rather than stored unchecked."""
    request = AWSRequest(
        method="PUT",
        url=f"{emulator.url}/{BUCKET}/chunked",
        data=b"x",
        headers={"X-Amz-Content-Sha256": value, "X-Amz-Decoded-Content-Length": "1"},
    )
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)
    SigV4Auth(keys, "s3", REGION).add_auth(request)
    answer_status, answer = _replay(emulator, "PUT", f"/{BUCKET}/chunked", b"x", dict(request.headers))
    assert answer_status == status and b"<Code>" + code + b"</Code>" in answer
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert_healthy(emulator)


def _head(method: str, path: str, headers: dict) -> str:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n"


def _unauthenticated_heads(emulator) -> list[tuple[str, str, bytes]]:
    """(name, request head declaring a large body that never comes, the refusal expected) per kind of stranger."""
    host = f"127.0.0.1:{emulator.port}"
    size = {"Content-Length": str(BODY_LIMITS["s3"]), "Host": host}
    json_size = {"Content-Length": str(BODY_LIMITS["json"]), "Host": host, **JSON_HEADERS}
    stranger = Credentials("AKIDSOMEONEELSE", "whatever")
    keys = Credentials(emulator.credentials.access_key_id, emulator.credentials.secret_access_key)

    def signed(credentials, service, path, headers, minutes_ago=0):
        request = AWSRequest(method="PUT" if service == "s3" else "POST", url=emulator.url + path, headers=headers)
        request.headers["X-Amz-Content-Sha256"] = _sha256(b"")
        when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=minutes_ago)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(botocore.auth, "get_current_datetime", lambda: when)
            SigV4Auth(credentials, service, REGION).add_auth(request)
        if service != "s3":
            del request.headers["X-Amz-Content-Sha256"]  # SageMaker's signer hashes the body, sends no header
        return _head(request.method, path, dict(request.headers))

    return [
        ("s3, no Authorization", _head("PUT", f"/{BUCKET}/big", size), b"<Code>AccessDenied</Code>"),
        ("s3, unknown key", signed(stranger, "s3", f"/{BUCKET}/big", size), b"<Code>InvalidAccessKeyId</Code>"),
        ("s3, signed long ago", signed(keys, "s3", f"/{BUCKET}/big", size, 20), b"<Code>RequestTimeTooSkewed</Code>"),
        ("s3, wrong secret", signed(Credentials(keys.access_key, "x"), "s3", f"/{BUCKET}/big", size), b"Signature"),
        ("sagemaker, no Authorization", _head("POST", "/", json_size), b"MissingAuthenticationTokenException"),
        ("sagemaker, unknown key", signed(stranger, "sagemaker", "/", json_size), b"UnrecognizedClientException"),
        ("sagemaker, signed long ago", signed(keys, "sagemaker", "/", json_size, 20), b"Signature expired"),
    ]


def test_a_stranger_is_refused_from_the_headers_before_any_body_byte_is_read(emulator, s3):
    """Each request announces the largest body its API takes and never sends a byte of it: the refusal can only
    come from the headers (a gate that read first would wait for the body and time out)."""
    for name, head, expected in _unauthenticated_heads(emulator):
        answer = _raw(emulator, head, timeout=30)
        assert answer.startswith(b"HTTP/1.1 4") and expected in answer, (name, answer)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    _no_job(emulator)
    assert_healthy(emulator)


def test_honest_uploads_pass_the_check_as_they_stream(emulator, s3):
    """What boto3 sends: a signed hash (put_object), one per part (a multipart upload_fileobj), and UNSIGNED-PAYLOAD
    from a client that opts out of payload signing."""
    body = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of a 5 MiB part size
    s3.put_object(Bucket=BUCKET, Key="put", Body=body)
    parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(body), BUCKET, "multipart", Config=parts)
    unsigned = client(emulator, "s3", s3={"payload_signing_enabled": False})
    unsigned.put_object(Bucket=BUCKET, Key="unsigned", Body=body)
    for key in ("put", "multipart", "unsigned"):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, key
    assert_healthy(emulator)
