"""Lab 2's serverless front door to the Object2Vec models: two AWS Lambda handlers in one file.

``predict_handler`` answers one (user, movie) question from a SageMaker endpoint::

    {"user_id": 42, "movie_id": 260, "type": "rating"}     -> {"user_id": 42, "movie_id": 260, "title": ..., "rating": 4.12}
    {"user_id": 42, "movie_id": 260, "type": "recommend"}  -> {..., "recommend": true, "probability": 0.83}

``similar_movies_handler`` returns the movies nearest to one movie in the classifier's embedding space::

    {"movie_id": 260, "k": 5}  -> {"movie_id": 260, "title": ..., "similar": [{"movie_id", "title", "genres", "similarity"}, ...]}

Both answer in the shape of API Gateway's Lambda proxy integration, ``{"statusCode": 200, "body": "<JSON>"}``,
and read a request either as the event itself (``lambda.invoke``) or from the JSON string in its ``body`` (API
Gateway). Bad requests get 400 (missing or non-integer ids, an unknown ``type``, a bad ``k``), ids the models never
saw get 404, a failing endpoint or S3 read gets 502, missing configuration 500; the body is always
``{"error": "<message>"}``, never a stack trace.

Configuration, in environment variables set when the function is created:
``RATING_ENDPOINT`` and ``RECOMMEND_ENDPOINT`` (SageMaker endpoint names) and ``CATALOGUE_URI``
(``s3://bucket/key`` of the catalogue the notebook writes).

The catalogue is one JSON document: ``users`` (MovieLens user ids; position = the model's ``in0`` token),
``movies`` (``{"id", "title", "genres"}``; position = the ``in1`` token), ``rating_range`` ([lowest, highest]) and
``neighbours`` (movie id as a string -> ``[[movie id, cosine similarity], ...]``, most similar first). The
neighbours are computed in the notebook, where the embeddings and numpy are at hand: Lambda's Python runtime has
no numpy, and a lookup keeps the function small and its answer instant. The catalogue is read once per container
and kept, as Lambda reuses a container for many invocations.
"""

from __future__ import annotations

import json
import os

import boto3
from botocore.exceptions import BotoCoreError, ClientError

PREDICTION_TYPES = ("rating", "recommend")
DEFAULT_K = 5
JSON = "application/json"

_cache: dict = {}  # per container: AWS clients and the catalogue, kept across invocations


class RequestError(Exception):
    """A request that cannot be answered: carries the HTTP-style status and the message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": JSON}, "body": json.dumps(body)}


def _cached(key: str, make):
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RequestError(500, f"the function is not configured: environment variable {name} is not set")
    return value


def _request(event) -> dict:
    """The request's fields: the event itself, or the JSON object in an API Gateway event's ``body``."""
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        try:
            event = json.loads(event["body"])
        except json.JSONDecodeError as error:
            raise RequestError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(event, dict):
        raise RequestError(400, f"the request must be a JSON object, got {type(event).__name__}")
    return event


def _integer(request: dict, name: str, default: int | None = None) -> int:
    if name not in request and default is not None:
        return default
    if name not in request:
        raise RequestError(400, f"'{name}' is missing: give an integer MovieLens id")
    value = request[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, f"'{name}' must be an integer, got {json.dumps(value, default=repr)}")
    return value


def _catalogue() -> dict:
    """The catalogue from S3, with lookup tables from MovieLens ids to tokens; read once per container."""

    def load() -> dict:
        uri = _setting("CATALOGUE_URI")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = _cached("s3", lambda: boto3.client("s3"))
        try:
            document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise RequestError(502, f"the catalogue {uri} could not be read: {error}") from None
        except ValueError as error:
            raise RequestError(502, f"the catalogue {uri} is not valid JSON: {error}") from None
        try:
            document["user_token"] = {user: token for token, user in enumerate(document["users"])}
            document["movie_token"] = {movie["id"]: token for token, movie in enumerate(document["movies"])}
        except (KeyError, TypeError) as error:
            raise RequestError(502, f"the catalogue {uri} lacks users or movie ids: {error!r}") from None
        return document

    return _cached("catalogue", load)


def _token(table: dict, kind: str, value: int) -> int:
    if value not in table:
        raise RequestError(404, f"unknown {kind} {value}: the model was not trained with it")
    return table[value]


def _scores(endpoint: str, user: int, movie: int) -> list[float]:
    """The endpoint's scores for one (user token, movie token) pair."""
    runtime = _cached("runtime", lambda: boto3.client("sagemaker-runtime"))
    body = json.dumps({"instances": [{"in0": [user], "in1": [movie]}]})
    try:
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=JSON, Accept=JSON)
        return [float(score) for score in json.loads(answer["Body"].read())["predictions"][0]["scores"]]
    except (ClientError, BotoCoreError) as error:
        raise RequestError(502, f"endpoint {endpoint} failed: {error}") from None
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise RequestError(502, f"endpoint {endpoint} answered in an unexpected format: {error!r}") from None


def _predict(request: dict) -> dict:
    kind = request.get("type")
    if kind not in PREDICTION_TYPES:
        raise RequestError(400, f"'type' must be one of {', '.join(PREDICTION_TYPES)}, got {json.dumps(kind)}")
    user_id, movie_id = _integer(request, "user_id"), _integer(request, "movie_id")
    endpoint = _setting("RATING_ENDPOINT" if kind == "rating" else "RECOMMEND_ENDPOINT")
    catalogue = _catalogue()
    movie = _token(catalogue["movie_token"], "movie_id", movie_id)
    scores = _scores(endpoint, _token(catalogue["user_token"], "user_id", user_id), movie)
    answer = {"user_id": user_id, "movie_id": movie_id, "title": catalogue["movies"][movie]["title"]}
    if kind == "rating":
        lowest, highest = catalogue["rating_range"]
        return {**answer, "rating": round(min(max(scores[0], lowest), highest), 2)}
    return {**answer, "recommend": scores[1] > 0.5, "probability": round(scores[1], 4)}


def _similar(request: dict) -> dict:
    movie_id, k = _integer(request, "movie_id"), _integer(request, "k", DEFAULT_K)
    catalogue = _catalogue()
    token = _token(catalogue["movie_token"], "movie_id", movie_id)
    neighbours = catalogue["neighbours"].get(str(movie_id))
    if neighbours is None:
        raise RequestError(404, f"movie_id {movie_id} has too few ratings for a reliable embedding")
    if not 1 <= k <= len(neighbours):
        raise RequestError(400, f"'k' must be between 1 and {len(neighbours)}, got {k}")
    movies = catalogue["movies"]
    similar = []
    for other, similarity in neighbours[:k]:
        movie = movies[catalogue["movie_token"][other]]
        similar.append(
            {"movie_id": other, "title": movie["title"], "genres": movie["genres"], "similarity": similarity}
        )
    return {"movie_id": movie_id, "title": movies[token]["title"], "similar": similar}


def _handle(answer, event) -> dict:
    try:
        return _response(200, answer(_request(event)))
    except RequestError as error:
        return _response(error.status, {"error": error.message})


def predict_handler(event, context=None) -> dict:
    """A predicted rating (``"type": "rating"``) or a recommend / do-not-recommend answer (``"recommend"``)."""
    return _handle(_predict, event)


def similar_movies_handler(event, context=None) -> dict:
    """The ``k`` movies (default 5) nearest to ``movie_id`` in embedding space, with their titles."""
    return _handle(_similar, event)
