"""Screenshot Lab 2's demo page with real recommendations: run ``python images/demo_screenshot.py``.

Writes ``demo.png`` next to this script from a real local run: it starts an emulator of its own, trains one
Object2Vec model on ml-latest-small (Lab 2's embedder: its quick settings, comparator ``hadamard``), deploys it,
writes the catalogue as the notebook does, serves the demo page in process, and has headless Chromium (Debian's
``chromium`` and ``chromium-driver``) rate five movies, ask for ten recommendations, open one movie's neighbours
and search a title whose sequels have too few ratings to be rated (greyed out, with the reason). Everything it made is gone when it ends. Takes about two minutes on 2 cores.

The browser tests (tests/labs/test_demo_browser.py) run the same pipeline on tiny data.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "Lab2 - Introduction to Object2Vec"
OUTPUT = Path(__file__).with_name("demo.png")
IMAGE = "382416733822.dkr.ecr.{region}.amazonaws.com/object2vec:1"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
EMBEDDER = {  # Lab 2's quick embedder: the regressor's settings with comparator "hadamard"
    "enc0_network": "pooled_embedding",
    "enc1_network": "pooled_embedding",
    "enc0_max_seq_len": 1,
    "enc1_max_seq_len": 1,
    "enc_dim": 256,
    "mlp_dim": 256,
    "mlp_layers": 1,
    "mlp_activation": "tanh",
    "output_layer": "mean_squared_error",
    "comparator_list": "hadamard",
    "optimizer": "adam",
    "learning_rate": 0.001,
    "mini_batch_size": 256,
    "epochs": 3,
}
SCREENSHOT_RATINGS = {  # five movies a person might know, and their stars
    "Toy Story (1995)": 5,
    "Lion King, The (1994)": 4.5,
    "Terminator, The (1984)": 1.5,
    "Aladdin (1992)": 4,
    "Alien (1979)": 1,
}


def lab2_module(name: str):
    """A module of the Lab 2 folder (``lambda_function``, ``demo_server``), imported from its file."""
    from common.labs import load_lab_module

    return load_lab_module("lab2", name)


def _wait(read, done, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout} s: {value}")
        time.sleep(0.2)
    return value


def deploy_lab2(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    run_id: str,
    bucket: str,
    hyperparameters: dict,
    min_ratings: int,
    role_arn: str,
    dataset: str,
) -> dict:
    """Lab 2's path in brief, against whatever the environment's AWS endpoints point at: one Object2Vec job on
    ``ratings`` (all of them: this is a demo, not an evaluation), its endpoint ``<run_id>-regressor``, the
    vectors of movies with at least ``min_ratings`` ratings, their 10 nearest neighbours, and the catalogue at
    ``s3://<bucket>/<run_id>/lambda/catalogue.json``. Returns the catalogue."""
    from common import records

    lambda_function = lab2_module("lambda_function")
    s3, sm, runtime = boto3.client("s3"), boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
    user_index, item_index = pd.Index(np.unique(ratings.user_id)), pd.Index(movies.item_id)
    buffer = io.BytesIO()
    records.write_jsonlines_pairs(
        buffer,
        user_index.get_indexer(ratings.user_id),
        item_index.get_indexer(ratings.item_id),
        ratings.rating.to_numpy(),
    )
    s3.put_object(Bucket=bucket, Key=f"{run_id}/train/pairs.jsonl", Body=buffer.getvalue())
    name = f"{run_id}-regressor"
    hp = {**hyperparameters, "enc0_vocab_size": len(user_index), "enc1_vocab_size": len(item_index)}
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=role_arn,
        HyperParameters={k: str(v) for k, v in hp.items()},
        AlgorithmSpecification={"TrainingImage": IMAGE.format(region=sm.meta.region_name), "TrainingInputMode": "File"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "ContentType": "application/jsonlines",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{run_id}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{run_id}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 1800},
    )
    job = _wait(
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda j: j["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
    )
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"training job {name}: {job.get('FailureReason')}")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={
            "Image": job["AlgorithmSpecification"]["TrainingImage"],
            "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    _wait(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda status: status != "Creating")

    counts = np.bincount(item_index.get_indexer(ratings.item_id), minlength=len(item_index))
    reliable = np.flatnonzero(counts >= min_ratings)
    vectors = []
    for start in range(0, len(reliable), 100):
        body = json.dumps({"instances": [{"in1": [int(m)]} for m in reliable[start : start + 100]]})
        answer = runtime.invoke_endpoint(
            EndpointName=name, Body=body, ContentType="application/json", Accept="application/json"
        )
        vectors += [p["embeddings"] for p in json.loads(answer["Body"].read())["predictions"]]
    vectors = np.array(vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :10]
    reliable_ids = item_index[reliable].tolist()
    catalogue = {
        "dataset": dataset,
        "rating_range": [float(ratings.rating.min()), float(ratings.rating.max())],
        "users": user_index.tolist(),
        "movies": movies[["item_id", "title", "genres"]].rename(columns={"item_id": "id"}).to_dict("records"),
        "neighbours": {
            str(movie): [[reliable_ids[j], round(float(similarity[i, j]), 4)] for j in nearest[i]]
            for i, movie in enumerate(reliable_ids)
        },
        "fold_in": lambda_function.fold_in_table(reliable_ids, vectors, ratings.rating.mean(), name),
        "history": lambda_function.history_table(ratings.user_id, ratings.item_id, ratings.rating),
    }
    s3.put_object(Bucket=bucket, Key=f"{run_id}/lambda/catalogue.json", Body=json.dumps(catalogue).encode())
    return catalogue


def chrome(width: int = 1400, height: int = 1000, offline: bool = False):
    """Headless Chromium from Debian's packages, driven by its chromedriver: never Selenium Manager, no download.

    ``offline`` resolves no host name, so a page that needs the network shows it.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        *(["--host-resolver-rules=MAP * ~NOTFOUND"] if offline else []),
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


class DemoPage:
    """What a person does on the demo page, one method per action, each waiting for the page's answer."""

    def __init__(self, driver, url: str, timeout: float = 30.0):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.wait = driver, WebDriverWait(driver, timeout)
        driver.get(url)
        self.wait.until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true")

    def _id(self, element_id: str):
        return self.driver.find_element("id", element_id)

    def items(self, list_id: str) -> list[str]:
        return [item.text for item in self._id(list_id).find_elements("tag name", "li")]

    def search(self, query: str) -> list[str]:
        box = self._id("query")
        box.clear()
        box.send_keys(query + "\n")
        self.wait.until(lambda d: self.items("search-results") or self._id("search-error").text)
        return self.items("search-results")

    def result(self, title: str):
        """Search for ``title`` and return its entry among the results (an element with its select and buttons)."""
        self.search(title.split(" (")[0])
        for item in self._id("search-results").find_elements("tag name", "li"):
            if item.find_element("css selector", "button.link").text == title:
                return item
        raise LookupError(f"{title!r} is not among the search results")

    def rate(self, title: str, stars: float) -> None:
        """Search for ``title`` and rate that exact title.

        Raises:
            ValueError: the page does not offer to rate it; the message is the page's reason.
        """
        from selenium.webdriver.support.ui import Select

        item = self.result(title)
        button = item.find_element("css selector", f'button[aria-label="Rate {title}"]')
        if not button.is_enabled():
            raise ValueError(f"{title!r} {item.find_element('css selector', '.reason').text}")
        Select(item.find_element("tag name", "select")).select_by_value(str(float(stars)).removesuffix(".0"))
        button.click()

    def recommend(self) -> list[str]:
        self._id("recommend").click()
        self.wait.until(lambda d: self.items("recommendations") or self._id("recommend-error").text)
        return self.items("recommendations")

    def neighbours(self, list_id: str, position: int = 0) -> list[str]:
        self._id(list_id).find_elements("css selector", "button.link")[position].click()
        self.wait.until(lambda d: self.items("neighbours") or self._id("neighbours-error").text)
        return self.items("neighbours")

    def known_user(self, user_id: str) -> tuple[list[str], list[str]]:
        box = self._id("user-id")
        box.clear()
        box.send_keys(user_id + "\n")
        self.wait.until(lambda d: self.items("user-recommendations") or self._id("user-error").text)
        return self.items("user-history"), self.items("user-recommendations")

    def text(self, element_id: str) -> str:
        return self._id(element_id).text


def main() -> None:
    sys.path[:0] = [str(ROOT), str(LAB)]  # the workshop's packages, and the Lab 2 folder as the notebook sees it
    import sagemaker_emulator
    from common import data

    emulator = sagemaker_emulator.start()
    try:
        environment = {
            "AWS_ENDPOINT_URL": emulator.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            **emulator.credentials.as_environment(),
        }
        os.environ.update(environment)
        boto3.client("s3").create_bucket(Bucket="lab2-demo")
        role = "arn:aws:iam::123456789012:role/SageMakerRole"
        ds = data.load_dataset("ml-latest-small")
        run_id = "lab2-demo"
        catalogue = deploy_lab2(ds.ratings, ds.items, run_id, "lab2-demo", EMBEDDER, 20, role, ds.name)
        demo_server = lab2_module("demo_server")
        call, _ = demo_server.functions_for(run_id, "local", "lab2-demo")
        with demo_server.start(call, catalogue, run_id) as demo:
            driver = chrome()
            try:
                page = DemoPage(driver, demo.url)
                for title, stars in SCREENSHOT_RATINGS.items():
                    page.rate(title, stars)
                page.search("lion king")  # two sequels with 2 ratings each: greyed out, with the reason
                page.recommend()
                page.neighbours("recommendations", 0)
                driver.execute_script("window.scrollTo(0, 0)")
                content = driver.execute_script("return document.documentElement.scrollHeight")
                chrome_height = 1000 - driver.execute_script("return window.innerHeight")
                driver.set_window_size(1400, content + chrome_height)  # the whole page, no scroll bar
                driver.save_screenshot(str(OUTPUT))
                print(f"wrote {OUTPUT}: {page.text('recommend-meta')}")
            finally:
                driver.quit()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
