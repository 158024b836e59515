"""Fixtures every test package shares: one emulator per test session on 127.0.0.1, reset before each use."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE

# The test algorithm, registered for every emulator (and container) the tests start, in this process or a child.
os.environ[PLUGINS_VARIABLE] = f"mean-regressor={Path(__file__).parent / 'emulator' / 'mean_regressor.py'}"


@pytest.fixture(scope="session")
def running_emulator():
    emulator = sagemaker_emulator.start(stop_grace_seconds=2.0)
    yield emulator
    emulator.stop()
    assert not emulator.services.supervisor.live(), "child processes were left running"


@pytest.fixture
def emulator(running_emulator):
    """The session's emulator with fresh state (no buckets, jobs, endpoints) for this test."""
    running_emulator.reset()
    yield running_emulator
    running_emulator.reset()


@pytest.fixture
def refusing_proxy():
    """An HTTP proxy on 127.0.0.2 that answers 502 to everything (CONNECT too) and notes each request it got, as a
    corporate proxy answers a loopback address it cannot reach. ``url`` goes in ``HTTP_PROXY``/``HTTPS_PROXY``."""
    seen: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        def handle_one_request(self):
            self.raw_requestline = self.rfile.readline(65537)
            if self.raw_requestline and self.parse_request():
                seen.append(self.requestline)
                self.send_error(502, "Bad Gateway: the proxy cannot reach this address")

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.2:{server.server_address[1]}", requests=seen)
    server.shutdown()
    server.server_close()
    thread.join()
