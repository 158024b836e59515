"""make run's executed copies are for reading: progress bars in their final state, formulas typeset offline and
amounts of money (``\\$0.20``) left as text."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from common.labs import load_file

ROOT = Path(__file__).resolve().parents[2]


run_notebooks = load_file(ROOT / "scripts" / "run_notebooks.py", "run_notebooks")
screenshot = load_file(ROOT / "images" / "demo_screenshot.py", "demo_screenshot")


def _stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return new_output("stream", name=name, text=text)


def test_a_progress_bar_keeps_its_final_state_only():
    bar = [_stream(f"\rjob {percent:3d}%") for percent in range(0, 101, 10)]
    cell = new_code_cell(outputs=[_stream("starting\n"), *bar, _stream("\n"), _stream("warned\n", "stderr")])
    run_notebooks.readable(new_notebook(cells=[cell]))
    assert [(output.name, output.text) for output in cell.outputs] == [
        ("stdout", "starting\njob 100%\n"),
        ("stderr", "warned\n"),
    ]


def test_a_handout_typesets_its_formulas_without_the_network(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    notebook = new_notebook(
        cells=[
            new_markdown_cell(r"The model: $\hat{y} = w_0 + \sum_i w_i x_i$."),
            new_markdown_cell(r"An endpoint costs \$0.115 an hour, a job \$0.20 to \$0.30; `\$HOME` stays as typed."),
        ]
    )
    target = tmp_path / "Lab1" / "handout.html"
    target.parent.mkdir()
    run_notebooks.write_handout(notebook, target, tmp_path)
    driver = screenshot.chrome(offline=True)
    try:
        driver.get(target.as_uri())
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".MathJax"))
        formula, money = (cell.text for cell in driver.find_elements(By.CSS_SELECTOR, ".jp-RenderedMarkdown"))
        assert "$" not in formula
        assert money == r"An endpoint costs $0.115 an hour, a job $0.20 to $0.30; \$HOME stays as typed."
        assert driver.execute_script("return MathJax.Hub.outputJax['jax/mml'][0].fontInUse") == "STIX-Web"
    finally:
        driver.quit()
