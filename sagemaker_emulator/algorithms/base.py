"""What every algorithm plug-in shares: its errors, declared hyperparameters, one validator, log lines.

A plug-in is a module in this package named after the image repository it stands for
(``factorization-machines`` → ``factorization_machines.py``). It defines:

``HYPERPARAMETERS``: dict name → :class:`Integer` | :class:`Float` | :class:`Categorical` | :class:`Boolean`
    | :class:`Text`; :func:`parse_hyperparameters` checks a job's strings against it.
``CHANNELS``: dict name → :class:`Channel` (which channels exist, which are required, accepted content types).
``train(layout: JobLayout, hyperparameters: dict) -> None``: reads ``layout.channel_files(...)``, writes the
    model into ``layout.model_dir``; raises :class:`ClientError` for the caller's faults.
``load(model_dir: Path) -> Predictor``: ``predictor(body: bytes, content_type: str, accept: str)`` returns
    ``(body: bytes, content_type: str)`` or raises :class:`PayloadError`.

The emulator's container runner calls these in a separate process, validating hyperparameters and channels
first, and turns the exceptions into AWS's ``FailureReason`` (``ClientError: ...`` / ``AlgorithmError: ...``)
or, at inference, into the model's HTTP status (AWS's runtime then answers ``ModelError``).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class ClientError(Exception):
    """A fault in what the caller sent (hyperparameters, data): FailureReason ``ClientError: <message>``."""


class AlgorithmError(Exception):
    """A fault inside the algorithm itself: FailureReason ``AlgorithmError: <message>``."""


class PayloadError(Exception):
    """An inference request the model cannot evaluate; answered with ``status`` and the message."""

    def __init__(self, message: str = "unable to evaluate payload provided", status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message


class Predictor(Protocol):
    def __call__(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]: ...


@dataclass(frozen=True)
class Channel:
    """A data channel the algorithm reads: whether it must be given and the content types it accepts."""

    required: bool = False
    content_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Spec:
    required: bool = False
    default: Any = None

    def parse(self, name: str, raw: str) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def _invalid(self, name: str, raw: str) -> ClientError:
        return ClientError(
            f"Invalid value '{raw}' for hyperparameter '{name}': expected {self.describe()} (caused by ValidationError)"
        )


def _bound(value: float | None, closed: bool, side: str) -> str:
    if value is None:
        return "(-inf" if side == "low" else "inf)"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return ("[" if closed else "(") + text if side == "low" else text + ("]" if closed else ")")


@dataclass(frozen=True)
class Integer(_Spec):
    low: int | None = None
    high: int | None = None
    allow_auto: bool = False

    def parse(self, name: str, raw: str) -> Any:
        text = raw.strip()
        if self.allow_auto and text.lower() == "auto":
            return "auto"
        try:
            value = float(text)
        except ValueError:
            raise self._invalid(name, raw) from None
        if (
            not value.is_integer()
            or (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
        ):
            raise self._invalid(name, raw)
        return int(value)

    def describe(self) -> str:
        text = f"an integer in {_bound(self.low, True, 'low')}, {_bound(self.high, True, 'high')}"
        return text + (" or 'auto'" if self.allow_auto else "")


@dataclass(frozen=True)
class Float(_Spec):
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def parse(self, name: str, raw: str) -> Any:
        try:
            value = float(raw.strip())
        except ValueError:
            raise self._invalid(name, raw) from None
        if not math.isfinite(value):
            raise self._invalid(name, raw)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise self._invalid(name, raw)
        if self.high is not None and value > self.high:
            raise self._invalid(name, raw)
        return value

    def describe(self) -> str:
        return f"a number in {_bound(self.low, not self.low_open, 'low')}, {_bound(self.high, True, 'high')}"


@dataclass(frozen=True)
class Categorical(_Spec):
    options: tuple[str, ...] = ()

    def parse(self, name: str, raw: str) -> Any:
        text = raw.strip()
        if text not in self.options:
            raise self._invalid(name, raw)
        return text

    def describe(self) -> str:
        return "one of " + ", ".join(f"'{o}'" for o in self.options)


@dataclass(frozen=True)
class Boolean(_Spec):
    def parse(self, name: str, raw: str) -> Any:
        text = raw.strip().lower()
        if text not in ("true", "false"):
            raise self._invalid(name, raw)
        return text == "true"

    def describe(self) -> str:
        return "'true' or 'false'"


@dataclass(frozen=True)
class Text(_Spec):
    check: Callable[[str], bool] | None = field(default=None, compare=False)
    meaning: str = "a string"

    def parse(self, name: str, raw: str) -> Any:
        if self.check is not None and not self.check(raw):
            raise self._invalid(name, raw)
        return raw

    def describe(self) -> str:
        return self.meaning


# What a tuning job adds to its training jobs' hyperparameters (the objective's name); the algorithms ignore it.
TUNING_OBJECTIVE = "_tuning_objective_metric"


def parse_hyperparameters(specs: dict[str, _Spec], raw: dict[str, str]) -> dict[str, Any]:
    """Check a job's hyperparameter strings against a plug-in's declaration and fill in the defaults.

    The messages follow the first-party containers' wording (FailureReason ``ClientError: ...``):
    missing required names are listed together, an unknown name is reported as unexpected.

    Raises:
        ClientError: a required name is missing, a name is not declared, or a value is out of its range.
    """
    raw = {name: text for name, text in raw.items() if name != TUNING_OBJECTIVE}
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        names = ", ".join(f"'{n}'" for n in unknown)
        raise ClientError(
            f"Additional hyperparameters are not allowed ({names} {'was' if len(unknown) == 1 else 'were'} "
            "unexpected) (caused by ValidationError)"
        )
    missing = [name for name, spec in specs.items() if spec.required and name not in raw]
    if missing:
        names = ", ".join(f"'{n}'" for n in missing)
        raise ClientError(
            f"No value(s) were specified for {names} which are required hyperparameter(s) (caused by ValidationError)"
        )
    values = {name: spec.default for name, spec in specs.items()}
    for name, text in raw.items():
        values[name] = specs[name].parse(name, str(text))
    return values


_LOG_LOCK = threading.Lock()


def log(message: str, level: str = "INFO") -> None:
    """Print one log line with the first-party containers' prefix, ``[MM/DD/YYYY HH:MM:SS INFO <thread>]``.

    The emulator ships stdout to CloudWatch Logs and matches metric regexes against these lines.
    """
    stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())
    line = f"[{stamp} {level} {threading.get_ident()}] {message}\n"
    with _LOG_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()
