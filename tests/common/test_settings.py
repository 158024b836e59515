"""common.settings: the one table of ``WORKSHOP_*`` variables, with its defaults."""

from pathlib import Path

from common import settings


def test_without_settings_results_go_to_build_metrics_under_the_notebooks_jupyter_name(monkeypatch):
    monkeypatch.delenv("WORKSHOP_METRICS_DIR", raising=False)
    monkeypatch.delenv("WORKSHOP_NOTEBOOK", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/workshop/Lab1 - X/1a - Factorization Machines.ipynb")
    current = settings.settings()
    assert current.metrics_dir == Path(settings.__file__).resolve().parents[1] / "build" / "metrics"
    assert current.notebook == "1a-factorization-machines"


def test_notebook_names_are_file_stems_in_lower_case():
    assert settings.notebook_name("Lab1 - X/Factorization Machines.ipynb") == "factorization-machines"
