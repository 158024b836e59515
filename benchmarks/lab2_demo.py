"""Lab 2's demo page: how long each request the page makes takes, and how closely the fold-in follows the model.

Starts an emulator of its own, trains and deploys Lab 2's embedder on ml-latest-small with the pipeline of
``images/demo_screenshot.py``, serves the demo, then times every API call the page makes over HTTP on loopback
(p50 and p90 of ``--repeats`` calls; the first recommend call also reads the catalogue, so it is shown apart).
Last, for ``--users`` users with about the median number of ratings, it folds each in from their own ratings and
compares the ranking with the endpoint's for that user (Spearman correlation over every unrated movie with a
vector, and the overlap of the two top-10 lists): the check Lab 2 makes.

    .venv/bin/python benchmarks/lab2_demo.py [--repeats 20] [--users 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "Lab2 - Introduction to Object2Vec"
RUN_ID, BUCKET = "lab2-bench", "lab2-bench"


def timed(port: int, method: str, path: str, body: dict | None = None) -> tuple[float, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    started = time.perf_counter()
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    content = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    answer = json.loads(content) if content.startswith(b"{") else {}
    if response.status != 200 or answer.get("status", 200) != 200:
        raise RuntimeError(f"{method} {path} -> {response.status}: {content[:300]!r}")
    return elapsed, answer


def agreement(catalogue: dict, ratings: pd.DataFrame, users: int, lambda_function) -> pd.DataFrame:
    runtime = boto3.client("sagemaker-runtime")
    user_index, item_index = pd.Index(catalogue["users"]), pd.Index([m["id"] for m in catalogue["movies"]])
    vector_ids = set(catalogue["fold_in"]["movie_ids"])
    per_user = ratings.groupby("user_id").size()
    typical = per_user.sub(per_user.median()).abs().sort_values(kind="stable").index[:users]
    rows = {}
    for user_id in typical:
        rated = {m: r for m, r in catalogue["history"][str(user_id)] if m in vector_ids}
        folded = lambda_function.rank_folded_in(catalogue["fold_in"], rated, k=len(vector_ids))
        candidates = [m for m, _ in folded]
        instances = [
            {"in0": [int(user_index.get_loc(user_id))], "in1": [int(item_index.get_loc(m))]} for m in candidates
        ]
        answer = runtime.invoke_endpoint(
            EndpointName=f"{RUN_ID}-regressor",
            Body=json.dumps({"instances": instances}),
            ContentType="application/json",
            Accept="application/json",
        )
        model = [p["scores"][0] for p in json.loads(answer["Body"].read())["predictions"]]
        model_top = {candidates[i] for i in np.argsort(model)[::-1][:10]}
        rows[user_id] = {
            "ratings": len(rated),
            "spearman": pd.Series([s for _, s in folded]).corr(pd.Series(model), method="spearman"),
            "top-10 overlap": len(model_top & set(candidates[:10])),
        }
    return pd.DataFrame(rows).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(LAB)]
    import sagemaker_emulator
    from common import data
    from common.labs import load_file, load_lab_module

    screenshot = load_file(ROOT / "images" / "demo_screenshot.py", "demo_screenshot")
    emulator = sagemaker_emulator.start()
    try:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": emulator.url,
                "AWS_DEFAULT_REGION": "us-east-1",
                **emulator.credentials.as_environment(),
            }
        )
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        ds = data.load_dataset("ml-latest-small")
        started = time.perf_counter()
        catalogue = screenshot.deploy_lab2(
            ds.ratings,
            ds.items,
            RUN_ID,
            BUCKET,
            screenshot.EMBEDDER,
            20,
            "arn:aws:iam::123456789012:role/SageMakerRole",
            ds.name,
        )
        size = len(json.dumps(catalogue)) / 1e6
        print(
            f"train + deploy + catalogue: {time.perf_counter() - started:.0f} s; catalogue {size:.2f} MB "
            f"({len(catalogue['fold_in']['movie_ids'])} movie vectors of {len(catalogue['fold_in']['vectors'][0])})"
        )
        demo_server = load_lab_module("lab2", "demo_server")
        import lambda_function  # the Lab 2 folder is on sys.path, as in the notebook

        call, _ = demo_server.functions_for(RUN_ID, "local", BUCKET)
        five = [{"movie_id": m, "rating": r} for m, r in zip(catalogue["fold_in"]["movie_ids"][:5], (5, 4.5, 1, 4, 2))]
        requests = {
            "GET  / (the page)": ("GET", "/", None),
            "GET  /api/search?q=star": ("GET", "/api/search?q=star", None),
            "POST /api/recommend, 5 ratings (fold-in)": ("POST", "/api/recommend", {"ratings": five, "k": 10}),
            "POST /api/recommend, a known user (endpoint)": ("POST", "/api/recommend", {"user_id": 414, "k": 10}),
            "POST /api/similar": ("POST", "/api/similar", {"movie_id": five[0]["movie_id"], "k": 10}),
        }
        with demo_server.start(call, catalogue, RUN_ID) as demo:
            first, _ = timed(demo.port, *requests["POST /api/recommend, 5 ratings (fold-in)"])
            print(f"first recommend call (the handler reads the catalogue from S3): {first:.0f} ms")
            print(f"{'request':<46} {'p50 ms':>8} {'p90 ms':>8}  (handler's own p50 ms)")
            for name, request in requests.items():
                results = [timed(demo.port, *request) for _ in range(args.repeats)]
                totals = sorted(t for t, _ in results)
                inner = [a["milliseconds"] for _, a in results if "milliseconds" in a]
                own = f"{statistics.median(inner):.1f}" if inner else "-"
                print(
                    f"{name:<46} {statistics.median(totals):8.1f} {totals[int(0.9 * (len(totals) - 1))]:8.1f}  ({own})"
                )
        table = agreement(catalogue, ds.ratings, args.users, lambda_function)
        print(table.round(3).to_string())
        print(
            f"median Spearman {table.spearman.median():.3f} (min {table.spearman.min():.3f}); "
            f"top-10 overlap mean {table['top-10 overlap'].mean():.1f} (min {table['top-10 overlap'].min():.0f})"
        )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
