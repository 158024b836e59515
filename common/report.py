"""A notebook's key results, kept so that runs can be compared: ``record("test_rmse", rmse)``.

Each value is written to ``<WORKSHOP_METRICS_DIR>/<notebook>.json`` at once (default ``build/metrics`` in the
repository, the notebook named after its file, whether it runs under ``make run``, the tests or JupyterLab), so a
notebook that fails half way still leaves the results it reached and a later notebook can read them. ``make run`` ends by printing :func:`format_table` over every notebook's file.
"""

from __future__ import annotations

import json
import math
import numbers
import textwrap
from pathlib import Path

from common.settings import settings

WALL_TIME_KEY = "wall_time_s"


def _plain(value):
    """A JSON-safe copy of a scalar result (numpy scalars become Python numbers)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"record() takes a number or a string, not {type(value).__name__}: {value!r}")


def metrics_file(directory: Path, notebook: str) -> Path:
    return Path(directory) / f"{notebook}.json"


def read_metrics(path: Path) -> dict:
    """One notebook's recorded results ({} when it recorded none)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def write_metric(path: Path, name: str, value) -> None:
    """Merge one result into a metrics file, replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = read_metrics(path)
    values[name] = _plain(value)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def record(name: str, value):
    """Keep one of the running notebook's key results and return the value unchanged.

    Args:
        name: a short snake_case name, e.g. ``"classifier_accuracy"``.
        value: a number or a string.

    Raises:
        ValueError: the name is empty; TypeError: the value is not a number or a string.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"record() needs a non-empty name, got {name!r}")
    plain = _plain(value)
    current = settings()
    write_metric(metrics_file(current.metrics_dir, current.notebook), name, plain)
    return value


def collect(directory: Path) -> dict[str, dict]:
    """Every notebook's results in a metrics directory: notebook name → {metric: value}."""
    return {p.stem: read_metrics(p) for p in sorted(Path(directory).glob("*.json"))}


def _show(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(results: dict[str, dict], width: int = 118) -> str:
    """A compact plain-text summary: per notebook, a line with its wall time, then its metrics as name=value pairs
    wrapped to ``width`` (a table of one row per metric would run to a hundred lines)."""
    if not any(results.values()):
        return "No notebook recorded any metrics."
    blocks = []
    for notebook, values in results.items():
        wall = values.get(WALL_TIME_KEY)
        pairs = [f"{name}={_show(value)}" for name, value in sorted(values.items()) if name != WALL_TIME_KEY]
        heading = f"{notebook}: " + (f"{_show(wall)} s" if wall is not None else "no wall time")
        body = textwrap.fill(
            "  ".join(pairs),
            width,
            initial_indent="  ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        blocks.append(heading + ("\n" + body if pairs else ""))
    return "\n".join(blocks)
