"""Which FM regressor hyperparameters Lab 1a's validation RMSE is sensitive to, to choose the tuner's ranges.

On ml-100k the notebook's tuning job searched epochs, ``factors_lr`` and both weight decays near the starting
settings, and its best of 12 trials validated only 0.0004 below them: the search covered knobs that barely move
the objective. This sweep changes one documented hyperparameter at a time (reference/sagemaker-fm-knn-contract.md
§1) from notebook 1a's ``regressor_hyperparameters`` over a wide, mostly logarithmic grid, on exactly the
notebook's tuning data (``split_holdout(ds, seed=0)``, the train part shuffled, then ``split_holdout(train,
seed=0)`` for validation), with the emulator's FM trained in-process. One run gives the validation RMSE after every
epoch, so each row shows both the RMSE at the notebook's epoch count and the best over ``MAX_EPOCHS``, with the
epoch it was reached at. The spread column (worst to best value of a knob) is what decides whether the tuner
should search it.

``--tuner`` then replays the notebook's tuning job offline: the emulator's own search strategy (optuna's TPE, as
the tuning job uses it) over ``TUNER_RANGES`` with the notebook's budget, seed and parallelism, each trial trained
on the fit ratings and scored on validation, and prints the best trial against the starting settings.

    .venv/bin/python benchmarks/fm_sensitivity.py [--dataset ml-latest-small] [--max-epochs 20] [--tuner]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fm_search import LAB1_EPOCHS, LAB1_RATING, Columns, curve, quiet_fit, settings

import common  # noqa: F401  (numpy alias before mxnet)
from common import data, evaluation
from sagemaker_emulator.jobs.tuning_search import make_search, parse_ranges

SEED = 0
MAX_EPOCHS = 20
GRID = {  # one knob at a time; the others stay at notebook 1a's regressor settings
    "factors_lr": (0.0003, 0.003, 0.01),
    "factors_wd": (0.00001, 0.0002, 0.001),
    "linear_lr": (0.001, 0.003, 0.03, 0.1),
    "linear_wd": (0.00001, 0.001, 0.01),
    "bias_lr": (0.01, 0.3),
    "bias_wd": (0.0, 0.1),
    "num_factors": (16, 64),
    "mini_batch_size": (100, 2000),
    "factors_init_sigma": (0.001, 0.1),
}

TUNER_RANGES = {  # notebook 1a's HyperparameterTuner ranges (section 10), as the tuning job's request names them
    "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "5", "MaxValue": "16", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [
        {"Name": "factors_wd", "MinValue": "3e-05", "MaxValue": "0.0005", "ScalingType": "Logarithmic"},
    ],
}
TUNER_BUDGET, TUNER_PARALLEL, TUNER_SEED = 12, 2, 1  # the notebook's tuning_jobs, max_parallel_jobs, random_seed


def tuning_data(loaded: data.Dataset) -> tuple:
    """The notebook's fit and validation rows and labels (its section 10 split)."""
    columns = Columns(loaded)
    train, _ = data.split_holdout(loaded, seed=SEED)
    train = train.sample(frac=1, random_state=SEED).reset_index(drop=True)
    fit_part, valid = data.split_holdout(train, seed=SEED)
    x_fit, x_valid = columns.rows(fit_part.user_id, fit_part.item_id), columns.rows(valid.user_id, valid.item_id)
    return x_fit, fit_part.rating.to_numpy(np.float32), x_valid, valid.rating.to_numpy(np.float64)


def replay_tuner(loaded: data.Dataset) -> None:
    """Run the notebook's tuning job in-process and print every trial, the best, and the starting settings."""
    x_fit, y_fit, x_valid, y_valid = tuning_data(loaded)

    def validate(knobs: dict, epochs: int) -> tuple[float, np.ndarray]:
        model = quiet_fit(x_fit, y_fit, settings(x_fit, "regressor", knobs, epochs))
        predicted = model.decision(x_valid)
        return evaluation.rmse(y_valid, predicted), predicted

    started = time.perf_counter()
    start, start_predicted = validate(LAB1_RATING, LAB1_EPOCHS["rmse"])
    search = make_search("Bayesian", parse_ranges(TUNER_RANGES), TUNER_SEED, TUNER_BUDGET, minimize=True)
    trials = []
    while len(trials) < TUNER_BUDGET:
        batch = [search.suggest() for _ in range(min(TUNER_PARALLEL, TUNER_BUDGET - len(trials)))]
        for tuned in batch:
            knobs = {**LAB1_RATING, **{k: float(v) for k, v in tuned.items() if k != "epochs"}}
            rmse, predicted = validate(knobs, int(tuned["epochs"]))
            search.report(tuned, rmse)
            trials.append((rmse, tuned, predicted))
            print(f"  trial {len(trials):>2}: validation RMSE {rmse:.4f}  {tuned}", flush=True)
    rmse, tuned, predicted = min(trials, key=lambda trial: trial[0])
    gain_se = evaluation.rmse_difference_standard_error(y_valid, start_predicted, predicted)
    print(
        f"{loaded.name}: starting settings {start:.4f}, best trial {rmse:.4f} {tuned}: {start - rmse:+.4f} "
        f"({(start - rmse) / gain_se:.1f} standard errors of the paired difference) "
        f"({time.perf_counter() - started:.0f} s)"
    )


def sweep(loaded: data.Dataset, max_epochs: int) -> None:
    """Print one row per (knob, value): validation RMSE at the notebook's epochs and at the best epoch."""
    x_fit, y_fit, x_valid, y_valid = tuning_data(loaded)

    def evaluate(knobs: dict) -> list[float]:
        config = settings(x_fit, "regressor", knobs, max_epochs)
        return curve(x_fit, y_fit, config, lambda model: evaluation.rmse(y_valid, model.decision(x_valid)))

    at = LAB1_EPOCHS["rmse"]
    started = time.perf_counter()
    start = evaluate(LAB1_RATING)
    print(f"\n{loaded.name}: fit {x_fit.shape[0]:,} ratings, validation {x_valid.shape[0]:,}")
    print(f"starting settings: {start[at - 1]:.4f} at {at} epochs, best {min(start):.4f} at {np.argmin(start) + 1}")
    print(f"{'knob':<20}{'value':>10}{f'@{at} ep':>10}{'best':>10}{'epoch':>7}{'vs start':>10}")
    for name, values in GRID.items():
        bests = [min(start)]
        for value in values:
            rmses = evaluate({**LAB1_RATING, name: value})
            finite = np.nan_to_num(rmses, nan=np.inf)
            best = float(finite.min())
            bests.append(best)
            print(
                f"{name:<20}{value:>10g}{rmses[at - 1]:>10.4f}{best:>10.4f}{int(finite.argmin()) + 1:>7}"
                f"{best - min(start):>+10.4f}"
            )
        print(f"{'':<20}{'spread':>10}{'':>10}{max(bests) - min(bests):>10.4f}")
    print(f"({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", help="default: ml-latest-small and synthetic")
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--tuner", action="store_true", help="replay the notebook's tuning job instead of the sweep")
    arguments = parser.parse_args()
    for name in arguments.dataset or ("ml-latest-small", "synthetic"):
        loaded = data.load_dataset(name)
        if arguments.tuner:
            replay_tuner(loaded)
        else:
            sweep(loaded, arguments.max_epochs)


if __name__ == "__main__":
    main()
