"""benchmarks/fm_search.py's implicit rows: negatives drawn as Lab 1a draws them, uniformly or by popularity ** power."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from common import data

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fm_search.py"
spec = importlib.util.spec_from_file_location("fm_search", SCRIPT)
fm_search = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fm_search)


def catalogue() -> data.Dataset:
    """Movie 1 rated by 400 users, movies 2, 3 and 4 once each by three other users, movie 5 by nobody."""
    users = list(range(400)) + [400, 401, 402]
    items = [1] * 400 + [2, 3, 4]
    ratings = pd.DataFrame({"user_id": users, "item_id": items, "rating": 4.0, "timestamp": range(len(users))})
    movies = pd.DataFrame({"item_id": [1, 2, 3, 4, 5], "title": list("abcde"), "genres": "Drama"})
    return data.Dataset("tiny", ratings, movies)


def rare_raters_negatives(power: float) -> pd.Series:
    """The movies drawn as negatives for the three users who rated one rare movie each (500 draws per rating)."""
    loaded = catalogue()
    columns = fm_search.Columns(loaded)
    features, labels = fm_search.implicit_rows(columns, loaded.ratings, 500, power, np.random.default_rng(0))
    pairs = features.indices.reshape(-1, 2)
    negative = (labels == 0) & (pairs[:, 0] >= 400)
    return pd.Series(columns.items[pairs[negative, 1] - len(columns.users)])


def test_power_zero_draws_every_rated_movie_alike_and_never_an_unrated_one():
    shares = rare_raters_negatives(0.0).value_counts(normalize=True)
    assert set(shares.index) == {1, 2, 3, 4}  # each user's own movie is dropped, movie 5 never drawn
    # each user keeps movie 1 and the two other rare movies, a third each: pooled, 1/3 for movie 1, 2/9 for the others
    assert np.allclose(shares[[1, 2, 3, 4]].to_numpy(), [1 / 3, 2 / 9, 2 / 9, 2 / 9], atol=0.03)


def test_power_one_half_draws_movies_by_the_square_root_of_their_ratings():
    shares = rare_raters_negatives(0.5).value_counts(normalize=True)
    # weights sqrt(400) = 20 for movie 1 and 1 for each rare movie: a user keeps movie 1 20 times in 22
    assert abs(shares[1] - 20 / 22) < 0.03
