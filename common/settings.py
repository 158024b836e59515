"""The workshop's ``WORKSHOP_*`` settings: this table, read here and nowhere else.

| variable | meaning | default |
|---|---|---|
| ``WORKSHOP_DATASET`` | MovieLens variant, ``synthetic`` or ``synthetic-20m`` | ``ml-latest-small`` (shipped in ``data/``) |
| ``WORKSHOP_DATA_DIR`` | download cache | the user's cache dir + ``/recommendation-workshop`` |
| ``WORKSHOP_DATA_MIRROR`` | a directory or http(s) URL holding the archives | none (GroupLens) |
| ``WORKSHOP_MODE`` | ``aws`` or ``local`` | aws when credentials and a region resolve outside CI |
| ``WORKSHOP_EMULATOR_URL`` | use this running emulator (with the key pair it printed) | the user's own, started once |
| ``WORKSHOP_ROLE_ARN`` / ``WORKSHOP_BUCKET`` | AWS mode: execution role and bucket | found from the account |
| ``WORKSHOP_METRICS_DIR`` | where ``common.report`` writes a notebook's results | ``build/metrics`` in the repository |
| ``WORKSHOP_NOTEBOOK`` | the running notebook's name, for its metrics file | from Jupyter's ``JPY_SESSION_NAME`` |
| ``CI`` | set by CI services; makes local mode the default | unset |
| ``SAGEMAKER_VALIDATE_ROLE`` | the SDK's own role check before each training job (``common.session`` says why) | ``false`` |

Read by :func:`settings` at each call, not at import, so a kernel can change them. ``common.session`` decides the
mode from them; ``common.data``, ``common.report`` and the sweep read the rest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "ml-latest-small"
REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_METRICS_DIR = REPOSITORY / "build" / "metrics"  # where make run, the tests and JupyterLab all file results
CACHE_SUBDIR = "recommendation-workshop"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_SUBDIR


@dataclass(frozen=True)
class Settings:
    """The workshop's settings as read from the environment at one moment."""

    dataset: str
    data_dir: Path
    data_mirror: str | None
    mode: str | None
    emulator_url: str | None
    role_arn: str | None
    bucket: str | None
    metrics_dir: Path
    notebook: str
    ci: bool = False


def notebook_name(path: str | Path) -> str:
    """The name a notebook's results are filed under: its file stem, lower case, dashes for the rest."""
    return re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")


def settings() -> Settings:
    """Read every ``WORKSHOP_*`` variable now (not at import, so a kernel can change them)."""
    env = os.environ
    metrics = env.get("WORKSHOP_METRICS_DIR")
    return Settings(
        dataset=env.get("WORKSHOP_DATASET") or DEFAULT_DATASET,
        data_dir=Path(env["WORKSHOP_DATA_DIR"]) if env.get("WORKSHOP_DATA_DIR") else _default_cache_dir(),
        data_mirror=env.get("WORKSHOP_DATA_MIRROR") or None,
        mode=(env.get("WORKSHOP_MODE") or "").lower() or None,
        emulator_url=env.get("WORKSHOP_EMULATOR_URL") or None,
        role_arn=env.get("WORKSHOP_ROLE_ARN") or None,
        bucket=env.get("WORKSHOP_BUCKET") or None,
        metrics_dir=Path(metrics) if metrics else DEFAULT_METRICS_DIR,
        notebook=env.get("WORKSHOP_NOTEBOOK") or notebook_name(env.get("JPY_SESSION_NAME") or "notebook"),
        ci=(env.get("CI") or "").strip().lower() not in ("", "0", "false", "no"),
    )
