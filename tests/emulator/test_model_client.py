"""The emulator's client for a model server: connections kept and reused, and every way a reply can go wrong."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

from sagemaker_emulator.jobs.model_client import ModelClient, ModelConnectionError, ModelTimeout

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class FakeModelServer:
    """A loopback server whose connections each run ``serve(connection)``; it counts the connections it accepted."""

    def __init__(self, serve: Callable[[socket.socket], None]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(connection,), daemon=True).start()

    def _run(self, connection: socket.socket) -> None:
        with connection:
            self._serve(connection)

    def close(self) -> None:
        self.listener.close()


def _requests(connection: socket.socket):
    """Each request head (and its empty body) as it arrives; stops when the client closes."""
    reader = connection.makefile("rb")
    while line := reader.readline():
        while reader.readline() not in (b"\r\n", b""):
            pass
        yield line


def answering(*replies: bytes):
    """A server that answers each request on a connection with the next reply (the last one repeats)."""

    def serve(connection: socket.socket) -> None:
        for number, _ in enumerate(_requests(connection)):
            connection.sendall(replies[min(number, len(replies) - 1)])

    return serve


@pytest.fixture
def server(request):
    fake = FakeModelServer(request.param)
    yield fake
    fake.close()


def _ask(client: ModelClient, timeout: float = 10.0):
    return client.request("POST", "/invocations", b"", {"Content-Type": "text/csv"}, timeout=timeout)


@pytest.mark.parametrize("server", [answering(OK)], indirect=True)
def test_requests_one_after_another_share_one_connection(server):
    client = ModelClient(server.port)
    answers = [_ask(client) for _ in range(5)]
    assert [(a.status, a.body, a.headers["content-type"]) for a in answers] == [(200, b"{}", "application/json")] * 5
    assert server.connections == 1


@pytest.mark.parametrize(
    "server",
    [answering(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")],
    indirect=True,
)
def test_a_reply_that_says_close_is_not_kept(server):
    client = ModelClient(server.port)
    assert _ask(client).body == b"{}" and _ask(client).body == b"{}"
    assert server.connections == 2


def answering_once(reply: bytes):
    """A server that answers a connection's first request with ``reply``, then closes it."""

    def serve(connection: socket.socket) -> None:
        next(_requests(connection))
        connection.sendall(reply)

    return serve


@pytest.mark.parametrize("server", [answering_once(OK)], indirect=True)
def test_a_kept_connection_the_server_closed_is_replaced_before_use(server):
    client = ModelClient(server.port)
    assert _ask(client).status == 200
    for _ in range(100):  # wait until the client side sees the close (no timing is asserted)
        if client._idle and client._idle[0].stale():
            break
        threading.Event().wait(0.05)
    assert _ask(client).status == 200
    assert server.connections == 2


def _unframed(connection: socket.socket) -> None:
    next(_requests(connection))
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end")
    connection.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("server", [_unframed], indirect=True)
def test_a_reply_without_a_length_is_read_to_the_end_and_not_kept(server):
    client = ModelClient(server.port)
    assert _ask(client).body == b"to the end"
    assert not client._idle


def _silent(connection: socket.socket) -> None:
    for _ in _requests(connection):
        pass


@pytest.mark.parametrize("server", [_silent], indirect=True)
def test_no_answer_in_time_is_a_model_timeout(server):
    client = ModelClient(server.port)
    with pytest.raises(ModelTimeout, match="did not answer within 0.2 seconds"):
        _ask(client, timeout=0.2)
    assert not client._idle


@pytest.mark.parametrize(
    "server, message",
    [
        (answering(b"SSH-2.0-OpenSSH\r\n"), "not an HTTP status line"),
        (answering(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), "malformed header"),
        (answering_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), "closed the connection"),
    ],
    indirect=["server"],
    ids=["not http", "bad header", "short body"],
)
def test_a_broken_answer_is_a_connection_error(server, message):
    client = ModelClient(server.port)
    with pytest.raises(ModelConnectionError, match=message):
        _ask(client)
    assert not client._idle


def test_nothing_listening_is_a_connection_error():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(ModelConnectionError, match="ConnectionRefusedError"):
        _ask(ModelClient(port))
