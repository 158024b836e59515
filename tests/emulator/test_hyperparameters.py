"""A bad value for every declared hyperparameter of every registered plug-in is refused, naming it.

Generated from the plug-ins' own declarations (``base.py`` specs), like scikit-learn's ``check_param_validation``,
so a plug-in added later is covered without a new test. An end-to-end job checks that the container turns the
refusal into the job's ``FailureReason`` (the same code path for every plug-in; the test algorithm keeps it fast).
"""

from __future__ import annotations

import pytest
from emulator_helpers import REGION, channel, finished_training, put_csv, training_request

from sagemaker_emulator.algorithms import base
from sagemaker_emulator.algorithms.registry import builtin, load_plugin, registered

_NOT_ACCEPTED = ("", "not valid ~!", "-1", "0", "abc", "[1, 2", "{}")


def _plugins() -> list[str]:
    return builtin()  # framework images run the job's own script, which reads its hyperparameters itself


def _valid(spec) -> str | None:
    if spec.default is not None and not isinstance(spec, base.Text):
        return str(spec.default).lower() if isinstance(spec, base.Boolean) else str(spec.default)
    if isinstance(spec, base.Integer):
        return str(spec.low if spec.low is not None else 1)
    if isinstance(spec, base.Float):
        if spec.low is None:
            return "0.5" if spec.high is None or spec.high >= 0.5 else str(spec.high)
        return str((spec.low + spec.high) / 2 if spec.high is not None else spec.low + 1)
    if isinstance(spec, base.Categorical):
        return spec.options[0]
    if isinstance(spec, base.Boolean):
        return "true"
    return spec.default if spec.default is not None else "x"


def _bad_values(spec) -> list[str]:
    if isinstance(spec, (base.Integer, base.Float)):
        values = ["not-a-number"]
        if spec.low is not None:
            values.append(str(spec.low - 1))
        if spec.high is not None:
            values.append(str(spec.high + 1))
        if isinstance(spec, base.Integer):
            values.append("1.5")
        return values
    if isinstance(spec, base.Categorical):
        return ["no-such-option"]
    if isinstance(spec, base.Boolean):
        return ["maybe"]
    if isinstance(spec, base.Text) and spec.check is not None:
        return [value for value in _NOT_ACCEPTED if not spec.check(value)][:1]
    return []


def _required(specs: dict) -> dict[str, str]:
    return {name: _valid(spec) for name, spec in specs.items() if spec.required}


def test_every_registered_plugin_is_found():
    assert "mean-regressor" in _plugins()
    assert set(_plugins()) <= set(registered())


@pytest.mark.parametrize("repository", _plugins())
def test_a_bad_value_for_each_hyperparameter_is_refused(repository):
    specs = load_plugin(repository).HYPERPARAMETERS
    checked = 0
    for name, spec in specs.items():
        for bad in _bad_values(spec):
            raw = {**_required(specs), name: bad}
            with pytest.raises(base.ClientError) as excinfo:
                base.parse_hyperparameters(specs, raw)
            assert str(excinfo.value) == (
                f"Invalid value '{bad}' for hyperparameter '{name}': expected {spec.describe()} "
                "(caused by ValidationError)"
            )
            checked += 1
    assert checked > 0
    with pytest.raises(base.ClientError, match=r"Additional hyperparameters are not allowed \('no_such_name' was"):
        base.parse_hyperparameters(specs, {**_required(specs), "no_such_name": "1"})


def test_a_bad_value_fails_the_training_job(sm, s3):
    repository = "mean-regressor"
    specs = load_plugin(repository).HYPERPARAMETERS
    name, spec = next((n, s) for n, s in specs.items() if _bad_values(s))
    bad = _bad_values(spec)[0]
    image = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/{repository}:1"
    job_name = f"bad-{repository}"[:63]
    request = training_request(
        job_name,
        [channel("train", put_csv(s3, "any/train.csv", "1,2\n"))],
        image=image,
        HyperParameters={**_required(specs), name: bad},
    )
    request["InputDataConfig"][0].pop("ContentType")
    sm.create_training_job(**request)
    job = finished_training(sm, job_name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"ClientError: Invalid value '{bad}' for hyperparameter '{name}': expected {spec.describe()} "
        "(caused by ValidationError)"
    )
