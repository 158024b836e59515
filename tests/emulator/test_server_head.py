"""The request-head parser: strict, bounded, and refusing before a body byte is read (``server.read_head``)."""

from __future__ import annotations

import io
import socket

import pytest
from emulator_helpers import assert_healthy
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY
from moto.moto_server.werkzeug_app import MotoRequestHandler
from test_server_keep_alive import _raw, _response, _signed, _until_closed

from sagemaker_emulator.server import MAX_HEAD_BYTES, MAX_HEADERS, BadHead, RequestHandler, read_head

GOOD_LINE = b"POST /endpoints/e/invocations HTTP/1.1\r\n"


def _read(request_line: bytes, fields: bytes = b"Host: 127.0.0.1:1\r\n\r\n"):
    return read_head(request_line, io.BytesIO(fields))


def test_a_well_formed_head_is_read_with_names_in_any_case():
    stream = io.BytesIO(
        b"Host: h:1\r\nX-Amz-Date:\t20261207T000000Z \r\nx-a: 1\r\nX-A: 2\r\nContent-Length: 6\r\n\r\nBODY"
    )
    method, target, version, head = read_head(GOOD_LINE, stream)
    assert (method, target, version) == ("POST", "/endpoints/e/invocations", "HTTP/1.1")
    assert head.get("x-amz-date") == "20261207T000000Z" and head.get("X-A") == "1,2"
    assert "content-length" in head and "Transfer-Encoding" not in head
    assert head.keys() == ["Host", "X-Amz-Date", "x-a", "X-A", "Content-Length"]
    assert stream.read() == b"BODY"  # the body is left unread


@pytest.mark.parametrize(
    ("request_line", "status", "words"),
    [
        (b"NOT AN HTTP REQUEST LINE\r\n", "400", "METHOD SP TARGET"),
        (b"POST  / HTTP/1.1\r\n", "400", "METHOD SP TARGET"),
        (b"POST / HTTP/1.1\n", "400", "bare LF"),
        (b"POST /caf\xc3\xa9 HTTP/1.1\r\n", "400", "printable ASCII"),
        (b"POST /\x00 HTTP/1.1\r\n", "400", "METHOD SP TARGET"),
        (b"POST / HTTP/2.0\r\n", "505", "HTTP/1.1"),
        (b"POST / HTTP/1.1", "400", "ended before"),
    ],
    ids=["words", "double space", "bare LF", "non-ASCII", "control byte", "HTTP/2", "unfinished"],
)
def test_a_malformed_request_line_is_refused(request_line, status, words):
    with pytest.raises(BadHead) as refused:
        _read(request_line)
    assert refused.value.status.startswith(status) and words in refused.value.message


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (b"X-Header-Without-Colon\r\n\r\n", "NAME: VALUE"),
        (b"X-Space-Before-Colon : 1\r\n\r\n", "NAME: VALUE"),
        (b"X-Folded: 1\r\n continued\r\n\r\n", "line folding"),
        (b"X-Bare: 1\n\r\n", "bare LF"),
        (b"X-Bare: 1\r\n\n", "bare LF"),
        (b"X-Name: caf\xc3\xa9\r\n\r\n", "printable ASCII"),
        (b"X-N\xc3\xa4me: 1\r\n\r\n", "printable ASCII"),
        (b"X-Nul: a\x00b\r\n\r\n", "NAME: VALUE"),
        (b"X-Cr: a\rb\r\n\r\n", "NAME: VALUE"),
        (b"Content-Length: 6\r\nContent-Length: 6\r\n\r\n", "more than one Content-Length"),
        (b"Host: a:1\r\nhost: a:1\r\n\r\n", "more than one Host"),
        (b"Content-Length: 6 7\r\n\r\n", "not a number"),
        (b"Content-Length: -6\r\n\r\n", "not a number"),
        (b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding"),
        (b"X-Unfinished: 1\r\n", "ended before"),
    ],
    ids=[
        "no colon",
        "space before colon",
        "obs-fold",
        "bare LF",
        "bare LF ending",
        "non-ASCII value",
        "non-ASCII name",
        "NUL",
        "lone CR",
        "two Content-Length",
        "two Host",
        "two lengths in one",
        "negative length",
        "length and chunked",
        "unfinished",
    ],
)
def test_a_malformed_header_is_refused(fields, words):
    with pytest.raises(BadHead) as refused:
        _read(GOOD_LINE, fields)
    assert refused.value.status.startswith("400") and words in refused.value.message


@pytest.mark.parametrize(
    "fields",
    [
        b"X-Huge: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
        b"".join(b"X-%d: 1\r\n" % number for number in range(MAX_HEADERS + 1)) + b"\r\n",
    ],
    ids=["bytes", "fields"],
)
def test_an_oversized_head_is_refused(fields):
    with pytest.raises(BadHead) as refused:
        _read(GOOD_LINE, fields)
    assert refused.value.status.startswith("431")


def test_a_head_at_its_bounds_is_read():
    fields = b"".join(b"X-%d: 1\r\n" % number for number in range(MAX_HEADERS - 1))
    fields += b"X-Big: " + b"a" * (MAX_HEAD_BYTES - len(GOOD_LINE) - len(fields) - 11) + b"\r\n"
    assert len(GOOD_LINE + fields + b"\r\n") == MAX_HEAD_BYTES
    assert len(_read(GOOD_LINE, fields + b"\r\n")[3].keys()) == MAX_HEADERS


@pytest.mark.parametrize(
    ("bad_field", "status"),
    [
        (b"X-Header-Without-Colon\r\n", b"400"),
        (b"X-Name: caf\xc3\xa9\r\n", b"400"),
        (b"X-Bare: 1\n", b"400"),
        (b"Content-Length: 0\r\n", b"400"),
        (b"X-Huge: " + b"a" * MAX_HEAD_BYTES + b"\r\n", b"431"),
    ],
    ids=["no colon", "non-ASCII", "bare LF", "second Content-Length", "huge"],
)
def test_a_refused_head_is_answered_and_closed_before_its_body_is_read(emulator, bad_field, status):
    """The body is itself a valid signed request: served, it would be a second answer on the connection."""
    headers, body = _signed(emulator)
    inner = _raw(emulator, headers, body)
    request = _raw(emulator, headers, inner).replace(b"\r\nContent-Length", b"\r\n" + bad_field + b"Content-Length")
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(_raw(emulator, *_signed(emulator)))
        assert _response(connection)[0] == 200  # a kept-alive connection, refused on its second request
        connection.sendall(request)
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in answer
    assert answer.count(b"HTTP/1.1") == 1
    assert_healthy(emulator)


def test_http_1_0_closes_unless_kept_alive(emulator):
    headers, body = _signed(emulator)
    request = _raw(emulator, headers, body).replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as connection:
        connection.sendall(request)
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer


class _Server:
    multithread, multiprocess, ssl_context, server_address = True, False, None, ("127.0.0.1", 5000)
    _server_version = "Werkzeug/test"


def _handler(request_line: bytes, fields: bytes) -> RequestHandler:
    """A handler that has read a head, without a connection: enough to build its environ."""
    handler = RequestHandler.__new__(RequestHandler)
    handler.command, handler.path, handler.request_version, handler.headers = read_head(
        request_line, io.BytesIO(fields)
    )
    handler.rfile, handler.connection, handler.server = io.BytesIO(), object(), _Server()
    handler.client_address = ("127.0.0.1", 40000)
    return handler


@pytest.mark.parametrize(
    ("request_line", "fields"),
    [
        (GOOD_LINE, b"Host: h:1\r\nContent-Type: text/csv\r\nContent-Length: 6\r\nX-A: 1\r\nx-a: 2\r\n\r\n"),
        (b"GET /b/caf%C3%A9%2Fk?list-type=2&prefix=a%20b HTTP/1.1\r\n", b"Host: h:1\r\nAccept: */*\r\n\r\n"),
        (b"PUT /b/k HTTP/1.0\r\n", b"Host: h:1\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n\r\n"),
    ],
    ids=["invocation", "encoded path and query", "repeated content type"],
)
def test_the_quick_environ_is_werkzeugs_and_motos(request_line, fields):
    handler = _handler(request_line, fields)
    quick = handler.make_environ()
    assert quick == MotoRequestHandler.make_environ(handler)
    assert quick["PATH_INFO"] and quick["HTTP_HOST"] == "h:1"


def test_an_underscored_s3_metadata_name_is_kept_as_moto_keeps_it():
    handler = _handler(b"PUT /b/k HTTP/1.1\r\n", b"Host: h:1\r\nX-Amz-Meta-My_Key: v\r\nContent-Length: 0\r\n\r\n")
    environ = handler.make_environ()
    assert environ["HTTP_X_AMZ_META_MY_KEY"] == "v"
    assert environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] == {"HTTP_X_AMZ_META_MY_KEY": "X-Amz-Meta-My_Key"}
