"""Lab 1a's top-N FM against popularity, its negatives drawn uniformly or in proportion to popularity ** power.

At ml-20m's size ``scale.for_size`` draws 2 negatives per rating. Spread uniformly over 26,744 movies, they leave a
movie rated 50,000 times about 1,500 negatives, so nearly all its rows are positives and its score saturates. For
each power this trains the notebook's implicit FM (``fm_search.LAB1_IMPLICIT`` with the size rule's negatives) in
this process on the leave-one-out validation split that ``fm_search.py`` chooses on (each user's latest remaining
rating, ranked among 99 unrated movies; the test split is never read) and prints, after every epoch, HR@10 and
NDCG@10 and their leads over popularity in standard errors of the paired difference. ``common/scale.py``'s
``SCARCE_NEGATIVES_POWER`` quotes its figures. At synthetic-20m each power takes 8-10 minutes on 2 cores.

    .venv/bin/python benchmarks/negative_sampling.py [--dataset synthetic-20m] [--powers 0 0.5] [--epochs 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fm_search import LAB1_IMPLICIT, SEED, Columns, curve, implicit_rows, ranker, settings

import common  # noqa: F401  (numpy alias before mxnet)
from common import data, evaluation, scale

TOP = 10


def leads(scores: np.ndarray, popularity: np.ndarray) -> str:
    """HR@10 and NDCG@10 of ``scores``, each with its lead over popularity's and that lead in standard errors."""
    parts = []
    for name, metric, difference_se in (
        ("HR", evaluation.hit_rate_at_k, evaluation.hit_rate_difference_standard_error),
        ("NDCG", evaluation.ndcg_at_k, evaluation.ndcg_difference_standard_error),
    ):
        lead = metric(scores, TOP) - metric(popularity, TOP)
        parts.append(
            f"{name}@{TOP} {metric(scores, TOP):.4f} ({lead:+.4f}, {lead / difference_se(scores, popularity, TOP):+.1f} SE)"
        )
    return "  ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-20m")
    parser.add_argument("--powers", type=float, nargs="+", default=[0.0, scale.SCARCE_NEGATIVES_POWER])
    parser.add_argument("--epochs", type=int, default=4)
    arguments = parser.parse_args()
    loaded = data.load_dataset(arguments.dataset)
    negatives = scale.for_size(len(loaded.ratings)).implicit_negatives
    columns = Columns(loaded)
    loo_train, _, _ = data.leave_one_out(loaded.ratings, n_negatives=99, seed=SEED)
    loo_fit, valid, valid_negatives = data.leave_one_out(loo_train, n_negatives=99, seed=SEED + 1)
    popularity = evaluation.popularity_scores(loo_fit, np.column_stack([valid.item_id, valid_negatives]))
    validation_scores = ranker(columns, valid, valid_negatives)
    print(
        f"{loaded.name}: {len(loaded.ratings):,} ratings, {negatives} negatives per rating; validation popularity "
        f"HR@{TOP} {evaluation.hit_rate_at_k(popularity, TOP):.4f}, NDCG@{TOP} {evaluation.ndcg_at_k(popularity, TOP):.4f}"
    )
    for power in arguments.powers:
        started = time.perf_counter()
        knobs = {**LAB1_IMPLICIT, "negatives": negatives, "negative_sampling_power": power}
        features, labels = implicit_rows(columns, loo_fit, negatives, power, np.random.default_rng(SEED))
        config = settings(features, "binary_classifier", knobs, arguments.epochs)
        epochs = curve(features, labels, config, lambda model: leads(validation_scores(model), popularity))
        print(f"power {power}: {len(labels):,} rows, {time.perf_counter() - started:.0f} s")
        for epoch, line in enumerate(epochs, start=1):
            print(f"  epoch {epoch}: {line}")


if __name__ == "__main__":
    main()
