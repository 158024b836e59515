"""The object2vec plug-in on small planted data: hyperparameters, training, serving, and its error paths."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from sagemaker_emulator.algorithms import object2vec, object2vec_training
from sagemaker_emulator.algorithms.base import ClientError, PayloadError
from sagemaker_emulator.algorithms.layout import create_layout
from sagemaker_emulator.algorithms.object2vec_data import RecordError, Side, encode_side, read_jsonlines_chunks
from sagemaker_emulator.algorithms.object2vec_network import TrainingGraph, build_network, load_model, native_bfloat16
from sagemaker_emulator.algorithms.object2vec_numpy import LookupTrainer
from sagemaker_emulator.algorithms.object2vec_training import (
    Pairs,
    dropout_masks,
    epoch_pairs,
    make_trainer,
    plan_batches,
    train_epoch_lookup,
)

JSON, JSONL = "application/json", "application/jsonlines"
SMALL = {
    "enc0_max_seq_len": "4",
    "enc0_vocab_size": "12",
    "enc1_network": "pooled_embedding",
    "enc1_max_seq_len": "1",
    "enc1_vocab_size": "6",
    "enc0_network": "pooled_embedding",
    "enc_dim": "16",
    "enc0_token_embedding_dim": "8",
    "enc1_token_embedding_dim": "8",
    "mlp_dim": "16",
    "mlp_layers": "1",
    "mlp_activation": "tanh",
    "epochs": "6",
    "mini_batch_size": "32",
    "learning_rate": "0.02",
}


def lines(in0, in1, labels=None) -> list[str]:
    rows = []
    for i, (a, b) in enumerate(zip(in0, in1)):
        row = {"in0": list(map(int, a)), "in1": list(map(int, b))}
        if labels is not None:
            row["label"] = labels[i].item()
        rows.append(json.dumps(row))
    return rows


def parity_pairs(n: int, seed: int, flip: bool = False) -> list[str]:
    """in0 = [a], in1 = [b]; label 1 when a and b have the same parity (inverted with ``flip``)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 12, n), rng.integers(0, 6, n)
    labels = ((a % 2) == (b % 2)).astype(int)
    return lines(a[:, None], b[:, None], 1 - labels if flip else labels)


def presence_pairs(n: int, seed: int) -> list[str]:
    """in0 = 1-4 tokens, in1 = [b]; label 1 when token 3 occurs in in0 (a sequence task for hcnn/bilstm)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 5, n)
    in0 = [rng.integers(0, 12, k) for k in lengths]
    return lines(in0, rng.integers(0, 6, (n, 1)), np.array([int(3 in seq) for seq in in0]))


def make_job(tmp_path, hp: dict, channels: dict[str, list[str]], auxiliary: dict[str, str] | None = None):
    config = {name: {"ContentType": JSONL} for name in channels}
    if auxiliary:
        config["auxiliary"] = {}
    layout = create_layout(tmp_path / "job", hp, config)
    for name, rows in channels.items():
        (layout.channel_dir(name) / f"{name}.jsonl").write_text("".join(row + "\n" for row in rows))
    for name, text in (auxiliary or {}).items():
        (layout.channel_dir("auxiliary") / name).write_text(text)
    return layout


def train(tmp_path, hp: dict, channels: dict[str, list[str]], **kwargs):
    layout = make_job(tmp_path, hp, channels, **kwargs)
    object2vec.train(layout, hp)
    return layout, object2vec.load(layout.model_dir)


def metrics(text: str) -> dict[str, list[float]]:
    """Every metric the emulator would extract from a log with the plug-in's METRIC_DEFINITIONS."""
    return {
        d["Name"]: [float(v) for v in re.findall(d["Regex"], text)]
        for d in object2vec.METRIC_DEFINITIONS
        if re.search(d["Regex"], text)
    }


def ask(predictor, instances: list[dict], content_type=JSON, accept=JSON) -> list[dict]:
    if content_type.startswith(JSONL):
        body = "".join(json.dumps(item) + "\n" for item in instances).encode()
    else:
        body = json.dumps({"instances": instances}).encode()
    answer, answer_type = predictor(body, content_type, accept)
    assert answer_type == (JSONL if accept == JSONL else JSON)
    if answer_type == JSONL:
        return [json.loads(line) for line in answer.decode().splitlines()]
    return json.loads(answer)["predictions"]


# Hyperparameters ---------------------------------------------------------------------------------------------


def test_required_hyperparameters_are_named():
    with pytest.raises(ClientError, match="'enc0_max_seq_len', 'enc0_vocab_size' which are required"):
        object2vec.resolve_hyperparameters({})


def test_defaults_follow_the_contract():
    hp = object2vec.resolve_hyperparameters({"enc0_max_seq_len": "10", "enc0_vocab_size": "100"})
    assert (hp["enc0_network"], hp["enc0_layers"], hp["enc_dim"], hp["epochs"]) == ("hcnn", 4, 4096, 30)
    assert (hp["mlp_layers"], hp["mlp_dim"], hp["output_layer"], hp["learning_rate"]) == (2, 512, "softmax", 0.0004)
    assert hp["comparator_list"] == "hadamard, concat, abs_diff"


def test_enc1_network_enc0_copies_every_enc0_setting():
    hp = object2vec.resolve_hyperparameters(
        {"enc0_max_seq_len": "5", "enc0_vocab_size": "2", "enc1_vocab_size": "3", "enc0_network": "bilstm"}
    )
    assert (hp["enc1_network"], hp["enc1_vocab_size"], hp["enc1_max_seq_len"], hp["enc1_layers"]) == ("bilstm", 2, 5, 1)


def test_enc1_settings_are_required_with_its_own_network():
    with pytest.raises(ClientError, match="'enc1_vocab_size' which are required .* when enc1_network is 'hcnn'"):
        object2vec.resolve_hyperparameters(
            {"enc0_max_seq_len": "5", "enc0_vocab_size": "9", "enc1_network": "hcnn", "enc1_max_seq_len": "3"}
        )


def test_pooled_embedding_forces_token_dim_to_enc_dim_with_the_aws_log_line(capsys):
    hp = object2vec.resolve_hyperparameters(
        {"enc0_max_seq_len": "1", "enc0_vocab_size": "9", "enc0_network": "pooled_embedding", "enc_dim": "100"}
    )
    assert hp["enc0_token_embedding_dim"] == hp["enc1_token_embedding_dim"] == 100
    assert (
        "Inconsistent enc_dim and token_embedding_dim found for token-embedding-encoder: 100 vs 300. "
        "Setting token embedding dim to be 100"
    ) in capsys.readouterr().out


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE"])
def test_booleans_and_undocumented_knobs_are_accepted(spelling):
    hp = object2vec.resolve_hyperparameters(
        {
            "enc0_max_seq_len": "1",
            "enc0_vocab_size": "9",
            "tied_token_embedding_weight": spelling,
            "_kvstore": "device",
            "_num_gpus": "auto",
            "_num_kv_servers": "auto",
            "enc0_layers": "auto",
        }
    )
    assert hp["tied_token_embedding_weight"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"comparator_list": "hadamard, cosine"}, "comparator_list.*a comma-separated list of hadamard, concat"),
        ({"mlp_layers": "11"}, "Invalid value '11' for hyperparameter 'mlp_layers'"),
        ({"enc0_layers": "5"}, "expected an integer in \\[1, 4\\] or 'auto'"),
        ({"token_embedding_storage_type": "row_sparse", "optimizer": "rmsprop"}, "row_sparse supports optimizer"),
        (
            {
                "tied_token_embedding_weight": "true",
                "enc1_network": "hcnn",
                "enc1_max_seq_len": "1",
                "enc1_vocab_size": "8",
            },
            "tied_token_embedding_weight=true needs one embedding table",
        ),
    ],
)
def test_bad_hyperparameters_are_client_errors(extra, message):
    with pytest.raises(ClientError, match=message):
        object2vec.resolve_hyperparameters({"enc0_max_seq_len": "1", "enc0_vocab_size": "9", **extra})


def test_comparator_list_allows_spaces():
    hp = object2vec.resolve_hyperparameters(
        {"enc0_max_seq_len": "1", "enc0_vocab_size": "9", "comparator_list": " abs_diff ,hadamard"}
    )
    assert hp["comparator_list"] == "abs_diff, hadamard"


# Training and serving ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("network", ["pooled_embedding", "hcnn", "bilstm"])
def test_each_encoder_trains_and_serves(tmp_path, capsys, network):
    hp = {
        **SMALL,
        "enc0_network": network,
        "enc0_layers": "2",
        "epochs": "8",
        "learning_rate": "0.01",
        "bucket_width": "2",
    }
    data = {"train": presence_pairs(600, 0), "validation": presence_pairs(200, 1), "test": presence_pairs(200, 2)}
    _, predictor = train(tmp_path, hp, data)
    found = metrics(capsys.readouterr().out)
    assert max(found["validation:accuracy"]) > 0.8
    assert {
        "train:accuracy",
        "train:cross_entropy",
        "test:accuracy",
        "test:cross_entropy",
        "train:progress",
        "train:throughput",
    } <= set(found)
    scored, embedded = ask(predictor, [{"in0": [3, 7], "in1": [1]}, {"in0": [1, 2, 3, 4, 5, 6]}])
    assert len(scored["scores"]) == 2 and abs(sum(scored["scores"]) - 1) < 1e-5
    assert len(embedded["embeddings"]) == 16


@pytest.mark.parametrize(
    ("extra", "width"),
    [
        ({"comparator_list": "hadamard", "mlp_layers": "0"}, 2),
        ({"comparator_list": "abs_diff, concat", "mlp_activation": "relu", "mlp_layers": "2", "dropout": "0.1"}, 2),
        ({"mlp_activation": "linear", "num_classes": "3", "optimizer": "rmsprop"}, 3),
        ({"output_layer": "mean_squared_error", "optimizer": "sgd", "learning_rate": "0.05"}, 1),
        (
            {
                "tied_token_embedding_weight": "true",
                "enc1_network": "enc0",
                "enc0_vocab_size": "12",
                "token_embedding_storage_type": "row_sparse",
                "optimizer": "adagrad",
                "weight_decay": "0.001",
            },
            2,
        ),
    ],
)
def test_comparator_mlp_and_output_variants(tmp_path, capsys, extra, width):
    hp = {**SMALL, "epochs": "3", **extra}
    channels = {"train": parity_pairs(400, 0), "validation": parity_pairs(100, 1)}
    _, predictor = train(tmp_path, hp, channels)
    found = metrics(capsys.readouterr().out)
    name = "validation:mean_squared_error" if width == 1 else "validation:accuracy"
    assert len(found[name]) == 3 + 1  # one line per epoch, then the kept epoch's again
    (answer,) = ask(predictor, [{"in0": [2], "in1": [4]}])
    assert len(answer["scores"]) == width


def test_classifier_learns_the_planted_rule(tmp_path, capsys):
    train(tmp_path, SMALL, {"train": parity_pairs(800, 0), "validation": parity_pairs(200, 1)})
    assert metrics(capsys.readouterr().out)["validation:accuracy"][-1] > 0.95


def test_regression_beats_the_mean(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 12, 1000), rng.integers(0, 6, 1000)
    ratings = 1.0 + 0.25 * a + 0.5 * b
    rows = lines(a[:, None], b[:, None], ratings)
    hp = {**SMALL, "output_layer": "mean_squared_error", "epochs": "10"}
    _, predictor = train(tmp_path, hp, {"train": rows[:800], "validation": rows[800:]})
    best = min(metrics(capsys.readouterr().out)["validation:mean_squared_error"])
    assert best < 0.1 * ratings.var()
    (answer,) = ask(predictor, [{"in0": [4], "in1": [2]}])
    assert answer["scores"][0] == pytest.approx(3.0, abs=0.5)


def test_early_stopping_keeps_the_best_epoch(tmp_path, capsys):
    """Validation labels contradict the training ones, so validation loss is best before training goes far."""
    hp = {**SMALL, "epochs": "20", "early_stopping_patience": "2", "early_stopping_tolerance": "0.001"}
    validation = parity_pairs(200, 1, flip=True)
    layout, predictor = train(tmp_path, hp, {"train": parity_pairs(800, 0), "validation": validation})
    out = capsys.readouterr().out
    losses = metrics(out)["validation:cross_entropy"]
    assert "Early stopping: validation cross_entropy did not improve" in out
    assert len(losses) < 20
    best_epoch = int(np.argmin(losses))
    assert f"Best model from epoch {best_epoch} " in out
    assert losses[-1] == losses[best_epoch]  # what the job reports as final: the kept model's, named by its epoch
    assert (
        out.rstrip().splitlines()[-1].endswith(f"epoch={best_epoch}, validation cross_entropy <loss>={losses[-1]:.6g}")
    )
    records = [json.loads(row) for row in validation]
    answers = ask(predictor, [{"in0": r["in0"], "in1": r["in1"]} for r in records])
    probabilities = np.array([a["scores"][r["label"]] for a, r in zip(answers, records)])
    assert -np.mean(np.log(probabilities)) == pytest.approx(losses[best_epoch], rel=1e-3)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_masks_drop_each_unit_at_the_rate_and_rescale_the_rest(rate):
    masks = [mask.asnumpy() for mask in dropout_masks(np.random.default_rng(0), 4000, [16, 8], rate)]
    assert [mask.shape for mask in masks] == [(4000, 16), (4000, 8)]
    for mask in masks:
        assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - rate))}
        assert np.mean(mask == 0) == pytest.approx(rate, abs=0.01)
    first, second = dropout_masks(np.random.default_rng(1), 4000, [16, 16], rate)
    assert not np.array_equal(first.asnumpy(), second.asnumpy())


def test_dropout_rate_one_drops_everything():
    (mask,) = dropout_masks(np.random.default_rng(0), 10, [4], 1.0)
    assert mask.asnumpy().tolist() == [[0.0] * 4] * 10


def test_one_token_pooled_embedding_is_the_token_embedding():
    import mxnet as mx

    hp = object2vec.resolve_hyperparameters({**SMALL, "enc1_network": "enc0", "enc0_max_seq_len": "1"})
    network = build_network(hp)
    tokens, lengths = mx.nd.array([[3], [0], [11]]), mx.nd.ones(3)
    expected = network.enc0.embedding(tokens).reshape((3, -1))
    assert network.enc0.single_token
    assert np.array_equal(network.encoder(0)(tokens, lengths).asnumpy(), expected.asnumpy())
    network.hybridize()
    assert np.array_equal(network.encoder(0)(tokens, lengths).asnumpy(), expected.asnumpy())


@pytest.mark.parametrize("bfloat16", [False, native_bfloat16()], ids=["float32", "this CPU's training precision"])
def test_the_training_graph_scores_as_the_network_serves(bfloat16):
    import mxnet as mx

    hp = object2vec.resolve_hyperparameters({**SMALL, "mlp_layers": "2", "mlp_activation": "relu"})
    network = build_network(hp)
    graph = TrainingGraph(network, softmax=True, bfloat16=bfloat16)
    graph.hybridize()
    inputs = (mx.nd.array([[1, 2, 3], [4, 0, 0]]), mx.nd.array([3, 1]), mx.nd.array([[5], [0]]), mx.nd.ones(2))
    with mx.autograd.record():
        loss, outputs = graph(*inputs, mx.nd.array([1, 0]))
    loss.backward()
    served = network(*inputs).asnumpy()
    np.testing.assert_allclose(outputs.asnumpy(), served, rtol=0.02 if bfloat16 else 1e-6, atol=1e-3 if bfloat16 else 0)
    assert np.abs(network.mlp[0].weight.grad().asnumpy()).sum() > 0


def test_negative_sampling_pairs_in0_with_other_records_in1():
    labels = np.ones(50, dtype=np.float32)
    data = Pairs((None, None), labels)
    first, second, sampled = epoch_pairs(data, 3, np.random.default_rng(0))
    assert first.size == 200 and (sampled == 0).sum() == 150 and (sampled == 1).sum() == 50
    negatives = sampled == 0
    assert np.all(first[negatives] != second[negatives])
    assert np.all(first[~negatives] == second[~negatives])
    assert np.bincount(first[negatives], minlength=50).tolist() == [3] * 50
    again = epoch_pairs(data, 3, np.random.default_rng(1))[1]
    assert not np.array_equal(np.sort(second), np.sort(again))


def test_negative_sampling_trains_on_positive_only_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 12, 600)
    positives = lines(a[:, None], (a % 6)[:, None], np.ones(600, dtype=int))  # in1 = in0 mod 6
    b = (a[:200] + rng.integers(1, 6, 200)) % 6
    validation = lines(a[:200, None], np.where(np.arange(200) % 2, a[:200] % 6, b)[:, None], np.arange(200) % 2)
    hp = {**SMALL, "negative_sampling_rate": "2", "epochs": "6"}
    train(tmp_path, hp, {"train": positives, "validation": validation})
    out = metrics(capsys.readouterr().out)
    assert max(out["validation:accuracy"]) > 0.9
    assert out["train:throughput"]  # counts the sampled negatives too


def test_pretrained_embeddings_are_loaded_and_frozen(tmp_path):
    vectors = {f"w{i}": np.full(8, i / 10) for i in range(12)}
    glove = "".join(f"{token} {' '.join(f'{v:g}' for v in vec)}\n" for token, vec in vectors.items())
    vocab = json.dumps({f"w{i}": 11 - i for i in range(12)})
    hp = {
        **SMALL,
        "enc0_network": "hcnn",
        "enc0_layers": "1",
        "epochs": "2",
        "enc0_pretrained_embedding_file": "glove.txt",
        "enc0_vocab_file": "vocab.json",
    }
    auxiliary = {"glove.txt": glove, "vocab.json": vocab}
    layout, _ = train(tmp_path, hp, {"train": parity_pairs(200, 0)}, auxiliary=auxiliary)
    network, _ = load_model(layout.model_dir)
    table = network.encoder(0).embedding.weight.data().asnumpy()
    np.testing.assert_allclose(table[:, 0], [(11 - i) / 10 for i in range(12)], rtol=1e-6)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("..", "Hyperparameter enc0_pretrained_embedding_file"),
        ("../../../../etc/passwd", "expected a file name made of"),
        ("/etc/passwd", "expected a file name made of"),
    ],
)
def test_an_embedding_file_outside_the_auxiliary_channel_is_refused(tmp_path, name, reason):
    hp = {**SMALL, "enc0_network": "hcnn", "enc0_layers": "1", "enc0_pretrained_embedding_file": name}
    with pytest.raises(ClientError, match=reason):
        train(tmp_path, hp, {"train": parity_pairs(50, 0)}, auxiliary={"glove.txt": "w0 1\n"})


def test_padding_does_not_change_an_embedding(tmp_path):
    hp = {**SMALL, "enc0_network": "bilstm", "epochs": "1"}
    _, predictor = train(tmp_path, hp, {"train": presence_pairs(100, 0)})
    (alone,) = ask(predictor, [{"in0": [5, 0]}])
    padded = ask(predictor, [{"in0": [5, 0]}, {"in0": [1, 2, 3, 4]}])[0]
    np.testing.assert_allclose(alone["embeddings"], padded["embeddings"], rtol=1e-5, atol=1e-6)


# Serving formats ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    _, served = train(tmp_path_factory.mktemp("served"), {**SMALL, "epochs": "2"}, {"train": parity_pairs(200, 0)})
    return served


@pytest.mark.parametrize("content_type", [JSON, JSONL, f"{JSONL}; infer_max_seqlens=4,1", "Application/JSON"])
@pytest.mark.parametrize("accept", [JSON, JSONL, "*/*"])
def test_every_content_type_in_and_out(predictor, content_type, accept):
    answers = ask(predictor, [{"in0": [1, 2], "in1": [3]}, {"in1": [3]}, {"in0": [1]}], content_type, accept)
    assert [sorted(a) for a in answers] == [["scores"], ["embeddings"], ["embeddings"]]


def test_infer_max_seqlens_truncates(predictor):
    full, cut = (ask(predictor, [{"in0": [1, 2, 3]}], f"{JSON}; infer_max_seqlens={n},1")[0] for n in (3, 1))
    (first,) = ask(predictor, [{"in0": [1]}])
    assert cut == first and full != first


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b"[[1, 2]]", JSON, JSON, 400, 'unable to evaluate payload provided: expected {"instances"'),
        (b"{not json", JSON, JSON, 400, "unable to evaluate payload provided: not valid JSON"),
        (b'{"in0": [1]}\n{"in0": [1]\n', JSONL, JSON, 400, "unable to evaluate payload provided: line 2: not valid"),
        (b'{"instances": [{"in0": [1]}, {"label": 1}]}', JSON, JSON, 400, "instance 1 has neither 'in0' nor 'in1'"),
        (b'{"instances": [{"in0": "1 2"}]}', JSON, JSON, 400, "instance 0: 'in0' must be a non-empty list"),
        (
            b'{"instances": [{"in0": [1], "in1": [6]}]}',
            JSON,
            JSON,
            400,
            'Inconsistent vocab for in1 found. Vocab id "6" is not less than vocab_size=6',
        ),
        (b'{"instances": []}', "text/csv", JSON, 415, "content-type text/csv not supported"),
        (b'{"instances": []}', JSON, "text/csv", 406, "accept text/csv not supported"),
        (b'{"instances": []}', f"{JSON}; infer_max_seqlens=0,9", JSON, 400, "infer_max_seqlens must be two integers"),
    ],
)
def test_bad_requests(predictor, body, content_type, accept, status, message):
    with pytest.raises(PayloadError, match=re.escape(message)) as caught:
        predictor(body, content_type, accept)
    assert caught.value.status == status


# Data errors ---------------------------------------------------------------------------------------------------


def test_vocab_violation_uses_the_container_wording(tmp_path):
    """The case of sagemaker-python-sdk issue 834: enc1 inherits enc0's vocab size of 2."""
    hp = {"enc0_max_seq_len": "2", "enc0_vocab_size": "2", "enc1_vocab_size": "3", "epochs": "1"}
    layout = make_job(tmp_path, hp, {"train": ['{"label": 0, "in0": [1], "in1": [2]}']})
    with pytest.raises(ClientError) as caught:
        object2vec.train(layout, hp)
    assert str(caught.value) == 'Inconsistent vocab for in1 found. Vocab id "2" is not less than vocab_size=2'


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (
            ['{"in0": [1], "in1": [2], "label": 1}', "", '{"in0": [1], "in1": [2], "label": 1'],
            {},
            "train/train.jsonl, line 3: not valid JSON",
        ),
        (
            ['{"in0": [1], "in1": [2], "label": 1}', '{"in0": [1], "in1": [2]}'],
            {},
            "train/train.jsonl, line 2: the record has no 'label'",
        ),
        (['{"in0": [1], "in1": [2], "label": 2}'], {}, "line 1: label 2 is not a class index in [0, 2)"),
        (
            ['{"in0": [1], "in1": [2], "label": "good"}'],
            {"output_layer": "mean_squared_error"},
            'line 1: the record has a non-numeric label "good"',
        ),
        (['{"in0": [], "in1": [2], "label": 1}'], {}, "line 1: 'in0' must be a non-empty list"),
        (['{"in0": [1.5], "in1": [2], "label": 1}'], {}, "line 1: 'in0' must be a non-empty list of integer"),
        (["[1, 2]"], {}, "line 1: expected a JSON object"),
        ([], {}, "no records found in channel 'train'"),
    ],
)
def test_bad_training_data_fails_with_file_and_line(tmp_path, rows, extra, message):
    hp = {**SMALL, "epochs": "1", **extra}
    layout = make_job(tmp_path, hp, {"train": rows})
    with pytest.raises(ClientError, match=re.escape(message)):
        object2vec.train(layout, hp)


def test_channel_files_are_read_in_chunks_that_keep_their_line_numbers(tmp_path):
    path = tmp_path / "train" / "pairs.jsonl"
    path.parent.mkdir()
    rows = lines([[1], [3, 4], [6]], [[2], [5], [7]], np.array([1, 0, 1]))
    path.write_text(f"{rows[0]}\n\n{rows[1]}\n{rows[2]}\n")
    chunks = list(read_jsonlines_chunks([path], tmp_path, size=2))
    assert [[record["in1"] for record in records] for records, _ in chunks] == [[[2]], [[5], [7]]]
    places = [where(i) for records, where in chunks for i in range(len(records))]
    assert places == [f"train/pairs.jsonl, line {n}" for n in (1, 3, 4)]
    path.write_text(f"{rows[0]}\n\n{rows[1]}\n{rows[2]}\nnot json\n")
    with pytest.raises(RecordError, match=r"^train/pairs.jsonl, line 5: not valid JSON"):
        list(read_jsonlines_chunks([path], tmp_path, size=2))


def test_chunks_of_a_side_are_padded_to_the_widest():
    joined = Side.concatenate([encode_side([[1], [2]], 0, 4, 10, str), encode_side([[3, 4, 5]], 0, 4, 10, str)])
    assert joined.tokens.tolist() == [[1, 0, 0], [2, 0, 0], [3, 4, 5]] and joined.lengths.tolist() == [1, 1, 3]


def test_missing_train_channel_is_a_client_error(tmp_path):
    layout = make_job(tmp_path, SMALL, {"validation": parity_pairs(10, 0)})
    with pytest.raises(ClientError, match="No training data found"):
        object2vec.train(layout, SMALL)


def test_sequences_are_truncated_before_the_vocab_check():
    side = encode_side([[1, 2, 99], [3]], 0, 2, 10, lambda i: f"record {i}")
    assert side.tokens.tolist() == [[1, 2], [3, 0]] and side.lengths.tolist() == [2, 1]


def test_declarations_cover_the_contract():
    assert object2vec.CHANNELS["train"].required and object2vec.CHANNELS["train"].content_types == (JSONL,)
    assert {"validation", "test", "auxiliary"} <= set(object2vec.CHANNELS)
    names = {d["Name"] for d in object2vec.METRIC_DEFINITIONS}
    assert {"validation:mean_squared_error", "test:accuracy", "validation:cross_entropy", "train:progress"} <= names


@pytest.mark.parametrize("bucket_width", [0, 2])
def test_batches_are_cut_to_their_longest_record(bucket_width):
    lengths0 = np.array([1, 5, 2, 6, 1, 1], dtype=np.float32)
    lengths1 = np.ones(6, dtype=np.float32)
    order, batches = plan_batches(lengths0, lengths1, 2, bucket_width, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(6))
    for start, stop, width0, width1 in batches:
        assert width0 == lengths0[order[start:stop]].max() and width1 == 1
    if bucket_width:
        assert sorted(tuple(sorted(lengths0[order[a:b]])) for a, b, _, _ in batches) == [(1, 1), (1, 2), (5, 6)]


# The numpy step for one-token sides (object2vec_numpy) -------------------------------------------------------


def quiet_resolve(values: dict) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        return object2vec.resolve_hyperparameters(values)


LOOKUP = {  # Lab 2's kind of network, small: one token a side, row_sparse Adam
    "enc0_network": "pooled_embedding",
    "enc1_network": "pooled_embedding",
    "enc0_max_seq_len": "1",
    "enc1_max_seq_len": "1",
    "enc0_vocab_size": "50",
    "enc1_vocab_size": "40",
    "enc_dim": "8",
    "mlp_dim": "6",
    "mlp_layers": "2",
    "num_classes": "3",
    "optimizer": "adam",
    "learning_rate": "0.01",
    "dropout": "0.3",
    "weight_decay": "0.01",
    "token_embedding_storage_type": "row_sparse",
}


@pytest.mark.parametrize(
    "extra",
    [
        {"mlp_activation": "relu", "output_layer": "mean_squared_error"},
        {"mlp_activation": "tanh", "output_layer": "softmax", "comparator_list": "abs_diff, hadamard"},
        {"mlp_activation": "linear", "output_layer": "softmax", "comparator_list": "concat", "mlp_layers": "0"},
    ],
)
def test_numpy_steps_update_the_parameters_as_gluon_steps_do(extra):
    """Same start, same batches and dropout masks (with repeated rows): losses and parameters agree to rounding."""
    hp = quiet_resolve({**LOOKUP, **extra})
    softmax = hp["output_layer"] == "softmax"
    mx.random.seed(0)
    network = build_network(hp)
    lookup = LookupTrainer(network, hp)
    graph, trainer = TrainingGraph(network, softmax), make_trainer(network, hp)
    rng, slots = np.random.default_rng(1), lookup.slots()
    for _ in range(5):
        users, items = rng.integers(0, 10, 16), rng.integers(0, 40, 16)
        labels = (rng.integers(0, 3, 16) if softmax else rng.normal(3, 1, 16)).astype(np.float32)
        masks = [((rng.random((16, w)) > 0.3) / 0.7).astype(np.float32) for w in network.mask_widths()]
        losses, _ = lookup.step(users, items, labels, masks, slots)
        with autograd.record():
            expected, _ = graph(
                *(mx.nd.array(a) for a in (users[:, None], np.ones(16), items[:, None], np.ones(16), labels)),
                *(mx.nd.array(mask) for mask in masks),
            )
        expected.backward()
        trainer.step(16)
        np.testing.assert_allclose(losses, expected.asnumpy(), rtol=1e-4, atol=1e-5)
    gluon_values = {key: value.data().asnumpy() for key, value in network.collect_params().items()}
    lookup.write_back()
    for key, value in network.collect_params().items():
        np.testing.assert_allclose(value.data().asnumpy(), gluon_values[key], atol=1e-5, err_msg=key)
    assert all((slot == -1).all() for slot in slots)  # the scratch is left ready for the next step


@pytest.mark.parametrize(
    ("extra", "fits"),
    [
        ({}, True),
        ({"token_embedding_storage_type": "dense"}, False),
        ({"optimizer": "sgd"}, False),
        ({"enc0_max_seq_len": "2"}, False),
        ({"tied_token_embedding_weight": "true", "enc1_vocab_size": "50"}, False),
    ],
)
def test_only_one_token_sides_with_row_sparse_adam_take_the_numpy_step(extra, fits):
    assert LookupTrainer.fits(quiet_resolve({**LOOKUP, **extra})) is fits


def test_a_lab_style_job_trains_with_the_numpy_step_and_serves(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 12, 1000), rng.integers(0, 6, 1000)
    ratings = 1.0 + 0.25 * a + 0.5 * b
    rows = lines(a[:, None], b[:, None], ratings)
    hp = {
        **LOOKUP,
        "enc0_vocab_size": "12",
        "enc1_vocab_size": "6",
        "enc_dim": "16",
        "mlp_dim": "16",
        "mlp_layers": "1",
        "mlp_activation": "relu",
        "output_layer": "mean_squared_error",
        "dropout": "0",
        "weight_decay": "0",
        "epochs": "10",
        "mini_batch_size": "32",
        "learning_rate": "0.02",
    }
    _, predictor = train(tmp_path, hp, {"train": rows[:800], "validation": rows[800:]})
    out = capsys.readouterr().out
    assert "each training step runs in numpy" in out
    assert min(metrics(out)["validation:mean_squared_error"]) < 0.1 * ratings.var()
    (answer,) = ask(predictor, [{"in0": [4], "in1": [2]}])
    assert answer["scores"][0] == pytest.approx(3.0, abs=0.5)


def test_hogwild_threads_share_an_epoch_and_learn(monkeypatch):
    """Above the threshold two threads take alternate batches; the epoch's loss still falls as one thread's does."""
    monkeypatch.setattr(object2vec_training, "HOGWILD_MIN_PAIRS", 1000)
    hp = quiet_resolve({**LOOKUP, "output_layer": "mean_squared_error", "dropout": "0", "learning_rate": "0.02"})
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 50, 4000), rng.integers(0, 40, 4000)
    sides = [Side(ids[:, None].astype(np.float32), np.ones(4000, np.float32)) for ids in (a, b)]
    data = Pairs(tuple(sides), (1.0 + 0.05 * a + 0.05 * b).astype(np.float32))
    trainer = LookupTrainer(build_network(hp), hp)
    losses = [train_epoch_lookup(trainer, data, hp, rng)[0]["mean_squared_error"] for _ in range(4)]
    assert losses[-1] < 0.1 * data.labels.var() < losses[0]


def test_the_plugin_imports_numba_only_when_a_job_trains_with_the_numpy_step():
    """Endpoints and Gluon jobs load the plug-in too; numba costs them about a second of CPU to import."""
    code = "import common, sys; from sagemaker_emulator.algorithms import object2vec; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
