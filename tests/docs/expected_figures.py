"""The convention for figures in the text, and its checker.

A figure the text tells the reader to expect is followed by a tag, invisible once rendered, that names the run's
recorded metric (build/metrics/<notebook>.json, written by ``common.report.record``) and the range it must lie in:

    expect an RMSE of about 0.89 <!-- expect 1a-factorization-machines:rmse_fm_regressor 0.87..0.90 -->

A figure from elsewhere (another dataset, AWS's published example, a peer library) is marked as such, with the
numbers it covers:

    AWS's example reports 0.704 on ml-100k <!-- quoted ml-100k, AWS's example: 0.704 -->

Checked: every sentence that says "expect" has each decimal or percentage covered by a tag of the same sentence (a
percentage by a range in shares: 70% lies in 0.65..0.75), as has every row of a table under an "Expected results"
heading, except in columns whose header says "quoted" or "checked by" (the asserts' margins); and every expect tag's
metric lies in its range.
Integers (counts, minutes) are not figures here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

TAG = re.compile(r"<!--\s*(expect|quoted)\s+(.*?)\s*-->", re.S)
EXPECT_BODY = re.compile(r"^([\w.-]+):(\w+)\s+(-?[\d.]+)\.\.(-?[\d.]+)$")
NUMBER = re.compile(r"(?<![\w.@/-])(\d+\.\d+|\d+(?:\.\d+)?%)(?![\w.]*\d)")
HIDDEN = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)", re.S)  # math, code, link targets
SENTENCE_END = re.compile(r"(?<=[.;!?])\s+(?=[^a-z])")


def sources(root: Path) -> dict[str, str]:
    """Every text of the checkout that quotes figures, by where it is: the READMEs, INSTRUCTOR.md, and each lab
    notebook's markdown cells ("<notebook> cell <index>")."""
    documents = [root / "README.md", root / "INSTRUCTOR.md", *sorted(root.glob("Lab*/README.md"))]
    texts = {str(path.relative_to(root)): path.read_text() for path in documents}
    for path in sorted(root.glob("Lab*/*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                texts[f"{path.relative_to(root)} cell {index}"] = cell.source
    return texts


@dataclass(frozen=True)
class Expect:
    notebook: str
    metric: str
    low: float
    high: float

    def covers(self, text: str) -> bool:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
        return self.low - 1e-9 <= value <= self.high + 1e-9


@dataclass(frozen=True)
class Problem:
    where: str
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why}\n    {self.text.strip()[:300]}"


def parse_tags(text: str) -> tuple[list[Expect], set[str], list[str]]:
    """The expect tags, the numbers quoted tags cover, and the malformed tags of one piece of text."""
    expects, quoted, bad = [], set(), []
    for kind, body in TAG.findall(text):
        if kind == "expect":
            match = EXPECT_BODY.match(body)
            if not match:
                bad.append(body)
                continue
            notebook, metric, low, high = match.groups()
            expects.append(Expect(notebook, metric, float(low), float(high)))
        else:
            label, _, numbers = body.rpartition(":")
            if not label.strip() or not numbers.split():
                bad.append(body)
            quoted.update(numbers.split())
    return expects, quoted, bad


def figures(text: str) -> list[str]:
    """The decimals and percentages a reader sees in ``text`` (not in math, code, link targets or tags)."""
    return NUMBER.findall(HIDDEN.sub(" ", TAG.sub(" ", text).replace("\\$", "USD ")))


def _check_figures(where: str, text: str, problems: list[Problem]) -> None:
    expects, quoted, _ = parse_tags(text)
    for figure in figures(text):
        if figure not in quoted and not any(tag.covers(figure) for tag in expects):
            problems.append(Problem(where, text, f"{figure} is neither in an expect tag's range nor quoted"))


def _table(block: str) -> list[list[str]] | None:
    lines = block.strip().splitlines()
    if not all(line.strip().startswith("|") for line in lines):
        return None
    return [line.strip().strip("|").split("|") for line in lines]


def check_markdown(where: str, markdown: str) -> tuple[list[Expect], list[Problem]]:
    """Every expect tag of a markdown text, and the problems: malformed tags, figures no tag covers."""
    expects, _, bad = parse_tags(markdown)
    problems = [Problem(where, body, "malformed tag") for body in bad]
    heading = ""
    for block in re.split(r"\n\s*\n", markdown):
        if block.lstrip().startswith("#"):
            heading = block.strip().splitlines()[0].lower()
        rows = _table(block)
        if rows is not None:
            checked = [not any(word in cell.lower() for word in ("quoted", "checked by")) for cell in rows[0]]
            for row in rows[2:]:
                if "expected results" in heading or "expect" in TAG.sub(" ", "|".join(row)).lower():
                    cells = [cell for keep, cell in zip(checked, row) if keep]
                    tags = " ".join(match.group(0) for match in TAG.finditer("|".join(row)))
                    _check_figures(where, "|".join(cells) + " " + tags, problems)
            continue
        for sentence in SENTENCE_END.split(block):
            if "expect" in TAG.sub(" ", sentence).lower():
                _check_figures(where, sentence, problems)
    return expects, problems


def check_values(where: str, expects: list[Expect], metrics: dict[str, dict]) -> list[Problem]:
    """The expect tags whose metric this run did not record, or recorded outside the tag's range."""
    problems = []
    for tag in expects:
        value = metrics.get(tag.notebook, {}).get(tag.metric)
        label = f"{tag.notebook}:{tag.metric} {tag.low}..{tag.high}"
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(Problem(where, label, "this run recorded no such metric"))
        elif not tag.low <= value <= tag.high:
            problems.append(Problem(where, label, f"this run recorded {value:.4f}, outside the range"))
    return problems
