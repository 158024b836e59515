"""The emulator's state: one :class:`EmulatorState` per region, a registry per resource type, a clock.

Every lookup goes through :meth:`Registry.get` (which raises AWS's not-found error) and every creation
through :meth:`Registry.add` (which raises AWS's duplicate error), so handlers never repeat those checks.
SageMaker ARNs carry the resource name in lower case, and names are unique regardless of case, so the
registries key on the lower-cased name.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from sagemaker_emulator.algorithms.failures import INTERNAL_ERROR, failure_reason
from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.errors import ResourceInUse, ResourceNotFound, ServiceError, ValidationException
from sagemaker_emulator.store.schema import REQUIRED, SCHEMA_FIELD, fill

ACCOUNT_ID = "123456789012"  # moto's default account, which dummy credentials map to
RUNNING = ("InProgress", "Stopping")  # a job's statuses while its work goes on (and counts against a quota)
LIVE = ("InService", "Updating")  # an endpoint's statuses while it answers invocations


def interrupted(noun: str) -> str:
    """The FailureReason of a ``noun`` (a training job, ...) that was running when its emulator stopped."""
    return failure_reason(
        INTERNAL_ERROR,
        f"The local SageMaker emulator stopped while this {noun} was running, so the {noun} was interrupted; its "
        f"data and partial output are gone. Start a new {noun}.",
    )


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock seconds since the epoch, what AWS puts in its timestamps."""

    def now(self) -> float:
        return time.time()


class Resource:
    """A SageMaker resource with a name, an ARN, tags and, for most, a status with declared transitions.

    ``PERSISTED`` maps the attributes that, with the common ones (``COMMON``), make its saved record
    (``to_record``) to their defaults: what it was asked to be and what became of it. A record saved before a field
    existed gets the default (``store.schema.fill``), so a field added later needs only its entry here; ``REQUIRED``
    marks the few that nothing can stand for. ``SCHEMA`` goes up only when a field changes meaning, so that an older
    emulator refuses what it would misread. Anything else (locks, events, running processes) is rebuilt by
    ``after_restore`` when :meth:`from_record` brings it back after a restart.
    """

    ARN_TYPE: ClassVar[str] = ""
    TRANSITIONS: ClassVar[frozenset[tuple[str, str]]] = frozenset()
    SCHEMA: ClassVar[int] = 1
    COMMON: ClassVar[dict[str, object]] = {
        "name": REQUIRED,
        "arn": REQUIRED,
        "creation_time": REQUIRED,
        "last_modified_time": REQUIRED,
        "tags": [],
        "status": "",
    }
    PERSISTED: ClassVar[dict[str, object]] = {}

    def __init__(self, name: str, arn: str, created: float, tags: list[dict] | None = None, status: str = ""):
        self.name = name
        self.arn = arn
        self.creation_time = created
        self.last_modified_time = created
        self.tags: list[dict] = list(tags or [])
        self.status = status
        self.lock = threading.RLock()

    def advance(self, status: str, now: float) -> bool:
        """Move to ``status`` if the table allows it from the current one; False (and no change) otherwise."""
        with self.lock:
            if (self.status, status) not in self.TRANSITIONS:
                return False
            self.status = status
            self.last_modified_time = now
            return True

    def to_wire(self) -> dict:
        raise NotImplementedError

    def to_record(self) -> dict:
        with self.lock:
            record = {
                SCHEMA_FIELD: self.SCHEMA,
                "name": self.name,
                "arn": self.arn,
                "creation_time": self.creation_time,
                "last_modified_time": self.last_modified_time,
                "tags": self.tags,
                "status": self.status,
                **{attribute: getattr(self, attribute) for attribute in self.PERSISTED},
            }
            return copy.deepcopy(record)

    @classmethod
    def from_record(cls, state: EmulatorState, record: object) -> Resource:
        """The resource a saved record describes, fields it lacks filled with their defaults.

        Raises:
            schema.Damaged: the record is from a newer schema, or lacks a field that has no default.
        """
        record = fill(record, {**cls.COMMON, **cls.PERSISTED}, cls.SCHEMA)
        resource = cls.__new__(cls)
        Resource.__init__(
            resource, record["name"], record["arn"], record["creation_time"], record["tags"], record["status"]
        )
        resource.last_modified_time = record["last_modified_time"]
        for attribute in cls.PERSISTED:
            setattr(resource, attribute, copy.deepcopy(record[attribute]))
        resource.after_restore(state)
        return resource

    def after_restore(self, state: EmulatorState) -> None:
        """Rebuild what a record does not hold; settle what cannot survive a restart (see ``persistence``)."""


R = TypeVar("R", bound=Resource)


class Registry(Generic[R]):
    """Resources of one type by (case-insensitive) name; ``get`` and ``add`` raise the AWS errors."""

    def __init__(self, not_found: Callable[[str], ServiceError], duplicate: Callable[[R], ServiceError]):
        self._items: dict[str, R] = {}
        self._lock = threading.Lock()
        self._not_found = not_found
        self._duplicate = duplicate

    def add(self, resource: R) -> R:
        with self._lock:
            key = resource.name.lower()
            if key in self._items:
                raise self._duplicate(self._items[key])
            self._items[key] = resource
            return resource

    def get(self, name: str) -> R:
        with self._lock:
            found = self._items.get(name.lower())
        if found is None:
            raise self._not_found(name)
        return found

    def find(self, name: str) -> R | None:
        with self._lock:
            return self._items.get(name.lower())

    def remove(self, name: str) -> R:
        with self._lock:
            found = self._items.pop(name.lower(), None)
        if found is None:
            raise self._not_found(name)
        return found

    def values(self) -> list[R]:
        with self._lock:
            return list(self._items.values())

    def __iter__(self) -> Iterator[R]:
        return iter(self.values())


@dataclass(frozen=True)
class Limits:
    """Account quotas the emulator enforces (a laptop has few cores); ``ResourceLimitExceeded`` beyond them."""

    running_training_jobs: int = 4
    running_transform_jobs: int = 2
    endpoints: int = 8
    # AWS's default quota per instance type for training job usage is small and varies by type and account age;
    # 4 covers the 2..4 instances a learner tries, and a 2-core laptop runs no more hosts side by side usefully
    instances_per_training_job: int = 4
    training_memory_bytes: int | None = None  # every training job's memory limit; None: process.memory_limit's rule


@dataclass(frozen=True)
class Timings:
    """How long the emulator waits, and how often it looks: every timing knob of the background work in one place."""

    stop_grace_seconds: float = 10.0  # SIGTERM to SIGKILL when a training job is stopped (AWS allows 120 s)
    model_stop_grace_seconds: float = 5.0  # the same for a model server that is no longer needed
    invocation_timeout_seconds: float = 60.0  # a model server's answer to one invocation (AWS's 60 s)
    model_ready_timeout_seconds: float = 300.0  # a model server's start, up to its port file
    health_check_interval_seconds: float = 5.0  # how often each endpoint's monitor pings its model servers
    health_check_timeout_seconds: float = 2.0  # a /ping slower than this counts as missed
    health_check_misses: int = 3  # missed pings in a row before a live model server is replaced
    max_instance_failures: int = 3  # this many failures of one variant within the window turn its endpoint Failed
    instance_failure_window_seconds: float = 600.0
    training_poll_seconds: float = 0.05  # how often a training run checks for a stop while its container runs
    tuning_poll_seconds: float = 0.2  # how often a tuning driver looks at its training jobs
    state_save_seconds: float = 0.5  # how often the SageMaker records are saved when they changed (with a home)
    moto_save_seconds: float = 1.0  # how often moto's S3, Logs and IAM are saved when a request changed them
    # One HTTP request, from its first byte to its last, or 408 and the connection closed (a client dripping a byte
    # a second never trips the idle timeout); 300 s still takes a 5 GiB S3 PUT at 17 MB/s.
    request_seconds: float = 300.0


class ChildSupervisor(Protocol):
    """What owns the emulator's child processes (``jobs.process.Supervisor``, built by the emulator)."""

    def adopt(self, child) -> None: ...

    def release(self, child) -> None: ...

    def live(self) -> list: ...

    def stop_all(self) -> None: ...


@dataclass
class Services:
    """What the handlers and job runners depend on: clock, scratch space, AWS clients for moto, the child supervisor.

    ``limits`` and ``timings`` are the two frozen tables of knobs; everything else here is a collaborator.
    """

    clock: Clock
    workdir: Path
    limits: Limits
    client: Callable[[str, str], object]  # (service, region) -> boto3 client bound to this emulator
    credentials: Credentials  # the key pair every request must be signed with; containers get it too
    url: str  # where containers reach the emulator (their AWS_ENDPOINT_URL)
    supervisor: ChildSupervisor
    timings: Timings = field(default_factory=Timings)


class EmulatorState:
    """All SageMaker resources of one account and region."""

    def __init__(self, region: str, services: Services, account: str = ACCOUNT_ID):
        self.region = region
        self.account = account
        self.services = services
        self.retired = threading.Event()  # set when the emulator resets or stops: workers then leave it alone
        self.training_jobs: Registry = Registry(
            lambda name: ValidationException("Requested resource not found."),
            lambda job: ResourceInUse(
                "Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({job.arn})"
            ),
        )
        self.transform_jobs: Registry = Registry(
            lambda name: ValidationException(f"Could not find requested job with name {name}"),
            lambda job: ResourceInUse(
                "Transform job names must be unique within an AWS account and region, and a transform job with "
                f"this name already exists ({job.arn})"
            ),
        )
        self.tuning_jobs: Registry = Registry(
            lambda name: ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}"),
            lambda job: ResourceInUse(f"Hyperparameter tuning job {job.name} already exists ({job.arn})"),
        )
        self.models: Registry = self._named("model", "model")
        self.endpoint_configs: Registry = self._named("endpoint configuration", "endpoint-config")
        self.endpoints: Registry = self._named("endpoint", "endpoint")

    def _named(self, noun: str, arn_type: str) -> Registry:
        return Registry(
            lambda name: ValidationException(f'Could not find {noun} "{self.arn(arn_type, name)}".'),
            lambda existing: ValidationException(f'Cannot create already existing {noun} "{existing.arn}".'),
        )

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def now(self) -> float:
        return self.services.clock.now()

    def arn(self, arn_type: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{arn_type}/{name.lower()}"

    def registries(self) -> tuple[Registry, ...]:
        return (
            self.training_jobs,
            self.transform_jobs,
            self.tuning_jobs,
            self.models,
            self.endpoint_configs,
            self.endpoints,
        )

    def find_by_arn(self, arn: str) -> Resource | None:
        for registry in self.registries():
            for resource in registry:
                if resource.arn == arn:
                    return resource
        return None
