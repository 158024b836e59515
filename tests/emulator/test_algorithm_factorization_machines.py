"""The factorization-machines plug-in on small planted data: training, logs, artifact, serving, errors."""

import io
import json
import os
import re
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import recordio_protobuf as records
import sagemaker_emulator  # noqa: F401  (numpy.bool alias before mxnet)
from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import ClientError, PayloadError, parse_hyperparameters
from sagemaker_emulator.algorithms.layout import create_layout

RECORDIO = "application/x-recordio-protobuf"
GOOD = {  # what the tests train with: converges on the planted data in well under a second
    "num_factors": 8,
    "epochs": 30,
    "mini_batch_size": 200,
    "linear_lr": 0.02,
    "factors_lr": 0.01,
    "linear_wd": 0.0001,
    "factors_wd": 0.0001,
    "factors_init_sigma": 0.1,
}


def planted_ratings(seed=0, users=120, items=150, per_user=60, held_out=10):
    """One-hot (user, item) rows with ratings from biases plus a rank-3 taste; the first 10 per user are test."""
    rng = np.random.default_rng(seed)
    taste, traits = rng.normal(0, 0.8, (users, 3)), rng.normal(0, 0.8, (items, 3))
    user_bias, item_bias = rng.normal(0, 0.3, users), rng.normal(0, 0.5, items)
    user = np.repeat(np.arange(users), per_user)
    item = np.argsort(rng.random((users, items)), axis=1)[:, :per_user].ravel()
    rating = 3.5 + user_bias[user] + item_bias[item] + np.einsum("ij,ij->i", taste[user], traits[item])
    rating = (rating + rng.normal(0, 0.2, len(user))).astype(np.float32)
    rows = np.arange(len(user))
    features = sp.csr_matrix(
        (np.ones(2 * len(user), np.float32), (np.repeat(rows, 2), np.stack([user, users + item], 1).ravel())),
        shape=(len(user), users + items),
    )
    test = np.tile(np.arange(per_user) < held_out, users)
    return features[~test], rating[~test], features[test], rating[test], user[~test], user[test]


@pytest.fixture(scope="module")
def data():
    return planted_ratings()


def recordio(features, labels=None):
    buffer = io.BytesIO()
    records.write_records(buffer, features, labels)
    return buffer.getvalue()


def make_job(root, hyperparameters, channels):
    """A job tree with ``channels`` = name → (bytes, content type), hyperparameters as strings."""
    layout = create_layout(
        root,
        {name: str(value) for name, value in hyperparameters.items()},
        {
            name: {"ContentType": content_type, "TrainingInputMode": "File"}
            for name, (_, content_type) in channels.items()
        },
    )
    for name, (body, _) in channels.items():
        (layout.channel_dir(name) / "part-0.pbr").write_bytes(body)
    return layout


def train_job(root, hyperparameters, channels):
    layout = make_job(root, hyperparameters, channels)
    fm.train(layout, parse_hyperparameters(fm.HYPERPARAMETERS, layout.hyperparameters()))
    return layout


def hyperparameters(features, predictor_type="regressor", **overrides):
    return {"feature_dim": features.shape[1], "predictor_type": predictor_type, **GOOD, **overrides}


@pytest.fixture(scope="module")
def regressor(tmp_path_factory, data):
    train_x, train_y, test_x, test_y, *_ = data
    layout = train_job(
        tmp_path_factory.mktemp("fm-regressor"),
        hyperparameters(train_x),
        {"train": (recordio(train_x, train_y), RECORDIO), "test": (recordio(test_x, test_y), RECORDIO)},
    )
    return layout, fm.load(layout.model_dir)


def scores(predictor, body, content_type, accept="application/json"):
    out, out_type = predictor(body, content_type, accept)
    assert out_type == "application/json"
    return np.array([row["score"] for row in json.loads(out)["predictions"]])


def json_dense(features):
    return json.dumps({"instances": [{"features": row.tolist()} for row in features.toarray()]}).encode()


def config(features, **overrides):
    return parse_hyperparameters(
        fm.HYPERPARAMETERS, {name: str(value) for name, value in hyperparameters(features, **overrides).items()}
    )


# --------------------------------------------------------------------------------------------- declaration


def test_hyperparameters_follow_the_documented_table():
    specs = fm.HYPERPARAMETERS
    assert {name for name, spec in specs.items() if spec.required} == {"feature_dim", "num_factors", "predictor_type"}
    defaults = parse_hyperparameters(specs, {"feature_dim": "4", "num_factors": "2", "predictor_type": "regressor"})
    assert defaults["epochs"] == 1 and defaults["mini_batch_size"] == 1000
    assert (defaults["bias_lr"], defaults["linear_lr"], defaults["factors_lr"]) == (0.1, 0.001, 0.0001)
    assert (defaults["bias_wd"], defaults["linear_wd"], defaults["factors_wd"]) == (0.01, 0.001, 0.00001)
    assert (defaults["bias_init_sigma"], defaults["linear_init_sigma"], defaults["factors_init_sigma"]) == (
        0.01,
        0.01,
        0.001,
    )
    assert defaults["factors_init_method"] == "normal" and defaults["clip_gradient"] is None
    container_knobs = {"_kvstore": "dist_sync", "_num_gpus": "0", "_num_kv_servers": "1", "_use_full_symbolic": "true"}
    parse_hyperparameters(
        specs, {"feature_dim": "4", "num_factors": "2", "predictor_type": "regressor", **container_knobs}
    )


def test_a_missing_required_hyperparameter_is_named():
    with pytest.raises(ClientError, match="No value\\(s\\) were specified for 'num_factors', 'predictor_type'"):
        parse_hyperparameters(fm.HYPERPARAMETERS, {"feature_dim": "4"})


def test_multiclass_is_not_a_predictor_type():
    with pytest.raises(ClientError, match="'binary_classifier', 'regressor'"):
        parse_hyperparameters(
            fm.HYPERPARAMETERS, {"feature_dim": "4", "num_factors": "2", "predictor_type": "multiclass"}
        )


def test_channels_and_metric_definitions():
    assert fm.CHANNELS["train"].required and not fm.CHANNELS["test"].required
    assert fm.CHANNELS["train"].content_types == (RECORDIO,)
    names = {definition["Name"] for definition in fm.METRIC_DEFINITIONS}
    assert names == {
        "test:rmse",
        "test:binary_classification_accuracy",
        "test:binary_classification_cross_entropy",
        "test:binary_f_beta",
        "train:progress",
        "train:throughput",
    }


# --------------------------------------------------------------------------------------------- quality and logs


def test_regressor_beats_the_per_user_mean(data, regressor):
    train_x, train_y, test_x, test_y, train_user, test_user = data
    _, predictor = regressor
    user_mean = np.bincount(train_user, train_y) / np.bincount(train_user)
    baseline = np.sqrt(np.mean((user_mean[test_user] - test_y) ** 2))
    rmse = np.sqrt(np.mean((scores(predictor, recordio(test_x), RECORDIO) - test_y) ** 2))
    assert rmse < 0.7 * baseline


def test_regressor_log_lines_carry_the_metrics(data, capsys, tmp_path):
    train_x, train_y, test_x, test_y, *_ = data
    layout = train_job(
        tmp_path,
        hyperparameters(train_x, epochs=3, batch_metrics_publish_interval=10),
        {"train": (recordio(train_x, train_y), RECORDIO), "test": (recordio(test_x, test_y), RECORDIO)},
    )
    out = capsys.readouterr().out
    assert re.search(r"^\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO \d+\] Final configuration: ", out, re.M)
    batches = -(-train_x.shape[0] // GOOD["mini_batch_size"])
    assert len(re.findall(r"epoch=\d+, batch=\d+ train rmse <loss>=", out)) == 3 * len(range(0, batches, 10))
    assert re.findall(r"#progress_metric: host=algo-1, completed (\S+) % of epochs", out) == [
        "33.333333333333336",
        "66.66666666666667",
        "100.0",
    ]
    assert len(re.findall(r"#throughput_metric: host=algo-1, train throughput=\S+ records/second", out)) == 3
    assert re.search(r"#quality_metric: host=algo-1, train mse <loss>=", out)
    rmse = np.sqrt(np.mean((scores(fm.load(layout.model_dir), recordio(test_x), RECORDIO) - test_y) ** 2))
    assert float(re.search(r"#test_score \(algo-1\) : \('rmse', (\S+)\)", out).group(1)) == pytest.approx(
        rmse, rel=1e-4
    )
    found = {d["Name"]: re.findall(d["Regex"], out) for d in fm.METRIC_DEFINITIONS}
    assert float(found["test:rmse"][-1]) == pytest.approx(rmse, rel=1e-4)
    assert found["test:binary_classification_accuracy"] == [] and found["train:progress"][-1] == "100.0"


def test_classifier_beats_the_majority_class_and_logs_its_metrics(data, capsys, tmp_path):
    train_x, train_y, test_x, test_y, *_ = data
    train_label, test_label = (train_y >= 3.5).astype(np.float32), (test_y >= 3.5).astype(np.float32)
    layout = train_job(
        tmp_path,
        hyperparameters(train_x, "binary_classifier"),
        {"train": (recordio(train_x, train_label), RECORDIO), "test": (recordio(test_x, test_label), RECORDIO)},
    )
    out = capsys.readouterr().out
    found = {d["Name"]: re.findall(d["Regex"], out) for d in fm.METRIC_DEFINITIONS}
    accuracy = float(found["test:binary_classification_accuracy"][-1])
    assert accuracy > max(test_label.mean(), 1 - test_label.mean()) + 0.15
    assert float(found["test:binary_classification_cross_entropy"][-1]) < np.log(2)
    assert 0.5 < float(found["test:binary_f_beta"][-1]) <= 1.0
    assert "#test_score (algo-1) : ('binary_f_1.000', " in out and found["test:rmse"] == []
    response = json.loads(fm.load(layout.model_dir)(json_dense(test_x), "application/json", "application/json")[0])
    predictions = response["predictions"]
    assert set(predictions[0]) == {"score", "predicted_label"}
    assert all(
        isinstance(p["predicted_label"], float) and p["predicted_label"] == float(p["score"] >= 0.5)
        for p in predictions
    )
    assert np.mean([p["predicted_label"] for p in predictions] == test_label) == pytest.approx(accuracy, abs=1e-9)


# --------------------------------------------------------------------------------------------- artifact


def test_the_aws_loading_recipe_reads_the_model(regressor, data, tmp_path, monkeypatch):
    import mxnet as mx

    layout, predictor = regressor
    test_x = data[2]
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:  # what the emulator uploads
        archive.add(layout.model_dir / "model_algo-1", "model_algo-1")
    monkeypatch.chdir(tmp_path)
    # The examples' steps: tar xzvf model.tar.gz; unzip -o model_algo-1; mv symbol.json model-symbol.json;
    # mv params model-0000.params; Module.load('./model', 0, False, label_names=['out_label']).
    with tarfile.open("model.tar.gz") as archive:
        archive.extractall(".", filter="data")
    with zipfile.ZipFile("model_algo-1") as archive:
        archive.extractall(".")
    os.rename("symbol.json", "model-symbol.json")
    os.rename("params", "model-0000.params")
    module = mx.module.Module.load("./model", 0, False, label_names=["out_label"])
    v = module._arg_params["v"].asnumpy()
    w = module._arg_params["w1_weight"].asnumpy()
    b = module._arg_params["w0_weight"].asnumpy()
    assert (b.shape, w.shape, v.shape) == ((1,), (test_x.shape[1], 1), (test_x.shape[1], GOOD["num_factors"]))
    dense = test_x.toarray()
    expected = b[0] + dense @ w[:, 0] + 0.5 * ((dense @ v) ** 2 - (dense**2) @ (v**2)).sum(axis=1)
    np.testing.assert_allclose(scores(predictor, recordio(test_x), RECORDIO), expected, rtol=1e-4, atol=1e-4)
    module.bind(data_shapes=[("data", dense.shape)], label_shapes=[("out_label", (len(dense), 1))], for_training=False)
    module.set_params(module._arg_params, module._aux_params)
    module.forward(mx.io.DataBatch([mx.nd.array(dense)], [mx.nd.zeros((len(dense), 1))]), is_train=False)
    np.testing.assert_allclose(module.get_outputs()[0].asnumpy()[:, 0], expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------- hyperparameter families


def fit(data, **overrides):
    train_x, train_y = data[0], data[1]
    return fm.fit(train_x, train_y, config(train_x, **overrides))


def test_after_epoch_sees_each_epochs_model_and_the_last_is_the_result(data):
    """What a search's validation curve reads (benchmarks/fm_search.py): one model per epoch, copies that later
    epochs do not change, the last equal to what ``fit`` returns."""
    train_x, train_y = data[0], data[1]
    seen = []
    model = fm.fit(train_x, train_y, config(train_x, epochs=3), after_epoch=seen.append)
    assert len(seen) == 3
    assert not np.array_equal(seen[0].v, seen[1].v)
    for attribute in ("w0", "w", "v"):
        np.testing.assert_array_equal(getattr(seen[-1], attribute), getattr(model, attribute))


def test_zero_learning_rates_leave_the_initial_values(data):
    model = fit(
        data,
        epochs=1,
        bias_lr=0,
        linear_lr=0,
        factors_lr=0,
        bias_init_method="constant",
        bias_init_value=0.5,
        linear_init_method="uniform",
        linear_init_scale=0.2,
        factors_init_method="normal",
        factors_init_sigma=0.05,
    )
    assert model.w0.tolist() == [0.5]
    assert np.abs(model.w).max() <= 0.2 and np.abs(model.w).max() > 0.15
    assert np.std(model.v) == pytest.approx(0.05, rel=0.1)


def test_each_learning_rate_moves_its_own_group(data):
    start = fit(data, epochs=1, bias_lr=0, linear_lr=0, factors_lr=0)
    for group, attribute in (("bias", "w0"), ("linear", "w"), ("factors", "v")):
        rates = {"bias_lr": 0, "linear_lr": 0, "factors_lr": 0, f"{group}_lr": 0.01}
        moved = fit(data, epochs=1, **rates)
        for other in ("w0", "w", "v"):
            changed = not np.array_equal(getattr(moved, other), getattr(start, other))
            assert changed == (other == attribute), (group, other)


def test_weight_decay_shrinks_its_group(data):
    plain = fit(data, factors_wd=0, linear_wd=0)
    decayed = fit(data, factors_wd=0.05, linear_wd=0.05)
    assert np.linalg.norm(decayed.v) < 0.5 * np.linalg.norm(plain.v)
    assert np.linalg.norm(decayed.w) < 0.5 * np.linalg.norm(plain.w)


def test_use_bias_and_use_linear_switch_terms_off(data):
    model = fit(data, epochs=2, use_bias="false", use_linear="false")
    assert model.w0.tolist() == [0.0] and not model.w.any() and model.v.any()


def test_update_rule_knobs_change_the_steps(data):
    """sgd makes steps proportional to the (rescaled, clipped) gradient; Adam's eps damps them."""
    base = dict(
        epochs=1,
        mini_batch_size=len(data[1]),
        bias_lr=0,
        factors_lr=0,
        linear_lr=1.0,
        linear_init_method="constant",
        linear_init_value=0,
        linear_wd=0,
        _optimizer="sgd",
    )
    step = np.abs(fit(data, **base).w).max()
    assert np.abs(fit(data, **base, rescale_grad=1e-6).w).max() == pytest.approx(step * 1e-6 * len(data[1]), rel=1e-3)
    assert np.abs(fit(data, **base, clip_gradient=1e-4).w).max() == pytest.approx(1e-4, rel=1e-3)
    assert np.abs(fit(data, **base, _learning_rate=0.5).w).max() == pytest.approx(step / 2, rel=1e-5)
    adam = {**base, "_optimizer": "adam", "linear_lr": 0.01}
    assert np.abs(fit(data, **adam).w).max() == pytest.approx(0.01, rel=1e-3)
    assert np.abs(fit(data, **adam, eps=100.0).w).max() < 1e-3


def test_an_init_method_without_its_amount_trains_with_mxnets_default(data, tmp_path, capsys):
    """AWS's page lists ``*_init_scale`` and ``*_init_value`` as optional (a tuner searching the method sets neither)."""
    train_x, train_y = data[0], data[1]
    unset = {"bias_init_method": "constant", "linear_init_method": "uniform", "factors_init_method": "uniform"}
    layout = train_job(tmp_path, hyperparameters(train_x, **unset), {"train": (recordio(train_x, train_y), RECORDIO)})
    assert (layout.model_dir / fm.MODEL_FILE).exists()
    logged = capsys.readouterr()
    assert "'bias_init_value' is not set: 'bias_init_method' 'constant' uses 0.0" in logged.out + logged.err
    config = parse_hyperparameters(
        fm.HYPERPARAMETERS, {k: str(v) for k, v in hyperparameters(train_x, **unset).items()}
    )
    rng = np.random.default_rng(0)
    assert fm._initializer("bias", config)((1,), rng).tolist() == [0.0]
    uniform = fm._initializer("factors", config)((20_000,), rng)
    assert np.abs(uniform).max() <= 0.07 and np.abs(uniform).max() > 0.069


def test_divergence_fails_the_job_with_advice(data):
    with pytest.raises(ClientError, match="Training diverged in epoch 0 .* lower the learning rates"):
        fit(data, _optimizer="sgd", linear_lr=1e30, factors_lr=1e30, rescale_grad=1.0)


# --------------------------------------------------------------------------------------------- serving


def sparse_json(features):
    rows = [
        {
            "data": {
                "features": {"keys": row.indices.tolist(), "shape": [features.shape[1]], "values": row.data.tolist()}
            }
        }
        for row in features
    ]
    return json.dumps({"instances": rows}).encode()


def test_every_request_format_gives_the_same_scores(regressor, data):
    _, predictor = regressor
    test_x = data[2][:25]
    expected = scores(predictor, recordio(test_x), RECORDIO)
    dense_long = [{"data": {"features": {"values": row.tolist()}}} for row in test_x.toarray()]
    mixed = json.loads(sparse_json(test_x))["instances"]
    mixed[::2] = dense_long[::2]
    mixed[1::3] = json.loads(json_dense(test_x))["instances"][1::3]
    jsonlines = "\n".join(json.dumps(row) for row in dense_long).encode()
    for body, content_type in (
        (json_dense(test_x), "application/json"),
        (json.dumps({"instances": dense_long}).encode(), "application/json; charset=utf-8"),
        (sparse_json(test_x), "application/json"),
        (json.dumps({"instances": mixed}).encode(), "application/json"),
        (jsonlines, "application/jsonlines"),
        (recordio(test_x.toarray()), RECORDIO),
    ):
        np.testing.assert_allclose(scores(predictor, body, content_type), expected, rtol=1e-6)


def test_every_response_format(regressor, data):
    _, predictor = regressor
    test_x = data[2][:5]
    body = json_dense(test_x)
    default, default_type = predictor(body, "application/json", "")
    assert default_type == "application/json" and list(json.loads(default)["predictions"][0]) == ["score"]
    lines, lines_type = predictor(body, "application/json", "application/jsonlines")
    assert lines_type == "application/jsonlines"
    rows = [json.loads(line) for line in lines.decode().split("\n")]
    assert [row["score"] for row in rows] == [row["score"] for row in json.loads(default)["predictions"]]
    out, out_type = predictor(body, "application/json", RECORDIO)
    assert out_type == RECORDIO
    decoded = list(records.read_records(io.BytesIO(out)))
    assert len(decoded) == 5 and not decoded[0].features
    assert [r.label["score"].float32_tensor.values[0] for r in decoded] == pytest.approx([row["score"] for row in rows])


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"{not json", "application/json", "Unable to evaluate payload provided: the body is not valid JSON"),
        (b'{"rows": []}', "application/json", 'an object with an "instances" list'),
        (b'{"instances": []}', "application/json", "the request holds no instances"),
        (
            b'{"instances": [{"features": [1, 0]}]}',
            "application/json",
            "instance 0 has 2 features but the model's feature_dim is 270",
        ),
        (b'{"instances": [{"features": ["a"]}]}', "application/json", "instance 0 values must be a list of numbers"),
        (
            b'{"instances": [{"data": {"features": {"keys": [999], "shape": [270], "values": [1]}}}]}',
            "application/json",
            "key 999, outside the model's feature_dim 270",
        ),
        (
            b'{"instances": [{"data": {"features": {"keys": [1, 2], "values": [1]}}}]}',
            "application/json",
            "2 keys but 1 values",
        ),
        (b'{"instances": [{"data": {}}]}', "application/json", 'needs "features"'),
        (b"\n\n", "application/jsonlines", "the request holds no instances"),
        (b"junkjunk", RECORDIO, "bad RecordIO magic"),
    ],
)
def test_bad_payloads_answer_400(regressor, body, content_type, message):
    _, predictor = regressor
    with pytest.raises(PayloadError) as raised:
        predictor(body, content_type, "application/json")
    assert raised.value.status == 400
    assert raised.value.message.startswith("Unable to evaluate payload provided: ") and message in raised.value.message


def test_recordio_of_the_wrong_width_answers_400(regressor):
    _, predictor = regressor
    with pytest.raises(PayloadError, match="feature_dim=270 but record 0 has 3 features") as raised:
        predictor(recordio(np.ones((1, 3), np.float32)), RECORDIO, "application/json")
    assert raised.value.status == 400


def test_unsupported_content_type_and_accept(regressor):
    _, predictor = regressor
    with pytest.raises(
        PayloadError, match="Content type 'text/csv' is not supported: use one of application/json"
    ) as raised:
        predictor(b"1,0", "text/csv", "application/json")
    assert raised.value.status == 415
    with pytest.raises(PayloadError, match="Accept type 'text/csv' is not supported") as raised:
        predictor(b'{"instances": []}', "application/json", "text/csv")
    assert raised.value.status == 406


# --------------------------------------------------------------------------------------------- bad training data


@pytest.mark.parametrize(
    "channel_body, content_type, predictor_type, message",
    [
        (
            "csv",
            "text/csv",
            "regressor",
            "Channel 'train' has content type 'text/csv': factorization-machines reads only",
        ),
        (
            "float64",
            RECORDIO,
            "regressor",
            "Channel 'train', file 'part-0.pbr': record 0: features['values'] is Float64Tensor",
        ),
        ("narrow", RECORDIO, "regressor", "feature_dim=270 but record 0 has 3 features"),
        ("unlabelled", RECORDIO, "regressor", "records have no label; FM trains on labelled records"),
        ("ratings", RECORDIO, "binary_classifier", "binary_classifier labels must be 0 or 1, found [2.0]"),
        ("empty", RECORDIO, "regressor", "Channel 'train' holds no records"),
    ],
)
def test_bad_training_data_fails_before_training(
    data, tmp_path, capsys, channel_body, content_type, predictor_type, message
):
    train_x, train_y = data[0], data[1]
    bodies = {
        "csv": b"1,0,1\n",
        "float64": records.frame(_float64_record()),
        "narrow": recordio(np.ones((2, 3), np.float32), np.ones(2, np.float32)),
        "unlabelled": recordio(train_x),
        "ratings": recordio(train_x, np.arange(len(train_y)) % 3),
        "empty": b"",
    }
    with pytest.raises(ClientError, match=re.escape(message)):
        train_job(tmp_path, hyperparameters(train_x, predictor_type), {"train": (bodies[channel_body], content_type)})
    assert "#progress_metric" not in capsys.readouterr().out


def _float64_record():
    record = records.Record()
    record.features["values"].float64_tensor.values.extend([1.0, 0.0])
    return record.SerializeToString()


def test_a_channel_without_files_fails(data, tmp_path):
    train_x = data[0]
    layout = make_job(tmp_path, hyperparameters(train_x), {"train": (b"", RECORDIO)})
    (layout.channel_dir("train") / "part-0.pbr").unlink()
    with pytest.raises(ClientError, match="Channel 'train' has no data files"):
        fm.train(layout, parse_hyperparameters(fm.HYPERPARAMETERS, layout.hyperparameters()))


def test_large_inputs_train_their_two_halves_at_once(data, capsys, monkeypatch):
    """Two threads on the two halves of each epoch (from TWO_THREADS_MIN_ROWS records): the model is as good."""
    test_x, test_y = data[2], data[3]
    sequential = fit(data)
    assert "two halves" not in capsys.readouterr().out
    monkeypatch.setattr(fm, "TWO_THREADS_MIN_ROWS", 0)
    halves = fit(data)
    assert "each epoch trains its two halves in two threads" in capsys.readouterr().out
    rmse = {
        name: np.sqrt(np.mean((model.decision(test_x) - test_y) ** 2))
        for name, model in [("one", sequential), ("halves", halves)]
    }
    assert rmse["halves"] < 1.05 * rmse["one"], rmse


def test_rows_are_shuffled_in_chunks_as_one_permutation(data, monkeypatch):
    """Copying the shuffled rows a chunk at a time (memory) trains the same model as copying them all at once."""
    whole = fit(data, epochs=2)
    monkeypatch.setattr(fm, "ROWS_PER_CHUNK", GOOD["mini_batch_size"] * 3)
    chunked = fit(data, epochs=2)
    for name in ("w0", "w", "v"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_small_requests_score_as_large_ones(regressor, data, monkeypatch):
    """The numpy path for a few records (an endpoint's usual request) and the chunked scipy path agree."""
    _, predictor = regressor
    test_x = sp.vstack([data[2][:40], sp.csr_matrix((1, data[2].shape[1]), dtype=np.float32), data[2][40:60] * 2.5])
    small = predictor.model.decision(test_x.tocsr())
    monkeypatch.setattr(fm, "SMALL_REQUEST_VALUES", 0)
    large = predictor.model.decision(test_x.tocsr())
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-5)
    assert small[40] == predictor.model.w0[0]
