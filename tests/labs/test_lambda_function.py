"""Lab 2's Lambda handlers (lambda_function.py): good and bad events, with stubbed SageMaker Runtime and S3 clients."""

import io
import json

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from common.labs import load_lab_module

CATALOGUE_URI = "s3://workshop-bucket/lab2/lambda/catalogue.json"
CATALOGUE = {
    "dataset": "hand-made",
    "rating_range": [0.5, 5.0],
    "users": [7, 42],
    "movies": [
        {"id": 1, "title": "Toy Story (1995)", "genres": ["Animation", "Children"]},
        {"id": 260, "title": "Star Wars (1977)", "genres": ["Action", "Sci-Fi"]},
        {"id": 1196, "title": "Empire Strikes Back (1980)", "genres": ["Action", "Sci-Fi"]},
        {"id": 5000, "title": "Rarely Rated (2001)", "genres": ["Drama"]},
    ],
    "neighbours": {
        "260": [[1196, 0.91], [1, 0.12]],
        "1196": [[260, 0.91], [1, 0.08]],
        "1": [[260, 0.12], [1196, 0.08]],
    },
}


lambda_function = load_lab_module("lab2", "lambda_function")


def body(payload: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(payload), len(payload))


def client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def aws(monkeypatch):
    """Stubbed runtime and S3 clients in the handler's per-container cache, and the function's environment."""
    monkeypatch.setenv("RATING_ENDPOINT", "lab2-rating")
    monkeypatch.setenv("RECOMMEND_ENDPOINT", "lab2-recommend")
    monkeypatch.setenv("CATALOGUE_URI", CATALOGUE_URI)
    runtime, s3 = client("sagemaker-runtime"), client("s3")
    lambda_function._cache.clear()
    lambda_function._cache.update(runtime=runtime, s3=s3)
    with Stubber(runtime) as runtime_stub, Stubber(s3) as s3_stub:
        yield runtime_stub, s3_stub
        runtime_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()
    lambda_function._cache.clear()


def expect_catalogue(s3_stub, document=CATALOGUE):
    payload = json.dumps(document).encode()
    s3_stub.add_response(
        "get_object", {"Body": body(payload)}, {"Bucket": "workshop-bucket", "Key": "lab2/lambda/catalogue.json"}
    )


def expect_scores(runtime_stub, endpoint: str, user_token: int, movie_token: int, scores: list):
    request = json.dumps({"instances": [{"in0": [user_token], "in1": [movie_token]}]})
    answer = json.dumps({"predictions": [{"scores": scores}]}).encode()
    runtime_stub.add_response(
        "invoke_endpoint",
        {"Body": body(answer), "ContentType": "application/json"},
        {"EndpointName": endpoint, "Body": request, "ContentType": "application/json", "Accept": "application/json"},
    )


def answer(response: dict) -> tuple[int, dict]:
    assert response["headers"] == {"Content-Type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


# ------------------------------------------------------------------------------------------ predict_handler


def test_rating_maps_ids_to_tokens_and_rounds(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    expect_scores(runtime_stub, "lab2-rating", 1, 1, [4.1234])
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 260, "type": "rating"}, None))
    assert status == 200
    assert result == {"user_id": 42, "movie_id": 260, "title": "Star Wars (1977)", "rating": 4.12}


def test_rating_is_clipped_to_the_rating_scale(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    expect_scores(runtime_stub, "lab2-rating", 0, 0, [5.7])
    status, result = answer(lambda_function.predict_handler({"user_id": 7, "movie_id": 1, "type": "rating"}))
    assert (status, result["rating"]) == (200, 5.0)


@pytest.mark.parametrize("probability, recommend", [(0.83, True), (0.31, False)])
def test_recommend_uses_the_probability_of_liked(aws, probability, recommend):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    expect_scores(runtime_stub, "lab2-recommend", 1, 2, [1 - probability, probability])
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 1196, "type": "recommend"}))
    assert status == 200
    assert result == {
        "user_id": 42,
        "movie_id": 1196,
        "title": "Empire Strikes Back (1980)",
        "recommend": recommend,
        "probability": probability,
    }


def test_catalogue_is_read_once_per_container(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)  # one S3 response only: a second read would fail the stubber
    expect_scores(runtime_stub, "lab2-rating", 0, 0, [3.0])
    expect_scores(runtime_stub, "lab2-rating", 1, 0, [4.0])
    assert lambda_function.predict_handler({"user_id": 7, "movie_id": 1, "type": "rating"})["statusCode"] == 200
    assert lambda_function.predict_handler({"user_id": 42, "movie_id": 1, "type": "rating"})["statusCode"] == 200


def test_api_gateway_event_is_read_from_its_body(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    expect_scores(runtime_stub, "lab2-rating", 0, 1, [3.5])
    event = {"httpMethod": "POST", "body": json.dumps({"user_id": 7, "movie_id": 260, "type": "rating"})}
    assert answer(lambda_function.predict_handler(event)) == (
        200,
        {"user_id": 7, "movie_id": 260, "title": "Star Wars (1977)", "rating": 3.5},
    )


@pytest.mark.parametrize(
    "event, message",
    [
        ({"movie_id": 260, "type": "rating"}, "'user_id' is missing: give an integer MovieLens id"),
        ({"user_id": 42, "type": "rating"}, "'movie_id' is missing: give an integer MovieLens id"),
        ({"user_id": "42", "movie_id": 260, "type": "rating"}, "'user_id' must be an integer, got \"42\""),
        ({"user_id": 42, "movie_id": 260.5, "type": "rating"}, "'movie_id' must be an integer, got 260.5"),
        ({"user_id": True, "movie_id": 260, "type": "rating"}, "'user_id' must be an integer, got true"),
        ({"user_id": 42, "movie_id": 260, "type": "stars"}, "'type' must be one of rating, recommend, got \"stars\""),
        ({"user_id": 42, "movie_id": 260}, "'type' must be one of rating, recommend, got null"),
        ([42, 260], "the request must be a JSON object, got list"),
        (
            {"body": "{not json"},
            "the request body is not valid JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
    ],
)
def test_bad_requests_get_400_without_calling_aws(aws, event, message):
    assert answer(lambda_function.predict_handler(event)) == (400, {"error": message})


@pytest.mark.parametrize(
    "event, message",
    [
        ({"user_id": 999, "movie_id": 260, "type": "rating"}, "unknown user_id 999: the model was not trained with it"),
        ({"user_id": 42, "movie_id": 3, "type": "recommend"}, "unknown movie_id 3: the model was not trained with it"),
    ],
)
def test_unknown_ids_get_404(aws, event, message):
    expect_catalogue(aws[1])
    assert answer(lambda_function.predict_handler(event)) == (404, {"error": message})


def test_endpoint_error_gets_502_with_its_message(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    runtime_stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        http_status_code=400,
        service_message="Endpoint lab2-rating of account 123456789012 not found.",
    )
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 260, "type": "rating"}))
    assert status == 502
    assert result == {
        "error": "endpoint lab2-rating failed: An error occurred (ValidationError) when calling the "
        "InvokeEndpoint operation: Endpoint lab2-rating of account 123456789012 not found."
    }


def test_unexpected_endpoint_answer_gets_502(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub)
    runtime_stub.add_response(
        "invoke_endpoint",
        {"Body": body(b'{"predictions": []}'), "ContentType": "application/json"},
        {"EndpointName": ANY, "Body": ANY, "ContentType": ANY, "Accept": ANY},
    )
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 260, "type": "rating"}))
    assert status == 502
    assert result["error"].startswith("endpoint lab2-rating answered in an unexpected format: IndexError")


def test_unreadable_catalogue_gets_502(aws):
    aws[1].add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        http_status_code=404,
        service_message="The specified key does not exist.",
    )
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 260, "type": "rating"}))
    assert status == 502
    assert result == {
        "error": f"the catalogue {CATALOGUE_URI} could not be read: An error occurred (NoSuchKey) when "
        "calling the GetObject operation: The specified key does not exist."
    }


@pytest.mark.parametrize(
    "payload, message",
    [
        (
            b"{not json",
            "is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (b'{"movies": []}', "lacks users or movie ids: KeyError('users')"),
    ],
)
def test_malformed_catalogue_gets_502(aws, payload, message):
    aws[1].add_response("get_object", {"Body": body(payload)}, {"Bucket": ANY, "Key": ANY})
    status, result = answer(lambda_function.similar_movies_handler({"movie_id": 260}))
    assert (status, result) == (502, {"error": f"the catalogue {CATALOGUE_URI} {message}"})


def test_a_non_json_value_is_named_in_the_error(aws):
    class Id:
        def __repr__(self):
            return "Id(42)"

    status, result = answer(lambda_function.predict_handler({"user_id": Id(), "movie_id": 260, "type": "rating"}))
    assert (status, result) == (400, {"error": "'user_id' must be an integer, got \"Id(42)\""})


def test_missing_configuration_gets_500(aws, monkeypatch):
    monkeypatch.delenv("RECOMMEND_ENDPOINT")
    status, result = answer(lambda_function.predict_handler({"user_id": 42, "movie_id": 260, "type": "recommend"}))
    assert (status, result) == (
        500,
        {"error": "the function is not configured: environment variable RECOMMEND_ENDPOINT is not set"},
    )


# ------------------------------------------------------------------------------------ similar_movies_handler


def test_similar_movies_with_titles_most_similar_first(aws):
    expect_catalogue(aws[1])
    status, result = answer(lambda_function.similar_movies_handler({"movie_id": 260, "k": 2}, None))
    assert status == 200
    assert result == {
        "movie_id": 260,
        "title": "Star Wars (1977)",
        "similar": [
            {
                "movie_id": 1196,
                "title": "Empire Strikes Back (1980)",
                "genres": ["Action", "Sci-Fi"],
                "similarity": 0.91,
            },
            {"movie_id": 1, "title": "Toy Story (1995)", "genres": ["Animation", "Children"], "similarity": 0.12},
        ],
    }


def test_similar_movies_default_k(aws, monkeypatch):
    monkeypatch.setattr(lambda_function, "DEFAULT_K", 1)
    expect_catalogue(aws[1])
    status, result = answer(lambda_function.similar_movies_handler({"movie_id": 1196}))
    assert (status, [m["movie_id"] for m in result["similar"]]) == (200, [260])


@pytest.mark.parametrize(
    "event, status, message",
    [
        ({}, 400, "'movie_id' is missing: give an integer MovieLens id"),
        ({"movie_id": "Star Wars"}, 400, "'movie_id' must be an integer, got \"Star Wars\""),
        ({"movie_id": 260, "k": 2.5}, 400, "'k' must be an integer, got 2.5"),
    ],
)
def test_similar_movies_bad_requests_get_400_without_calling_aws(aws, event, status, message):
    assert answer(lambda_function.similar_movies_handler(event)) == (status, {"error": message})


@pytest.mark.parametrize(
    "event, status, message",
    [
        ({"movie_id": 260, "k": 3}, 400, "'k' must be between 1 and 2, got 3"),
        ({"movie_id": 260, "k": 0}, 400, "'k' must be between 1 and 2, got 0"),
        ({"movie_id": 4}, 404, "unknown movie_id 4: the model was not trained with it"),
        ({"movie_id": 5000}, 404, "movie_id 5000 has too few ratings for a reliable embedding"),
    ],
)
def test_similar_movies_out_of_range_or_unknown(aws, event, status, message):
    expect_catalogue(aws[1])
    assert answer(lambda_function.similar_movies_handler(event)) == (status, {"error": message})


# ----------------------------------------------------------------------------- fold-in and recommend_handler

VECTORS = {1: [1.0, 0.0, 0.2], 260: [0.0, 1.0, 0.1], 1196: [0.1, 0.9, 0.0], 2000: [0.8, 0.1, -0.3]}
FOLD_IN_CATALOGUE = {
    **CATALOGUE,
    "movies": [*CATALOGUE["movies"], {"id": 2000, "title": "Another Cartoon (2000)", "genres": ["Animation"]}],
    "fold_in": lambda_function.fold_in_table(list(VECTORS), list(VECTORS.values()), 3.5, "lab2-embedder"),
    "history": lambda_function.history_table([42, 42, 7], [260, 1, 1196], [5.0, 1.0, 4.0]),
}
THREE = [{"movie_id": 260, "rating": 5}, {"movie_id": 1196, "rating": 4.5}, {"movie_id": 1, "rating": 1}]


def test_fold_in_is_the_ridge_solution():
    rng = np.random.default_rng(0)
    vectors, ratings = rng.normal(size=(6, 4)), rng.uniform(0.5, 5, 6)
    user, offset = lambda_function.fold_in(vectors.tolist(), ratings.tolist(), 3.2, regularisation=0.7)
    rows = np.hstack([vectors, np.ones((6, 1))])
    expected = np.linalg.solve(rows.T @ rows + 0.7 * np.eye(5), rows.T @ (ratings - 3.2))  # the primal form
    np.testing.assert_allclose([*user, offset], expected, atol=1e-10)


def test_rank_folded_in_leaves_out_the_rated_movies_and_follows_taste():
    ranked = lambda_function.rank_folded_in(FOLD_IN_CATALOGUE["fold_in"], {260: 5.0, 1: 1.0, 1196: 4.5}, k=5)
    assert [movie for movie, _ in ranked] == [2000]  # the only movie left
    likes_cartoons = lambda_function.rank_folded_in(FOLD_IN_CATALOGUE["fold_in"], {1: 5.0, 260: 1.0, 1196: 1.5}, 5)
    likes_space = lambda_function.rank_folded_in(FOLD_IN_CATALOGUE["fold_in"], {1: 1.0, 260: 5.0, 1196: 4.5}, 5)
    assert likes_cartoons[0][1] > likes_space[0][1]  # the cartoon is predicted higher for the cartoon fan


def test_history_table_groups_by_user():
    assert FOLD_IN_CATALOGUE["history"] == {"42": [[260, 5.0], [1, 1.0]], "7": [[1196, 4.0]]}


def test_a_history_over_its_budget_keeps_whole_users_at_random_within_it():
    users = np.repeat(np.arange(1, 201), np.arange(1, 201) % 7 + 1)  # 200 users with 1 to 7 ratings each
    movies, ratings = np.arange(len(users)) + 1, np.full(len(users), 4.0)
    full = lambda_function.history_table(users, movies, ratings)
    assert lambda_function.history_table(users, movies, ratings, max_ratings=len(users)) == full
    kept = lambda_function.history_table(users, movies, ratings, max_ratings=300, seed=1)
    assert 300 - 7 < sum(map(len, kept.values())) <= 300
    assert all(kept[user] == full[user] for user in kept)  # a kept user has every rating
    assert sorted(kept, key=int) != sorted(full, key=int)[: len(kept)]  # a sample, not the first users
    assert kept == lambda_function.history_table(users, movies, ratings, max_ratings=300, seed=1)


def test_a_known_user_outside_a_sampled_history_gets_404_naming_users_it_has(aws):
    catalogue = {**FOLD_IN_CATALOGUE, "history": {"7": [[1196, 4.0]]}}
    expect_catalogue(aws[1], catalogue)
    status, result = answer(lambda_function.recommend_handler({"user_id": 42}))
    assert (status, result) == (
        404,
        {
            "error": "user_id 42's ratings are not in the catalogue, which keeps the ratings of 1 users at this "
            "dataset's size (for example user_id 7)"
        },
    )


def test_recommend_for_a_known_user_without_a_history_section_gets_502(aws):
    expect_catalogue(aws[1], {key: value for key, value in FOLD_IN_CATALOGUE.items() if key != "history"})
    status, result = answer(lambda_function.recommend_handler({"user_id": 42}))
    assert (status, result["error"]) == (
        502,
        "the catalogue has no history section: the notebook builds it with history_table",
    )


def test_recommend_for_a_new_person(aws):
    expect_catalogue(aws[1], FOLD_IN_CATALOGUE)
    status, result = answer(lambda_function.recommend_handler({"ratings": THREE, "k": 3}))
    assert status == 200
    assert result["endpoint"] == "lab2-embedder"
    assert [(m["movie_id"], m["title"], m["genres"]) for m in result["recommendations"]] == [
        (2000, "Another Cartoon (2000)", ["Animation"])
    ]
    expected = lambda_function.rank_folded_in(FOLD_IN_CATALOGUE["fold_in"], {260: 5.0, 1196: 4.5, 1: 1.0}, 3)
    assert result["recommendations"][0]["score"] == round(expected[0][1], 3)


def test_recommend_for_a_known_user_asks_the_rating_endpoint_for_unrated_movies(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub, FOLD_IN_CATALOGUE)
    request = json.dumps({"instances": [{"in0": [1], "in1": [2]}, {"in0": [1], "in1": [4]}]})  # 1196 and 2000
    runtime_stub.add_response(
        "invoke_endpoint",
        {"Body": body(b'{"predictions": [{"scores": [3.1]}, {"scores": [4.2]}]}'), "ContentType": "application/json"},
        {
            "EndpointName": "lab2-rating",
            "Body": request,
            "ContentType": "application/json",
            "Accept": "application/json",
        },
    )
    status, result = answer(lambda_function.recommend_handler({"user_id": 42, "k": 2}))
    assert status == 200
    assert result["endpoint"] == "lab2-rating"
    assert [(m["movie_id"], m["rating"]) for m in result["history"]] == [(260, 5.0), (1, 1.0)]
    assert [(m["movie_id"], m["score"]) for m in result["recommendations"]] == [(2000, 4.2), (1196, 3.1)]


def test_known_user_with_a_deleted_endpoint_gets_502(aws):
    runtime_stub, s3_stub = aws
    expect_catalogue(s3_stub, FOLD_IN_CATALOGUE)
    runtime_stub.add_client_error(
        "invoke_endpoint", service_error_code="ValidationError", http_status_code=400, service_message="not found."
    )
    status, result = answer(lambda_function.recommend_handler({"user_id": 7}))
    assert (status, result["error"].startswith("endpoint lab2-rating failed:")) == (502, True)


@pytest.mark.parametrize(
    "event, status, message",
    [
        ({"ratings": "5 stars"}, 400, '\'ratings\' must be a list of {"movie_id", "rating"} objects, got "5 stars"'),
        ({"ratings": THREE[:2]}, 400, "rate between 3 and 10 movies, got 2"),
        ({"ratings": THREE * 4}, 400, "rate between 3 and 10 movies, got 12"),
        ({"ratings": [*THREE[:2], 260]}, 400, 'each rating must be an object {"movie_id", "rating"}, got 260'),
        ({"ratings": [*THREE[:2], {"rating": 3}]}, 400, "'movie_id' is missing"),
        ({"ratings": [*THREE[:2], {"movie_id": "1", "rating": 3}]}, 400, "'movie_id' must be an integer, got \"1\""),
        (
            {"ratings": [*THREE[:2], {"movie_id": 1, "rating": 6}]},
            400,
            "the rating of movie 1 must be a number from 0.5 to 5, got 6",
        ),
        ({"ratings": [*THREE[:2], {"movie_id": 1, "rating": True}]}, 400, "must be a number from 0.5 to 5, got true"),
        ({"ratings": [*THREE[:2], {"movie_id": 1}]}, 400, "must be a number from 0.5 to 5, got null"),
        ({"ratings": [*THREE[:2], {"movie_id": 260, "rating": 3}]}, 400, "movie_id 260 is rated twice"),
        (
            {"ratings": [*THREE[:2], {"movie_id": 3, "rating": 3}]},
            404,
            "unknown movie_id 3: the model was not trained with it",
        ),
        (
            {"ratings": [*THREE[:2], {"movie_id": 5000, "rating": 3}]},
            404,
            "movie_id 5000 has too few ratings for a reliable vector",
        ),
        ({"user_id": 999}, 404, "unknown user_id 999: the model was not trained with it"),
        ({"user_id": 4.2}, 400, "'user_id' must be an integer, got 4.2"),
    ],
)
def test_recommend_bad_requests(aws, event, status, message):
    expect_catalogue(aws[1], FOLD_IN_CATALOGUE)
    got_status, result = answer(lambda_function.recommend_handler(event))
    assert got_status == status
    assert message in result["error"]


@pytest.mark.parametrize(
    "event, status, message",
    [
        ({}, 400, "give either 'ratings' (a new person's ratings) or 'user_id' (a known user), not both or neither"),
        ({"ratings": THREE, "user_id": 7}, 400, "give either 'ratings'"),
        ({"ratings": THREE, "k": 0}, 400, "'k' must be between 1 and 50, got 0"),
        ({"ratings": THREE, "k": "ten"}, 400, "'k' must be an integer, got \"ten\""),
    ],
)
def test_recommend_bad_requests_are_refused_before_reading_the_catalogue(aws, event, status, message):
    got_status, result = answer(lambda_function.recommend_handler(event))
    assert got_status == status
    assert message in result["error"]


def test_recommend_without_a_fold_in_section_gets_502(aws):
    expect_catalogue(aws[1])
    status, result = answer(lambda_function.recommend_handler({"ratings": THREE}))
    assert (status, result) == (
        502,
        {"error": "the catalogue has no fold_in section: the notebook builds it with fold_in_table"},
    )
