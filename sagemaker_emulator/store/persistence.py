"""The SageMaker control plane's state on disk, so an emulator restart (or a crash) forgets nothing.

Every resource of every region is written as one JSON document (``sagemaker.json``), atomically (a temporary
file, then ``os.replace``), whenever it changed: a saver thread compares the serialised state every
``interval`` seconds and on :meth:`StateStore.close`. Resources are small records (requests, statuses, times),
so a whole document is a few KB to a few hundred; S3 objects and logs are moto's and kept by ``moto_store``.

On start the records come back as resources, and what cannot survive a restart is settled as AWS would settle
a lost host: a training or transform job that was running is ``Failed`` with a reason that says why, and an
endpoint that was serving is started again from the variants it ran (``jobs/endpoints.py``), keeping its status.

Each record carries its resource's schema, and fields it lacks get their declared defaults (``Resource.PERSISTED``,
``store/schema.py``), so a save from an older emulator loads. A record that cannot be loaded (from a newer schema,
lacking a field without a default, or failing to rebuild) is quarantined alone (``store/quarantine.py``); a document
that is not JSON, or is from a newer version, is quarantined whole, and the rest of the state (moto's) still loads.
"""

from __future__ import annotations

import json
import logging
import threading
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
from sagemaker_emulator.store.quarantine import Quarantine
from sagemaker_emulator.store.schema import Damaged

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

    def __init__(self, folder: Path, interval: float = 0.5, quarantine: Quarantine | None = None):
        self.folder = folder
        self.quarantine = quarantine or Quarantine(folder)
        self.path = folder / "sagemaker.json"
        self._interval = interval
        self._written = ""
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._states: Callable[[], dict[str, EmulatorState]] = dict

    def load(self) -> dict[str, dict[str, list]]:
        """The saved records by region and kind; a file that cannot be read is quarantined and nothing loaded.

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
            version = document["version"]
            if not isinstance(version, int) or version > VERSION:
                raise ValueError(
                    f"it has version {version!r}, and this emulator reads versions up to {VERSION}: a newer emulator "
                    "saved it; start that one to get it back"
                )
            regions = document["regions"]
            if not isinstance(regions, dict) or not all(isinstance(kinds, dict) for kinds in regions.values()):
                raise ValueError("its regions are not objects of kinds")
            return regions
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, json.JSONDecodeError):
                reason = f"it is not JSON ({error})"
            else:
                reason = str(error) if isinstance(error, ValueError) else f"it is not a saved state ({error!r})"
            self.quarantine.lose(f"every SageMaker resource ({self.path.name})", reason, paths=[self.path])
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


def restore(records: dict[str, list], state: EmulatorState, quarantine: Quarantine) -> dict[str, int]:
    """Put one region's saved resources back into ``state``; returns how many of each kind came back.

    A record that cannot be loaded goes to ``quarantine`` and the others still load.
    """
    counts = {}
    for kind, resource_class in KINDS.items():
        saved = records.get(kind, [])
        if not isinstance(saved, list):
            quarantine.lose(f"every SageMaker {kind} of {state.region}", "they are not a list", record=saved)
            saved = []
        counts[kind] = 0
        for record in saved:
            if isinstance(record, dict) and record.get("status") == "Deleting":  # its deletion is done
                continue
            try:
                getattr(state, kind).add(resource_class.from_record(state, record))
            except Exception as error:  # whatever is wrong with one record, the others still load
                name = record.get("name") if isinstance(record, dict) else None
                label = "without a name" if name is None else repr(name)
                what = f"SageMaker {resource_class.ARN_TYPE.replace('-', ' ')} {label} in {state.region}"
                reason = str(error) if isinstance(error, Damaged) else f"it could not be rebuilt ({error!r})"
                quarantine.lose(what, reason, record=record)
                continue
            counts[kind] += 1
    return counts
