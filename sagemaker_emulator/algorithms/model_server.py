"""The model server inside an emulated inference container: SageMaker's ``/ping`` and ``/invocations``.

Runs in the container process (see ``algorithms/container.py serve``) on 127.0.0.1 and an ephemeral port, which
it writes to a file once it accepts connections. Predictions are serialised with a lock: the plug-ins' numeric
libraries (mxnet) are not thread-safe, and one model instance is what a SageMaker instance runs.

Its log (the endpoint's stream in CloudWatch) says what a user needs when an invocation fails: one line per failed
request with the status, the reason, the request's content type, accept type and size, next to the lifecycle
lines a container writes (listening, the first health check passed, shutdown on SIGTERM, stopped).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sagemaker_emulator.algorithms.base import PayloadError, Predictor, log

LOOPBACK = "127.0.0.1"
DEFAULT_ACCEPT = "application/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, predictor: Predictor):
        super().__init__((LOOPBACK, 0), _Handler)
        self.predictor = predictor
        self.predict_lock = threading.Lock()
        self.healthy_logged = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # http.server's own error answers go out in two writes; don't wait for the ACK
    server: _Server

    def log_message(self, format, *args):  # the access log would drown the algorithm's own lines
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        """Head and body in one write: one segment, one wake-up of the emulator's reader."""
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nDate: {self.date_time_string()}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)

    def _failed(self, status: int, reason: str, body: bytes) -> None:
        """Answer an invocation with an error, and say so in one log line."""
        log(
            f"Invocation failed: status {status}, {reason}; request Content-Type "
            f"{self.headers.get('Content-Type') or '(none)'}, Accept {self.headers.get('Accept') or '(none)'}, "
            f"{len(body)} bytes",
            level="ERROR",
        )
        self._answer(status, reason.encode())

    def do_GET(self):
        if self.path == "/ping":
            self._answer(200, b"")
            if not self.server.healthy_logged.is_set():
                self.server.healthy_logged.set()
                log("Health check GET /ping answered 200: the model server is healthy")
        else:
            self._answer(404, b"not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/invocations":
            self._failed(404, f"no such path {self.path}", body)
            return
        content_type = self.headers.get("Content-Type") or "application/octet-stream"
        accept = self.headers.get("Accept") or DEFAULT_ACCEPT
        try:
            with self.server.predict_lock:
                output, output_type = self.server.predictor(body, content_type, accept)
        except PayloadError as error:
            self._failed(error.status, error.message, body)
            return
        except Exception as error:
            traceback.print_exc(file=sys.stdout)
            self._failed(500, f"{type(error).__name__}: {error}", body)
            return
        self._answer(200, output, output_type)


def serve_forever(predictor: Predictor, port_file: Path) -> None:
    """Serve until SIGTERM; the port is written to ``port_file`` atomically once the socket listens."""
    server = _Server(predictor)

    def on_sigterm(*_) -> None:
        log("Received SIGTERM: the model server is shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    partial = port_file.with_suffix(".tmp")
    partial.write_text(str(server.server_address[1]))
    os.replace(partial, port_file)
    log(f"Model server listening on {LOOPBACK}:{server.server_address[1]}")
    server.serve_forever()
    server.server_close()
    log("Model server stopped")
