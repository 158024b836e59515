"""MovieLens variants and a synthetic stand-in, in one tidy schema, with deterministic splits.

Every dataset loads as two frames:
- ratings: ``user_id`` (int32), ``item_id`` (int32), ``rating`` (float32), ``timestamp`` (int64, Unix seconds);
- items: ``item_id`` (int32), ``title`` (str, as published), ``year`` (Int32, from the title, may be missing),
  ``genres`` (a list of genre names as published; empty when none is listed).
ids are int32 so ml-25m fits in memory; cast to int64 before combining two ids into one number.

Run ``python -m common.data fetch DATASET`` to download and verify an archive ahead of time; it prints one JSON
line with the dataset's counts and its path in the cache.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common import download, synthetic
from common.download import DatasetUnavailable, MemberCheck
from common.settings import settings

__all__ = [
    "DATASETS",
    "DatasetUnavailable",
    "Dataset",
    "fetch_dataset",
    "load_ratings",
    "load_items",
    "load_dataset",
    "split_holdout",
    "leave_one_out",
]

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data"
"""Archives that come with the workshop, so the default needs no network: ml-latest-small only (its license allows
redistribution under the same terms; the archive is GroupLens's own, its README with the license inside)."""
SYNTHETIC = "synthetic"
SYNTHETIC_SEED = 0
SYNTHETIC_SIZES = {
    SYNTHETIC: {},  # ml-100k's size, the generator's default
    "synthetic-20m": synthetic.ML_20M_SIZE,  # ml-20m's exact shape, for the original's scale without its download
}
"""Generated datasets by name: made in memory from ``SYNTHETIC_SEED``, nothing to fetch."""
RATING_DTYPES = {"user_id": "int32", "item_id": "int32", "rating": "float32", "timestamp": "int64"}
RATING_COLUMNS = tuple(RATING_DTYPES)
ITEM_COLUMNS = ("item_id", "title", "year", "genres")
YEAR_PATTERN = r"\((\d{4})(?:[-–]\d{4})?\)\s*$"  # "Toy Story (1995)", "Death Note (2006–2007)"
NO_GENRES = "(no genres listed)"
HOLDOUT_PER_USER = 10
HOLDOUT_MIN_RATINGS = 20
N_NEGATIVES = 99
NEGATIVES_BLOCK_CELLS = 1 << 25  # users x items booleans per block of the negative sampler (32 MB)
# ml-100k marks genres with 19 flags, in the order of its u.genre file; "unknown" means no genre is known.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class Variant:
    """How one MovieLens archive is laid out; ``checks`` line counts include a header line where there is one."""

    ratings: str
    items: str
    item_fields: tuple[str, ...]
    ratings_sep: str
    items_sep: str
    header: bool
    quoting: int
    encoding: str
    checks: Mapping[str, MemberCheck]
    official_split: tuple[str, str] | None = None


_DAT_ITEMS = ("item_id", "title", "genres")
VARIANTS: dict[str, Variant] = {
    "ml-100k": Variant(
        ratings="ml-100k/u.data",
        items="ml-100k/u.item",
        item_fields=("item_id", "title", "released", "video_released", "imdb_url", *ML100K_GENRES),
        ratings_sep="\t",
        items_sep="|",
        header=False,
        quoting=csv.QUOTE_NONE,
        encoding="iso-8859-1",
        official_split=("ml-100k/ua.base", "ml-100k/ua.test"),
        checks={
            "ml-100k/u.data": MemberCheck(100_000, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
            "ml-100k/u.item": MemberCheck(1_682, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
            "ml-100k/ua.base": MemberCheck(90_570, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2"),
            "ml-100k/ua.test": MemberCheck(9_430, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42"),
        },
    ),
    "ml-latest-small": Variant(
        ratings="ml-latest-small/ratings.csv",
        items="ml-latest-small/movies.csv",
        item_fields=_DAT_ITEMS,
        ratings_sep=",",
        items_sep=",",
        header=True,
        quoting=csv.QUOTE_MINIMAL,
        encoding="utf-8",
        checks={
            "ml-latest-small/ratings.csv": MemberCheck(
                100_837, "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"
            ),
            "ml-latest-small/movies.csv": MemberCheck(
                9_743, "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"
            ),
        },
    ),
    "ml-1m": Variant(
        ratings="ml-1m/ratings.dat",
        items="ml-1m/movies.dat",
        item_fields=_DAT_ITEMS,
        ratings_sep="::",
        items_sep="::",
        header=False,
        quoting=csv.QUOTE_NONE,
        encoding="iso-8859-1",
        checks={"ml-1m/ratings.dat": MemberCheck(1_000_209)},
    ),
    "ml-20m": Variant(
        ratings="ml-20m/ratings.csv",
        items="ml-20m/movies.csv",
        item_fields=_DAT_ITEMS,
        ratings_sep=",",
        items_sep=",",
        header=True,
        quoting=csv.QUOTE_MINIMAL,
        encoding="utf-8",
        checks={"ml-20m/ratings.csv": MemberCheck(20_000_264)},
    ),
    "ml-25m": Variant(
        ratings="ml-25m/ratings.csv",
        items="ml-25m/movies.csv",
        item_fields=_DAT_ITEMS,
        ratings_sep=",",
        items_sep=",",
        header=True,
        quoting=csv.QUOTE_MINIMAL,
        encoding="utf-8",
        checks={"ml-25m/ratings.csv": MemberCheck(25_000_096)},
    ),
}
DATASETS = (*VARIANTS, *SYNTHETIC_SIZES)
UNKNOWN_DATASET = "unknown dataset {name!r}; valid names: " + ", ".join(DATASETS)


@dataclass(frozen=True)
class Dataset:
    """A dataset's name with its ratings and items frames (see the module docstring for the schema)."""

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame


def fetch_dataset(name: str | None = None) -> Path:
    """Download (or find in the cache) and verify a MovieLens archive; return its path.

    The cache, mirror and default name come from ``common.settings.settings()``.

    Raises:
        ValueError: unknown name, or ``synthetic`` (generated in memory, nothing to fetch).
        DatasetUnavailable: not cached and not fetchable; the message names the two ways out.
    """
    name = _resolve(name)
    if name == SYNTHETIC:
        raise ValueError("the synthetic dataset is generated in memory; there is nothing to fetch")
    return _fetch(name)


def load_ratings(name: str | None = None) -> pd.DataFrame:
    """Ratings of a dataset (default: ``settings().dataset``) as ``user_id, item_id, rating, timestamp``."""
    name = _resolve(name)
    if name in SYNTHETIC_SIZES:
        return _generated(name)[0]
    variant = VARIANTS[name]
    with zipfile.ZipFile(_fetch(name)) as archive:
        return _read_ratings(archive, variant, variant.ratings)


def load_items(name: str | None = None) -> pd.DataFrame:
    """Items of a dataset (default: ``settings().dataset``) as ``item_id, title, year, genres``."""
    name = _resolve(name)
    if name in SYNTHETIC_SIZES:
        return _generated(name)[1]
    with zipfile.ZipFile(_fetch(name)) as archive:
        return _read_items(archive, VARIANTS[name])


def load_dataset(name: str | None = None) -> Dataset:
    """Ratings and items of a dataset (default: ``settings().dataset``), fetched and verified once."""
    name = _resolve(name)
    if name in SYNTHETIC_SIZES:
        return Dataset(name, *_generated(name))
    variant = VARIANTS[name]
    with zipfile.ZipFile(_fetch(name)) as archive:
        return Dataset(name, _read_ratings(archive, variant, variant.ratings), _read_items(archive, variant))


def split_holdout(data: Dataset | pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ratings into train and test for rating prediction (RMSE).

    An ml-100k ``Dataset`` gets its published ``ua.base``/``ua.test`` split (``seed`` is then unused). Otherwise
    the same rule as ``ua``: 10 ratings drawn at random per user go to test, and users with fewer than 20 ratings
    stay whole in train. The draw depends only on the ratings' content and ``seed``, not on their row order.

    Args:
        data: a ``Dataset``, or a ratings frame with at least ``user_id, item_id, timestamp``.
        seed: seeds the draw.

    Returns:
        (train, test): disjoint frames with the input's columns and row order, indexes reset.
    """
    _check_seed(seed)
    variant = VARIANTS.get(data.name) if isinstance(data, Dataset) else None
    if variant is not None and variant.official_split is not None:
        with zipfile.ZipFile(_fetch(data.name)) as archive:
            return tuple(_read_ratings(archive, variant, member) for member in variant.official_split)
    ratings = data.ratings if isinstance(data, Dataset) else data
    _check_columns(ratings, ("user_id", "item_id", "timestamp"))
    held = _holdout_mask(ratings, seed)
    return ratings[~held].reset_index(drop=True), ratings[held].reset_index(drop=True)


def leave_one_out(
    ratings: pd.DataFrame, *, n_negatives: int = N_NEGATIVES, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Hold out each user's latest rating, with sampled unseen items, for ranking metrics (HR@10, NDCG@10).

    Protocol: the test item of a user is their rating with the latest timestamp (ties go to the larger
    ``item_id``); users with a single rating stay in train with no test row. Each test row comes with
    ``n_negatives`` distinct items drawn uniformly from the items in ``ratings`` that the user never rated; the
    model ranks the test item among them.

    Args:
        ratings: a ratings frame with at least ``user_id, item_id, timestamp``.
        n_negatives: negatives per test row (99 in the usual protocol).
        seed: seeds the draw of negatives.

    Returns:
        (train, test, negatives): train keeps the input's row order; test has one row per user, sorted by
        ``user_id``; negatives is an int32 array of item ids, shape ``(len(test), n_negatives)``, row i for
        ``test.iloc[i]``.

    Raises:
        ValueError: a user has rated so many items that fewer than ``n_negatives`` remain unseen.
    """
    _check_seed(seed)
    _check_columns(ratings, ("user_id", "item_id", "timestamp"))
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1:
        raise ValueError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    held_rows = _latest_rows(ratings)
    held = np.zeros(len(ratings), dtype=bool)
    held[held_rows] = True
    test = ratings.iloc[held_rows].reset_index(drop=True)
    negatives = _sample_unseen(ratings, test["user_id"].to_numpy(), n_negatives, seed)
    return ratings[~held].reset_index(drop=True), test, negatives


def _generated(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic.generate(seed=SYNTHETIC_SEED, **SYNTHETIC_SIZES[name])


def _resolve(name: str | None) -> str:
    name = settings().dataset if name is None else name
    if name not in DATASETS:
        raise ValueError(UNKNOWN_DATASET.format(name=name))
    return name


def _fetch(name: str) -> Path:
    current = settings()
    shipped = SHIPPED_DIR / f"{name}.zip"
    mirror = str(SHIPPED_DIR) if shipped.is_file() else current.data_mirror
    return download.fetch(GROUPLENS_URL + name + ".zip", VARIANTS[name].checks, current.data_dir, mirror)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_columns(ratings: pd.DataFrame, needed: tuple[str, ...]) -> None:
    missing = [column for column in needed if column not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lack column(s) {missing}; expected {list(RATING_COLUMNS)}")


def _open_text(archive: zipfile.ZipFile, member: str, sep: str) -> tuple[io.BufferedIOBase, str]:
    """Open a member for pandas' fast C parser, which takes one-character separators only ('::' in ml-1m)."""
    if len(sep) == 1:
        return archive.open(member), sep
    return io.BytesIO(archive.read(member).replace(sep.encode(), b"\x1f")), "\x1f"


def _read_ratings(archive: zipfile.ZipFile, variant: Variant, member: str) -> pd.DataFrame:
    file, sep = _open_text(archive, member, variant.ratings_sep)
    with file:
        return pd.read_csv(
            file,
            sep=sep,
            header=0 if variant.header else None,
            names=RATING_COLUMNS,
            usecols=range(4),
            dtype=RATING_DTYPES,
            encoding=variant.encoding,
        )


def _read_items(archive: zipfile.ZipFile, variant: Variant) -> pd.DataFrame:
    file, sep = _open_text(archive, variant.items, variant.items_sep)
    with file:
        raw = pd.read_csv(
            file,
            sep=sep,
            header=0 if variant.header else None,
            names=variant.item_fields,
            quoting=variant.quoting,
            encoding=variant.encoding,
            dtype={"item_id": "int32", "title": "str"},
            keep_default_na=False,
        )
    if "genres" in raw.columns:
        piped = raw["genres"].replace(NO_GENRES, "")
    else:  # ml-100k: one 0/1 column per genre; joined into "A|B|" strings without a Python loop
        flags = raw[list(ML100K_GENRES[1:])].to_numpy(dtype=bool)
        names = np.array([genre + "|" for genre in ML100K_GENRES[1:]], dtype=object)
        piped = pd.Series(np.where(flags, names, "").sum(axis=1), index=raw.index, dtype="str")
    year = pd.to_numeric(raw["title"].str.extract(YEAR_PATTERN, expand=False)).astype("Int32")
    return pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": raw["title"],
            "year": year,
            "genres": piped.str.findall(r"[^|]+"),
        }
    )


def _holdout_mask(ratings: pd.DataFrame, seed: int) -> np.ndarray:
    """True for the rows held out: 10 random ratings of every user who has at least 20.

    A row's random key is a hash of (seed, user, item, timestamp), so the draw ignores row order; one sort by
    (user, key) ranks each user's rows.
    """
    codes = pd.factorize(ratings["user_id"])[0].astype(np.uint64)
    user = ratings["user_id"].to_numpy().astype(np.uint64)
    pair = (user << np.uint64(32)) | ratings["item_id"].to_numpy().astype(np.uint32)
    when = ratings["timestamp"].to_numpy().astype(np.uint64)
    with np.errstate(over="ignore"):  # wrapping arithmetic is intended
        key = _mix((pair ^ _mix(np.array([seed], dtype=np.uint64))) + when * np.uint64(0xD1B54A32D192ED03))
    order = np.argsort((codes << np.uint64(32)) | (key >> np.uint64(32)), kind="stable")
    sizes = np.bincount(codes.astype(np.int64))
    starts = np.cumsum(sizes) - sizes
    sorted_codes = codes[order].astype(np.int64)
    rank = np.arange(len(order)) - starts[sorted_codes]
    held = np.zeros(len(order), dtype=bool)
    held[order] = (rank < HOLDOUT_PER_USER) & (sizes[sorted_codes] >= HOLDOUT_MIN_RATINGS)
    return held


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective uint64 hash whose output bits look independent and uniform."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _latest_rows(ratings: pd.DataFrame) -> np.ndarray:
    """Row positions of each user's latest rating (ties: larger item_id), by user; single-rating users skipped."""
    frame = pd.DataFrame(
        {
            "user_id": ratings["user_id"].to_numpy(),
            "item_id": ratings["item_id"].to_numpy(),
            "timestamp": ratings["timestamp"].to_numpy(),
            "row": np.arange(len(ratings)),
        }
    )
    by_user = frame.groupby("user_id", sort=False)
    eligible = (frame["timestamp"] == by_user["timestamp"].transform("max")) & (by_user["row"].transform("size") > 1)
    latest = frame[eligible].sort_values(["user_id", "item_id"]).drop_duplicates("user_id", keep="last")
    return latest["row"].to_numpy()


def _sample_unseen(ratings: pd.DataFrame, test_users: np.ndarray, n_negatives: int, seed: int) -> np.ndarray:
    """Draw, per test user, ``n_negatives`` distinct items they never rated, uniformly and without a row loop.

    Every user draws from an i.i.d. uniform stream over all items and keeps the first ``n_negatives`` that are
    neither rated nor drawn before: a uniform sample without replacement. A (users x items) table of taken
    items makes each check O(1); it is filled for a block of users at a time to bound its memory on ml-20m,
    and every step advances all the block's unfinished users at once.
    """
    item_codes, items = pd.factorize(ratings["item_id"], sort=True)
    user_codes, users = pd.factorize(ratings["user_id"], sort=True)
    n_items = len(items)
    seen = np.sort(user_codes.astype(np.int64) * n_items + item_codes)
    test_codes = users.get_indexer(test_users).astype(np.int64)
    unseen = n_items - np.bincount(user_codes, minlength=len(users))[test_codes]
    if len(test_codes) and unseen.min() < n_negatives:
        worst = int(np.argmin(unseen))
        raise ValueError(
            f"user {test_users[worst]} has only {unseen[worst]} unseen items, fewer than n_negatives={n_negatives}"
        )
    rng = np.random.default_rng(seed)
    negatives = np.empty((len(test_codes), n_negatives), dtype=np.int64)
    block = max(1, NEGATIVES_BLOCK_CELLS // n_items)
    for start in range(0, len(test_codes), block):
        codes, out = test_codes[start : start + block], negatives[start : start + block]
        first, last = codes.min(), codes.max()
        taken = np.zeros((last - first + 1, n_items), dtype=bool)
        low, high = np.searchsorted(seen, [first * n_items, (last + 1) * n_items])
        taken.flat[seen[low:high] - first * n_items] = True
        row_of, filled, short = codes - first, np.zeros(len(codes), dtype=np.int64), np.arange(len(codes))
        while len(short):
            draws = rng.integers(0, n_items, len(short))
            fresh = ~taken[row_of[short], draws]
            hit, draws = short[fresh], draws[fresh]
            taken[row_of[hit], draws] = True
            out[hit, filled[hit]] = draws
            filled[hit] += 1
            short = np.flatnonzero(filled < n_negatives)
    return items.to_numpy()[negatives].astype(np.int32)


def main(argv: list[str] | None = None) -> int:
    """``python -m common.data fetch DATASET``: fetch and verify, then print one JSON line of counts."""
    parser = argparse.ArgumentParser(prog="python -m common.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download and verify a dataset, print its counts as JSON")
    fetch.add_argument("dataset", help="one of: " + ", ".join(DATASETS))
    arguments = parser.parse_args(argv)
    try:
        dataset = load_dataset(arguments.dataset)
        path = None if dataset.name in SYNTHETIC_SIZES else str(fetch_dataset(dataset.name))
    except (ValueError, DatasetUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    print(
        json.dumps(
            {
                "dataset": dataset.name,
                "ratings": len(dataset.ratings),
                "users": int(dataset.ratings["user_id"].nunique()),
                "items": len(dataset.items),
                "path": path,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
