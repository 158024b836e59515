"""Execute every lab notebook in local mode, in agenda order, and write the executed copies under build/ (``make run``).

Each notebook runs in its own folder with a fresh kernel, as an attendee would run it top to bottom, with a
progress bar counting its code cells. Its results land in build/metrics/<notebook>.json (``common.report``), with
its wall time; the executed copy is saved as .ipynb and as .html (for an instructor to hand out); the run ends
with one table of every notebook's metrics. Exit status 1 when any notebook failed.

The copies are made for reading: a progress bar, which a live notebook redraws in place, is kept in its final state
only (its updates would otherwise stack up, one line each), and the handouts typeset their formulas offline, with
the MathJax that jupyter-server-mathjax ships, copied once to build/mathjax beside them.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
import time
from pathlib import Path

import jupyter_server_mathjax
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from tqdm import tqdm

from common.report import WALL_TIME_KEY, collect, format_table, metrics_file, write_metric
from common.settings import notebook_name

ROOT = Path(__file__).resolve().parents[1]
LAB_GLOB = "Lab*/**/*.ipynb"
MATHJAX = Path(jupyter_server_mathjax.__file__).parent / "static"  # MathJax 2.7, as nbconvert's template expects
# The configuration that package ships, the Safe extension, and ours: the only fonts it ships are STIX-Web.
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/workshop"
MATHJAX_LOCAL = """MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/local/workshop.js");
"""


def find_notebooks(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(LAB_GLOB) if ".ipynb_checkpoints" not in p.parts)


def readable(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Join each cell's consecutive stream outputs and keep, of every line redrawn with ``\\r``, its last state."""
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    return notebook


def _escaped_dollars_kept(markdown: str) -> str:
    """``markdown`` with each ``\\$`` outside code spans doubled: nbconvert's Markdown drops the backslash of a
    ``\\$`` (an amount of money, as Jupyter shows it), and MathJax would then read text between two amounts as math;
    with the backslash kept, MathJax shows a plain ``$``."""
    parts = re.split(r"(`+[^`]*`+)", markdown)
    return "".join(part if part.startswith("`") else part.replace("\\$", "\\\\$") for part in parts)


def write_handout(notebook: nbformat.NotebookNode, target: Path, build: Path) -> None:
    """``target`` as HTML whose formulas MathJax typesets from ``build/mathjax``, with no network."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _escaped_dollars_kept(cell.source)
    mathjax = build / "mathjax"
    if not (mathjax / "config" / "local" / "workshop.js").exists():
        shutil.copytree(MATHJAX, mathjax, dirs_exist_ok=True)
        (mathjax / "config" / "local").mkdir(exist_ok=True)
        (mathjax / "config" / "local" / "workshop.js").write_text(MATHJAX_LOCAL, encoding="utf-8")
    url = Path(os.path.relpath(mathjax, target.parent)).as_posix()
    exporter = HTMLExporter(mathjax_url=f"{url}/MathJax.js?config={MATHJAX_CONFIG}")
    body, _ = exporter.from_notebook_node(notebook)
    target.write_text(body, encoding="utf-8")


def execute(path: Path, build: Path, kernel: str, timeout: int) -> tuple[bool, float]:
    """Run one notebook; returns (succeeded, wall seconds). The executed copy is written even on failure."""
    name = notebook_name(path)
    os.environ["WORKSHOP_NOTEBOOK"] = name
    metrics_file(build / "metrics", name).unlink(missing_ok=True)
    notebook = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    progress = tqdm(total=code_cells, desc=f"  {path.stem}", unit="cell", leave=True)
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_complete=lambda cell, cell_index: progress.update(cell.cell_type == "code"),
    )
    start = time.monotonic()
    failure = None
    kernel_log = build / "logs" / f"{name}.kernel.log"  # the kernel's own stderr (startup notices), kept off the screen
    kernel_log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with kernel_log.open("w") as stderr:
            client.execute(stderr=stderr)
    except CellExecutionError as error:
        failure = error
    progress.close()
    if failure is not None:
        print(f"FAILED {path.relative_to(ROOT)}:\n{failure}", file=sys.stderr)
    wall = time.monotonic() - start
    target = build / path.relative_to(ROOT)
    target.parent.mkdir(parents=True, exist_ok=True)
    readable(notebook)
    nbformat.write(notebook, target)
    write_handout(notebook, target.with_suffix(".html"), build)
    write_metric(metrics_file(build / "metrics", name), WALL_TIME_KEY, round(wall, 1))
    return failure is None, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name to run the notebooks with")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: every lab notebook)")
    args = parser.parse_args()

    build = ROOT / "build"
    os.environ.setdefault("WORKSHOP_MODE", "local")
    os.environ["WORKSHOP_METRICS_DIR"] = str(build / "metrics")
    notebooks = [p.resolve() for p in args.notebooks] or find_notebooks(ROOT)
    if not notebooks:
        print("No lab notebooks exist yet: nothing to run.")
        return 0
    print(
        f"Running {len(notebooks)} notebook(s) in {os.environ['WORKSHOP_MODE']} mode; executed copies (.ipynb, .html) "
        "go to build/."
    )
    failed = []
    for path in notebooks:
        ok, wall = execute(path, build, args.kernel, args.timeout)
        print(f"  {'done' if ok else 'FAILED'} in {wall:.0f} s", flush=True)
        if not ok:
            failed.append(path)
    print()
    print(format_table(collect(build / "metrics")))
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: " + ", ".join(str(p.relative_to(ROOT)) for p in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
