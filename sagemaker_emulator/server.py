"""HTTP for the whole emulator on one loopback port: SageMaker is ours, every other AWS service is moto's.

Requests are told apart by the SigV4 credential scope in ``Authorization`` (``.../<region>/sagemaker/aws4_request``)
or by ``X-Amz-Target: SageMaker.*``, so ``AWS_ENDPOINT_URL`` alone points every client here; the per-service
variables (``AWS_ENDPOINT_URL_SAGEMAKER``, ``..._SAGEMAKER_RUNTIME``) may name the same URL.

- SageMaker control plane: JSON 1.1, ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``; the body is
  validated against botocore's input shape before the handler runs.
- SageMaker Runtime: ``POST /endpoints/<name>/invocations`` (REST, raw body, ``Content-Type``/``Accept``).
- ``iam:SimulatePrincipalPolicy``, which moto lacks and SDK v3 calls to validate roles: evaluated against the role's
  inline and attached policies (``iam/simulate.py``), so a role lacking a permission is refused here as on AWS.
- Everything else (S3, STS, IAM, CloudWatch Logs): moto's WSGI application.
Before any of that, every request passes the gate (:meth:`EmulatorApp._refusal`), because the emulator runs code on
request and a web page or another local user must not be able to drive it:
- The head is read by our own strict parser (:func:`read_head`): a head two parsers could read two ways (two
  lengths, a folded, bare-LF or non-ASCII line), or one over 64 KiB, is answered 400/431 before its body is read.
- ``Host`` must be the loopback address and port it serves (``localhost`` too): DNS rebinding is refused.
- A request carrying ``Origin``, and any CORS preflight (``OPTIONS``), is refused: no browser page may call it.
- Bodies larger than the service allows are refused from ``Content-Length`` before they are read; chunked bodies
  without a length are refused.
- The SigV4 signature must be made with this emulator's key (``auth.Verifier``); the service that routes the
  request is the one the signature covers. Failures are answered with each protocol's own AWS error.
- The key, the time and the signed headers are checked from the headers alone, so a client without the key is
  refused before a byte of its body is read (S3 takes 5 GiB bodies). The signature covers the body: S3 declares its
  hash in a signed ``x-amz-content-sha256``, checked as the body streams into moto (``XAmzContentSHA256Mismatch``;
  ``UNSIGNED-PAYLOAD`` only there, as on AWS); the other services' signature covers the body's own hash, read first
  within their size limit, and an unsigned hash header is never believed.
Connections are bounded in time too (:class:`RequestHandler`): one that sends nothing for the idle timeout is
closed, and a request not received in full within ``Timings.request_seconds`` of its first byte (a client dripping
one byte a second never goes idle) is answered ``408 Request Timeout`` and closed, so no client holds a thread.
Connections are kept alive (HTTP/1.1), since a new TCP connection and thread per request cost most of an invocation's
CPU; each request on one passes the whole gate again, nothing is trusted from an earlier one. A connection is kept
only while that is safe: a body framed by ``Content-Length`` and read to its end, the gate passed, and nothing sent
ahead of the answer (a pipelined request is answered ``400`` and the connection closed).
This is the only module that sees HTTP.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import select
import socket
import sys
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

import botocore.session
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import LimitedStream

from sagemaker_emulator.auth import (
    EMPTY_SHA256,
    PAYLOAD_KINDS,
    AuthFailure,
    Credentials,
    SignedRequest,
    Verifier,
    is_sha256,
)
from sagemaker_emulator.errors import (
    InternalFailure,
    RuntimeValidationError,
    SerializationException,
    ServiceError,
    UnknownOperationException,
    ValidationException,
)
from sagemaker_emulator.iam.actions import ActionRecorder
from sagemaker_emulator.iam.simulate import simulate_principal_policy
from sagemaker_emulator.invocations import invoke_endpoint
from sagemaker_emulator.operations import call, operations, service_model
from sagemaker_emulator.state import EmulatorState
from sagemaker_emulator.store.moto_store import changes_state
from sagemaker_emulator.validation import validate

LOG = logging.getLogger(__name__)

TARGET_PREFIX = "SageMaker."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_DIGITS = re.compile(r"[0-9]+")
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110's token: a method or a field name
_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/(1\.[01])\r\n" % _TOKEN)
_VERSION = re.compile(rb" HTTP/([0-9]+\.[0-9]+)$")
_FIELD = re.compile(rb"(%s):([\t\x20-\x7e]*)\r\n" % _TOKEN)
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; a presigned URL or S3 metadata stays far below
MAX_HEADERS = 100  # http.client's own bound
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

MOTO_API_PATH = "/moto-api"
CLOSE_ENVIRON = "emulator.close"  # set by the gate on a refused request: its connection is not kept for another
MIB = 1024 * 1024
COALESCE_BYTES = 64 * 1024  # a response body up to this size goes out in one write with its head
# The largest body each protocol takes: InvokeEndpoint's documented 6 MB payload (botocore: Body max 6291456),
# S3's 5 GB single PUT, and a generous bound for the JSON and query APIs (their largest calls are a few hundred KB).
BODY_LIMITS = {"runtime": 6 * MIB, "s3": 5 * 1024 * MIB, "json": 16 * MIB, "query": 16 * MIB}

# (HTTP status, error code, message) per refusal and protocol, in each protocol's AWS wording.
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)
_INVALID_TOKEN = "The security token included in the request is invalid."
REFUSALS = {
    "json": {
        "missing": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        "unknown_key": (400, "UnrecognizedClientException", _INVALID_TOKEN),
        "bad_signature": (403, "InvalidSignatureException", _SIGNATURE_MISMATCH),
        "skewed": (
            403,
            "InvalidSignatureException",
            "Signature expired: the request was signed more than 15 minutes away from the current time.",
        ),
        "expired": (403, "InvalidSignatureException", "Signature expired."),
        "forbidden": (403, "AccessDeniedException", ""),
        "length_required": (411, "MissingContentLength", ""),
        "too_large": (413, "RequestEntityTooLarge", ""),
    },
    "query": {
        "missing": (403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
        "unknown_key": (403, "InvalidClientTokenId", _INVALID_TOKEN),
        "bad_signature": (403, "SignatureDoesNotMatch", _SIGNATURE_MISMATCH),
        "skewed": (
            403,
            "SignatureDoesNotMatch",
            "Signature expired: the request was signed more than 15 minutes away from the current time.",
        ),
        "expired": (403, "SignatureDoesNotMatch", "Signature expired."),
        "forbidden": (403, "AccessDenied", ""),
        "length_required": (411, "MissingContentLength", ""),
        "too_large": (413, "RequestEntityTooLarge", ""),
    },
    "s3": {
        "missing": (403, "AccessDenied", "Access Denied"),
        "unknown_key": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
        "bad_signature": (
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method.",
        ),
        "skewed": (
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ),
        "expired": (403, "AccessDenied", "Request has expired"),
        "forbidden": (403, "AccessDenied", ""),
        "length_required": (411, "MissingContentLength", ""),
        "too_large": (400, "EntityTooLarge", ""),
        "payload_mismatch": (
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        "payload_missing": (400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"),
        "payload_invalid": (
            400,
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid "
            "sha256 value.",
        ),
        "payload_streaming": (
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
        ),
        "unsigned_header": (403, "AccessDenied", "There were headers present in the request which were not signed"),
    },
}
for _protocol in ("json", "query"):  # their signature covers the body's hash: a body that differs is a bad signature
    REFUSALS[_protocol]["payload_mismatch"] = REFUSALS[_protocol]["bad_signature"]
REFUSALS["runtime"] = {
    **REFUSALS["json"],
    "too_large": (
        400,
        "ValidationError",
        "1 validation error detected: Value at 'body' failed to satisfy constraint: "
        f"Member must have length less than or equal to {BODY_LIMITS['runtime']}",
    ),
}


def protocol_of(environ: dict) -> str:
    """Which AWS protocol a request speaks, judged before it is trusted: only to word a refusal in its own terms."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if _INVOCATIONS.match(environ.get("PATH_INFO", "")):
        return "runtime"
    if target:
        return "json"
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded") or "Action=" in environ.get("QUERY_STRING", ""):
        return "query"
    return "s3"


def refusal(protocol: str, kind: str, detail: str = "", fields: dict[str, str] | None = None) -> Response:
    """The error a protocol's AWS service sends for a refused request (``detail`` fills an empty message; S3's
    document also carries ``fields``, such as the two hashes of a payload mismatch)."""
    status, code, message = REFUSALS[protocol][kind]
    message = message or detail
    request_id = str(uuid.uuid4())
    if protocol in ("json", "runtime"):
        return _json(status, {"__type": code, "message": message}, code, content_type="application/json")
    if protocol == "query":
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in (fields or {}).items())
        xml = (
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return Response(xml, status=status, headers={"x-amzn-RequestId": request_id}, content_type="application/xml")


class RequestTimeout(BaseException):
    """A request that was not received in full within its time limit.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on its way out (Flask's in moto,
    our handlers') turns it into a 500: it reaches :class:`RequestHandler`, which answers 408 and closes.
    """


class PayloadMismatch(BaseException):
    """A body whose SHA-256 is not the one its signature covers, found when its last byte is read.

    A ``BaseException`` for the reason :class:`RequestTimeout` is one: it must pass moto's and our handlers'
    ``except Exception`` on its way to :meth:`EmulatorApp.__call__`, which answers the protocol's error. Every
    handler reads its whole body before acting on it, so nothing has changed by then.
    """

    def __init__(self, declared: str, computed: str):
        super().__init__(declared, computed)
        self.fields = {"ClientComputedContentSHA256": declared, "S3ComputedContentSHA256": computed}


class _CheckedBody(io.RawIOBase):
    """A request body that hashes what passes through it and checks the declared hash at its last byte, so that an
    upload is checked as it streams into its handler rather than read twice."""

    def __init__(self, stream, size: int, declared: str):
        self._stream, self._left, self._declared = stream, size, declared
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        if not view:
            return 0
        count = self._stream.readinto(view) or 0
        self._hash.update(view[:count])
        self._left -= count
        if not self._left and self._hash.hexdigest() != self._declared:
            raise PayloadMismatch(self._declared, self._hash.hexdigest())
        return count


class _TimedReader(io.RawIOBase):
    """A connection's reads, each allowed the idle timeout or what is left of the request's time, if less."""

    def __init__(self, connection: socket.socket, idle_seconds: float, request_seconds: float):
        self._connection = connection
        self._idle, self._limit = idle_seconds, request_seconds
        self._deadline: float | None = None  # set by the request's first byte
        self.probing = False  # True: answer at once, with nothing (None) if no byte is waiting

    def readable(self) -> bool:
        return True

    def begin(self) -> None:
        """A new request: its time starts with its first byte."""
        self._deadline = None

    def readinto(self, buffer) -> int | None:
        if self.probing:  # whatever is waiting, without blocking and without counting against a time limit
            return self._connection.recv_into(buffer) if select.select([self._connection], [], [], 0)[0] else None
        wait = self._idle
        if self._deadline is not None:
            wait = min(wait, self._deadline - time.monotonic())
            if wait <= 0:
                raise RequestTimeout()
        self._connection.settimeout(wait)
        try:
            count = self._connection.recv_into(buffer)
        except TimeoutError:
            if wait < self._idle:
                raise RequestTimeout() from None
            raise
        finally:
            self._connection.settimeout(self._idle)  # writes keep the idle timeout
        if count and self._deadline is None:
            self._deadline = time.monotonic() + self._limit
        return count


class BadHead(Exception):
    """A request head this server will not read on: answered with ``status`` and closed before any body byte."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Head:
    """A request's header fields in their order, looked up by name regardless of case (repeats joined by commas).

    What :mod:`http.server` builds with the email package's parser, at a fraction of its cost per request.
    """

    __slots__ = ("_fields", "_by_name")

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = fields
        self._by_name: dict[str, str] = {}
        for name, value in fields:
            key = name.lower()
            self._by_name[key] = f"{self._by_name[key]},{value}" if key in self._by_name else value

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [name for name, _ in self._fields]

    def get(self, name: str, default=None):
        return self._by_name.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._by_name

    def count(self, name: str) -> int:
        key = name.lower()
        return sum(1 for field, _ in self._fields if field.lower() == key)


def read_head(request_line: bytes, stream) -> tuple[str, str, str, Head]:
    """The method, target, version and header fields of one request, read strictly (RFC 9112) from ``stream``.

    Only what AWS's SDKs send is taken; anything else raises :class:`BadHead` before a body byte is read, because a
    head two parsers could read two ways (two lengths, a folded or bare-LF line) is how requests are smuggled. The
    head is bounded: ``MAX_HEAD_BYTES`` in all, at most ``MAX_HEADERS`` fields.
    """
    line = _REQUEST_LINE.fullmatch(request_line)
    if line is None:
        version = _VERSION.search(request_line.rstrip(b"\r\n"))
        if version and version.group(1) not in (b"1.0", b"1.1"):
            raise BadHead("505 HTTP Version Not Supported", "Only HTTP/1.1 and HTTP/1.0 are served.")
        raise BadHead("400 Bad Request", _why_not(request_line, "The request line is not METHOD SP TARGET SP HTTP/1.x"))
    budget = MAX_HEAD_BYTES - len(request_line)
    fields: list[tuple[str, str]] = []
    while (field := stream.readline(budget + 1)) != b"\r\n":
        budget -= len(field)
        if budget < 0 or len(fields) == MAX_HEADERS:
            raise BadHead(
                "431 Request Header Fields Too Large",
                f"A request head is limited to {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} header fields.",
            )
        if field[:1] in (b" ", b"\t"):
            raise BadHead("400 Bad Request", "A header line starts with white space (obsolete line folding).")
        match = _FIELD.fullmatch(field)
        if match is None:
            raise BadHead("400 Bad Request", _why_not(field, "A header line is not NAME: VALUE"))
        fields.append((match.group(1).decode("ascii"), match.group(2).strip(b" \t").decode("ascii")))
    head = Head(fields)
    for name in ("Content-Length", "Host"):
        if head.count(name) > 1:
            raise BadHead("400 Bad Request", f"The request has more than one {name} header.")
    length = head.get("Content-Length")
    if length is not None and not _DIGITS.fullmatch(length):
        raise BadHead("400 Bad Request", f"Content-Length {length!r} is not a number of bytes.")
    if length is not None and "Transfer-Encoding" in head:
        raise BadHead("400 Bad Request", "A request may not have both Content-Length and Transfer-Encoding.")
    method, target, version = (part.decode("ascii") for part in line.groups())
    return method, target, f"HTTP/{version}", head


def _why_not(line: bytes, shape: str) -> str:
    if not line.endswith(b"\n"):
        return f"{shape}: the head ended before its last line did."
    if not line.endswith(b"\r\n"):
        return f"{shape}: lines must end with CR LF, not a bare LF."
    if any(byte > 0x7E for byte in line):
        return f"{shape}: it holds bytes outside printable ASCII."
    return f"{shape}."


class RequestHandler(MotoRequestHandler):
    """moto's request handler with the two time limits, and without werkzeug's per-request log line (it would
    flood a notebook). Build one for a server with :meth:`bounded`."""

    disable_nagle_algorithm = True  # a chunked answer goes out in several writes; don't wait for the ACK
    # A request line too broken to name its version is answered as HTTP/1.1 (with a status line), not as HTTP/0.9
    # (a bare body), so a client that sent it on a kept-alive connection reads a 400.
    default_request_version = "HTTP/1.1"
    timeout: float  # idle: a connection that sends nothing this long is closed
    request_seconds: float  # one request, from its first byte to its last (``Timings.request_seconds``)

    @classmethod
    def bounded(cls, idle_seconds: float, request_seconds: float) -> type[RequestHandler]:
        return type("RequestHandler", (cls,), {"timeout": idle_seconds, "request_seconds": request_seconds})

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain reader: replaced by one that keeps the request's time limit
        self._reader = _TimedReader(self.connection, self.timeout, self.request_seconds)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.begin()
        self._responded = False
        try:
            super().handle_one_request()
        except RequestTimeout:
            self.close_connection = True
            if not self._responded:
                self._answer_timeout()

    def parse_request(self) -> bool:
        """Read the head with :func:`read_head` (replacing http.server's parser, the email package's, which took a
        sixth of the emulator's CPU per invocation); a head it refuses is answered and the connection closed."""
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        self.command, self.request_version = "", self.default_request_version
        self.close_connection = True
        try:
            self.command, self.path, self.request_version, self.headers = read_head(self.raw_requestline, self.rfile)
        except BadHead as bad:
            self._answer_and_close(bad.status, bad.message)
            return False
        if self.path.startswith("//"):  # as http.server does: never a network-path reference
            self.path = "/" + self.path.lstrip("/")
        tokens = {token.strip().lower() for token in self.headers.get("Connection", "").split(",")}
        self.close_connection = "close" in tokens or (self.request_version == "HTTP/1.0" and "keep-alive" not in tokens)
        return True

    def make_environ(self) -> dict:
        """The WSGI environ werkzeug and moto would build, built straight from the head for the usual request (a
        path target, no underscore in a header name, no chunked body) at a third of their cost; any other request
        gets theirs (``tests/emulator/test_server_head.py`` checks that both agree)."""
        target, headers = self.path, self.headers
        unusual = not target.startswith("/") or "#" in target or "Transfer-Encoding" in headers
        if unusual or any("_" in name for name in headers.keys()):
            return super().make_environ()
        path, _, query = target.partition("?")
        environ = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": self.rfile,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": self.server.multithread,
            "wsgi.multiprocess": self.server.multiprocess,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,
            "SERVER_SOFTWARE": self.server_version,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path).encode().decode("latin-1"),  # WSGI's str of bytes, as werkzeug does
            "QUERY_STRING": query,
            "REQUEST_URI": target,
            "RAW_URI": target,
            "REMOTE_ADDR": self.address_string(),
            "REMOTE_PORT": self.port_integer(),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            PRESERVED_HEADER_NAMES_ENVIRON_KEY: {},
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
                if key in environ:
                    value = f"{environ[key]},{value}"
            environ[key] = value
        return environ

    def send_response(self, code, message=None) -> None:
        self._responded = True
        super().send_response(code, message)

    def _answer_timeout(self) -> None:
        self._answer_and_close(
            "408 Request Timeout",
            f"The request was not received in full within {self.request_seconds:g} seconds of its first byte; "
            "the local SageMaker emulator closes the connection.",
        )

    def _answer_and_close(self, status: str, text: str) -> None:
        """A plain-text answer from the server itself (not the app), after which the connection is closed."""
        self._responded = self.close_connection = True
        message = text.encode()
        head = (
            f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(message)}\r\n\r\n"
        ).encode()
        try:
            self.wfile.write(head + message)
        except OSError:
            pass  # the client left first

    def log(self, type: str, message: str, *args) -> None:
        if type == "error":
            LOG.debug(message, *args)

    def log_request(self, code="-", size="-") -> None:
        """Nothing: werkzeug formats (and colours) a line per request that :meth:`log` would drop anyway."""

    def run_wsgi(self) -> None:
        """Answer one request with the app, keeping the connection for the next one only when that is safe.

        Replaces werkzeug's, which closes every connection because it cannot tell where a request's body ends:
        here the body is read through a stream limited to its ``Content-Length``, and a connection whose body was
        not read to its end (a refused request), that the gate refused, or whose body had no length is closed.
        """
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        self._body = None  # the gate may wrap or buffer environ's stream; this one knows what was read
        length = environ.get("CONTENT_LENGTH") or "0"
        if "Transfer-Encoding" not in self.headers and _DIGITS.fullmatch(length):
            self._body = LimitedStream(self.rfile, int(length))
            environ["wsgi.input"] = self._body
        self._wsgi_status: tuple[str, list] | None = None
        self._head_sent = self._chunked = self._pipelined = False
        try:
            result = self.server.app(environ, self._start_response)
            try:
                for data in result:
                    self._write(data)
                self._write(b"")
                if self._chunked:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                if hasattr(result, "close"):
                    result.close()
        except (ConnectionError, TimeoutError):  # the client left, or went idle in the middle of its body
            self.close_connection = True
            return
        except Exception:  # a bug of the app's: answer 500 if nothing went out yet, and close either way
            LOG.exception("internal error while answering %s %s", self.command, self.path)
            self.close_connection = True
            if not self._head_sent:
                self._wsgi_status = ("500 Internal Server Error", [("Content-Length", "0")])
                self._write(b"")
            return
        if self._body is None or not self._body.is_exhausted:
            self.close_connection = True
        elif self._pipelined:
            self._refuse_pipelined()

    def _start_response(self, status: str, headers: list, exc_info=None):
        if exc_info and self._head_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self._wsgi_status = (status, headers)
        return self._write

    def _write(self, data: bytes) -> None:
        """Head and a small body in one segment; a large body (an S3 object) as it is, never copied behind a head."""
        parts = [b"" if self._head_sent else self._head()]
        parts += [b"%x\r\n" % len(data), data, b"\r\n"] if data and self._chunked else [data]
        if len(data) <= COALESCE_BYTES:
            parts = [b"".join(parts)]
        for part in parts:
            if part:
                self.wfile.write(part)

    def _head(self) -> bytes:
        """The status line and headers, sent with the first bytes of the body: one segment, one wake-up of the
        client."""
        status, headers = self._wsgi_status
        code = int(status.split(" ", 1)[0])
        self._responded = self._head_sent = True
        lines = [f"HTTP/1.1 {status}", f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        bodiless = self.command == "HEAD" or code in (204, 304) or code < 200
        if not bodiless and all(name.lower() != "content-length" for name, _ in headers):
            self._chunked = True
            lines.append("Transfer-Encoding: chunked")
        said_close = any(name.lower() == "connection" and "close" in value.lower() for name, value in headers)
        if said_close or not self._keep_alive():  # the app may close it too (a stopping emulator does)
            self.close_connection = True
        if self.close_connection and not said_close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _keep_alive(self) -> bool:
        """Whether this connection may take another request once this one is answered (decided before its head)."""
        if self.close_connection or self.environ.get(CLOSE_ENVIRON) or self._body is None:
            return False
        if not self._body.is_exhausted:
            return False
        self._reader.probing = True  # bytes already waiting are a request sent before this one's answer
        try:
            self._pipelined = bool(self.rfile.peek(1))
        finally:
            self._reader.probing = False
        return True

    def _refuse_pipelined(self) -> None:
        self._answer_and_close(
            "400 Bad Request",
            "A request was sent before the answer to the previous one on this connection (HTTP pipelining), which "
            "the local SageMaker emulator does not serve; send each request after the previous answer.",
        )


class EmulatorApp:
    """The WSGI application: routes each request to our SageMaker handlers, the IAM shim or moto."""

    def __init__(self, state_for: Callable[[str], EmulatorState], moto_app, credentials: Credentials, now=time.time):
        self.state_for = state_for
        self.moto_app = moto_app
        self.verifier = Verifier(credentials, now)
        self.hosts: frozenset[str] = frozenset()
        self.on_moto_change: Callable[[str], None] | None = None  # told of each request that may change moto's state
        self.role_policies: Callable[[str], dict[str, dict]] = lambda arn: {}  # role ARN -> its identity policies
        self.recorder: ActionRecorder | None = None  # notes each signed request's IAM action, when recording
        self.handlers = operations()
        session = botocore.session.get_session()
        self.sagemaker_model = service_model()
        self.runtime_shape = (
            session.get_service_model("sagemaker-runtime").operation_model("InvokeEndpoint").input_shape
        )

    def serve_at(self, host: str, port: int) -> None:
        """Accept only requests addressed to ``host:port`` (or ``localhost:port``, or a ``*.localhost`` name)."""
        literal = f"[{host}]" if ":" in host else host
        self.hosts = frozenset({f"{literal}:{port}", f"localhost:{port}"})
        self.port = port

    def _host_allowed(self, host: str) -> bool:
        host = host.lower()
        return host in self.hosts or (host.endswith(f".localhost:{self.port}") and "/" not in host)

    def _refusal(self, environ: dict) -> Response | None:
        """The gate every request passes first; None lets it through (its scope is then in the environ)."""
        protocol = protocol_of(environ)
        host = environ.get("HTTP_HOST", "")
        if not self._host_allowed(host):
            return refusal(protocol, "forbidden", f"The Host header {host!r} is not this emulator's address.")
        if environ.get("PATH_INFO", "").startswith(MOTO_API_PATH):
            return refusal(protocol, "forbidden", "moto's own API (reset, data dumps) is not served by the emulator.")
        if "HTTP_ORIGIN" in environ or environ.get("REQUEST_METHOD") == "OPTIONS":
            return refusal(
                protocol,
                "forbidden",
                "Cross-origin and browser requests are refused by the local SageMaker "
                "emulator; call it with an AWS SDK and its credentials.",
            )
        length = environ.get("CONTENT_LENGTH") or ""
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not length:
            return refusal(protocol, "length_required", "A request body must come with a Content-Length header.")
        try:
            size = int(length or 0)
        except ValueError:
            return refusal(protocol, "length_required", f"Content-Length {length!r} is not a number.")
        limit = BODY_LIMITS[protocol]
        if size > limit:
            return refusal(
                protocol,
                "too_large",
                f"The request body of {size} bytes is larger than this API accepts ({limit} bytes).",
            )
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if length:
            headers["content-length"] = length
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path, _, query = raw.partition("?")
        request = SignedRequest(environ["REQUEST_METHOD"], path, query, headers)
        try:
            signature = self.verifier.authenticate(request)  # before any body byte is read
            declared = signature.payload_hash
            if declared is None:  # the signature covers the body's hash: read it (bounded by the limit above)
                environ["emulator.scope"] = self.verifier.verify(
                    request, signature, hashlib.sha256(_buffer_body(environ)).hexdigest()
                )
                return None
            environ["emulator.scope"] = self.verifier.verify(request, signature, declared)
        except AuthFailure as failure:  # S3's payload header rules are S3's alone, whatever the request looks like
            return refusal(
                "s3" if failure.kind in PAYLOAD_KINDS else protocol, failure.kind, failure.detail, failure.fields
            )
        if is_sha256(declared) and size:  # checked as the handler reads it, at its last byte
            environ["wsgi.input"] = io.BufferedReader(_CheckedBody(environ["wsgi.input"], size, declared))
        elif is_sha256(declared) and declared != EMPTY_SHA256:
            return _mismatch(environ, PayloadMismatch(declared, EMPTY_SHA256))
        return None

    def __call__(self, environ, start_response):
        refused = self._refusal(environ)
        if refused is None:
            try:
                return self._route(environ, start_response)
            except PayloadMismatch as mismatch:
                refused = _mismatch(environ, mismatch)
        environ[CLOSE_ENVIRON] = True
        return refused(environ, start_response)

    def _route(self, environ, start_response):
        scope = environ["emulator.scope"]
        service, region = scope.service.lower(), scope.region
        if self.recorder is not None and not environ.get(ActionRecorder.UNRECORDED_ENVIRON):
            body = _buffer_body(environ) if environ.get("REQUEST_METHOD") == "POST" else b""
            self.recorder.record(service, region, environ, body)
        if service == "sagemaker":
            response = self._sagemaker(Request(environ), region)
            return response(environ, start_response)
        method, operation = environ.get("REQUEST_METHOD", ""), ""
        if service == "iam" and method == "POST":
            form = parse_qs(_buffer_body(environ).decode("utf-8", "replace"))
            if form.get("Action") == ["SimulatePrincipalPolicy"]:
                status, xml = simulate_principal_policy(form, self.role_policies)
                return Response(xml, status=status, content_type="text/xml")(environ, start_response)
            operation = (form.get("Action") or [""])[0]
        elif service == "logs":
            operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        result = self.moto_app(environ, start_response)
        if self.on_moto_change is not None and changes_state(service, method, operation):
            self.on_moto_change(service)  # after moto answered, so a save that follows sees the change
        return result

    def _sagemaker(self, request: Request, region: str) -> Callable:
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
        if name not in self.handlers:
            known = name in self.sagemaker_model.operation_names
            raise UnknownOperationException(
                f"Operation {name} is {'not supported by the local SageMaker emulator' if known else 'unknown'}; "
                f"supported operations: {', '.join(sorted(self.handlers))}."
            )
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise SerializationException(f"The request body is not valid JSON: {error}") from None
        return call(self.state_for(region), name, params)

    def _invoke(self, request: Request, name: str, region: str) -> Callable:
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
        headers = [
            ("Content-Type", result.content_type),
            ("Content-Length", str(len(result.body))),
            ("x-Amzn-Invoked-Production-Variant", result.variant),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if result.custom_attributes:
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes))
        return _answer("200 OK", headers, result.body)


def _answer(status: str, headers: list[tuple[str, str]], body: bytes) -> Callable:
    """A WSGI answer of a known body without werkzeug's ``Response``, whose header handling was a tenth of an
    invocation's CPU. Like it, it refuses a header value with a line break (a model's Content-Type is relayed)."""
    if any("\r" in value or "\n" in value for _, value in headers):
        raise ValueError(f"a header value holds a line break: {headers!r}")

    def application(environ, start_response):
        start_response(status, headers)
        return [body]

    return application


def _json(status: int, body: dict, error_code: str | None = None, content_type: str = JSON_CONTENT_TYPE) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_code:
        headers["x-amzn-ErrorType"] = f"{error_code}:"
    return Response(json.dumps(body), status=status, headers=headers, content_type=content_type)


def _mismatch(environ: dict, mismatch: PayloadMismatch) -> Response:
    """The answer to a body that is not the one signed: S3's own error, a bad signature for the other services."""
    protocol = "s3" if environ["emulator.scope"].service.lower() == "s3" else protocol_of(environ)
    return refusal(protocol, "payload_mismatch", fields=mismatch.fields)


def _buffer_body(environ: dict) -> bytes:
    """Read the request body and put it back, so moto can still read it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
