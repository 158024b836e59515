"""The knn plug-in on small planted data: sampling, exact top-k, reduction, logs, artifact, serving, errors."""

import io
import json
import re

import numpy as np
import pytest

import recordio_protobuf as records
from sagemaker_emulator.algorithms import knn
from sagemaker_emulator.algorithms.base import ClientError, PayloadError, parse_hyperparameters
from sagemaker_emulator.algorithms.layout import create_layout

RECORDIO = "application/x-recordio-protobuf"
JSON_VERBOSE = "application/json; verbose=true"


def clusters(seed=0, n=240, dim=6, centres=4):
    """Points around ``centres`` well-separated centres; the label of a point is its centre (0..centres-1)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 5, (centres, dim))
    label = rng.integers(0, centres, n)
    return (centre[label] + rng.normal(0, 1, (n, dim))).astype(np.float32), label.astype(np.float32)


def recordio(features, labels=None):
    buffer = io.BytesIO()
    records.write_records(buffer, features, labels)
    return buffer.getvalue()


def train_job(root, hyperparameters, channels):
    """Train on ``channels`` = name → (bytes, content type) and return (layout, predictor)."""
    layout = create_layout(
        root,
        {name: str(value) for name, value in hyperparameters.items()},
        {
            name: {"ContentType": content_type, "TrainingInputMode": "File"}
            for name, (_, content_type) in channels.items()
        },
    )
    for name, (body, _) in channels.items():
        (layout.channel_dir(name) / "part-0").write_bytes(body)
    knn.train(layout, parse_hyperparameters(knn.HYPERPARAMETERS, layout.hyperparameters()))
    return layout, knn.load(layout.model_dir)


def hyperparameters(features, **overrides):
    return {
        "feature_dim": features.shape[1],
        "k": 10,
        "predictor_type": "classifier",
        "sample_size": 100_000,
        **overrides,
    }


def verbose(predictor, queries, accept=JSON_VERBOSE):
    body = json.dumps({"instances": [{"features": row.tolist()} for row in queries]}).encode()
    return json.loads(predictor(body, "application/json", accept)[0])["predictions"]


def brute_force(index, queries, metric, k):
    """Reference neighbours: full score matrix, stable sort (ties by index position)."""
    if metric == "COSINE":
        index = index / np.linalg.norm(index, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    products = queries.astype(np.float64) @ index.T.astype(np.float64)
    if metric == "L2":
        value = (
            (queries.astype(np.float64) ** 2).sum(1)[:, None] - 2 * products + (index.astype(np.float64) ** 2).sum(1)
        )
        order = np.argsort(value, axis=1, kind="stable")[:, :k]
    else:
        value = products
        order = np.argsort(-value, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(value, order, axis=1)


# --------------------------------------------------------------------------------------------- declaration


def test_hyperparameters_follow_the_documented_table():
    specs = knn.HYPERPARAMETERS
    assert {n for n, s in specs.items() if s.required} == {"feature_dim", "k", "predictor_type", "sample_size"}
    values = parse_hyperparameters(
        specs, {"feature_dim": "4", "k": "3", "predictor_type": "regressor", "sample_size": "9"}
    )
    assert (values["index_type"], values["index_metric"], values["mini_batch_size"]) == ("faiss.Flat", "L2", 5000)
    assert values["faiss_index_ivf_nlists"] == "auto" and values["dimension_reduction_type"] is None
    with pytest.raises(ClientError, match="Invalid value '5' for hyperparameter 'faiss_index_pq_m'"):
        parse_hyperparameters(
            specs,
            {
                **{"feature_dim": "4", "k": "3", "predictor_type": "regressor", "sample_size": "9"},
                "faiss_index_pq_m": "5",
            },
        )
    names = {d["Name"] for d in knn.METRIC_DEFINITIONS}
    assert {"test:accuracy", "test:mse", "train:progress", "train:throughput"} == names


# --------------------------------------------------------------------------------------------- search


@pytest.mark.parametrize("metric", ["L2", "INNER_PRODUCT", "COSINE"])
def test_top_k_equals_brute_force(tmp_path, metric):
    points, _ = clusters()
    item_ids = np.arange(1, len(points) + 1, dtype=np.float32)  # the FM→k-NN recipe labels items by id
    queries = clusters(seed=1, n=30)[0]
    _, predictor = train_job(
        tmp_path, hyperparameters(points, k=12, index_metric=metric), {"train": (recordio(points, item_ids), RECORDIO)}
    )
    predictions = verbose(predictor, queries)
    order, value = brute_force(points, queries, metric, 12)
    assert [p["labels"] for p in predictions] == (order + 1).astype(float).tolist()
    np.testing.assert_allclose([p["distances"] for p in predictions], value, rtol=1e-4, atol=1e-3)
    distances = np.array([p["distances"] for p in predictions])
    step = np.diff(distances, axis=1)
    assert (step >= 0).all() if metric == "L2" else (step <= 0).all()


def test_recordio_batch_gives_one_json_line_per_record_in_order(tmp_path):
    points, _ = clusters()
    _, predictor = train_job(
        tmp_path,
        hyperparameters(points, k=5, index_metric="INNER_PRODUCT"),
        {"train": (recordio(points, np.arange(1, 241, dtype=np.float32)), RECORDIO)},
    )
    users = clusters(seed=2, n=37)[0]
    body, content_type = predictor(recordio(users), RECORDIO, "application/jsonlines; verbose=true")
    assert content_type == "application/jsonlines"
    lines = [json.loads(line) for line in body.decode().split("\n")]
    assert len(lines) == 37 and set(lines[0]) == {"predicted_label", "distances", "labels"}
    assert lines == verbose(predictor, users)


def test_classifier_votes_with_nearest_first_tie_break_and_regressor_averages(tmp_path):
    points = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    labels = np.array([5.0, 7.0, 7.0, 5.0], np.float32)
    queries = np.array([[0.0], [3.1], [1.9]], np.float32)
    _, classifier = train_job(
        tmp_path / "c", hyperparameters(points, k=4), {"train": (recordio(points, labels), RECORDIO)}
    )
    assert [p["predicted_label"] for p in verbose(classifier, queries, "application/json")] == [5.0, 5.0, 7.0]
    _, three = train_job(tmp_path / "t", hyperparameters(points, k=3), {"train": (recordio(points, labels), RECORDIO)})
    assert [p["predicted_label"] for p in verbose(three, queries, "application/json")] == [7.0, 7.0, 7.0]
    _, regressor = train_job(
        tmp_path / "r",
        hyperparameters(points, k=3, predictor_type="regressor"),
        {"train": (recordio(points, labels), RECORDIO)},
    )
    assert [p["predicted_label"] for p in verbose(regressor, queries, "application/json")] == pytest.approx(
        [19 / 3] * 3
    )


def test_sample_size_keeps_a_seeded_uniform_subset(tmp_path, capsys):
    points, _ = clusters(n=300)
    ids = np.arange(300, dtype=np.float32)
    channels = {"train": (recordio(points, ids), RECORDIO)}
    first, predictor = train_job(
        tmp_path / "a", hyperparameters(points, k=400, sample_size=50, mini_batch_size=32), channels
    )
    out = capsys.readouterr().out
    assert "Got reservoir sample from algo-1: data=(50, 6), labels=(50,), NaNs=0" in out
    assert "k=400 exceeds the 50 indexed points" in out
    kept = np.fromfile(first.model_dir / "model_algo-1.labels", dtype="<f4")
    assert len(set(kept.tolist())) == 50 and (np.diff(kept) > 0).all()  # distinct, in reading order
    assert np.mean(kept) == pytest.approx(150, abs=45)  # drawn from the whole stream, not its head
    second, _ = train_job(tmp_path / "b", hyperparameters(points, k=400, sample_size=50, mini_batch_size=32), channels)
    assert np.array_equal(np.fromfile(second.model_dir / "model_algo-1.labels", dtype="<f4"), kept)
    found = verbose(predictor, points[kept.astype(int)][:3])
    assert [len(p["labels"]) for p in found] == [50, 50, 50]
    assert [p["labels"][0] for p in found] == kept[:3].tolist() and found[0]["distances"][0] == 0.0


@pytest.mark.parametrize("reduction", ["sign", "fjlt"])
def test_dimension_reduction_keeps_distances_and_is_applied_to_queries(tmp_path, reduction):
    rng = np.random.default_rng(3)
    points = rng.normal(0, 1, (200, 50)).astype(np.float32)
    layout, predictor = train_job(
        tmp_path,
        hyperparameters(points, k=3, dimension_reduction_type=reduction, dimension_reduction_target=24),
        {"train": (recordio(points, np.arange(200, dtype=np.float32)), RECORDIO)},
    )
    metadata = json.loads((layout.model_dir / "model_algo-1.json").read_text())
    assert metadata == {
        "k": 3,
        "predictor_type": "classifier",
        "normalize": False,
        "version": "1.0",
        "dimension_reduction": {"type": reduction, "seed": 0, "target_dim": 24, "input_dim": 50},
    }
    stored = np.load(layout.model_dir / "model_algo-1")["vectors"]
    assert stored.shape == (200, 24)
    original = ((points[:100] - points[100:]) ** 2).sum(1)
    reduced = ((stored[:100] - stored[100:]) ** 2).sum(1)
    assert np.mean(reduced / original) == pytest.approx(1.0, abs=0.15)
    found = verbose(predictor, points[:5])
    assert [p["labels"][0] for p in found] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert max(p["distances"][0] for p in found) < 1e-3


def test_index_types_other_than_flat_are_exact_and_say_so(tmp_path, capsys):
    points, labels = clusters()
    queries = clusters(seed=4, n=20)[0]
    channels = {"train": (recordio(points, labels), RECORDIO)}
    _, flat = train_job(tmp_path / "flat", hyperparameters(points), channels)
    _, pq = train_job(
        tmp_path / "pq",
        hyperparameters(points, index_type="faiss.IVFPQ", faiss_index_pq_m=2, faiss_index_ivf_nlists=8),
        channels,
    )
    assert "faiss.IVFPQ is answered by exact search in the emulator" in capsys.readouterr().out
    assert verbose(pq, queries) == verbose(flat, queries)


def test_metadata_k_and_predictor_type_drive_inference(tmp_path):
    points, labels = clusters()
    layout, _ = train_job(tmp_path, hyperparameters(points), {"train": (recordio(points, labels), RECORDIO)})
    path = layout.model_dir / "model_algo-1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "k": 2, "predictor_type": "regressor"}))
    found = verbose(knn.load(layout.model_dir), points[:4])
    assert [len(p["labels"]) for p in found] == [2] * 4
    assert [p["predicted_label"] for p in found] == pytest.approx([np.mean(p["labels"]) for p in found])


# --------------------------------------------------------------------------------------------- test channel


def test_test_channel_is_scored_into_the_log(tmp_path, capsys):
    points, labels = clusters()
    test_points, test_labels = clusters(seed=0, n=240)[0][:60] + 0.1, clusters(seed=0, n=240)[1][:60]
    train_job(
        tmp_path / "c",
        hyperparameters(points),
        {"train": (recordio(points, labels), RECORDIO), "test": (recordio(test_points, test_labels), RECORDIO)},
    )
    out = capsys.readouterr().out
    accuracy = re.search(knn.METRIC_DEFINITIONS[0]["Regex"], out)
    assert float(accuracy.group(1)) > 0.95 and "#test_score (algo-1) : ('accuracy', " in out
    assert re.search(r"#progress_metric: host=algo-1, completed 100.0 % of epochs", out)
    assert re.search(r"#throughput_metric: host=algo-1, train throughput=\S+ records/second", out)
    train_job(
        tmp_path / "r",
        hyperparameters(points, predictor_type="regressor", k=1),
        {"train": (recordio(points, labels), RECORDIO), "test": (recordio(points, labels + 0.5), RECORDIO)},
    )
    out = capsys.readouterr().out
    assert float(re.search(knn.METRIC_DEFINITIONS[1]["Regex"], out).group(1)) == pytest.approx(0.25)
    assert "#test_score (algo-1) : ('mse', 0.25)" in out


# --------------------------------------------------------------------------------------------- formats


def csv_text(features, labels=None):
    table = features if labels is None else np.column_stack([labels, features])
    return "\n".join(",".join(repr(float(v)) for v in row) for row in table).encode()


def test_csv_training_matches_recordio(tmp_path):
    points, labels = clusters()
    queries = clusters(seed=5, n=10)[0]
    _, from_records = train_job(
        tmp_path / "r", hyperparameters(points), {"train": (recordio(points, labels), RECORDIO)}
    )
    _, from_csv = train_job(
        tmp_path / "c",
        hyperparameters(points, mini_batch_size=64),
        {"train": (csv_text(points, labels), "text/csv; label_size=1")},
    )
    assert verbose(from_csv, queries) == verbose(from_records, queries)


def test_every_request_and_response_format(tmp_path):
    points, labels = clusters()
    queries = clusters(seed=6, n=8)[0]
    _, predictor = train_job(tmp_path, hyperparameters(points, k=4), {"train": (recordio(points, labels), RECORDIO)})
    expected = verbose(predictor, queries)
    instances = [{"data": {"features": {"values": row.tolist()}}} for row in queries]
    for body, content_type in (
        (csv_text(queries), "text/csv"),
        (csv_text(queries, np.zeros(len(queries))), "text/csv; label_size=1"),
        (json.dumps({"instances": instances}).encode(), "application/json"),
        ("\n".join(json.dumps(row) for row in instances).encode(), "application/jsonlines"),
        (recordio(queries), RECORDIO),
    ):
        out, out_type = predictor(body, content_type, JSON_VERBOSE)
        assert (out_type, json.loads(out)["predictions"]) == ("application/json", expected), content_type
    plain = json.loads(predictor(recordio(queries), RECORDIO, "application/json")[0])["predictions"]
    assert plain == [{"predicted_label": p["predicted_label"]} for p in expected]
    lines, _ = predictor(recordio(queries), RECORDIO, "application/jsonlines")
    assert [json.loads(line) for line in lines.decode().split("\n")] == plain
    out, out_type = predictor(recordio(queries), RECORDIO, RECORDIO + "; verbose=true")
    decoded = list(records.read_records(io.BytesIO(out)))
    assert out_type == RECORDIO and len(decoded) == 8
    assert list(decoded[0].label["labels"].float32_tensor.values) == expected[0]["labels"]
    assert list(decoded[0].label["distances"].float32_tensor.values) == pytest.approx(expected[0]["distances"])
    terse = list(records.read_records(io.BytesIO(predictor(recordio(queries), RECORDIO, RECORDIO)[0])))
    assert set(terse[0].label) == {"predicted_label"}


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"dimension_reduction_type": "sign"},
            '"dimension_reduction_target" is required when "dimension_reduction_type" is set',
        ),
        (
            {"dimension_reduction_target": 3},
            '"dimension_reduction_target" is used only with "dimension_reduction_type"',
        ),
        (
            {"dimension_reduction_type": "fjlt", "dimension_reduction_target": 6},
            '"dimension_reduction_target" (6) must be smaller than "feature_dim" (6)',
        ),
        (
            {"index_type": "faiss.IVFPQ", "index_metric": "COSINE"},
            "faiss.IVFPQ supports only index_metric L2, got COSINE",
        ),
    ],
)
def test_inconsistent_hyperparameters_fail_the_job(tmp_path, overrides, message):
    points, labels = clusters()
    with pytest.raises(ClientError, match=re.escape(message)):
        train_job(tmp_path, hyperparameters(points, **overrides), {"train": (recordio(points, labels), RECORDIO)})


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        ("unlabelled", RECORDIO, "records have no label; k-NN trains on labelled records"),
        ("narrow", RECORDIO, "feature_dim=6 but record 0 has 3 features"),
        ("csv", "text/csv; label_size=2", "text/csv training data needs label_size=1"),
        ("narrow_csv", "text/csv", "rows have 4 columns; expected the label plus feature_dim=6 features"),
        ("words_csv", "text/csv", "CSV rows must hold numbers only"),
        ("csv", "application/json", "Channel 'train' has content type 'application/json': knn reads"),
        ("nan_csv", "text/csv", "Channel 'train' has NaN feature values"),
        ("empty", RECORDIO, "Channel 'train' holds no records"),
    ],
)
def test_bad_training_data_fails_the_job(tmp_path, body, content_type, message):
    points, labels = clusters()
    bodies = {
        "unlabelled": recordio(points),
        "narrow": recordio(points[:, :3], labels),
        "csv": csv_text(points, labels),
        "narrow_csv": csv_text(points[:, :3], labels),
        "words_csv": b"1,a,b,c,d,e,f\n",
        "nan_csv": b"1,,2,3,4,5,6\n",
        "empty": b"",
    }
    with pytest.raises(ClientError, match=re.escape(message)):
        train_job(tmp_path, hyperparameters(points), {"train": (bodies[body], content_type)})


def dense_records(features, labels, kind):
    """What SDK v2's ``write_numpy_to_dense_tensor`` writes: one dense tensor per row, its type from the dtype."""
    buffer = io.BytesIO()
    for row, label in zip(features, labels):
        record = records.Record()
        getattr(record.features["values"], kind).values.extend(row.tolist())
        getattr(record.label["values"], kind).values.append(label.item())
        buffer.write(records.frame(record.SerializeToString()))
    return buffer.getvalue()


@pytest.mark.parametrize("kind, dtype", [("float64_tensor", np.float64), ("int32_tensor", np.int32)])
def test_float64_and_int32_records_train_like_float32(tmp_path, kind, dtype):
    """AWS's k-NN covtype example uploads float64 arrays (numpy's default dtype) and trains on them."""
    points, labels = clusters()
    points = np.round(points).astype(dtype)
    as_float32 = recordio(points.astype(np.float32), labels)
    _, reference = train_job(tmp_path / "f32", hyperparameters(points), {"train": (as_float32, RECORDIO)})
    _, predictor = train_job(
        tmp_path / kind,
        hyperparameters(points),
        {"train": (dense_records(points, labels.astype(dtype), kind), RECORDIO)},
    )
    queries = points[:20]
    assert verbose(predictor, queries) == verbose(reference, queries)
    answer, _ = predictor(dense_records(queries, np.zeros(len(queries), dtype), kind), RECORDIO, JSON_VERBOSE)
    assert json.loads(answer)["predictions"] == verbose(reference, queries)


def test_bad_requests_answer_with_their_status(tmp_path):
    points, labels = clusters()
    _, predictor = train_job(tmp_path, hyperparameters(points), {"train": (recordio(points, labels), RECORDIO)})
    cases = [
        (b"1,2,3", "text/csv", "application/json", 400, "Unable to evaluate payload provided: CSV row has 3 features"),
        (b"1,x,3,4,5,6", "text/csv", "application/json", 400, "CSV rows must hold numbers only"),
        (b"", "text/csv", "application/json", 400, "the request holds no instances"),
        (b"1,2,3,4,5,6", "image/png", "application/json", 415, "Content type 'image/png' is not supported"),
        (b"1,2,3,4,5,6", "text/csv", "text/csv", 406, "Accept type 'text/csv' is not supported"),
    ]
    for body, content_type, accept, status, message in cases:
        with pytest.raises(PayloadError) as raised:
            predictor(body, content_type, accept)
        assert (raised.value.status, message in raised.value.message) == (status, True), raised.value.message
