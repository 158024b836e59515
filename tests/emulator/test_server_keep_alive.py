"""Kept-alive connections: reused for many requests, each request gated again, closed when idle or when unsafe."""

from __future__ import annotations

import http.client
import select
import socket

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from emulator_helpers import REGION, assert_healthy

from sagemaker_emulator.auth import Credentials as EmulatorCredentials
from sagemaker_emulator.emulator import Emulator
from sagemaker_emulator.state import Timings

PIPELINING = b"(HTTP pipelining), which the local SageMaker emulator does not serve"


def _signed(
    emulator, secret: str | None = None, host: str | None = None, access_key: str | None = None
) -> tuple[dict, bytes]:
    """Headers and body of a ListEndpoints signed with the emulator's key (or another ``access_key``/``secret``)
    as botocore signs it."""
    body = b"{}"
    headers = {"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(
        method="POST", url=f"http://{host or f'127.0.0.1:{emulator.port}'}/", data=body, headers=headers
    )
    keys = Credentials(
        access_key or emulator.credentials.access_key_id, secret or emulator.credentials.secret_access_key
    )
    SigV4Auth(keys, "sagemaker", REGION).add_auth(request)
    return dict(request.headers), body


def _raw(emulator, headers: dict, body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    host = "" if "Host" in headers else f"Host: 127.0.0.1:{emulator.port}\r\n"
    return f"POST / HTTP/1.1\r\n{host}{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout here fails the test)."""
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def _response(connection: socket.socket) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Read one whole response (status, headers, body) from a raw connection."""
    response = http.client.HTTPResponse(connection)
    response.begin()
    return response.status, response.headers, response.read()


def _answer(connection: http.client.HTTPConnection, headers: dict, body: bytes) -> http.client.HTTPResponse:
    connection.request("POST", "/", body, headers)
    response = connection.getresponse()
    response.read()
    return response


def test_one_connection_serves_many_requests(emulator):
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        first = _answer(connection, *_signed(emulator))
        sock = connection.sock
        statuses = [first.status] + [_answer(connection, *_signed(emulator)).status for _ in range(5)]
        assert statuses == [200] * 6
        assert connection.sock is sock  # never reconnected
        assert first.getheader("Connection") is None
    finally:
        connection.close()


def test_a_bad_signature_on_a_reused_connection_is_refused_and_the_connection_closed(emulator):
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)))
        status, headers, _ = _response(connection)
        assert status == 200 and headers["Connection"] is None
        connection.sendall(_raw(emulator, *_signed(emulator, secret="not-the-emulator's-secret")))
        status, headers, body = _response(connection)
        assert status == 403 and b"InvalidSignatureException" in body and headers["Connection"] == "close"
        assert _until_closed(connection) == b""
    assert_healthy(emulator)


def test_a_foreign_host_on_a_reused_connection_is_refused(emulator):
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)))
        assert _response(connection)[0] == 200
        headers, body = _signed(emulator, host="attacker.example:80")
        connection.sendall(_raw(emulator, {"Host": "attacker.example:80", **headers}, body))
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 403") and b"AccessDeniedException" in answer


def test_a_pipelined_request_is_answered_400_and_the_connection_closed(emulator):
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)) + _raw(emulator, *_signed(emulator)))
        answer = _until_closed(connection)
    first, _, second = answer.partition(b"HTTP/1.1 400 Bad Request\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b'"Endpoints"' in first
    assert b"Connection: close" in second and PIPELINING in second
    assert_healthy(emulator)


@pytest.mark.parametrize(
    "second",
    [
        b"NOT AN HTTP REQUEST LINE\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n",
        b"POST / HTTP/1.1\r\nX-Header-Without-Colon\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    ],
    ids=["request line", "content length", "header", "too long"],
)
def test_a_malformed_second_request_is_answered_4xx_and_the_connection_closed(emulator, second):
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)))
        assert _response(connection)[0] == 200
        connection.sendall(second)
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 4") and b"Connection: close" in answer
    assert_healthy(emulator)


def test_a_request_refused_before_its_body_is_read_closes_the_connection(emulator):
    """An unknown key is refused from the headers, so the body is never read: what follows could not be told apart
    from a next request, so nothing after the refusal is served."""
    headers, _ = _signed(emulator, access_key="AKIAUNKNOWNKEY000000")
    body = _raw(emulator, *_signed(emulator))  # sent as the body, it would be a valid request if parsed as one
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, headers, body))
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 400") and b"UnrecognizedClientException" in answer
    assert b"Connection: close" in answer and answer.count(b"HTTP/1.1") == 1


def test_an_idle_kept_alive_connection_is_closed():
    with Emulator(idle_timeout_seconds=1.0, credentials=EmulatorCredentials.generate()).start() as emulator:
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
            connection.sendall(_raw(emulator, *_signed(emulator)))
            assert _response(connection)[0] == 200
            assert _until_closed(connection) == b""  # closed by the server after its idle timeout, unasked
        assert_healthy(emulator)


def test_a_second_request_dripping_on_a_kept_connection_is_cut_off_at_its_time_limit():
    """The time limit counts from each request's own first byte, so an earlier request does not use it up and a
    later one does not escape it."""
    with Emulator(timings=Timings(request_seconds=2.0), credentials=EmulatorCredentials.generate()).start() as emulator:
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
            connection.sendall(_raw(emulator, *_signed(emulator)))
            assert _response(connection)[0] == 200
            connection.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\n".encode())
            try:
                for _ in range(60):  # a header byte every 0.5 s: never idle, and 30 s of bytes in all
                    connection.sendall(b"X-Slow: a\r\n")
                    if select.select([connection], [], [], 0.5)[0]:  # the server answered
                        break
            except OSError:
                pass  # the server closed while a byte was on its way
            answer = _until_closed(connection)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"Connection: close" in answer


def test_a_kept_connection_gets_no_more_service_once_the_emulator_stops():
    emulator = Emulator(credentials=EmulatorCredentials.generate()).start()
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)))
        assert _response(connection)[0] == 200
        emulator.stop()
        connection.sendall(_raw(emulator, *_signed(emulator)))
        status, headers, body = _response(connection)
        assert (status, headers["Connection"]) == (503, "close") and b"stopping" in body
        assert headers.get_all("Connection") == ["close"]
        assert _until_closed(connection) == b""
