"""Lab 2's serverless front door to the Object2Vec models: three AWS Lambda handlers in one file.

``predict_handler`` answers one (user, movie) question from a SageMaker endpoint::

    {"user_id": 42, "movie_id": 260, "type": "rating"}     -> {"user_id": 42, "movie_id": 260, "title": ..., "rating": 4.12}
    {"user_id": 42, "movie_id": 260, "type": "recommend"}  -> {..., "recommend": true, "probability": 0.83}

``similar_movies_handler`` returns the movies nearest to one movie in the classifier's embedding space::

    {"movie_id": 260, "k": 5}  -> {"movie_id": 260, "title": ..., "similar": [{"movie_id", "title", "genres", "similarity"}, ...]}

``recommend_handler`` returns a top-``k`` list (default 10), for a new person from the ratings they give (cold start,
folded in from the embedder's movie vectors, see :func:`fold_in`) or for a known user from the rating endpoint::

    {"ratings": [{"movie_id": 1, "rating": 5}, ...], "k": 10} -> {"model": ..., "recommendations": [{"movie_id", "title", "genres", "score"}, ...]}
    {"user_id": 42, "k": 10}                                 -> {..., "endpoint": ..., "history": [...], "recommendations": [...]}

All three answer in the shape of API Gateway's Lambda proxy integration, ``{"statusCode": 200, "body": "<JSON>"}``,
and read a request either as the event itself (``lambda.invoke``) or from the JSON string in its ``body`` (API
Gateway). Bad requests get 400 (missing or non-integer ids, an unknown ``type``, a bad ``k``), ids the models never
saw get 404, a failing endpoint or S3 read gets 502, missing configuration 500; the body is always
``{"error": "<message>"}``, never a stack trace.

Configuration, in environment variables set when the function is created:
``RATING_ENDPOINT`` and ``RECOMMEND_ENDPOINT`` (SageMaker endpoint names) and ``CATALOGUE_URI``
(``s3://bucket/key`` of the catalogue the notebook writes).

The catalogue is one JSON document: ``users`` (MovieLens user ids; position = the model's ``in0`` token),
``movies`` (``{"id", "title", "genres"}``; position = the ``in1`` token), ``rating_range`` ([lowest, highest]),
``neighbours`` (movie id as a string -> ``[[movie id, cosine similarity], ...]``, most similar first),
``fold_in`` (:func:`fold_in_table`: the embedder's movie vectors) and ``history`` (user id as a string ->
``[[movie id, rating], ...]``, the training ratings: shown next to a user's recommendations and never recommended
again; every user's, or a random sample of whole users at large sizes, see :func:`history_table`). The neighbours
are computed in the notebook, where the embeddings and numpy are at hand: Lambda's Python runtime has no numpy, and a
lookup keeps the function small and its answer instant. The catalogue is read once per container
and kept, as Lambda reuses a container for many invocations.
"""

from __future__ import annotations

import json
import operator
import os
import random

import boto3
from botocore.exceptions import BotoCoreError, ClientError

PREDICTION_TYPES = ("rating", "recommend")
DEFAULT_K = 5
DEFAULT_RECOMMENDATIONS = 10
MAX_RECOMMENDATIONS = 50
RATINGS_PER_PERSON = (3, 10)  # how many movies a new person rates before the fold-in
REGULARISATION = 1.0  # lambda of the fold-in (measured on ml-latest-small, see fold_in)
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


def fold_in_table(movie_ids, vectors, mean: float, endpoint: str, decimals: int = 4) -> dict:
    """The catalogue's ``fold_in`` section: the movies that have a reliable vector, their vectors (rounded to
    ``decimals``, which keeps the JSON small), the mean training rating and the endpoint the vectors came from."""
    return {
        "endpoint": endpoint,
        "mean": round(float(mean), decimals),
        "regularisation": REGULARISATION,
        "movie_ids": [int(movie) for movie in movie_ids],
        "vectors": [[round(float(x), decimals) for x in vector] for vector in vectors],
    }


def history_table(user_ids, movie_ids, ratings, max_ratings: int | None = None, seed: int = 0) -> dict:
    """The catalogue's ``history`` section from three equal-length sequences: user id (string) -> [[movie id, rating], ...].

    With ``max_ratings``, whole users in a random order (``seed``) while their ratings fit in it: the catalogue
    grows with every rating it holds (all of synthetic-20m's 17.3 million training ratings: 236 MB of JSON), and a
    function keeps four to eleven times its JSON once parsed (lists of ratings the most).
    """
    history: dict[str, list] = {}
    for user, movie, rating in zip(user_ids, movie_ids, ratings):
        history.setdefault(str(int(user)), []).append([int(movie), float(rating)])
    if max_ratings is None or sum(map(len, history.values())) <= max_ratings:
        return history
    kept: dict[str, list] = {}
    total = 0
    for user in random.Random(seed).sample(sorted(history, key=int), len(history)):
        if total + len(history[user]) <= max_ratings:
            kept[user] = history[user]
            total += len(history[user])
    return kept


def _solve_positive_definite(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """x with matrix @ x = rhs, by Cholesky decomposition (matrix symmetric positive definite, as K + lambda I is)."""
    n = len(rhs)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            total = matrix[i][j] - sum(lower[i][k] * lower[j][k] for k in range(j))
            lower[i][j] = total**0.5 if i == j else total / lower[j][j]
    forward = []
    for i in range(n):
        forward.append((rhs[i] - sum(lower[i][k] * forward[k] for k in range(i))) / lower[i][i])
    solution = [0.0] * n
    for i in reversed(range(n)):
        solution[i] = (forward[i] - sum(lower[k][i] * solution[k] for k in range(i + 1, n))) / lower[i][i]
    return solution


def _dot(a, b) -> float:
    return sum(map(operator.mul, a, b))


def fold_in(vectors: list[list[float]], ratings: list[float], mean: float, regularisation: float = REGULARISATION):
    """A person the model never saw, placed in its space from the movies they rated: a user vector ``p`` and an
    offset ``c`` by regularised least squares, with the movie vectors ``q_j`` held fixed (one half-step of ALS).

        minimise  sum_j (r_j - mu - c - q_j . p)^2 + lambda (|p|^2 + c^2)      over the rated movies j
        =>  [p; c] = X^T (X X^T + lambda I)^-1 (r - mu),    X = the rows [q_j, 1]

    and the predicted rating of any movie m is ``mu + c + q_m . p``. The second line is the ridge solution
    (X^T X + lambda I)^-1 X^T (r - mu) rewritten with the identity (X^T X + lambda I)^-1 X^T = X^T (X X^T + lambda I)^-1:
    an n x n system for n rated movies instead of one per vector dimension, small enough for pure Python (Lambda's
    runtime has no numpy). There is no per-movie bias: the embedder (comparator ``hadamard``) learns none, and a
    movie's popularity is a direction of its vector; adding shrunk mean-rating biases made the fold-in agree less
    with the embedder's own ranking of known users (see the Lab 2 README).

    Args: ``vectors`` of the rated movies, their ``ratings``, the training ``mean`` (mu) and ``regularisation`` (lambda).
    Returns: ``(p, c)``.
    """
    rows = [[float(x) for x in vector] + [1.0] for vector in vectors]
    gram = [[_dot(a, b) + (regularisation if i == j else 0.0) for j, b in enumerate(rows)] for i, a in enumerate(rows)]
    weights = _solve_positive_definite(gram, [float(r) - mean for r in ratings])
    combined = [sum(w * row[d] for w, row in zip(weights, rows)) for d in range(len(rows[0]))]
    return combined[:-1], combined[-1]


def rank_folded_in(table: dict, rated: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The ``k`` movies of a ``fold_in`` table with the highest predicted rating for a person who gave ``rated``
    (movie id -> rating; every id must be in the table), excluding those: ``[(movie id, predicted rating), ...]``."""
    row_of = {movie: row for row, movie in enumerate(table["movie_ids"])}
    vectors = table["vectors"]
    user, offset = fold_in(
        [vectors[row_of[m]] for m in rated], list(rated.values()), table["mean"], table["regularisation"]
    )
    base = table["mean"] + offset
    scored = [
        (base + _dot(vector, user), movie) for movie, vector in zip(table["movie_ids"], vectors) if movie not in rated
    ]
    scored.sort(reverse=True)
    return [(movie, score) for score, movie in scored[:k]]


def _person_ratings(request: dict, catalogue: dict) -> dict[int, float]:
    """The ``ratings`` field checked: 3-10 entries ``{"movie_id": int, "rating": number}`` of distinct movies that
    have a vector, each rating on the catalogue's scale."""
    given = request["ratings"]
    fewest, most = RATINGS_PER_PERSON
    if not isinstance(given, list):
        raise RequestError(
            400,
            f'\'ratings\' must be a list of {{"movie_id", "rating"}} objects, got {json.dumps(given, default=repr)}',
        )
    if not fewest <= len(given) <= most:
        raise RequestError(400, f"rate between {fewest} and {most} movies, got {len(given)}")
    lowest, highest = catalogue["rating_range"]
    has_vector = set(catalogue["fold_in"]["movie_ids"])
    rated: dict[int, float] = {}
    for entry in given:
        if not isinstance(entry, dict):
            raise RequestError(
                400, f'each rating must be an object {{"movie_id", "rating"}}, got {json.dumps(entry, default=repr)}'
            )
        movie_id = _integer(entry, "movie_id")
        rating = entry.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int | float) or not lowest <= rating <= highest:
            raise RequestError(
                400,
                f"the rating of movie {movie_id} must be a number from {lowest:g} to {highest:g}, got {json.dumps(rating, default=repr)}",
            )
        _token(catalogue["movie_token"], "movie_id", movie_id)
        if movie_id not in has_vector:
            raise RequestError(
                404, f"movie_id {movie_id} has too few ratings for a reliable vector: rate another movie"
            )
        if movie_id in rated:
            raise RequestError(400, f"movie_id {movie_id} is rated twice")
        rated[movie_id] = float(rating)
    return rated


def _listing(catalogue: dict, movie_id: int, **extra) -> dict:
    movie = catalogue["movies"][catalogue["movie_token"][movie_id]]
    return {"movie_id": movie_id, "title": movie["title"], "genres": movie["genres"], **extra}


def _known_user(catalogue: dict, user_id: int, k: int) -> dict:
    """A known user's history and the rating endpoint's top ``k`` among the movies with a vector they have not rated."""
    token = _token(catalogue["user_token"], "user_id", user_id)
    histories = catalogue.get("history")
    if histories is None:
        raise RequestError(502, "the catalogue has no history section: the notebook builds it with history_table")
    if str(user_id) not in histories:
        examples = ", ".join(list(histories)[:3])
        raise RequestError(
            404,
            f"user_id {user_id}'s ratings are not in the catalogue, which keeps the ratings of {len(histories):,} "
            f"users at this dataset's size (for example user_id {examples})",
        )
    history = histories[str(user_id)]
    seen = {movie for movie, _ in history}
    candidates = [movie for movie in catalogue["fold_in"]["movie_ids"] if movie not in seen]
    endpoint = _setting("RATING_ENDPOINT")
    runtime = _cached("runtime", lambda: boto3.client("sagemaker-runtime"))
    instances = [{"in0": [token], "in1": [catalogue["movie_token"][movie]]} for movie in candidates]
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, Body=json.dumps({"instances": instances}), ContentType=JSON, Accept=JSON
        )
        scores = [float(p["scores"][0]) for p in json.loads(answer["Body"].read())["predictions"]]
    except (ClientError, BotoCoreError) as error:
        raise RequestError(502, f"endpoint {endpoint} failed: {error}") from None
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise RequestError(502, f"endpoint {endpoint} answered in an unexpected format: {error!r}") from None
    best = sorted(zip(scores, candidates), reverse=True)[:k]
    return {
        "user_id": user_id,
        "model": "the rating regressor, asked for every movie the user has not rated",
        "endpoint": endpoint,
        "history": [
            _listing(catalogue, movie, rating=rating) for movie, rating in sorted(history, key=lambda h: -h[1])
        ],
        "recommendations": [_listing(catalogue, movie, score=round(score, 3)) for score, movie in best],
    }


def _recommend(request: dict) -> dict:
    if ("ratings" in request) == ("user_id" in request):
        raise RequestError(
            400, "give either 'ratings' (a new person's ratings) or 'user_id' (a known user), not both or neither"
        )
    k = _integer(request, "k", DEFAULT_RECOMMENDATIONS)
    if not 1 <= k <= MAX_RECOMMENDATIONS:
        raise RequestError(400, f"'k' must be between 1 and {MAX_RECOMMENDATIONS}, got {k}")
    catalogue = _catalogue()
    if "fold_in" not in catalogue:
        raise RequestError(502, "the catalogue has no fold_in section: the notebook builds it with fold_in_table")
    if "user_id" in request:
        return _known_user(catalogue, _integer(request, "user_id"), k)
    rated = _person_ratings(request, catalogue)
    table = catalogue["fold_in"]
    return {
        "model": "fold-in: a user vector by regularised least squares on the embedder's movie vectors",
        "endpoint": table["endpoint"],
        "recommendations": [
            _listing(catalogue, movie, score=round(score, 3)) for movie, score in rank_folded_in(table, rated, k)
        ],
    }


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


def recommend_handler(event, context=None) -> dict:
    """The top ``k`` movies (default 10) for a new person's ``ratings`` (fold-in) or a known ``user_id`` (endpoint)."""
    return _handle(_recommend, event)
