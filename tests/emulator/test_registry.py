"""Plug-ins registered outside the package through SAGEMAKER_EMULATOR_PLUGINS (how the tests add mean-regressor)."""

from __future__ import annotations

import pytest

from sagemaker_emulator.algorithms.base import ClientError
from sagemaker_emulator.algorithms.registry import PLUGINS, PLUGINS_VARIABLE, load_plugin, registered, supported


def test_the_test_algorithm_is_not_in_the_production_table():
    assert "mean-regressor" not in PLUGINS
    assert "mean-regressor" in supported()  # tests/conftest.py registers it


def test_a_registered_file_is_loaded_as_a_plugin(monkeypatch, tmp_path):
    plugin = tmp_path / "constant.py"
    plugin.write_text("HYPERPARAMETERS = {}\n")
    monkeypatch.setenv(PLUGINS_VARIABLE, f"constant={plugin}")
    assert registered()["constant"] == str(plugin)
    assert load_plugin("123.dkr.ecr.us-east-1.amazonaws.com/constant:1").HYPERPARAMETERS == {}


def test_a_malformed_entry_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(PLUGINS_VARIABLE, "constant")
    with pytest.raises(ValueError, match=r"SAGEMAKER_EMULATOR_PLUGINS entry 'constant' is not <image repository>="):
        registered()


def test_a_missing_file_is_an_unsupported_image(monkeypatch, tmp_path):
    monkeypatch.setenv(PLUGINS_VARIABLE, f"gone={tmp_path / 'gone.py'}")
    with pytest.raises(ClientError, match=r"The image 'gone' \(repository 'gone'\) is not supported"):
        load_plugin("gone")
