"""Fixtures for the data layer's tests: a loopback archive server with switchable faults, archive builders, an
isolated cache, and a guard that fails any attempt to leave the machine."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.download import MemberCheck
from common.settings import settings

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
SHARED_MIRROR = Path(__file__).resolve().parents[3] / "shared" / "movielens"


def _find_mirror() -> Path | None:
    """The directory holding ml-latest-small.zip: ``WORKSHOP_DATA_MIRROR`` if it is a directory, else ../shared."""
    configured = settings().data_mirror
    for candidate in (Path(configured) if configured and "://" not in configured else None, SHARED_MIRROR):
        if candidate is not None and (candidate / "ml-latest-small.zip").is_file():
            return candidate
    return None


REAL_MIRROR = _find_mirror()  # found at import, before any test clears the WORKSHOP_* variables


@pytest.fixture
def real_mirror() -> Path:
    """The directory holding the real ml-latest-small.zip; the test is skipped, saying why, when there is none."""
    if REAL_MIRROR is None:
        pytest.skip(
            "no MovieLens mirror: set WORKSHOP_DATA_MIRROR to a directory holding ml-latest-small.zip "
            f"(the default, {SHARED_MIRROR}, is absent)"
        )
    return REAL_MIRROR


@pytest.fixture
def no_internet(monkeypatch):
    """Any lookup or connection beyond loopback fails the test instead of reaching the network."""
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_lookup(host, *args, **kwargs):
        if host not in LOOPBACK:
            raise AssertionError(f"a test tried to resolve {host}")
        return lookup(host, *args, **kwargs)

    def guarded_connect(sock, address):
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise AssertionError(f"a test tried to connect to {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def data_env(tmp_path, monkeypatch, no_internet) -> Path:
    """An empty cache in tmp_path and no mirror or dataset chosen; returns the cache directory."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(cache))
    monkeypatch.delenv("WORKSHOP_DATA_MIRROR", raising=False)
    monkeypatch.delenv("WORKSHOP_DATASET", raising=False)
    return cache


def _build_zip(members: dict[str, bytes | str]) -> bytes:
    """A zip archive (deflated) holding ``members``; str contents are written as UTF-8."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def _checks_for(members: dict[str, bytes | str]) -> dict[str, MemberCheck]:
    """The MemberCheck each member passes: its line count and SHA-256."""
    checks = {}
    for name, content in members.items():
        raw = content.encode() if isinstance(content, str) else content
        lines = raw.count(b"\n") + (bool(raw) and not raw.endswith(b"\n"))
        checks[name] = MemberCheck(lines, hashlib.sha256(raw).hexdigest())
    return checks


@pytest.fixture
def build_zip():
    return _build_zip


@pytest.fixture
def checks_for():
    return _checks_for


@dataclass
class ArchiveServer:
    """Serves bytes over HTTP/1.0 on 127.0.0.1; successive requests for a path get successive bodies (the last
    repeats). Faults apply to upcoming requests: ``statuses`` to answer first, ``drop_after`` bytes to send
    before hanging up mid-body, and ``ignore_range`` to answer every request 200 with the whole body."""

    port: int = 0
    bodies: dict[str, deque] = field(default_factory=dict)
    statuses: deque = field(default_factory=deque)
    drop_after: deque = field(default_factory=deque)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def serve(self, path: str, *bodies: bytes) -> str:
        self.bodies["/" + path.lstrip("/")] = deque(bodies)
        return self.url(path)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


def _handler(server: ArchiveServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            server.requests.append((self.path, self.headers.get("Range")))
            if server.statuses:
                self.send_error(server.statuses.popleft())
                return
            queue = server.bodies.get(self.path)
            if not queue:
                self.send_error(404)
                return
            body = queue.popleft() if len(queue) > 1 else queue[0]
            start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
            if server.ignore_range or not start:
                self.send_response(200)
                start = 0
            elif start >= len(body):
                self.send_error(416)
                return
            else:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = server.drop_after.popleft() if server.drop_after else None
            self.wfile.write(body[start:] if cut is None else body[start : start + cut])

    return Handler


@pytest.fixture
def archive_server():
    """A running ArchiveServer on a free loopback port, stopped after the test."""
    state = ArchiveServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def aws(emulator, monkeypatch):
    """boto3's default clients pointed at the test emulator, with bucket ``cleanup-tests``; returns (sagemaker, s3)."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    for name, value in emulator.credentials.as_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket="cleanup-tests")
    return boto3.client("sagemaker"), boto3.client("s3")
