"""Lab 2's demo: a page where a person rates a few movies and the lab's models recommend to them, on 127.0.0.1.

One small standard-library HTTP server serves ``demo/index.html`` and a JSON API from the same loopback origin (so
the page needs no CORS). The API answers from the Lambda functions of ``lambda_function.py`` through a ``call(name,
event)`` function: the notebook's own (in process in local mode, ``lambda.invoke`` in AWS mode), or the one
:func:`functions_for` builds from a ``run_id`` on the command line. Movie search runs here, on the catalogue.

    GET  /                 the page
    GET  /api/info         dataset, rating scale, how many movies to rate, the functions behind the API, and a
                           user whose history the catalogue keeps (the page's example user id)
    GET  /api/search?q=    up to 20 movies whose title contains q (each with whether it can be rated)
    POST /api/recommend    {"ratings": [{"movie_id", "rating"}, ...]} or {"user_id"}  -> recommend_handler
    POST /api/similar      {"movie_id", "k"}                                           -> similar_movies_handler

Every API answer is JSON ``{"status", "function", "milliseconds", "body"}``, the handler's status and body as
they are; faults of the request itself (unknown path, bad JSON, a foreign Host or Origin) get ``{"error"}``.

Like the emulator it sits next to, the server accepts only what a page on its own loopback origin sends: it binds
127.0.0.1, answers only requests whose ``Host`` is that address (or ``localhost``) and port, refuses a POST whose
``Origin`` is another site, reads at most 64 KB of JSON nested at most 20 deep with integers of at most 20 digits
(deeper JSON would exhaust Python's recursion and a longer integer its digit limit, which dropped the connection;
both now get a 400 that says why), closes a connection that sends nothing for 30 seconds, and never builds a file
path from a request. Behind
Jupyter's proxy (``jupyter-server-proxy`` on a SageMaker notebook instance: ``https://<instance>/proxy/<port>/``)
the proxy connects to 127.0.0.1 itself; pass its host name in ``allowed_hosts``.

Command line (in this folder; the notebook prints the ``run_id``): ``python demo_server.py --run-id lab2-o2v-...``.
Any Python starts it: one without the workshop's packages hands over to the workshop's virtualenv (``.venv`` at the
repository's root, which ``make`` builds) or says in one line which to use. The demo needs what the notebook's
section 9 left running (the catalogue in S3, the regressor's endpoint); the cleanup section deletes them, and a
``run_id`` whose endpoint is gone is refused at once with what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PAGE = Path(__file__).resolve().parent / "demo" / "index.html"
LOOPBACK = "127.0.0.1"
MAX_BODY = 64 * 1024
MAX_DEPTH = 20  # the API's requests nest 3 deep ({"ratings": [{...}]})
MAX_INT_DIGITS = 20  # ids, ratings and k are small; Python refuses integers over 4,300 digits with a ValueError
SOCKET_TIMEOUT_SECONDS = 30  # a client that sends nothing for this long is disconnected
MAX_QUERY = 100
SEARCH_RESULTS = 20
ROUTES = {"/api/recommend": "recommend", "/api/similar": "similar"}  # path -> function suffix
ENDPOINT = "{run_id}-regressor"  # the one endpoint the demo's functions call (ratings and the fold-in's vectors)
CATALOGUE_KEY = "{run_id}/lambda/catalogue.json"  # in the workshop's bucket, as the notebook's section 9 writes it
MOVIE_ID = re.compile(r"\bmovie_id (\d+)")  # how the functions name a movie in their errors
WORKSHOP_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"  # what `make` builds

Call = Callable[[str, dict], dict]
_started: list[DemoServer] = []  # every demo this process started, so a cleanup cell finds it without a variable


class DemoUnavailable(Exception):
    """The run cannot be demonstrated (unknown ``run_id``, or its endpoint deleted); the message says what to do."""


class BadRequest(ValueError):
    """A request body the API refuses; the message says why, for a 400 answer."""


def _depth(text: str) -> int:
    """How deep the arrays and objects of the JSON ``text`` nest (brackets inside strings do not count); one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise BadRequest(f"the request has an integer of {len(digits.lstrip('-'))} digits; at most {MAX_INT_DIGITS}")
    return int(digits)


def parse_event(body: bytes) -> dict:
    """The JSON object of a request body, within the limits the page's requests never reach.

    Raises:
        BadRequest: not UTF-8 JSON, not an object, nested deeper than ``MAX_DEPTH`` or an integer longer than
            ``MAX_INT_DIGITS`` digits.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the request is not valid JSON: {error}") from None
    if _depth(text) > MAX_DEPTH:
        raise BadRequest(f"the request's JSON nests deeper than {MAX_DEPTH} levels")
    try:
        event = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise BadRequest(f"the request is not valid JSON: {error}") from None
    if not isinstance(event, dict):
        raise BadRequest("the request must be a JSON object")
    return event


class DemoServer:
    """A running demo: ``url`` to open, ``stop()`` to end it (also at the end of a ``with`` block; stopping twice is
    harmless, so the cleanup cell can always call it), ``running`` to check."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread):
        self._httpd, self._thread = httpd, thread
        self.port = httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if not self.running:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DemoServer({self.url})"


def search_index(catalogue: dict) -> list[tuple[str, dict]]:
    """(lower-case title, movie listing) for every movie of the catalogue; ``rateable`` says whether the movie has
    a vector, which the fold-in needs (the page offers to rate only those)."""
    rateable = set(catalogue.get("fold_in", {}).get("movie_ids", []))
    return [(movie["title"].lower(), {**movie, "rateable": movie["id"] in rateable}) for movie in catalogue["movies"]]


def _search(index: list[tuple[str, dict]], query: str) -> list[dict]:
    words = query.lower().split()
    hits = [movie for title, movie in index if all(word in title for word in words)]
    hits.sort(key=lambda movie: (not movie["rateable"], len(movie["title"])))
    return hits[:SEARCH_RESULTS]


def name_movies(message: str, titles: dict[int, str]) -> str:
    """A function's error with each ``movie_id <n>`` it mentions replaced by the movie's title, for a person."""
    return MOVIE_ID.sub(lambda match: f"“{titles[int(match[1])]}”" if int(match[1]) in titles else match[0], message)


def example_user(catalogue: dict) -> int | None:
    """The smallest user id whose history the catalogue keeps, for the page to suggest: at large sizes the history
    is a sample of users, so a fixed example id could be one the functions answer with a 404."""
    return min(map(int, catalogue.get("history", {})), default=None)


def _handler_class(call: Call, run_id: str, catalogue: dict, allowed_hosts: frozenset[str]):
    index = search_index(catalogue)
    titles = {movie["id"]: movie["title"] for movie in catalogue["movies"]}
    info = {
        "dataset": catalogue.get("dataset"),
        "rating_range": catalogue["rating_range"],
        "ratings_per_person": [3, 10],
        "functions": {suffix: f"{run_id}-{suffix}" for suffix in ROUTES.values()},
        "vectors_from": catalogue.get("fold_in", {}).get("endpoint"),
        "example_user": example_user(catalogue),
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "Lab2Demo"
        timeout = SOCKET_TIMEOUT_SECONDS

        def log_message(self, format, *args):  # keep the notebook's output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy",
                "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
            )
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: dict) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def _refuse(self, status: HTTPStatus, message: str) -> None:
            self._json(status, {"error": message})

        def _host_allowed(self) -> bool:
            host = (self.headers.get("Host") or "").lower()
            return host in allowed_hosts

        def do_GET(self):
            if not self._host_allowed():
                return self._refuse(HTTPStatus.FORBIDDEN, "this demo answers only on its loopback address")
            parts = urlsplit(self.path)
            if parts.path in ("/", "/index.html"):
                return self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
            if parts.path == "/api/info":
                return self._json(HTTPStatus.OK, info)
            if parts.path == "/api/search":
                query = parse_qs(parts.query).get("q", [""])[0].strip()
                if not 1 <= len(query) <= MAX_QUERY:
                    return self._refuse(HTTPStatus.BAD_REQUEST, f"type 1 to {MAX_QUERY} characters of a title")
                return self._json(HTTPStatus.OK, {"query": query, "movies": _search(index, query)})
            self._refuse(HTTPStatus.NOT_FOUND, f"no such page: {parts.path}")

        def do_POST(self):
            if not self._host_allowed():
                return self._refuse(HTTPStatus.FORBIDDEN, "this demo answers only on its loopback address")
            origin = self.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc.lower() not in allowed_hosts:
                return self._refuse(HTTPStatus.FORBIDDEN, f"requests from {origin} are not accepted")
            suffix = ROUTES.get(urlsplit(self.path).path)
            if suffix is None:
                return self._refuse(HTTPStatus.NOT_FOUND, f"no such API: {self.path}")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                return self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as application/json")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._refuse(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
            if not 0 <= length <= MAX_BODY:
                return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request is larger than {MAX_BODY} bytes")
            try:
                event = parse_event(self.rfile.read(length))
            except BadRequest as error:
                return self._refuse(HTTPStatus.BAD_REQUEST, str(error))
            function = f"{run_id}-{suffix}"
            started = time.perf_counter()
            try:
                answer = call(function, event)
                status, body = answer["statusCode"], json.loads(answer["body"])
            except Exception as error:  # a failed invoke (AWS mode) or a broken answer: readable, never a trace
                status, body = HTTPStatus.BAD_GATEWAY, {"error": f"function {function} failed: {error}"}
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                body = {**body, "error": name_movies(body["error"], titles)}
            milliseconds = round((time.perf_counter() - started) * 1000, 1)
            self._json(
                HTTPStatus.OK, {"status": status, "function": function, "milliseconds": milliseconds, "body": body}
            )

    return Handler


def start(call: Call, catalogue: dict, run_id: str, port: int = 0, allowed_hosts: tuple[str, ...] = ()) -> DemoServer:
    """Serve the demo on 127.0.0.1 (``port`` 0: any free port) in a background thread; return it running.

    Args:
        call: ``call(function_name, event) -> {"statusCode", "body"}``, as in the notebook's section 9.
        catalogue: the catalogue the notebook wrote (with its ``fold_in`` and ``history`` sections).
        run_id: the functions are named ``<run_id>-recommend`` and ``<run_id>-similar``.
        allowed_hosts: further ``Host`` values to answer, e.g. a proxy's ``"name:443"``.
    """
    httpd = ThreadingHTTPServer((LOOPBACK, port), None)
    bound = httpd.server_address[1]
    hosts = frozenset({f"{LOOPBACK}:{bound}", f"localhost:{bound}", *(h.lower() for h in allowed_hosts)})
    httpd.RequestHandlerClass = _handler_class(call, run_id, catalogue, hosts)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), name="lab2-demo", daemon=True)
    thread.start()
    demo = DemoServer(httpd, thread)
    _started.append(demo)
    return demo


def running_servers() -> list[DemoServer]:
    """The demos this process started that are still serving (for a cleanup cell and its final assert)."""
    return [demo for demo in _started if demo.running]


def stop_all() -> int:
    """Stop every demo this process started; returns how many were still running."""
    running = running_servers()
    for demo in running:
        demo.stop()
    return len(running)


def check_run(run_id: str, bucket: str) -> dict:
    """The catalogue of the notebook run ``run_id``, once its endpoint is in service (clients of this process).

    Raises:
        DemoUnavailable: no catalogue under the ``run_id``, or its endpoint missing or not in service.
    """
    import boto3

    key = CATALOGUE_KEY.format(run_id=run_id)
    uri = f"s3://{bucket}/{key}"
    s3 = boto3.client("s3")
    try:
        catalogue = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        raise DemoUnavailable(
            f"No Lab 2 run {run_id!r} here: {uri} does not exist. Use the run_id that Lab 2's notebook printed in its "
            "parameters cell, after running the notebook up to section 9 (its cleanup deletes what the demo needs)."
        ) from None
    sagemaker, name = boto3.client("sagemaker"), ENDPOINT.format(run_id=run_id)
    try:
        status = sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
    except sagemaker.exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "ValidationException":  # AWS's code for an endpoint not found
            raise
        status = "deleted"
    if status != "InService":
        raise DemoUnavailable(
            f"The endpoint {name} is {status}: the demo needs the endpoint of Lab 2's run {run_id!r}, which the "
            "notebook's cleanup deletes. Run the notebook again up to section 9 and start the demo with the "
            "run_id it prints (or start it from the notebook's section 9)."
        )
    return catalogue


def functions_for(run_id: str, mode: str, bucket: str) -> tuple[Call, dict]:
    """``call`` and the catalogue for a finished notebook run, found by its ``run_id`` (the command line's way).

    Local mode configures the handlers as the notebook does (endpoints ``<run_id>-regressor`` and
    ``<run_id>-classifier``) and calls them in process; AWS mode invokes the deployed functions with boto3.

    Raises:
        DemoUnavailable: see :func:`check_run`.
    """
    import boto3

    catalogue = check_run(run_id, bucket)
    if mode == "aws":
        client = boto3.client("lambda")

        def call(name: str, event: dict) -> dict:
            response = client.invoke(FunctionName=name, Payload=json.dumps(event))
            answer = json.loads(response["Payload"].read())
            if "FunctionError" in response:  # the handler raised: Lambda answers with errorType and errorMessage
                raise RuntimeError(f"{answer.get('errorType')}: {answer.get('errorMessage')}")
            return answer

        return call, catalogue
    import lambda_function  # next to this file, as the notebook imports it

    os.environ.update(
        RATING_ENDPOINT=ENDPOINT.format(run_id=run_id),
        RECOMMEND_ENDPOINT=f"{run_id}-classifier",
        CATALOGUE_URI=f"s3://{bucket}/{CATALOGUE_KEY.format(run_id=run_id)}",
    )
    handlers = {
        f"{run_id}-recommend": lambda_function.recommend_handler,
        f"{run_id}-similar": lambda_function.similar_movies_handler,
    }

    def call(name: str, event: dict) -> dict:
        return handlers[name](event, None)

    return call, catalogue


def use_workshop_python(argv: list[str]) -> None:
    """Go on in this interpreter if it has the workshop's packages, else hand over to the workshop's virtualenv.

    Raises:
        SystemExit: neither has them; the one-line message says which Python to use.
    """
    try:
        import boto3  # noqa: F401

        import common  # noqa: F401
    except ImportError as error:
        if WORKSHOP_PYTHON.exists() and Path(sys.prefix).resolve() != WORKSHOP_PYTHON.parents[1].resolve():
            os.execv(WORKSHOP_PYTHON, [str(WORKSHOP_PYTHON), str(Path(__file__).resolve()), *argv])
        raise SystemExit(
            f"demo_server.py needs the workshop's packages, which {sys.executable} lacks ({error}): run `make env` "
            "at the repository's root, then `../.venv/bin/python demo_server.py --run-id <run_id>` in this folder."
        ) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve Lab 2's recommendation demo on 127.0.0.1 until Ctrl-C. It needs the endpoint that the "
        "notebook's section 9 left running; its cleanup section deletes it."
    )
    parser.add_argument("--run-id", required=True, help="the run_id the notebook printed (lab2-o2v-...)")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free port)")
    parser.add_argument("--allowed-host", action="append", default=[], help="another Host to answer (a proxy's)")
    args = parser.parse_args(argv)
    use_workshop_python(sys.argv[1:] if argv is None else argv)
    from common import session

    workshop = session.start_session(sdk=False)
    try:
        call, catalogue = functions_for(args.run_id, workshop.mode, workshop.bucket)
    except DemoUnavailable as error:
        raise SystemExit(str(error)) from None
    with start(call, catalogue, args.run_id, args.port, tuple(args.allowed_host)) as demo:
        print(
            f"Lab 2 demo ({workshop.mode} mode): open {demo.url} (Ctrl-C stops it). It calls the endpoint "
            f"{ENDPOINT.format(run_id=args.run_id)}, which the notebook's cleanup deletes.",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
