"""common.data: the variant table, one schema from every file layout, deterministic splits, the CLI, and one
integration run on the real ml-latest-small mirror."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from common import data, download
from common.data import DatasetUnavailable

pytestmark = pytest.mark.usefixtures("data_env")

GENRE_FLAGS = {"unknown": 0, "Animation": 3, "Children's": 4, "Comedy": 5, "Drama": 8}


CHILDRENS = "Children's"


def flags(*genres: str) -> str:
    row = ["0"] * 19
    for genre in genres:
        row[GENRE_FLAGS[genre]] = "1"
    return "|".join(row)


# Tiny archives with the real member names and layouts. User 1 has 22 ratings (10 go to test), user 2 has 3.
RATINGS = [(1, item, 1 + item % 5, 880_000_000 + item) for item in range(1, 23)] + [
    (2, 1, 5, 890_000_000),
    (2, 2, 3, 890_000_000),
    (2, 3, 1, 880_000_000),
]
ML100K = {
    "ml-100k/u.data": "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS),
    "ml-100k/u.item": (
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/Toy|{flags('Animation', CHILDRENS, 'Comedy')}\n"
        f"2|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/x|{flags('Drama')}\n"
        f"3|unknown||||{flags('unknown')}\n"
    ).encode("iso-8859-1"),
    "ml-100k/ua.base": "1\t1\t2\t880000001\n2\t3\t1\t880000000\n",
    "ml-100k/ua.test": "2\t1\t5\t890000000\n",
}
ML1M = {
    "ml-1m/ratings.dat": "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATINGS),
    "ml-1m/movies.dat": (
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Misérables, Les (1995)::Drama|Musical\n"
        '3::Star Wars: Episode IV - A New Hope "Special" (1977)::Action\n'
    ).encode("iso-8859-1"),
}
ML20M = {
    "ml-20m/ratings.csv": "userId,movieId,rating,timestamp\n"
    + "".join(f"{u},{i},{r - 0.5},{t}\n" for u, i, r, t in RATINGS),
    "ml-20m/movies.csv": (
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "2,Death Note: Desu nôto (2006–2007),(no genres listed)\n"
        "3,Babylon 5,Sci-Fi\n"
    ),
}


@pytest.fixture
def mirror(tmp_path, monkeypatch, build_zip, checks_for):
    """A mirror directory holding tiny ml-100k, ml-1m and ml-20m archives, with the table's checks to match."""
    directory = tmp_path / "mirror"
    directory.mkdir()
    for name, members in (("ml-100k", ML100K), ("ml-1m", ML1M), ("ml-20m", ML20M)):
        (directory / f"{name}.zip").write_bytes(build_zip(members))
        monkeypatch.setitem(data.VARIANTS, name, dataclasses.replace(data.VARIANTS[name], checks=checks_for(members)))
    monkeypatch.setenv("WORKSHOP_DATA_MIRROR", str(directory))
    return directory


def ratings_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=data.RATING_COLUMNS)
    return frame.astype(data.RATING_DTYPES)


def test_variant_table_covers_every_dataset_with_checks_for_its_ratings():
    assert data.DATASETS == ("ml-100k", "ml-latest-small", "ml-1m", "ml-20m", "ml-25m", "synthetic", "synthetic-20m")
    expected_ratings = {
        "ml-100k": 100_000,
        "ml-latest-small": 100_836,
        "ml-1m": 1_000_209,
        "ml-20m": 20_000_263,
        "ml-25m": 25_000_095,
    }
    for name, variant in data.VARIANTS.items():
        header = 1 if variant.header else 0
        assert variant.checks[variant.ratings].lines == expected_ratings[name] + header
    assert all(check.sha256 for name in ("ml-100k", "ml-latest-small") for check in data.VARIANTS[name].checks.values())


@pytest.mark.parametrize("call", [data.fetch_dataset, data.load_ratings, data.load_items, data.load_dataset])
def test_unknown_dataset_lists_the_valid_names(call):
    with pytest.raises(
        ValueError, match=r"unknown dataset 'ml-50m'; valid names: ml-100k, .*, ml-25m, synthetic, synthetic-20m"
    ):
        call("ml-50m")


def test_default_dataset_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("WORKSHOP_DATASET", "synthetic")
    assert data.load_dataset().name == "synthetic"
    monkeypatch.setenv("WORKSHOP_DATASET", "movielens")
    with pytest.raises(ValueError, match="unknown dataset 'movielens'"):
        data.load_ratings()


def test_synthetic_is_not_fetched():
    with pytest.raises(ValueError, match="generated in memory; there is nothing to fetch"):
        data.fetch_dataset("synthetic")


def test_offline_without_mirror_tries_grouplens_and_names_both_ways_out(monkeypatch, closed_port):
    monkeypatch.setattr(data, "GROUPLENS_URL", f"http://127.0.0.1:{closed_port}/datasets/movielens/")
    monkeypatch.setattr(download, "sleep", lambda seconds: None)
    expected = r"ml-1m.zip is not cached.*127.0.0.1.*WORKSHOP_DATASET=synthetic.*WORKSHOP_DATA_MIRROR"
    with pytest.raises(DatasetUnavailable, match=expected):
        data.load_dataset("ml-1m")


def test_fetch_dataset_caches_the_mirrored_archive(mirror, data_env):
    assert data.fetch_dataset("ml-1m") == data_env / "ml-1m.zip"


def test_ml100k_layout_genre_flags_and_latin1(mirror):
    dataset = data.load_dataset("ml-100k")
    assert dataset.ratings.dtypes.to_dict() == {name: np.dtype(kind) for name, kind in data.RATING_DTYPES.items()}
    assert len(dataset.ratings) == len(RATINGS) and dataset.ratings.iloc[-1].tolist() == [2, 3, 1.0, 880_000_000]
    items = dataset.items
    assert list(items.columns) == list(data.ITEM_COLUMNS)
    assert items["title"].tolist() == ["Toy Story (1995)", "Misérables, Les (1995)", "unknown"]
    assert items["year"].tolist() == [1995, 1995, pd.NA] and str(items["year"].dtype) == "Int32"
    assert items["genres"].tolist() == [["Animation", "Children's", "Comedy"], ["Drama"], []]


def test_ml1m_layout_double_colon_and_latin1(mirror):
    ratings, items = data.load_ratings("ml-1m"), data.load_items("ml-1m")
    assert ratings.iloc[0].tolist() == [1, 1, 2.0, 880_000_001] and len(ratings) == len(RATINGS)
    assert items["title"].tolist() == [
        "Toy Story (1995)",
        "Misérables, Les (1995)",
        'Star Wars: Episode IV - A New Hope "Special" (1977)',
    ]
    assert items["year"].tolist() == [1995, 1995, 1977]
    assert items["genres"].tolist() == [["Animation", "Children's", "Comedy"], ["Drama", "Musical"], ["Action"]]


def test_csv_layout_quotes_year_ranges_and_no_genres(mirror):
    dataset = data.load_dataset("ml-20m")
    assert dataset.ratings["rating"].tolist()[:3] == [1.5, 2.5, 3.5]
    items = dataset.items
    assert items["item_id"].tolist() == [1, 2, 3]
    assert items["title"].tolist() == [
        "American President, The (1995)",
        "Death Note: Desu nôto (2006–2007)",
        "Babylon 5",
    ]
    assert items["year"].tolist() == [1995, 2006, pd.NA]
    assert items["genres"].tolist() == [["Comedy", "Drama", "Romance"], [], ["Sci-Fi"]]


def test_split_holdout_uses_the_official_ua_files_for_ml100k(mirror):
    train, test = data.split_holdout(data.load_dataset("ml-100k"), seed=7)
    assert train.values.tolist() == [[1, 1, 2.0, 880_000_001], [2, 3, 1.0, 880_000_000]]
    assert test.values.tolist() == [[2, 1, 5.0, 890_000_000]]
    assert train.dtypes.to_dict() == test.dtypes.to_dict() == {n: np.dtype(k) for n, k in data.RATING_DTYPES.items()}


def test_split_holdout_holds_out_10_per_user_with_at_least_20():
    ratings = ratings_frame(RATINGS)
    train, test = data.split_holdout(ratings, seed=0)
    assert test["user_id"].tolist() == [1] * 10  # user 2 has 3 ratings: kept whole in train
    assert len(train) + len(test) == len(ratings)
    both = pd.concat([train, test]).sort_values(["user_id", "item_id"], ignore_index=True)
    assert both.equals(ratings.sort_values(["user_id", "item_id"], ignore_index=True))
    assert train["user_id"].is_monotonic_increasing  # input order kept


def test_split_holdout_is_seeded_and_ignores_row_order():
    ratings = ratings_frame(RATINGS)
    shuffled = ratings.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = set(data.split_holdout(ratings, seed=1)[1]["item_id"])
    assert set(data.split_holdout(shuffled, seed=1)[1]["item_id"]) == first
    assert set(data.split_holdout(ratings, seed=2)[1]["item_id"]) != first


@pytest.mark.parametrize("seed", [None, -1, 1.5, True])
def test_splits_need_an_explicit_non_negative_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
        data.split_holdout(ratings_frame(RATINGS), seed=seed)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
        data.leave_one_out(ratings_frame(RATINGS), seed=seed)


def test_splits_name_missing_columns():
    with pytest.raises(ValueError, match=r"ratings lack column\(s\) \['timestamp'\]"):
        data.split_holdout(ratings_frame(RATINGS).drop(columns="timestamp"), seed=0)


def test_leave_one_out_holds_out_the_latest_with_ties_to_the_larger_item():
    extra = [(3, 9, 4, 1)] + [(4, 30 + k, 3, k) for k in range(11)]  # user 3 has a single rating: train only
    ratings = ratings_frame(RATINGS + extra)
    train, test, negatives = data.leave_one_out(ratings, n_negatives=5, seed=0)
    assert test.values.tolist() == [[1, 22, 3.0, 880_000_022], [2, 2, 3.0, 890_000_000], [4, 40, 3.0, 10]]
    assert len(train) == len(ratings) - 3 and 3 in set(train["user_id"])
    assert negatives.shape == (3, 5) and negatives.dtype == np.int32


def test_leave_one_out_negatives_are_distinct_unseen_uniform_and_seeded():
    rng = np.random.default_rng(0)
    rows = [
        (u, i, 4, int(t))
        for u in range(1, 41)
        for i, t in zip(rng.choice(200, 30, replace=False) + 1, rng.integers(0, 10**9, 30))
    ]
    ratings = ratings_frame(rows)
    _, test, negatives = data.leave_one_out(ratings, seed=5)
    seen = ratings.groupby("user_id")["item_id"].agg(set)
    for user, row in zip(test["user_id"], negatives):
        assert len(set(row)) == 99 and not set(row) & seen[user]
        assert set(row) <= set(ratings["item_id"])
    _, _, again = data.leave_one_out(ratings.iloc[::-1], seed=5)
    assert np.array_equal(negatives, again)
    assert not np.array_equal(negatives, data.leave_one_out(ratings, seed=6)[2])
    counts = np.bincount(negatives.ravel(), minlength=201)[np.unique(ratings["item_id"])]
    assert counts.min() > 0 and counts.max() < 4 * counts.mean()  # spread over all unseen items


def test_leave_one_out_rejects_too_few_unseen_items():
    ratings = ratings_frame([(1, i, 3, i) for i in range(1, 4)] + [(2, i, 3, i) for i in range(1, 11)])
    with pytest.raises(ValueError, match=r"user 2 has only 0 unseen items, fewer than n_negatives=99"):
        data.leave_one_out(ratings, seed=0)
    with pytest.raises(ValueError, match=r"n_negatives must be a positive integer, got 0"):
        data.leave_one_out(ratings, n_negatives=0, seed=0)


def test_cli_prints_counts_as_one_json_line(mirror, capsys):
    assert data.main(["fetch", "ml-20m"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line == {
        "dataset": "ml-20m",
        "ratings": 25,
        "users": 2,
        "items": 3,
        "path": str(data.fetch_dataset("ml-20m")),
    }


def test_cli_reports_errors_with_exit_codes(capsys, tmp_path, monkeypatch):
    assert data.main(["fetch", "ml-50m"]) == 2
    assert "unknown dataset 'ml-50m'" in capsys.readouterr().err
    monkeypatch.setenv("WORKSHOP_DATA_MIRROR", str(tmp_path / "empty-share"))
    assert data.main(["fetch", "ml-100k"]) == 1
    assert "WORKSHOP_DATASET=synthetic" in capsys.readouterr().err


def test_real_ml_latest_small_from_the_mirror(monkeypatch, data_env, real_mirror):
    monkeypatch.setenv("WORKSHOP_DATA_MIRROR", str(real_mirror))
    dataset = data.load_dataset("ml-latest-small")
    ratings, items = dataset.ratings, dataset.items
    assert (len(ratings), ratings["user_id"].nunique(), len(items)) == (100_836, 610, 9_742)
    assert items.iloc[0].tolist() == [
        1,
        "Toy Story (1995)",
        1995,
        ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
    ]
    train, test = data.split_holdout(dataset, seed=0)
    assert len(test) == 6_100 and len(train) == 100_836 - 6_100
    result = subprocess.run(
        [sys.executable, "-m", "common.data", "fetch", "ml-latest-small"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    line = json.loads(result.stdout)
    assert line == {
        "dataset": "ml-latest-small",
        "ratings": 100_836,
        "users": 610,
        "items": 9_742,
        "path": str(data_env / "ml-latest-small.zip"),
    }


def test_the_default_dataset_is_shipped_and_needs_no_network(tmp_path, monkeypatch, closed_port):
    for name in ("WORKSHOP_DATASET", "WORKSHOP_DATA_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKSHOP_DATA_MIRROR", str(tmp_path / "a-mirror-without-it"))
    monkeypatch.setattr(data, "GROUPLENS_URL", f"http://127.0.0.1:{closed_port}/")
    dataset = data.load_dataset()
    assert dataset.name == "ml-latest-small"
    assert (len(dataset.ratings), dataset.ratings.user_id.nunique(), len(dataset.items)) == (100_836, 610, 9_742)
    with zipfile.ZipFile(data.SHIPPED_DIR / "ml-latest-small.zip") as archive:
        assert "ml-latest-small/README.txt" in archive.namelist()  # the license travels with the data
    assert sorted(p.name for p in data.SHIPPED_DIR.iterdir()) == ["ml-latest-small.zip"]
