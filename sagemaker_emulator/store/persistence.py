"""The SageMaker control plane's state on disk, so an emulator restart (or a crash) forgets nothing.

Every resource of every region is written as one JSON document (``sagemaker.json``), atomically (a temporary
file, then ``os.replace``), whenever it changed: a saver thread compares the serialised state every
``interval`` seconds and on :meth:`StateStore.close`. Resources are small records (requests, statuses, times),
so a whole document is a few KB to a few hundred; S3 objects and logs are moto's and kept by ``moto_store``.

On start the records come back as resources, and what cannot survive a restart is settled as AWS would settle
a lost host: a training or transform job that was running is ``Failed`` with a reason that says why, and an
endpoint that was serving is started again from the variants it ran (``jobs/endpoints.py``), keeping its status.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sagemaker_emulator.resources.endpoint_configs import EndpointConfig
from sagemaker_emulator.resources.endpoints import Endpoint
from sagemaker_emulator.resources.models import Model
from sagemaker_emulator.resources.training_jobs import TrainingJob
from sagemaker_emulator.resources.transform_jobs import TransformJob
from sagemaker_emulator.resources.tuning_jobs import TuningJob
from sagemaker_emulator.state import EmulatorState
from sagemaker_emulator.store.files import TEMPORARY_SUFFIX, private_folder, write_atomically

LOG = logging.getLogger(__name__)

VERSION = 1
KINDS = {
    "models": Model,
    "endpoint_configs": EndpointConfig,
    "training_jobs": TrainingJob,
    "transform_jobs": TransformJob,
    "tuning_jobs": TuningJob,
    "endpoints": Endpoint,
}


def snapshot(states: dict[str, EmulatorState]) -> str:
    """Every region's resources as one JSON document (sorted, so an unchanged state serialises identically)."""
    regions = {
        region: {
            kind: sorted((r.to_record() for r in getattr(state, kind)), key=lambda r: r["name"].lower())
            for kind in KINDS
        }
        for region, state in states.items()
    }
    return json.dumps({"version": VERSION, "regions": regions}, sort_keys=True)


class StateStore:
    """``sagemaker.json`` in ``folder``: :meth:`load` once at start, then :meth:`watch` keeps it current."""

    def __init__(self, folder: Path, interval: float = 0.5):
        self.folder = folder
        self.path = folder / "sagemaker.json"
        self._interval = interval
        self._written = ""
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._states: Callable[[], dict[str, EmulatorState]] = dict

    def load(self) -> dict[str, dict[str, list[dict]]]:
        """The saved records by region and kind; an unreadable file is set aside (``.corrupt``) and nothing loaded.

        Raises:
            files.UnsafePath: the folder is a symbolic link.
        """
        private_folder(self.folder)
        for leftover in self.folder.glob(f".{self.path.name}.*{TEMPORARY_SUFFIX}"):  # from a save cut short
            leftover.unlink()
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text())
            if document.get("version") != VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {VERSION}")
            return document["regions"]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            aside = self.path.with_name(f"sagemaker.corrupt-{int(time.time())}.json")
            os.replace(self.path, aside)
            LOG.error(
                "the saved SageMaker state %s could not be read (%s); it was moved to %s", self.path, error, aside
            )
            return {}

    def save(self) -> bool:
        """Write the current state if it changed since the last write; True when it wrote."""
        with self._lock:
            text = snapshot(self._states())
            if text == self._written:
                return False
            write_atomically(self.path, [text.encode()], folder=private_folder(self.folder))
            self._written = text
            return True

    def watch(self, states: Callable[[], dict[str, EmulatorState]]) -> None:
        """Save ``states()`` whenever it changes, from a background thread, until :meth:`close`."""
        self._states = states
        self._thread = threading.Thread(target=self._loop, name="sagemaker-state", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.save()
            except Exception:  # a failed save is retried next time; the emulator keeps serving
                LOG.exception("could not save the SageMaker state to %s", self.path)

    def close(self) -> None:
        """Stop watching and write the final state."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(10)
            self.save()


def restore(records: dict[str, list[dict]], state: EmulatorState) -> dict[str, int]:
    """Put one region's saved resources back into ``state``; returns how many of each kind came back."""
    counts = {}
    for kind, resource_class in KINDS.items():
        kept = [record for record in records.get(kind, []) if record["status"] != "Deleting"]  # its deletion is done
        for record in kept:
            getattr(state, kind).add(resource_class.from_record(state, record))
        counts[kind] = len(kept)
    return counts
