"""common.synthetic: the schema, the sizes, and the planted structure a recommender must be able to find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common import data, synthetic

FACTORS, REGULARISATION, SWEEPS = 8, 5.0, 6


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic.generate(seed=0)


@pytest.fixture(scope="module")
def fitted(generated):
    """A small ALS matrix factorization with biases, fitted on the holdout split's train part."""
    train, test = data.split_holdout(generated[0], seed=0)
    return train, test, fit_als(train, n_users=943, n_items=1682)


def ridge_rows(rows, cols, fixed, target, n_rows):
    """Solve each row's factor as a ridge regression on the fixed side's factors (all rows at once)."""
    order = np.argsort(rows, kind="stable")
    rows, features, target = rows[order], fixed[cols[order]], target[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    gram = np.add.reduceat(features[:, :, None] * features[:, None, :], starts)
    rhs = np.add.reduceat(features * target[:, None], starts)
    solved = np.zeros((n_rows, fixed.shape[1]))
    solved[rows[starts]] = np.linalg.solve(gram + REGULARISATION * np.eye(fixed.shape[1]), rhs[..., None])[..., 0]
    return solved


def fit_als(train: pd.DataFrame, n_users: int, n_items: int) -> dict[str, np.ndarray]:
    users, items = train["user_id"].to_numpy() - 1, train["item_id"].to_numpy() - 1
    ratings = train["rating"].to_numpy(float)
    mean, user_bias, item_bias = ratings.mean(), np.zeros(n_users), np.zeros(n_items)
    item_counts, user_counts = np.bincount(items, minlength=n_items), np.bincount(users, minlength=n_users)
    for _ in range(5):  # ridge-regularised biases, alternating
        item_bias = np.bincount(items, ratings - mean - user_bias[users], n_items) / (item_counts + 5)
        user_bias = np.bincount(users, ratings - mean - item_bias[items], n_users) / (user_counts + 5)
    residual = ratings - mean - user_bias[users] - item_bias[items]
    item_factors = np.random.default_rng(0).normal(0.0, 0.1, (n_items, FACTORS))
    for _ in range(SWEEPS):
        user_factors = ridge_rows(users, items, item_factors, residual, n_users)
        item_factors = ridge_rows(items, users, user_factors, residual, n_items)
    return {"mean": mean, "user_bias": user_bias, "item_bias": item_bias, "P": user_factors, "Q": item_factors}


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def test_schema_and_sizes_match_ml100k(generated):
    ratings, items = generated
    assert ratings.dtypes.to_dict() == {name: np.dtype(kind) for name, kind in data.RATING_DTYPES.items()}
    assert list(items.columns) == list(data.ITEM_COLUMNS) and str(items["year"].dtype) == "Int32"
    assert (len(ratings), ratings["user_id"].nunique(), len(items)) == (100_000, 943, 1682)
    assert ratings["user_id"].between(1, 943).all() and ratings["item_id"].between(1, 1682).all()
    assert items["item_id"].tolist() == list(range(1, 1683))
    assert not ratings.duplicated(["user_id", "item_id"]).any()
    assert set(ratings["rating"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ratings.groupby("user_id").size().min() >= 20
    assert ratings.sort_values(["user_id", "item_id"]).index.equals(ratings.index)


def test_rating_shares_follow_movielens(generated):
    shares = generated[0]["rating"].value_counts(normalize=True).sort_index().to_numpy()
    assert np.allclose(shares, synthetic.RATING_SHARES, atol=0.01)


def test_items_have_one_to_three_genres_and_readable_titles_with_years(generated):
    items = generated[1]
    assert items["genres"].map(len).between(1, 3).all()
    assert set(items["genres"].explode()) <= set(synthetic.GENRES)
    assert items["title"].str.fullmatch(r"[A-Z][A-Za-z ]+ \((19[3-9]\d|20[01]\d)\)").all()
    assert (items["title"].str.extract(data.YEAR_PATTERN, expand=False).astype(int) == items["year"]).all()
    assert items["title"].nunique() > 0.9 * len(items)


def test_timestamps_come_after_each_movies_release(generated):
    ratings, items = generated
    released = pd.to_datetime(items["year"].astype(str)).astype("int64") // 10**9
    assert (ratings["timestamp"].to_numpy() >= released.to_numpy()[ratings["item_id"] - 1]).all()
    assert ratings["timestamp"].between(synthetic.START, synthetic.END).all()


def test_popularity_is_long_tailed(generated):
    counts = generated[0].groupby("item_id").size().sort_values(ascending=False)
    assert counts.iloc[: len(counts) // 10].sum() > 0.35 * counts.sum()  # top 10% of movies: over 35% of ratings
    assert counts.iloc[0] > 10 * counts.median()


def test_same_seed_same_data_other_seed_other_data(generated):
    again = synthetic.generate(seed=0)
    assert generated[0].equals(again[0]) and generated[1].equals(again[1])
    assert not generated[0].equals(synthetic.generate(seed=1)[0])


def test_load_api_serves_the_seeded_dataset(generated, data_env):
    dataset = data.load_dataset("synthetic")
    assert dataset.name == "synthetic"
    assert dataset.ratings.equals(generated[0]) and dataset.items.equals(generated[1])
    assert data.load_ratings("synthetic").equals(generated[0])


def test_factorization_beats_the_per_user_mean(fitted):
    train, test, model = fitted
    users, items = test["user_id"].to_numpy() - 1, test["item_id"].to_numpy() - 1
    actual = test["rating"].to_numpy(float)
    user_mean = train.groupby("user_id")["rating"].mean().reindex(test["user_id"]).to_numpy()
    biases = model["mean"] + model["user_bias"][users] + model["item_bias"][items]
    factorized = biases + np.einsum("ij,ij->i", model["P"][users], model["Q"][items])
    assert rmse(factorized, actual) < rmse(user_mean, actual) - 0.05
    assert rmse(factorized, actual) < rmse(biases, actual) - 0.05  # the gain comes from tastes, not only biases


def test_nearest_movies_in_the_learned_embedding_share_a_genre(fitted, generated):
    train, _, model = fitted
    genres = generated[1]["genres"]
    popular = np.flatnonzero(np.bincount(train["item_id"] - 1, minlength=1682) >= 50)
    vectors = model["Q"][popular] / np.linalg.norm(model["Q"][popular], axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :10]
    one_hot = np.zeros((len(popular), len(synthetic.GENRES)))
    rows = np.repeat(np.arange(len(popular)), genres.iloc[popular].map(len))
    one_hot[rows, pd.Index(synthetic.GENRES).get_indexer(genres.iloc[popular].explode())] = 1
    shares = one_hot @ one_hot.T > 0
    neighbour_rate = shares[np.arange(len(popular))[:, None], neighbours].mean()
    random_rate = shares[np.triu_indices(len(popular), 1)].mean()
    assert neighbour_rate > 0.8 and neighbour_rate > 2 * random_rate


def test_custom_sizes_are_exact():
    ratings, items = synthetic.generate(seed=3, n_users=50, n_items=120, n_ratings=2_000)
    assert (len(ratings), ratings["user_id"].nunique(), len(items)) == (2_000, 50, 120)
    assert ratings.groupby("user_id").size().between(20, 60).all()


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"n_users": 0}, r"n_users must be a positive integer, got 0"),
        ({"n_items": 2.5}, r"n_items must be a positive integer, got 2.5"),
        ({"n_items": 30}, r"n_items must be at least 40, got 30"),
        ({"n_ratings": 1_000}, r"n_ratings must be between 18860 and 793063 for 943 users and 1682 items .*got 1000"),
        ({"n_ratings": 800_000}, r"n_ratings must be between 18860 and 793063 .*got 800000"),
    ],
)
def test_sizes_out_of_range_are_named(sizes, message):
    with pytest.raises(ValueError, match=message):
        synthetic.generate(seed=0, **sizes)


def test_ml_20m_variant_has_ml_20m_shape(monkeypatch, data_env):
    """The 20M variant asks the generator for ml-20m's exact sizes (generating it takes minutes: not here)."""
    asked = {}
    monkeypatch.setattr(synthetic, "generate", lambda **sizes: asked.update(sizes) or (None, None))
    data.load_ratings("synthetic-20m")
    assert asked == {"seed": data.SYNTHETIC_SEED, "n_users": 138_493, "n_items": 26_744, "n_ratings": 20_000_263}


def test_each_user_keeps_their_best_candidates_at_large_user_ids():
    """At ml-20m's user count a single float sort key (user + a fraction) rounds a user's best candidate into the
    next user's block; the choice must stay exact."""
    users = np.repeat(np.array([138_491, 138_492]), 50)
    items = np.tile(np.arange(50), 2)
    taste = np.tile(np.arange(50.0), 2) * 100.0  # taste far beyond the Gumbel noise: the best 20 are certain
    counts = np.zeros(138_493, dtype=np.int64)
    counts[[138_491, 138_492]] = 20
    kept_users, kept_items = synthetic._choose_by_taste(np.random.default_rng(0), counts, users, items, taste)
    assert np.bincount(kept_users, minlength=138_493)[[138_491, 138_492]].tolist() == [20, 20]
    assert set(kept_items[kept_users == 138_491]) == set(range(30, 50))
