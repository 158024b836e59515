"""The data layer's speed: synthetic generation, splits at ml-20m's size, and the real ml-latest-small end to end.

Prints, each with wall seconds and the process's peak resident memory so far:
- ``common.synthetic.generate`` at ml-100k's size (943 x 1,682 x 100,000) and ml-20m's (138,493 x 26,744 x
  20,000,263), then ``split_holdout`` and ``leave_one_out`` (99 negatives) on the 20M rows;
- ml-latest-small: a cold fetch into an empty temporary cache (copy from the mirror + member checks), a warm fetch
  (the archive re-hashed against its stamp), a warm fetch without the stamp (every member decompressed and
  checked again), ``load_dataset``, ``split_holdout`` and ``leave_one_out``. The archive comes from
  ``WORKSHOP_DATA_MIRROR`` or the cache; without either this part says so and is skipped (nothing downloads).

    .venv/bin/python benchmarks/data.py [--skip-20m]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common import data, download, synthetic
from common.settings import settings

SIZES = {"ml-100k-sized": (943, 1682, 100_000), "ml-20m-sized": (138_493, 26_744, 20_000_263)}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(label: str):
    start = time.perf_counter()
    yield
    print(f"  {label:<46} {time.perf_counter() - start:8.2f} s   peak RSS {peak_mb():7.0f} MB")


def synthetic_figures(skip_20m: bool) -> None:
    for name, (n_users, n_items, n_ratings) in SIZES.items():
        if skip_20m and n_ratings > 1_000_000:
            continue
        print(f"synthetic, {name} ({n_users:,} users x {n_items:,} items x {n_ratings:,} ratings)")
        with timed("generate"):
            ratings, _ = synthetic.generate(seed=0, n_users=n_users, n_items=n_items, n_ratings=n_ratings)
        print(f"  {'ratings frame':<46} {ratings.memory_usage(deep=True).sum() / 2**20:8.0f} MB")
        with timed("split_holdout (10 per user)"):
            data.split_holdout(ratings, seed=0)
        with timed("leave_one_out (99 negatives per user)"):
            data.leave_one_out(ratings, seed=0)
        del ratings


def movielens_figures(name: str = "ml-latest-small") -> None:
    print(f"{name}")
    current = settings()
    url, checks = data.GROUPLENS_URL + name + ".zip", data.VARIANTS[name].checks
    source = current.data_mirror or str(current.data_dir)  # the cache can stand in as a mirror
    try:
        with tempfile.TemporaryDirectory() as cache:
            with timed(f"cold fetch from {source}"):
                path = download.fetch(url, checks, Path(cache), source)
            with timed("warm fetch (archive hash vs its stamp)"):
                download.fetch(url, checks, Path(cache))
            path.with_name(path.name + ".sha256").unlink()
            with timed("warm fetch without stamp (all members checked)"):
                download.fetch(url, checks, Path(cache))
        with timed("load_dataset (fetch + parse)"):
            dataset = data.load_dataset(name)
    except data.DatasetUnavailable as error:
        print(f"  skipped: {error}")
        return
    with timed("split_holdout (10 per user)"):
        data.split_holdout(dataset, seed=0)
    with timed("leave_one_out (99 negatives per user)"):
        data.leave_one_out(dataset.ratings, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-20m", action="store_true", help="only the ml-100k-sized synthetic data")
    arguments = parser.parse_args()
    movielens_figures()
    synthetic_figures(arguments.skip_20m)


if __name__ == "__main__":
    main()
