"""Each lab notebook top to bottom at the original workshop's size, in local mode: its time and peak memory here.

Runs ``scripts/run_notebooks.py`` once per notebook with ``WORKSHOP_DATASET`` set (default ``synthetic-20m``,
ml-20m's shape: 20,000,263 ratings, 138,493 users, 26,744 movies) while it samples the machine every half second,
and prints per notebook: whether it passed (its own asserts included), wall seconds, the CPU seconds the whole
machine spent meanwhile (kernel, emulator and its jobs together: quiet the machine first), the peak memory in use
above the level before the notebook started, and the kernel's and the emulator's (its jobs included) own peaks.
The notebook runs as ``make run`` runs it, so its executed copy lands under ``build/``. Not in CI: on 2 cores it
takes hours. INSTRUCTOR.md's "Full-scale run" quotes its figures.

    .venv/bin/python benchmarks/full_scale.py [--dataset synthetic-20m] [notebook ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebooks import find_notebooks  # noqa: E402  (scripts/ is not a package)

KERNEL = "recommendation-workshop"  # what `make run` registers
SAMPLE_SECONDS = 0.5
TREES = {"kernel": "ipykernel_launcher", "emulator": "sagemaker_emulator serve"}  # tree: its root's command line


class MachineSampler:
    """The machine's memory in use, sampled on a thread: the notebook's kernel, the emulator and every job process
    it starts are separate process trees, so the machine's figure is the one that holds all of them. Each tree's own
    peak (resident set sizes summed) is kept too, to say where the memory went."""

    def __init__(self) -> None:
        self.baseline = psutil.virtual_memory().used
        self.peak = self.baseline
        self.tree_peaks = dict.fromkeys(TREES, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, psutil.virtual_memory().used)
            for tree, resident in tree_memory().items():
                self.tree_peaks[tree] = max(self.tree_peaks[tree], resident)

    def __enter__(self) -> MachineSampler:
        self._cpu = sum(psutil.cpu_times()[:3])  # user, nice, system: every process's, children that ended included
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = sum(psutil.cpu_times()[:3]) - self._cpu

    @property
    def peak_gib(self) -> float:
        return (self.peak - self.baseline) / 2**30


def tree_memory() -> dict[str, int]:
    """Resident bytes of each tree in ``TREES`` now: its root processes (found by their command line) and every
    descendant (the emulator's training jobs and model servers are its children)."""
    resident = dict.fromkeys(TREES, 0)
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        tree = next((name for name, marker in TREES.items() if marker in command), None)
        if tree is None:
            continue
        try:
            resident[tree] += sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
        except psutil.Error:  # it ended between the listing and the reading
            continue
    return resident


def run(notebook: Path, dataset: str, kernel: str, timeout: int) -> tuple[bool, float, float, float, dict]:
    """(passed, wall seconds, machine CPU seconds, peak GiB above the start, each tree's peak GiB) of one run."""
    env = {**os.environ, "WORKSHOP_DATASET": dataset, "WORKSHOP_MODE": "local"}
    command = [sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--kernel", kernel, "--timeout"]
    start = time.monotonic()
    with MachineSampler() as sampler:
        result = subprocess.run([*command, str(timeout), str(notebook)], cwd=ROOT, env=env, check=False)
    trees = {tree: resident / 2**30 for tree, resident in sampler.tree_peaks.items()}
    return result.returncode == 0, time.monotonic() - start, sampler.cpu_seconds, sampler.peak_gib, trees


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-20m", help="WORKSHOP_DATASET for every notebook")
    parser.add_argument("--kernel", default=KERNEL, help="Jupyter kernel (`make run` registers the default)")
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="seconds one cell may take")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lab notebook, in agenda order")
    args = parser.parse_args()
    notebooks = [p.resolve() for p in args.notebooks] or find_notebooks(ROOT)
    print(f"{args.dataset}, local mode, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    rows = []
    for notebook in notebooks:
        rows.append((notebook.stem, *run(notebook, args.dataset, args.kernel, args.timeout)))
    trees = "".join(f" {'peak ' + tree:>14}" for tree in TREES)
    print(f"\n{'notebook':<45} {'result':>7} {'wall':>9} {'CPU':>9} {'peak memory':>12}{trees}")
    for stem, passed, wall, cpu, peak, tree_peaks in rows:
        result = "passed" if passed else "FAILED"
        trees = "".join(f" {tree_peaks[tree]:10.1f} GiB" for tree in TREES)
        print(f"{stem:<45} {result:>7} {wall / 60:7.1f} m {cpu / 60:7.1f} m {peak:8.1f} GiB{trees}")
    return 0 if all(row[1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
