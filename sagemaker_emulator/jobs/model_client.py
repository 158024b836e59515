"""The emulator's HTTP client for one model server: a few kept-alive connections and a lean reader of its replies.

A model server is ours (``algorithms/model_server.py``): it answers HTTP/1.1 with a status line, a few headers and
a ``Content-Length`` body. urllib3's pool over ``http.client``, whose header parsing goes through the ``email``
package, took 45% of the emulator's CPU per single-record invocation (py-spy, issue 24); reading such a reply takes a
few lines. A reply without a length is read to the end of its connection, which is then not kept.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass

MAX_LINE = 65536  # bytes in a status or header line, as http.client allows
MAX_HEADERS = 100


class ModelTimeout(Exception):
    """The model server did not answer within the time allowed."""


class ModelConnectionError(Exception):
    """The model server could not be reached, closed the connection, or answered something that is not HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Connection:
    def __init__(self, port: int, connect_timeout: float):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.socket.makefile("rb")

    def stale(self) -> bool:
        """A kept connection that has something to read before it was asked anything was closed by the server."""
        return bool(select.select([self.socket], [], [], 0)[0])

    def close(self) -> None:
        self.reader.close()
        self.socket.close()

    def exchange(self, request: bytes, timeout: float) -> tuple[Answer, bool]:
        """Send one request and read its reply; also whether the connection may be kept for another."""
        self.socket.settimeout(timeout)
        self.socket.sendall(request)
        status_line = self._line()
        version, _, rest = status_line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise ModelConnectionError(f"the model server answered {status_line[:80]!r}, not an HTTP status line")
        headers: dict[str, str] = {}
        while line := self._line():
            name, colon, value = line.partition(b":")
            if not colon or len(headers) >= MAX_HEADERS:
                raise ModelConnectionError(f"the model server sent a malformed header {line[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        length = headers.get("content-length", "")
        if "transfer-encoding" in headers or not length.isdigit():
            body, keep = self.reader.read(), False
        else:
            body = self.reader.read(int(length))
            if len(body) != int(length):
                raise ModelConnectionError("the model server closed the connection in the middle of its answer")
        return Answer(int(code), headers, body), keep

    def _line(self) -> bytes:
        line = self.reader.readline(MAX_LINE + 1)
        if not line.endswith(b"\n") or len(line) > MAX_LINE:
            raise ModelConnectionError("the model server closed the connection or sent an overlong line")
        return line.rstrip(b"\r\n")


class ModelClient:
    """Requests to one model server on loopback ``port``, over at most ``keep`` idle kept-alive connections.

    A request is never retried: the model may have acted on it (as urllib3 with ``retries=False``, which this
    replaces).
    """

    def __init__(self, port: int, keep: int = 16, connect_timeout: float = 5.0):
        self.port, self.keep, self.connect_timeout = port, keep, connect_timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """Send one request and return its answer.

        Raises:
            ModelTimeout: no answer (or no connection) within ``timeout`` (``connect_timeout`` to connect).
            ModelConnectionError: the connection failed, or the answer was not HTTP.
        """
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        try:
            connection = self._take()
            try:
                answer, keep = connection.exchange(request, timeout)
            except BaseException:
                connection.close()
                raise
        except TimeoutError:
            raise ModelTimeout(f"the model server did not answer within {timeout:g} seconds") from None
        except OSError as error:
            raise ModelConnectionError(f"{type(error).__name__}: {error}") from None
        if keep:
            self._give_back(connection)
        else:
            connection.close()
        return answer

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return _Connection(self.port, self.connect_timeout)
            if not connection.stale():
                return connection
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
