"""The test algorithm on its own: training on an /opt/ml tree, serving, and its error paths."""

from __future__ import annotations

import json

import mean_regressor
import pytest

from sagemaker_emulator.algorithms.base import ClientError, PayloadError, parse_hyperparameters
from sagemaker_emulator.algorithms.container import check_channels
from sagemaker_emulator.algorithms.layout import create_layout


@pytest.fixture
def layout(tmp_path):
    layout = create_layout(tmp_path, {}, {"train": {"ContentType": "text/csv"}, "test": {"ContentType": "text/csv"}})
    (layout.channel_dir("train") / "a.csv").write_text("1,9\n2,9\n6,9\n")
    (layout.channel_dir("test") / "b.csv").write_text("3,0\n")
    return layout


def _train(layout, **raw) -> None:
    mean_regressor.train(layout, parse_hyperparameters(mean_regressor.HYPERPARAMETERS, raw))


def test_train_saves_the_scaled_statistic_and_logs_metrics(layout, capsys):
    _train(layout, scale="0.5")
    assert json.loads((layout.model_dir / "mean.json").read_text()) == {"value": 1.5}
    out = capsys.readouterr().out
    assert "#quality_metric: host=algo-1, train mse <loss>=" in out
    assert "#quality_metric: host=algo-1, test mse <loss>=2.25" in out


def test_median(layout):
    _train(layout, statistic="median")
    assert json.loads((layout.model_dir / "mean.json").read_text()) == {"value": 2.0}


def test_unreadable_csv_is_a_client_error(layout):
    (layout.channel_dir("train") / "a.csv").write_text("1,2\nx,y\n")
    with pytest.raises(ClientError, match="Unable to read the 'train' channel's file a.csv as CSV numbers"):
        _train(layout)


def test_channels_are_checked_against_the_declaration():
    with pytest.raises(
        ClientError, match=r"channel\(s\) 'validation' are not supported; supported channels: test, train"
    ):
        check_channels(mean_regressor.CHANNELS, {"train": {}, "validation": {}})
    with pytest.raises(
        ClientError, match="Channel 'train' has content type 'application/json'; this algorithm reads text/csv"
    ):
        check_channels(mean_regressor.CHANNELS, {"train": {"ContentType": "application/json"}})
    check_channels(mean_regressor.CHANNELS, {"train": {"ContentType": "text/csv; label_size=1"}})


@pytest.fixture
def predict(layout):
    _train(layout)
    return mean_regressor.load(layout.model_dir)


def test_predictions_in_each_format(predict):
    assert predict(b"1,2\n3,4\n", "text/csv", "application/json") == (
        b'{"predictions": [{"score": 3.0}, {"score": 3.0}]}',
        "application/json",
    )
    assert predict(b'{"instances": [{"features": [1]}]}', "application/json", "text/csv") == (b"3.0\n", "text/csv")
    assert predict(b'{"a": 1}\n{"a": 2}\n', "application/jsonlines", "application/jsonlines") == (
        b'{"score": 3.0}\n{"score": 3.0}\n',
        "application/jsonlines",
    )


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b"a,b", "text/csv", "application/json", 400, "unable to evaluate payload provided: "),
        (b"<x/>", "application/xml", "application/json", 415, "Content type application/xml is not supported"),
        (b"1", "text/csv", "image/png", 406, "Accept image/png is not supported"),
        (b'{"rows": []}', "application/json", "application/json", 400, "unable to evaluate payload provided: "),
    ],
)
def test_bad_requests(predict, body, content_type, accept, status, message):
    with pytest.raises(PayloadError) as excinfo:
        predict(body, content_type, accept)
    assert excinfo.value.status == status and excinfo.value.message.startswith(message)


def test_load_without_the_model_file(tmp_path):
    with pytest.raises(ClientError, match="The model artifact holds no mean.json."):
        mean_regressor.load(tmp_path)
