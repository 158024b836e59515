"""The peers' figures as ``benchmarks/peers.py`` measured them, for the notebooks' comparisons: never typed by hand.

``benchmarks/peers.json`` holds one row per dataset, peer and metric: the library model, the settings chosen on
validation and how (budget, ranges), the test figure and its standard error. A notebook reads it, picks the best
tuned peer for its dataset and metric, and states its own result against it::

    rows = peers.load()
    best = peers.best(rows, "ml-latest-small", "HR@10")
    best.model, best.value, best.standard_error, best.settings, peers.how_tuned(best)
    peers.comparison("implicit FM", hr, evaluation.hit_rate_standard_error(scores, 10), best)

The README's table of peers is rendered from the same file (``readme_section``); ``python -m common.peers`` rewrites
it between its two marker comments, and ``tests/docs/test_readme_peers.py`` fails when the two differ.

The comparison counts standard errors of the difference as if the two figures were independent,
sqrt(se_ours^2 + se_peer^2). Both are measured on the same test users (or ratings), which makes the true error
of the difference smaller, so the count is conservative: a gap of 2 or more is beyond the noise of the test draw.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

PEERS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.json"
LOWER_IS_BETTER = {"RMSE": True, "HR@10": False, "NDCG@10": False}
NOISE = 2.0  # standard errors: a smaller gap is within the noise of the test draw
README_FILE = PEERS_FILE.parents[1] / "README.md"
README_START = "<!-- peers: rendered from benchmarks/peers.json by `python -m common.peers`; do not edit by hand -->"
README_END = "<!-- end of peers -->"
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


def _datasets(peers: list[Peer]) -> list[str]:
    return sorted({peer.dataset for peer in peers}, key=lambda name: (name != "ml-latest-small", name))


def markdown_table(peers: list[Peer]) -> str:
    """Every peer's test figure ± standard error, one row per metric and peer, one column per dataset; the best
    tuned peer of each column in bold. Rows follow the first dataset's order, best first."""
    datasets = _datasets(peers)
    lines = [
        "| metric | peer | " + " | ".join(f"`{name}`" for name in datasets) + " |",
        "|---|---|" + "---|" * len(datasets),
    ]
    for metric in LOWER_IS_BETTER:
        models = list(dict.fromkeys(peer.model for name in datasets for peer in _select_or_none(peers, name, metric)))
        for model in models:
            cells = []
            for name in datasets:
                chosen = _select_or_none(peers, name, metric)
                row = next((peer for peer in chosen if peer.model == model), None)
                figure = "" if row is None else f"{row.value:.3f} ± {row.standard_error:.3f}"
                cells.append(f"**{figure}**" if row is not None and row is chosen[0] else figure)
            lines.append(f"| {metric} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _select_or_none(peers: list[Peer], dataset: str, metric: str) -> list[Peer]:
    """``select``, or [] when no peer measured that metric on that dataset (a table cell left blank)."""
    if not any(peer.dataset == dataset and peer.metric == metric for peer in peers):
        return []
    return select(peers, dataset, metric)


def readme_section(peers: list[Peer]) -> str:
    """The README's peers block: the table, then one line per dataset and metric naming the best tuned peer and how
    it was tuned."""
    lines = [markdown_table(peers), "", "The best tuned peer of each column, with the settings its search chose:", ""]
    for name in _datasets(peers):
        for metric in LOWER_IS_BETTER:
            chosen = _select_or_none(peers, name, metric)
            if chosen:
                top = chosen[0]
                lines.append(f"- `{name}`, {metric}: {top.model} ({top.library}), {how_tuned(top)}.")
    return "\n".join(lines)


def render_readme(text: str, peers: list[Peer]) -> str:
    """``text`` with the block between README_START and README_END replaced by ``readme_section(peers)``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if (
        text.count(README_START) != 1
        or text.count(README_END) != 1
        or text.index(README_START) > text.index(README_END)
    ):
        raise ValueError(f"the README needs one {README_START!r} line followed by one {README_END!r} line")
    head, rest = text.split(README_START)
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{readme_section(peers)}\n{README_END}{tail}"


def main(argv: list[str] | None = None) -> None:
    """Rewrite the README's peers block from the peers file."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--peers", type=Path, default=PEERS_FILE)
    parser.add_argument("--readme", type=Path, default=README_FILE)
    arguments = parser.parse_args(argv)
    text = arguments.readme.read_text()
    arguments.readme.write_text(render_readme(text, load(arguments.peers)))


if __name__ == "__main__":
    main()
