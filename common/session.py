"""Where the workshop decides how it runs: the ``WORKSHOP_*`` settings, read here and nowhere else.

| variable | meaning | default |
|---|---|---|
| ``WORKSHOP_DATASET`` | MovieLens variant or ``synthetic`` | ``ml-100k`` |
| ``WORKSHOP_DATA_DIR`` | download cache | the user's cache dir + ``/recommendation-workshop`` |
| ``WORKSHOP_DATA_MIRROR`` | a directory or http(s) URL holding the archives | none (GroupLens) |
| ``WORKSHOP_MODE`` | ``aws`` or ``local`` | aws when credentials and a region resolve outside CI |
| ``WORKSHOP_EMULATOR_URL`` | use this running emulator instead of starting one | none |
| ``WORKSHOP_ROLE_ARN`` / ``WORKSHOP_BUCKET`` | AWS mode: execution role and bucket | found from the account |
| ``WORKSHOP_METRICS_DIR`` | where ``common.report`` writes a notebook's results | none (kept in memory) |
| ``WORKSHOP_NOTEBOOK`` | the running notebook's name, for its metrics file | ``notebook`` |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "ml-100k"
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
    metrics_dir: Path | None
    notebook: str


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
        metrics_dir=Path(metrics) if metrics else None,
        notebook=env.get("WORKSHOP_NOTEBOOK") or "notebook",
    )
