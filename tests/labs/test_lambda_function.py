"""Lab 2's Lambda handlers (lambda_function.py): good and bad events, with stubbed SageMaker Runtime and S3 clients."""

import importlib.util
import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

SCRIPT = Path(__file__).resolve().parents[2] / "Lab2 - Introduction to Object2Vec" / "lambda_function.py"
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


def load_module():
    spec = importlib.util.spec_from_file_location("lab2_lambda_function", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lambda_function = load_module()


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
