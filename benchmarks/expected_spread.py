"""How far each figure the text tells a reader to expect moves from run to run, against the range its tag allows.

Several figures come from training that is not reproducible to the bit (Object2Vec's two Hogwild threads, FM's
two threads on larger jobs), so one passing run says little about the next: a tag whose range the figure's own
spread reaches fails CI now and then. This runs the given notebooks (default: every lab notebook) ``--runs`` times
in local mode, as ``make run`` runs them (each run's executed copies and results under build/spread/run-<k>), then
prints for every expect tag (tests/docs/expected_figures.py) its range, the lowest, median and highest value the runs
recorded, the distance from the nearer end of the range to the nearer extreme (negative: a run fell outside or
recorded nothing), and where the tag is (one row per distinct tag). Not in CI: each run of Lab 2 takes minutes.

    .venv/bin/python benchmarks/expected_spread.py [--runs 5] [notebook ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "docs")]  # neither is a package

from expected_figures import parse_tags, sources  # noqa: E402
from run_notebooks import execute, find_notebooks  # noqa: E402

from common import report  # noqa: E402
from common.settings import notebook_name  # noqa: E402

KERNEL = "recommendation-workshop"  # what `make run` registers


def run_all(notebooks: list[Path], runs: int, kernel: str, timeout: int) -> list[dict[str, dict]]:
    """Each run's recorded results, notebook by notebook, as ``report.collect`` returns them."""
    os.environ.setdefault("WORKSHOP_MODE", "local")
    results = []
    for run in range(1, runs + 1):
        build = ROOT / "build" / "spread" / f"run-{run}"
        os.environ["WORKSHOP_METRICS_DIR"] = str(build / "metrics")
        for notebook in notebooks:
            passed, wall = execute(notebook, build, kernel, timeout)
            print(f"run {run}: {notebook.stem} {'passed' if passed else 'FAILED'} in {wall:.0f} s", flush=True)
        results.append(report.collect(build / "metrics"))
    return results


def spread_rows(results: list[dict[str, dict]], notebooks: set[str]) -> list[tuple]:
    """(tag, low, high, values, margin, places) of each distinct expect tag of the notebooks that ran; the margin is
    -inf when some run recorded no value."""
    places: dict[tuple, list[str]] = {}
    for where, text in sources(ROOT).items():
        for tag in parse_tags(text)[0]:
            if tag.notebook in notebooks:
                places.setdefault((tag.notebook, tag.metric, tag.low, tag.high), []).append(where)
    rows = []
    for (notebook, metric, low, high), wheres in places.items():
        values = [run.get(notebook, {}).get(metric) for run in results]
        values = [value for value in values if isinstance(value, int | float) and not isinstance(value, bool)]
        complete = values and len(values) == len(results)
        margin = min(min(values) - low, high - max(values)) if complete else float("-inf")
        rows.append((f"{notebook}:{metric}", low, high, values, margin, wheres))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="times each notebook runs")
    parser.add_argument("--kernel", default=KERNEL, help="Jupyter kernel (`make run` registers the default)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lab notebook, in agenda order")
    args = parser.parse_args()
    notebooks = [p.resolve() for p in args.notebooks] or find_notebooks(ROOT)
    results = run_all(notebooks, args.runs, args.kernel, args.timeout)
    rows = spread_rows(results, {notebook_name(path) for path in notebooks})
    print(f"\n{'tag':<55} {'range':>15} {'runs':>4} {'lowest':>9} {'median':>9} {'highest':>9} {'margin':>8}  where")
    for tag, low, high, values, margin, wheres in sorted(rows, key=lambda row: row[4]):
        figures = f"{min(values):9.4f} {statistics.median(values):9.4f} {max(values):9.4f}" if values else f"{'-':>29}"
        print(f"{tag:<55} {f'{low}..{high}':>15} {len(values):4d} {figures} {margin:8.4f}  {'; '.join(wheres)}")
    return 0 if all(row[4] >= 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
