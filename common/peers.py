"""The peers' figures as ``benchmarks/peers.py`` measured them, for the notebooks' comparisons: never typed by hand.

``benchmarks/peers.json`` holds one row per dataset, peer and metric: the library model, the settings chosen on
validation and how (budget, ranges), the test figure and its standard error. A notebook reads it, picks the best
tuned peer for its dataset and metric, and states its own result against it::

    rows = peers.load()
    best = peers.best(rows, "ml-latest-small", "HR@10")
    best.model, best.value, best.standard_error, best.settings, peers.how_tuned(best)
    peers.comparison("implicit FM", hr, evaluation.hit_rate_standard_error(scores, 10), best)

The comparison counts standard errors of the difference as if the two figures were independent,
sqrt(se_ours^2 + se_peer^2). Both are measured on the same test users (or ratings), which makes the true error
of the difference smaller, so the count is conservative: a gap of 2 or more is beyond the noise of the test draw.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

PEERS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.json"
LOWER_IS_BETTER = {"RMSE": True, "HR@10": False, "NDCG@10": False}
NOISE = 2.0  # standard errors: a smaller gap is within the noise of the test draw
FIELDS = ("dataset", "split", "task", "model", "library", "metric", "value", "standard_error", "settings", "tuning")


@dataclass(frozen=True)
class Peer:
    """One peer's test figure on one dataset, with the settings chosen for it and how they were chosen."""

    dataset: str
    split: str
    task: str
    model: str
    library: str
    metric: str
    value: float
    standard_error: float
    settings: dict
    tuning: dict


def load(path: Path | str = PEERS_FILE) -> list[Peer]:
    """Every row of the peers file.

    Raises:
        FileNotFoundError: no file (``benchmarks/peers.py`` writes it).
        ValueError: not the JSON that ``benchmarks/peers.py`` writes: a row lacking a field, or an unknown metric.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no peers file at {path}: benchmarks/peers.py writes it")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ValueError(f"{path} has no list of rows under 'rows'")
    peers = []
    for number, row in enumerate(document["rows"]):
        missing = [field for field in FIELDS if not isinstance(row, dict) or field not in row]
        if missing:
            raise ValueError(f"{path}: row {number} lacks {missing}")
        if row["metric"] not in LOWER_IS_BETTER:
            raise ValueError(f"{path}: row {number} has metric {row['metric']!r}; known: {sorted(LOWER_IS_BETTER)}")
        peers.append(Peer(**{field: row[field] for field in FIELDS}))
    return peers


def select(peers: list[Peer], dataset: str, metric: str) -> list[Peer]:
    """The rows of one dataset and metric, best first.

    Raises:
        ValueError: no row for that dataset and metric (the message lists what there is).
    """
    chosen = [peer for peer in peers if peer.dataset == dataset and peer.metric == metric]
    if not chosen:
        there = sorted({(peer.dataset, peer.metric) for peer in peers})
        raise ValueError(f"no peer measured {metric!r} on {dataset!r}; the file has {there}")
    return sorted(chosen, key=lambda peer: peer.value, reverse=not LOWER_IS_BETTER[metric])


def best(peers: list[Peer], dataset: str, metric: str) -> Peer:
    """The tuned peer with the best test figure on one dataset and metric (lowest RMSE, highest HR@10 or NDCG@10).

    Raises:
        ValueError: as ``select``.
    """
    return select(peers, dataset, metric)[0]


def values(peers: list[Peer], dataset: str, metric: str) -> dict[str, float]:
    """{model: test figure} of one dataset and metric, best first: what a notebook's table or plot shows.

    Raises:
        ValueError: as ``select``.
    """
    return {peer.model: peer.value for peer in select(peers, dataset, metric)}


def how_tuned(peer: Peer) -> str:
    """The chosen settings and how they were chosen, for a sentence or a table cell."""
    settings = ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}" for name, value in peer.settings.items()
    )
    if not peer.tuning.get("budget"):
        return f"{settings or 'no settings'} ({peer.tuning.get('method', 'not tuned')})"
    return f"{settings}, chosen among {peer.tuning['budget']} settings on {peer.tuning['validation']}"


def _figure(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def comparison(name: str, value: float, standard_error: float, peer: Peer) -> str:
    """One sentence: how far ``value`` is from ``peer``'s figure, which way is better, in standard errors.

    k = |value - peer.value| / sqrt(standard_error^2 + peer.standard_error^2); below NOISE it is within the noise.

    Args:
        name: what the notebook calls its model, e.g. "implicit FM".
        value, standard_error: its figure on the same dataset, split and metric as the peer (the standard error
            from ``common.evaluation``).
        peer: usually ``best(...)``.

    Raises:
        ValueError: a figure not a finite number, a standard error negative, or both standard errors 0.
    """
    value = _figure(value, "value")
    standard_error = _figure(standard_error, "standard_error")
    if standard_error < 0:
        raise ValueError(f"standard_error must be >= 0, got {standard_error!r}")
    spread = math.hypot(standard_error, peer.standard_error)
    if spread == 0:
        raise ValueError(f"both standard errors are 0 ({name} and {peer.model}): no scale to compare on")
    gap = value - peer.value
    ours = f"{name}'s {peer.metric} ({value:.4f} ± {standard_error:.4f})"
    theirs = f"the best tuned peer, {peer.model} ({peer.value:.4f} ± {peer.standard_error:.4f})"
    if gap == 0:
        return f"{ours} equals {theirs}."
    k = abs(gap) / spread
    better = (gap < 0) == LOWER_IS_BETTER[peer.metric]
    verdict = "within the noise" if k < NOISE else ("better" if better else "worse")
    side = "above" if gap > 0 else "below"
    return f"{ours} is {abs(gap):.4f} {side} {theirs}: about {k:.1f} standard errors, {verdict}."
