"""Lab 2's demo page in a real headless Chromium, against a real (tiny) Object2Vec model in the test emulator.

One module-wide setup: tiny planted ratings (three taste groups of movies), one Object2Vec job and endpoint
trained and deployed in the emulator through images/demo_screenshot.py's pipeline (the one the screenshot uses),
the catalogue in the emulator's S3, the handlers of lambda_function.py called in process as in local mode, and
the demo server. The tests then do what a person does on the page. Debian's chromium and chromium-driver are
required (``.ci/run`` installs them); Selenium Manager must never run, so it is made to fail here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from common.labs import load_file, load_lab_module

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "Lab2 - Introduction to Object2Vec"
BUCKET, RUN_ID = "demo-tests", "lab2-demo-test"
JSON = "application/json"
GROUPS = ("Cartoon", "Space", "Ghost")  # a taste group of 8 movies each, plus one movie almost nobody rated
TINY = {
    "enc0_network": "pooled_embedding",
    "enc1_network": "pooled_embedding",
    "enc0_max_seq_len": 1,
    "enc1_max_seq_len": 1,
    "enc_dim": 16,
    "mlp_dim": 16,
    "mlp_layers": 1,
    "mlp_activation": "tanh",
    "output_layer": "mean_squared_error",
    "comparator_list": "hadamard",
    "learning_rate": 0.01,
    "mini_batch_size": 32,
    "epochs": 10,
}


screenshot = load_file(ROOT / "images" / "demo_screenshot.py", "demo_screenshot")


def planted_ratings(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """45 users, 15 per taste group, each rating 6 movies of their group (4-5 stars) and 6 others (1-2.5)."""
    rng = np.random.default_rng(seed)
    movies = [
        {"item_id": 10 * g + i + 1, "title": f"{group} Story {i + 1} ({1990 + i})", "genres": [group]}
        for g, group in enumerate(GROUPS)
        for i in range(8)
    ]
    movies.append({"item_id": 999, "title": "Rarely Rated Story (2001)", "genres": ["Drama"]})
    rows = []
    for user in range(1, 46):
        group = (user - 1) % 3
        own = [10 * group + i + 1 for i in rng.choice(8, 6, replace=False)]
        others = [m["item_id"] for m in movies[:24] if (m["item_id"] - 1) // 10 != group]
        for movie in own:
            rows.append((user, movie, float(rng.choice([4.0, 4.5, 5.0]))))
        for movie in rng.choice(others, 6, replace=False):
            rows.append((user, int(movie), float(rng.choice([1.0, 1.5, 2.0, 2.5]))))
    rows.append((1, 999, 3.0))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]), pd.DataFrame(movies)


@pytest.fixture(scope="module")
def deployed(running_emulator):
    """The tiny lab in the emulator, with the process environment local mode gives a notebook."""
    running_emulator.reset()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", running_emulator.url)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name, value in running_emulator.credentials.as_environment().items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.syspath_prepend(str(LAB))
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        ratings, movies = planted_ratings()
        role = "arn:aws:iam::123456789012:role/SageMakerRole"
        catalogue = screenshot.deploy_lab2(ratings, movies, RUN_ID, BUCKET, TINY, 3, role, "planted")
        yield ratings, catalogue
    running_emulator.reset()


@pytest.fixture(scope="module")
def demo(deployed):
    demo_server = load_lab_module("lab2", "demo_server", "lab2_demo_server_browser")
    with pytest.MonkeyPatch.context() as patch:
        call, catalogue = demo_server.functions_for(RUN_ID, "local", BUCKET)  # the command line's way, local mode
        patch.setattr(demo_server, "functions_for", None)
        assert catalogue == deployed[1]
        import lambda_function

        lambda_function._cache.clear()
        with demo_server.start(call, catalogue, RUN_ID) as server:
            yield server
        lambda_function._cache.clear()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", lambda *a, **k: pytest.fail("Selenium Manager was invoked"))
        driver = screenshot.chrome()
        yield driver
        driver.quit()


@pytest.fixture
def page(browser, demo):
    return screenshot.DemoPage(browser, demo.url)


def test_search_rate_five_and_get_ten_recommendations_of_the_persons_taste(page):
    assert len(page.search("cartoon story")) == 8
    for i, stars in zip((1, 2, 3), (5, 4.5, 5)):
        page.rate(f"Cartoon Story {i} ({1989 + i})", stars)
    page.rate("Space Story 1 (1990)", 1)
    page.rate("Ghost Story 2 (1991)", 1.5)
    assert page.text("ratings-hint") == "5 rated; rate 3 to 10 movies."
    recommendations = page.recommend()
    assert len(recommendations) == 10
    assert sum("Cartoon" in line for line in recommendations[:3]) >= 2  # planted taste comes first
    assert all("predicted" in line and "★" in line for line in recommendations)
    meta = page.text("recommend-meta")
    assert f"answered by {RUN_ID}-recommend in" in meta and f"endpoint: {RUN_ID}-regressor" in meta


def test_clicking_a_recommendation_opens_its_neighbours(page):
    for title in ("Cartoon Story 1 (1990)", "Cartoon Story 2 (1991)", "Space Story 3 (1992)"):
        page.rate(title, 4)
    first = page.recommend()[0].split(" Animation")[0].split(" Cartoon")[0]
    neighbours = page.neighbours("recommendations", 0)
    assert len(neighbours) == 10
    assert page.text("neighbours-of").startswith("Closest to")
    assert first and all("cosine" in line for line in neighbours)
    assert f"answered by {RUN_ID}-similar" in page.text("neighbours-meta")


def test_a_known_user_shows_history_next_to_recommendations(page, deployed):
    ratings, catalogue = deployed
    assert page.driver.find_element("id", "user-id").get_attribute("placeholder") == "e.g. 1"
    assert "1" in catalogue["history"]
    history, recommendations = page.known_user("2")
    assert len(history) == min(15, (ratings.user_id == 2).sum())
    assert len(recommendations) == 10
    rated_titles = {line.split(" Cartoon")[0] for line in history}
    assert not rated_titles & {line.split(" Cartoon")[0] for line in recommendations}
    assert f"endpoint: {RUN_ID}-regressor" in page.text("user-meta")


def test_too_few_ratings_is_explained(page):
    page.rate("Cartoon Story 1 (1990)", 5)
    page.rate("Cartoon Story 2 (1991)", 5)
    assert page.recommend() == []
    assert page.text("recommend-error") == "rate between 3 and 10 movies, got 2"


def test_a_movie_the_model_cannot_place_is_greyed_out_with_the_reason_and_named_by_title(page):
    title = "Rarely Rated Story (2001)"
    item = page.result(title)
    assert not item.find_element("tag name", "select").is_enabled()
    assert "unrateable" in item.get_attribute("class").split()
    reason = "cannot be rated: too few ratings in the data for the model to place it"
    with pytest.raises(ValueError, match=re.escape(f"{title!r} {reason}")):
        page.rate(title, 4)
    assert page.text("ratings-hint") == "0 rated; rate 3 to 10 movies."
    page.search("rarely")
    assert page.neighbours("search-results", 0) == []
    assert page.text("neighbours-error") == f"“{title}” has too few ratings for a reliable embedding"


def test_an_unknown_user_and_a_bad_id_are_explained(page):
    assert page.known_user("4242") == ([], [])
    assert page.text("user-error") == "unknown user_id 4242: the model was not trained with it"
    assert page.search("no such title") == ["No title contains “no such title”."]


# The cell proposed for Lab 2's notebook after section 9, word for word; the test runs it with stand-ins for the
# notebook's names (its ``invoke`` helper, ``per_user``, the token indexes, the embedder endpoint).
FOLD_IN_CHECK_CELL = """
vector_ids = set(catalogue["fold_in"]["movie_ids"])
typical = per_user.sub(per_user.median()).abs().sort_values(kind="stable").index[:5]   # 5 users of median activity
rows = {}
for user_id in typical:
    rated = {movie: stars for movie, stars in catalogue["history"][str(user_id)] if movie in vector_ids}
    folded = lambda_function.rank_folded_in(catalogue["fold_in"], rated, k=len(vector_ids))   # every unrated movie
    candidates = [movie for movie, _ in folded]
    model = [p["scores"][0] for p in invoke(embedder_endpoint, [{"in0": [int(user_index.get_loc(user_id))],
                                                                 "in1": [int(item_index.get_loc(m))]} for m in candidates],
                                            requests_per_call["pairs"])]
    model_top = {candidates[i] for i in np.argsort(model)[::-1][:10]}
    rows[user_id] = {"ratings folded in": len(rated), "top-10 overlap": len(model_top & set(candidates[:10])),
                     "rank correlation": pd.Series([s for _, s in folded]).corr(pd.Series(model), method="spearman")}
fold_in_check = pd.DataFrame(rows).T
fold_in_check
"""


def test_fold_in_agrees_with_the_model_for_known_users(deployed):
    """The proposed notebook cell on the tiny model: known users folded in from their ratings rank the unrated
    movies much as the endpoint ranks them for those users."""
    ratings, catalogue = deployed
    runtime = boto3.client("sagemaker-runtime")

    def invoke(endpoint, instances, per_request):  # the notebook's helper (section 6), on boto3
        predictions = []
        for start in range(0, len(instances), per_request):
            body = json.dumps({"instances": instances[start : start + per_request]})
            answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=JSON, Accept=JSON)
            predictions += json.loads(answer["Body"].read())["predictions"]
        return predictions

    notebook = {
        "catalogue": catalogue,
        "lambda_function": load_lab_module("lab2", "lambda_function", "lab2_lambda_function_check"),
        "per_user": ratings.groupby("user_id").size(),
        "invoke": invoke,
        "embedder_endpoint": f"{RUN_ID}-regressor",
        "user_index": pd.Index(catalogue["users"]),
        "item_index": pd.Index([m["id"] for m in catalogue["movies"]]),
        "requests_per_call": {"pairs": 7},
        "np": np,
        "pd": pd,
    }
    exec(FOLD_IN_CHECK_CELL, notebook)
    check = notebook["fold_in_check"]
    assert len(check) == 5
    assert check["rank correlation"].median() > 0.5, check


def test_a_deleted_endpoint_is_explained_not_traced(page, deployed):
    boto3.client("sagemaker").delete_endpoint(EndpointName=f"{RUN_ID}-regressor")
    assert page.known_user("2") == ([], [])
    message = page.text("user-error")
    assert message.startswith(f"endpoint {RUN_ID}-regressor failed: An error occurred")
    assert "Traceback" not in message and "File " not in message


def test_a_run_id_without_its_endpoints_is_refused_with_what_to_do(deployed):
    """After the test above deleted the regressor, as the notebook's cleanup does."""
    demo_server = load_lab_module("lab2", "demo_server", "lab2_demo_server_checks")
    deleted = f"^The endpoint {RUN_ID}-regressor is (Deleting|deleted): the demo needs the endpoint of Lab 2's run"
    with pytest.raises(demo_server.DemoUnavailable, match=deleted):  # deleted, or on its way: either is refused
        demo_server.check_run(RUN_ID, BUCKET)
    with pytest.raises(demo_server.DemoUnavailable, match=f"^No Lab 2 run 'lab2-nope' here: s3://{BUCKET}/lab2-nope/"):
        demo_server.check_run("lab2-nope", BUCKET)
