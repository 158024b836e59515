"""Lab 2's demo server (demo_server.py): routes, search, and what it refuses, with a stand-in for the functions."""

import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.labs import load_lab_module

LAB = Path(__file__).resolve().parents[2] / "Lab2 - Introduction to Object2Vec"
CATALOGUE = {
    "dataset": "hand-made",
    "rating_range": [0.5, 5.0],
    "users": [7],
    "movies": [
        {"id": 1, "title": "Toy Story (1995)", "genres": ["Animation"]},
        {"id": 2, "title": "Toy Story 2 (1999)", "genres": ["Animation"]},
        {"id": 3, "title": "Rarely Rated Toy (2001)", "genres": ["Drama"]},
    ],
    "fold_in": {"endpoint": "lab2-embedder", "movie_ids": [1, 2]},
}


demo_server = load_lab_module("lab2", "demo_server")


@pytest.fixture
def demo():
    calls = []

    def call(name, event):
        calls.append((name, event))
        if event.get("fail"):
            raise RuntimeError("the function timed out")
        return {"statusCode": 200, "body": json.dumps({"echo": event})}

    with demo_server.start(call, CATALOGUE, "lab2-x") as server:
        server.calls = calls
        yield server


def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": f"127.0.0.1:{server.port}", **(headers or {})}
    payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    if payload is not None:
        headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    status, content = response.status, response.read()
    connection.close()
    return status, response.headers, content


def test_serves_the_page_on_loopback_only(demo):
    assert demo.url == f"http://127.0.0.1:{demo.port}/"
    status, headers, content = request(demo, "GET", "/")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b"<title>Lab 2 demo" in content
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_info_names_the_functions(demo):
    status, _, content = request(demo, "GET", "/api/info")
    info = json.loads(content)
    assert status == 200
    assert info["functions"] == {"recommend": "lab2-x-recommend", "similar": "lab2-x-similar"}
    assert (info["vectors_from"], info["ratings_per_person"]) == ("lab2-embedder", [3, 10])


@pytest.mark.parametrize(("history", "user"), [({"42": [[1, 4.0]], "7": [[2, 3.5]]}, 7), ({}, None), (None, None)])
def test_info_suggests_a_user_whose_history_the_catalogue_keeps(history, user):
    catalogue = CATALOGUE if history is None else {**CATALOGUE, "history": history}
    with demo_server.start(lambda n, e: {}, catalogue, "lab2-x") as server:
        assert json.loads(request(server, "GET", "/api/info")[2])["example_user"] == user


def test_search_matches_every_word_and_puts_rateable_movies_first(demo):
    status, _, content = request(demo, "GET", "/api/search?q=TOY%20story")
    assert status == 200
    assert [m["id"] for m in json.loads(content)["movies"]] == [1, 2]
    _, _, content = request(demo, "GET", "/api/search?q=toy")
    assert [(m["id"], m["rateable"]) for m in json.loads(content)["movies"]] == [(1, True), (2, True), (3, False)]


@pytest.mark.parametrize("query", ["", "%20%20", "x" * 101])
def test_search_needs_1_to_100_characters(demo, query):
    status, _, content = request(demo, "GET", f"/api/search?q={query}")
    assert (status, json.loads(content)) == (400, {"error": "type 1 to 100 characters of a title"})


def test_api_calls_the_function_and_reports_status_and_time(demo):
    status, _, content = request(demo, "POST", "/api/recommend", {"user_id": 7})
    answer = json.loads(content)
    assert status == 200
    assert (answer["status"], answer["function"], answer["body"]) == (200, "lab2-x-recommend", {"echo": {"user_id": 7}})
    assert answer["milliseconds"] >= 0
    assert demo.calls == [("lab2-x-recommend", {"user_id": 7})]


def test_a_failing_function_gets_a_readable_502(demo):
    _, _, content = request(demo, "POST", "/api/similar", {"fail": True})
    answer = json.loads(content)
    assert (answer["status"], answer["body"]) == (
        502,
        {"error": "function lab2-x-similar failed: the function timed out"},
    )


@pytest.mark.parametrize(
    "method, path, body, headers, status, message",
    [
        ("GET", "/", None, {"Host": "evil.example:80"}, 403, "this demo answers only on its loopback address"),
        ("POST", "/api/recommend", {}, {"Host": "evil.example"}, 403, "this demo answers only on its loopback address"),
        ("POST", "/api/recommend", {}, {"Origin": "http://evil.example"}, 403, "requests from http://evil.example"),
        ("GET", "/../lambda_function.py", None, {}, 404, "no such page: /../lambda_function.py"),
        ("GET", "/demo/index.html", None, {}, 404, "no such page"),
        ("POST", "/api/predict", {}, {}, 404, "no such API: /api/predict"),
        (
            "POST",
            "/api/recommend",
            b"user_id=7",
            {"Content-Type": "text/plain"},
            415,
            "send the request as application/json",
        ),
        ("POST", "/api/recommend", b"{not json", {}, 400, "the request is not valid JSON"),
        ("POST", "/api/recommend", b"\xff\xfe", {}, 400, "the request is not valid JSON"),
        ("POST", "/api/recommend", [1, 2], {}, 400, "the request must be a JSON object"),
        ("POST", "/api/recommend", b"x" * (64 * 1024 + 1), {}, 413, "larger than 65536 bytes"),
        ("POST", "/api/recommend", b"[" * 32_000 + b"]" * 32_000, {}, 400, "nests deeper than 20 levels"),
        ("POST", "/api/recommend", b'{"k": [' * 21 + b"]}" * 21, {}, 400, "nests deeper than 20 levels"),
        ("POST", "/api/recommend", b'{"user_id": ' + b"7" * 5_000 + b"}", {}, 400, "integer of 5000 digits"),
        ("POST", "/api/recommend", b'{"user_id": -' + b"7" * 21 + b"}", {}, 400, "integer of 21 digits; at most 20"),
    ],
)
def test_refuses_what_its_own_page_would_not_send(demo, method, path, body, headers, status, message):
    got, _, content = request(demo, method, path, body, headers)
    assert got == status
    assert message in json.loads(content)["error"]
    assert demo.calls == []
    assert request(demo, "GET", "/api/info")[0] == 200


def test_brackets_in_strings_and_long_decimals_are_accepted(demo):
    event = {"user_id": 7, "note": "[" * 50 + '\\"{', "rating": float("1." + "5" * 30)}
    status, _, content = request(demo, "POST", "/api/recommend", event)
    assert (status, json.loads(content)["body"]) == (200, {"echo": event})


def test_a_silent_client_is_disconnected(monkeypatch):
    monkeypatch.setattr(demo_server, "SOCKET_TIMEOUT_SECONDS", 0.5)
    with demo_server.start(lambda n, e: {}, CATALOGUE, "lab2-x") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as stalled:
            stalled.sendall(f"POST /api/recommend HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
            assert stalled.recv(1024) == b""  # closed by the server, long before this test's own 30 s
        assert request(server, "GET", "/api/info")[0] == 200


def test_allowed_hosts_admit_a_proxy(monkeypatch):
    with demo_server.start(lambda n, e: {}, CATALOGUE, "lab2-x", allowed_hosts=("Notebook.example:443",)) as server:
        assert request(server, "GET", "/api/info", headers={"Host": "notebook.example:443"})[0] == 200


def test_stop_frees_the_port_and_may_be_called_again():
    server = demo_server.start(lambda n, e: {}, CATALOGUE, "lab2-x")
    assert server.running
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        request(server, "GET", "/")


def test_the_page_uses_only_relative_urls_and_no_outside_resources():
    page = (LAB / "demo" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert 'fetch("/' not in page and 'api("/' not in page


def test_command_line_needs_a_run_id(capsys):
    with pytest.raises(SystemExit):
        demo_server.main([])
    assert "--run-id" in capsys.readouterr().err


def test_stop_all_finds_every_running_demo():
    first = demo_server.start(lambda n, e: {}, CATALOGUE, "lab2-x")
    second = demo_server.start(lambda n, e: {}, CATALOGUE, "lab2-y")
    second.stop()
    assert demo_server.running_servers() == [first]
    assert demo_server.stop_all() == 1
    assert demo_server.running_servers() == [] and demo_server.stop_all() == 0


def _stubbed_clients(monkeypatch) -> dict:
    import boto3

    keys = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    clients = {service: boto3.client(service, **keys) for service in ("s3", "sagemaker", "lambda")}
    monkeypatch.setattr(boto3, "client", lambda service: clients[service])
    return clients


def _endpoint(name: str, status: str = "InService") -> dict:
    from datetime import datetime

    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
    now = datetime(2026, 12, 6)
    return {
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": name,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
    }


def test_an_unknown_run_id_says_which_run_id_to_use(monkeypatch):
    from botocore.stub import Stubber

    clients = _stubbed_clients(monkeypatch)
    with Stubber(clients["s3"]) as s3:
        s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
        with pytest.raises(demo_server.DemoUnavailable) as caught:
            demo_server.functions_for("lab2-typo", "local", "b")
    assert str(caught.value) == (
        "No Lab 2 run 'lab2-typo' here: s3://b/lab2-typo/lambda/catalogue.json does not exist. Use the run_id that "
        "Lab 2's notebook printed in its parameters cell, after running the notebook up to section 9 (its cleanup "
        "deletes what the demo needs)."
    )


@pytest.mark.parametrize("status", ["Creating", "Failed"])
def test_a_run_whose_endpoint_is_not_in_service_is_refused(monkeypatch, status):
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    clients = _stubbed_clients(monkeypatch)
    payload = json.dumps(CATALOGUE).encode()
    with Stubber(clients["s3"]) as s3, Stubber(clients["sagemaker"]) as sagemaker:
        s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(payload), len(payload))})
        sagemaker.add_response("describe_endpoint", _endpoint("lab2-x-regressor", status))
        with pytest.raises(demo_server.DemoUnavailable, match=f"^The endpoint lab2-x-regressor is {status}: the demo"):
            demo_server.check_run("lab2-x", "b")


def test_the_command_line_answers_an_unavailable_run_in_one_message(monkeypatch):
    from common import session

    def unavailable(run_id, mode, bucket):
        raise demo_server.DemoUnavailable(f"No Lab 2 run {run_id!r} here")

    workshop = session.WorkshopSession("local", "us-east-1", "arn:role", "b", None)
    monkeypatch.setattr(session, "start_session", lambda sdk: workshop)
    monkeypatch.setattr(demo_server, "functions_for", unavailable)
    with pytest.raises(SystemExit) as caught:
        demo_server.main(["--run-id", "lab2-typo"])
    assert caught.value.code == "No Lab 2 run 'lab2-typo' here"


def test_a_function_error_names_movies_by_title():
    def refuse(name, event):
        return {"statusCode": 400, "body": json.dumps({"error": "movie_id 3 has too few ratings; movie_id 99 too"})}

    with demo_server.start(refuse, CATALOGUE, "lab2-x") as server:
        _, _, content = request(server, "POST", "/api/similar", {"movie_id": 3})
    assert json.loads(content)["body"] == {"error": "“Rarely Rated Toy (2001)” has too few ratings; movie_id 99 too"}


def _script_copy(tmp_path: Path, with_venv: bool) -> Path:
    """demo_server.py in a copy of the repository's layout, with a stand-in for the workshop's virtualenv."""
    lab = tmp_path / "Lab2"
    lab.mkdir()
    (lab / "demo_server.py").write_text((LAB / "demo_server.py").read_text())
    if with_venv:
        python = tmp_path / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text('#!/bin/sh\necho "workshop python: $*"\n')
        python.chmod(0o755)
    return lab / "demo_server.py"


def test_a_python_without_the_packages_hands_over_to_the_workshop_venv(tmp_path):
    script = _script_copy(tmp_path, with_venv=True)
    command = [sys.executable, "-S", str(script), "--run-id", "lab2-x", "--port", "0"]  # -S: no site-packages
    result = subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stdout) == (0, f"workshop python: {script} --run-id lab2-x --port 0\n")


def test_without_the_workshop_venv_one_line_says_which_python_to_use(tmp_path):
    script = _script_copy(tmp_path, with_venv=False)
    command = [sys.executable, "-S", str(script), "--run-id", "lab2-x"]
    result = subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert result.stderr.startswith(f"demo_server.py needs the workshop's packages, which {sys.executable} lacks (")
    assert result.stderr.endswith(
        "run `make env` at the repository's root, then `../.venv/bin/python demo_server.py --run-id <run_id>` in "
        "this folder.\n"
    )
    assert result.stderr.count("\n") == 1


def test_aws_mode_invokes_the_deployed_functions(monkeypatch):
    """The command line's AWS mode: the catalogue from S3, then lambda.invoke of ``<run_id>-<function>``."""
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    def streamed(document: dict) -> StreamingBody:
        payload = json.dumps(document).encode()
        return StreamingBody(io.BytesIO(payload), len(payload))

    clients = _stubbed_clients(monkeypatch)
    with (
        Stubber(clients["s3"]) as s3,
        Stubber(clients["sagemaker"]) as sagemaker,
        Stubber(clients["lambda"]) as aws_lambda,
    ):
        s3.add_response(
            "get_object", {"Body": streamed(CATALOGUE)}, {"Bucket": "b", "Key": "lab2-x/lambda/catalogue.json"}
        )
        sagemaker.add_response("describe_endpoint", _endpoint("lab2-x-regressor"), {"EndpointName": "lab2-x-regressor"})
        answer = {"statusCode": 200, "body": json.dumps({"similar": []})}
        aws_lambda.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": streamed(answer)},
            {"FunctionName": "lab2-x-similar", "Payload": json.dumps({"movie_id": 1})},
        )
        crash = {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'lambda_function'"}
        aws_lambda.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": streamed(crash)})
        call, catalogue = demo_server.functions_for("lab2-x", "aws", "b")
        assert catalogue == CATALOGUE
        assert call("lab2-x-similar", {"movie_id": 1}) == answer
        with pytest.raises(RuntimeError, match="Runtime.ImportModuleError: No module named 'lambda_function'"):
            call("lab2-x-recommend", {"user_id": 7})
