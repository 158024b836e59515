"""The search strategies of hyperparameter tuning: which hyperparameters the next training job gets.

A :class:`Search` is built from the request's ``ParameterRanges`` and answers ``suggest()`` (one trial's tuned
values as the strings a training job takes, or None when the strategy has nothing left) and ``report()`` (that
trial's objective, or None when it produced none). Strategies, as the SageMaker developer guide describes them
("Understand the hyperparameter tuning strategies available in Amazon SageMaker AI"):

- ``Random``: each value drawn independently from its range, on the range's scale.
- ``Bayesian``: a Bayesian optimiser proposes values from the results so far. Ours is optuna's tree-structured
  Parzen estimator (TPE), which treats integer, continuous and categorical ranges natively and, with
  ``constant_liar``, proposes several trials at once without repeating the pending ones (MaxParallelTrainingJobs).
  AWS does not publish its own model (a Gaussian process), so the trials differ from AWS's, not the contract.
- ``Grid``: every combination of the categorical values, in order; grid search takes categorical ranges only.

Scaling types (``ScalingType``): ``Linear`` samples the value, ``Logarithmic`` its logarithm (ranges above 0),
``ReverseLogarithmic`` the logarithm of ``1 - value`` (continuous ranges within [0, 1)). ``Auto`` is our choice,
as AWS leaves it to the service: logarithmic when the range is positive and spans two orders of magnitude or
more, linear otherwise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import optuna

from sagemaker_emulator.errors import ValidationException

optuna.logging.set_verbosity(optuna.logging.WARNING)

STRATEGIES = ("Random", "Bayesian", "Grid")


@dataclass(frozen=True)
class Range:
    """One tuned hyperparameter: ``kind`` is ``Integer``, ``Continuous`` or ``Categorical``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()

    def format(self, value) -> str:
        if self.kind == "Integer":
            return str(int(round(value)))
        if self.kind == "Continuous":
            return repr(float(value))
        return str(value)


def _number(text: str, name: str, kind: str) -> float:
    try:
        value = int(text) if kind == "Integer" else float(text)
    except ValueError:
        raise ValidationException(
            f"The {kind.lower()} range of {name} has a bound that is not a number: '{text}'."
        ) from None
    if not math.isfinite(value):
        raise ValidationException(f"The range of {name} must have finite bounds, got '{text}'.")
    return value


def _scaling(name: str, kind: str, low: float, high: float, scaling: str) -> str:
    if scaling == "Auto":
        return "Logarithmic" if low > 0 and high / low >= 100 else "Linear"
    if scaling == "Logarithmic" and low <= 0:
        raise ValidationException(f"Logarithmic scaling of {name} needs a range above 0, got MinValue {low}.")
    if scaling == "ReverseLogarithmic" and (kind != "Continuous" or low < 0 or high >= 1):
        raise ValidationException(
            f"ReverseLogarithmic scaling of {name} needs a continuous range within [0, 1), got [{low}, {high}]."
        )
    return scaling


def parse_ranges(ranges: dict) -> list[Range]:
    """The request's ``ParameterRanges`` as :class:`Range` s; ValidationException for a range AWS would refuse."""
    parsed: list[Range] = []
    for kind in ("Integer", "Continuous"):
        for item in ranges.get(f"{kind}ParameterRanges", []):
            name = item["Name"]
            low, high = _number(item["MinValue"], name, kind), _number(item["MaxValue"], name, kind)
            if low > high:
                raise ValidationException(f"The range of {name} has MinValue {low} above MaxValue {high}.")
            scaling = _scaling(name, kind, low, high, item.get("ScalingType", "Auto"))
            parsed.append(Range(name, kind, low, high, scaling))
    for item in ranges.get("CategoricalParameterRanges", []):
        values = tuple(item["Values"])
        if len(set(values)) != len(values):
            raise ValidationException(f"The categorical range of {item['Name']} repeats a value: {list(values)}.")
        parsed.append(Range(item["Name"], "Categorical", values=values))
    names = [r.name for r in parsed]
    if not parsed:
        raise ValidationException("ParameterRanges must name at least one hyperparameter to tune.")
    if len(set(names)) != len(names):
        raise ValidationException(f"A hyperparameter may have only one range: {sorted(names)}.")
    return parsed


class Search:
    def suggest(self) -> dict[str, str] | None:
        raise NotImplementedError

    def report(self, tuned: dict[str, str], objective: float | None) -> None:
        """Learn the outcome of a trial (strategies that do not learn ignore it)."""


class RandomSearch(Search):
    def __init__(self, ranges: list[Range], seed: int | None):
        self.ranges = ranges
        self.random = np.random.default_rng(seed)

    def _draw(self, r: Range):
        if r.kind == "Categorical":
            return r.values[self.random.integers(len(r.values))]
        if r.scaling == "Logarithmic":
            return math.exp(self.random.uniform(math.log(r.low), math.log(r.high)))
        if r.scaling == "ReverseLogarithmic":
            return 1 - math.exp(self.random.uniform(math.log(1 - r.high), math.log(1 - r.low)))
        if r.kind == "Integer":
            return self.random.integers(int(r.low), int(r.high) + 1)
        return self.random.uniform(r.low, r.high)

    def suggest(self) -> dict[str, str]:
        return {r.name: r.format(self._draw(r)) for r in self.ranges}


class BayesianSearch(Search):
    """optuna's TPE through its ask-and-tell interface: one ``ask`` per training job, one ``tell`` per result."""

    def __init__(self, ranges: list[Range], seed: int | None, budget: int, minimize: bool):
        startup = max(2, min(10, budget // 3))  # random trials before the model proposes: a third of the budget
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
        self.study = optuna.create_study(sampler=sampler, direction="minimize" if minimize else "maximize")
        self.ranges = ranges
        self.distributions = {r.name: self._distribution(r) for r in ranges}
        self.pending: dict[tuple, optuna.trial.Trial] = {}

    @staticmethod
    def _distribution(r: Range):
        if r.kind == "Categorical":
            return optuna.distributions.CategoricalDistribution(r.values)
        if r.scaling == "ReverseLogarithmic":  # searched as 1 - value, on a log scale
            return optuna.distributions.FloatDistribution(1 - r.high, 1 - r.low, log=True)
        log = r.scaling == "Logarithmic"
        if r.kind == "Integer":
            return optuna.distributions.IntDistribution(int(r.low), int(r.high), log=log)
        return optuna.distributions.FloatDistribution(r.low, r.high, log=log)

    def suggest(self) -> dict[str, str]:
        trial = self.study.ask(self.distributions)
        tuned = {}
        for r in self.ranges:
            value = trial.params[r.name]
            tuned[r.name] = r.format(1 - value if r.scaling == "ReverseLogarithmic" else value)
        self.pending[tuple(sorted(tuned.items()))] = trial
        return tuned

    def report(self, tuned: dict[str, str], objective: float | None) -> None:
        trial = self.pending.pop(tuple(sorted(tuned.items())), None)
        if trial is None:
            return
        if objective is None or not math.isfinite(objective):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, objective)


class GridSearch(Search):
    def __init__(self, ranges: list[Range]):
        not_categorical = [r.name for r in ranges if r.kind != "Categorical"]
        if not_categorical:
            raise ValidationException(
                f"Grid search takes categorical ranges only; {', '.join(not_categorical)} "
                f"{'is' if len(not_categorical) == 1 else 'are'} not categorical."
            )
        self.names = [r.name for r in ranges]
        self.combinations = itertools.product(*(r.values for r in ranges))

    @staticmethod
    def size(ranges: list[Range]) -> int:
        return math.prod(len(r.values) for r in ranges)

    def suggest(self) -> dict[str, str] | None:
        combination = next(self.combinations, None)
        return None if combination is None else dict(zip(self.names, combination, strict=True))


def make_search(strategy: str, ranges: list[Range], seed: int | None, budget: int, minimize: bool) -> Search:
    if strategy == "Random":
        return RandomSearch(ranges, seed)
    if strategy == "Bayesian":
        return BayesianSearch(ranges, seed, budget, minimize)
    if strategy == "Grid":
        return GridSearch(ranges)
    raise ValidationException(
        f"Strategy {strategy} is not supported by the local SageMaker emulator; supported: {', '.join(STRATEGIES)}."
    )
