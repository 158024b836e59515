"""What a start could not load is set aside and reported, never in the way of the rest.

A saved record or file that an upgrade, a crash or a hand damaged (a record from a newer emulator, an object file
cut short, an index that is not JSON) used to stop the emulator from starting at all. Now the start goes on without
it: the damaged file is moved (a damaged record inside a good file is copied out) into
``<state>/quarantine/<UTC time of the start>/``, beside a ``.reason.txt`` that says what it held and why it was not
loaded; serve.log gets one line per loss; and ``<state>/quarantine/last-start.json`` lists the losses of the last
start, which ``python -m sagemaker_emulator status`` prints. Nothing is deleted: a newer emulator, or a hand, can
put a file back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sagemaker_emulator.store.files import private_folder, write_atomically

LOG = logging.getLogger(__name__)

FOLDER = "quarantine"
LAST_START = "last-start.json"
FORMAT = 1


class Quarantine:
    """The losses of one start of the emulator whose state is in ``state_folder``; thread-safe (restores run in a
    pool)."""

    def __init__(self, state_folder: Path):
        self.root = Path(state_folder) / FOLDER
        self.started = time.time()
        self.losses: list[dict] = []
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def lose(
        self, what: str, reason: str, *, paths: Iterable[Path] = (), record: object = None, name: str = ""
    ) -> None:
        """Note that ``what`` was not loaded because of ``reason``, and keep what is left of it with the reason beside:
        one path (a file or folder) is moved into this start's folder; several paths, or paths and the ``record``
        that names them, go together into a folder ``name``; a ``record`` alone (the damaged part of a file that was
        otherwise good) is written there."""
        paths = [Path(path) for path in paths if os.path.lexists(path)]
        with self._lock:
            kept = None
            if len(paths) == 1 and record is None:
                kept = self._place(name or paths[0].name)
                os.replace(paths[0], kept)
            elif paths:
                kept = private_folder(self._place(name or "lost"))
                for path in paths:
                    os.replace(path, kept / path.name)
                if record is not None:
                    write_atomically(kept / "record.json", [json.dumps(record, indent=1, default=repr).encode()])
            elif record is not None:
                kept = self._place(f"record-{len(self.losses) + 1}.json")
                write_atomically(kept, [json.dumps(record, indent=1, default=repr).encode()])
            if kept is not None:
                write_atomically(kept.with_name(kept.name + ".reason.txt"), [f"{what}: {reason}\n".encode()])
            self.losses.append({"what": what, "reason": reason, "kept": str(kept) if kept else None})
        LOG.error("Lost at start: %s: %s.%s", what, reason, f" Kept in {kept}." if kept else "")

    def report(self) -> None:
        """Write the losses of this start (none, for a clean one) where ``status`` reads them."""
        document = {"format": FORMAT, "started": self.started, "losses": self.losses}
        write_atomically(private_folder(self.root) / LAST_START, [json.dumps(document).encode()])

    def _place(self, name: str) -> Path:
        """A free path for ``name`` in this start's folder (made on the first loss, so a clean start leaves none)."""
        if self._folder is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.started))
            private_folder(self.root)
            folder, number = self.root / stamp, 1
            while os.path.lexists(folder):  # two starts within one second
                number += 1
                folder = self.root / f"{stamp}-{number}"
            self._folder = private_folder(folder)
        target, number = self._folder / name, 1
        while os.path.lexists(target):
            number += 1
            target = self._folder / f"{number}-{name}"
        return target


def last_start(state_folder: Path) -> list[str]:
    """The losses of the emulator's last start, as lines for ``status`` (none when nothing was lost)."""
    path = Path(state_folder) / FOLDER / LAST_START
    try:
        document = json.loads(path.read_text())
        losses, started = document["losses"], time.gmtime(document["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not losses:
        return []
    lines = [f"Lost at last start ({time.strftime('%Y-%m-%d %H:%M:%S UTC', started)}), {len(losses)} in all:"]
    for loss in losses:
        kept = f" Kept in {loss['kept']}." if loss.get("kept") else ""
        lines.append(f"  - {loss['what']}: {loss['reason']}.{kept}")
    return lines
