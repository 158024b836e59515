"""moto's S3, CloudWatch Logs and IAM state kept in a folder, so that a restarted emulator gets it back.

The three adapters (S3, Logs, IAM: what to read and how to recreate it) over a crash-safe :class:`BlobFolder`
(``store/blobs.py``), and :class:`MotoStore`, which saves in the background whatever requests changed.

moto holds everything in memory, while the emulator outlives notebook kernels and may be restarted: the datasets and
model artifacts in S3, the logs of finished jobs and endpoints and the SageMaker role must survive. The state is read
and written through the emulator's public AWS APIs (``client(service, region)``), except for two things no AWS API
offers, kept in the two ``_moto_*`` functions at the end: which regions have log groups, and writing log events older
than the 14 days PutLogEvents accepts.

Layout of the folder (only ``index.json`` has a fixed name; the rest are named by hashes, never by a key or a name,
since those are chosen by whoever calls the API)::

    index.json                          the saved state: every bucket, object (with its size and SHA-256), log
                                        group, stream, and the IAM file; ``format`` is its version
    s3/<h[:2]>/<h>-<rev>                one object's bytes; h = sha256(bucket NUL key), rev random per write
    logs/<h[:2]>/<h>-<rev>.json         one stream's events, {"schema", "events": [[timestamp, message], ...]};
                                        h = sha256(region NUL group NUL stream)
    iam/<sha256 of content>.json        {"schema", "roles", "policies"}: roles (trust, inline and attached policies)
                                        and customer-managed policies
    tmp/                                files being written
    .lock                               held (flock) by the one MotoStore using the folder

Crash safety is the blob folder's (a changed object gets a new ``rev``; the index is replaced last; an index that
cannot be read is quarantined with every file, rather than erased by the next save). Damage is contained: an entry of
the index is filled with its declared defaults (``*_FIELDS``, ``store/schema.py``; format 1, today's older saves,
lacks checksums), and an object, stream or IAM file that is missing, cut short, changed, or not what its entry says
is quarantined alone (``store/quarantine.py``): the object is absent (a GET answers S3's ``NoSuchKey``, never short
data) and the rest comes back. After a restore the index is rewritten in the current format, without what was lost.

Incremental: an object is fetched only if its (ETag, size, LastModified) differs from the index, a stream only if its
(sequence token, last ingestion, last event, stored bytes) does; IAM is small and rewritten only if its content
changed. Not kept: object versions, tags and ACLs, bucket policies and settings other than the public access block,
IAM users, groups and instance profiles, non-default policy versions, log group tags and subscriptions. Restore
recreates objects and events, so LastModified and ingestion times are those of the restore.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sagemaker_emulator.store.blobs import BlobFolder, StoreCorrupt, blob_name
from sagemaker_emulator.store.quarantine import Quarantine
from sagemaker_emulator.store.schema import REQUIRED, SCHEMA_FIELD, Damaged, fill

LOG = logging.getLogger(__name__)

SERVICES = ("s3", "logs", "iam")
HOME_REGION = "us-east-1"  # where S3's and IAM's global APIs are asked, and S3's LocationConstraint None
FORMAT = 2  # 2: entries carry their file's SHA-256; log and IAM files carry their schema
CHUNK = 1 << 20
ONE_AT_A_TIME_BYTES = 64 << 20  # objects this large are saved and restored one at a time (see _map_by_size)
OBJECT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")
STREAM_STAMP = ("uploadSequenceToken", "lastIngestionTime", "lastEventTimestamp", "storedBytes")
READ_VERBS = ("Describe", "Get", "List", "Filter", "Test", "Simulate", "Generate", "StartQuery", "StopQuery")
GONE = {"NoSuchBucket", "NoSuchKey", "ResourceNotFoundException", "NoSuchEntity"}
BUCKET_FIELDS = {"region": HOME_REGION, "public_access_block": None, "objects": {}}
OBJECT_FIELDS = {"file": REQUIRED, "stamp": REQUIRED, "Metadata": {}, "sha256": None}
GROUP_FIELDS = {"retention": None, "streams": {}}
STREAM_FIELDS = {"file": None, "stamp": REQUIRED, "events": 0, "sha256": None}
IAM_FIELDS = {"file": REQUIRED, "roles": 0, "policies": 0}
EVENTS_CONTENT = {"events": REQUIRED}
IAM_CONTENT = {"roles": [], "policies": []}
_FILE = re.compile(r"(s3|logs)/[0-9a-f]{2}/[0-9a-f]{64}-[0-9a-f]{16}(\.json)?|iam/[0-9a-f]{64}\.json")


def changes_state(service: str, method: str, operation: str = "") -> bool:
    """Whether a request routed to moto may change what the store keeps (then call :meth:`MotoStore.mark_dirty`).

    S3 is REST, so its reads are GET and HEAD; Logs (``X-Amz-Target: Logs_20140328.<operation>``) and IAM (form field
    ``Action``) send every operation as POST, including the store's own reads, so they are told apart by name.
    """
    if service not in SERVICES:
        return False
    if service == "s3":
        return method.upper() not in ("GET", "HEAD", "OPTIONS")
    return not operation.startswith(READ_VERBS)


@dataclass
class SaveReport:
    """What one save wrote and deleted; the counts let callers and tests see that a save was incremental."""

    objects_written: int = 0
    bytes_written: int = 0
    streams_written: int = 0
    iam_written: bool = False
    files_removed: int = 0
    index_written: bool = False
    seconds: float = 0.0


@dataclass
class RestoreSummary:
    """What a restore recreated; ``str()`` is the emulator's start-up line."""

    buckets: int = 0
    objects: int = 0
    bytes: int = 0
    log_groups: int = 0
    log_streams: int = 0
    log_events: int = 0
    roles: int = 0
    policies: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"restored {_count(self.buckets, 'bucket')} ({_count(self.objects, 'object')}, {self.bytes / 1e6:.1f} MB), "
            f"{_count(self.log_groups, 'log group')} ({_count(self.log_streams, 'stream')}, "
            f"{_count(self.log_events, 'event')}), {_count(self.roles, 'IAM role')} and "
            f"{_count(self.policies, 'policy', 'policies')} in {self.seconds:.1f} s"
        )


class MotoStore:
    """Saves moto's S3, Logs and IAM state into ``folder`` and restores it into a freshly started emulator.

    ``client(service, region)`` returns a boto3 client signed for the running emulator (``Emulator.client``). Only one
    MotoStore may use a folder at a time, in any process; saves and restores run one at a time. A folder that holds
    state is not saved into until :meth:`restore` has run, since saving moto's (empty) state first would erase it.
    """

    def __init__(
        self,
        folder: Path,
        client: Callable[[str, str], Any],
        *,
        interval: float = 5.0,
        workers: int = 8,
        quarantine: Quarantine | None = None,
    ):
        if interval <= 0 or workers < 1:
            raise ValueError(f"interval must be > 0 and workers >= 1; got interval={interval}, workers={workers}")
        self.folder = Path(folder)
        self._quarantine = quarantine or Quarantine(self.folder)  # the emulator's is <state>/quarantine
        self._blobs = BlobFolder(
            self.folder,
            SERVICES,
            {service: {} for service in SERVICES},
            _files,
            _FILE,
            FORMAT,
            self._quarantine,
            "every S3 bucket, log group and IAM role (moto's index)",
        )
        self._client = client
        self._interval = interval
        self._workers = workers
        self._account: str | None = None
        self._save_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._unrestored = any(self._blobs.index.values())

    def start(self) -> MotoStore:
        """Save in a background thread, at most every ``interval`` seconds and only after :meth:`mark_dirty`."""
        self._thread = threading.Thread(target=self._autosave, name="moto-store", daemon=True)
        self._thread.start()
        return self

    def mark_dirty(self, service: str | None = None) -> None:
        """Note that ``service`` (one of SERVICES; None for all) changed; cheap enough to call on every request."""
        if service is not None and service not in SERVICES:
            raise ValueError(f"The store keeps {', '.join(SERVICES)}, not {service!r}.")
        with self._dirty_lock:
            self._dirty.update(SERVICES if service is None else (service,))
        self._wake.set()

    def close(self, save: bool = True) -> None:
        """Stop the background saver, save everything once more (unless ``save`` is False) and release the folder."""
        if self._closed:
            return
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if save and self._unrestored:
                LOG.warning("not saving moto's state into %s: what it holds was never restored", self.folder)
            elif save:
                self.save()
        finally:
            self._closed = True
            self._blobs.close()

    def save(self, services: Iterable[str] = SERVICES) -> SaveReport:
        """Write what changed in ``services`` since the last save, then the index; returns what was written."""
        services = tuple(services)
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"The store keeps {', '.join(SERVICES)}, not {', '.join(sorted(unknown))}.")
        with self._save_lock:
            self._check_open()
            started = time.perf_counter()
            report = SaveReport()
            previous = self._blobs.index
            self._blobs.begin()
            try:
                index = dict(previous)
                for service in services:
                    index[service] = getattr(self, f"_save_{service}")(previous[service], report)
                if index != previous:
                    report.files_removed = self._blobs.commit(index)
                    report.index_written = True
            except Exception:
                self._blobs.abandon()
                raise
            report.seconds = time.perf_counter() - started
            return report

    def restore(self) -> RestoreSummary:
        """Recreate the saved buckets, objects, log groups, streams, events, roles and policies.

        Meant for a freshly started emulator: nothing is merged into state moto already has (a role or log group
        of the same name is AWS's duplicate error).
        """
        with self._save_lock:
            self._check_open(restoring=True)
            started = time.perf_counter()
            summary = RestoreSummary()
            saved = dict(self._blobs.index)
            for service in SERVICES:
                if service != "iam" and not isinstance(saved[service], dict):
                    self._lose(f"every saved {service} entry", Damaged("it is not an object"), saved[service], [])
                    saved[service] = {}
            index = dict(saved)
            index["iam"] = self._restore_iam(saved["iam"], summary)
            index["s3"] = self._restore_s3(saved["s3"], summary)
            index["logs"] = self._restore_logs(saved["logs"], summary)
            self._blobs.begin()  # the same files, their new stamps, checksums filled in, the lost ones left out
            self._blobs.commit(index)
            self._unrestored = False
            summary.seconds = time.perf_counter() - started
            return summary

    # S3

    def _map_by_size(self, work: Callable, items: list, sizes: list[int]) -> list:
        """``work(item)`` for each item, results in order: small objects side by side on the pool, large ones
        (``ONE_AT_A_TIME_BYTES`` and up) one at a time, because moto holds an object whole in memory while it is read
        or written (four 1.4 GB files at once would be 6 GB)."""
        with ThreadPoolExecutor(self._workers) as pool:
            small = {
                index: pool.submit(work, item)
                for index, (item, size) in enumerate(zip(items, sizes))
                if size < ONE_AT_A_TIME_BYTES
            }
            alone = {index: work(item) for index, item in enumerate(items) if index not in small}
            return [small[index].result() if index in small else alone[index] for index in range(len(items))]

    def _save_s3(self, previous: dict, report: SaveReport) -> dict:
        s3 = self._client("s3", HOME_REGION)
        buckets = {}
        for bucket in s3.list_buckets()["Buckets"]:
            name = bucket["Name"]
            try:
                buckets[name] = self._save_bucket(s3, name, previous.get(name, {}).get("objects", {}), report)
            except ClientError as error:
                if not _gone(error):
                    raise
        return buckets

    def _save_bucket(self, s3, name: str, previous: dict, report: SaveReport) -> dict:
        region = s3.get_bucket_location(Bucket=name)["LocationConstraint"] or HOME_REGION
        objects, stale = {}, {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                stamp = [item["ETag"], item["Size"], item["LastModified"].isoformat()]
                entry = previous.get(item["Key"])
                if entry is not None and entry["stamp"] == stamp:
                    objects[item["Key"]] = entry
                else:
                    stale[item["Key"]] = stamp
        fetched = self._map_by_size(
            lambda key: self._fetch(s3, name, key, stale[key]), list(stale), [stamp[1] for stamp in stale.values()]
        )
        for key, entry in zip(stale, fetched):
            if entry is not None:
                objects[key] = entry
                report.objects_written += 1
                report.bytes_written += entry["stamp"][1]
        return {"region": region, "public_access_block": _public_access_block(s3, name), "objects": objects}

    def _fetch(self, s3, bucket: str, key: str, stamp: list) -> dict | None:
        """The object's bytes into a new file, and its index entry; None if it was deleted after the listing."""
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _gone(error):
                return None
            raise
        file = blob_name("s3", bucket, key)
        digest = self._blobs.write(file, response["Body"].iter_chunks(CHUNK))
        entry = {"file": file, "stamp": [response["ETag"], response["ContentLength"], stamp[2]], "sha256": digest}
        entry.update({header: response[header] for header in OBJECT_HEADERS if response.get(header)})
        entry["Metadata"] = response.get("Metadata", {})
        return entry

    def _restore_s3(self, saved: dict, summary: RestoreSummary) -> dict:
        buckets = {}
        for name, bucket in saved.items():
            try:
                bucket = fill(bucket, BUCKET_FIELDS, FORMAT)
                s3 = self._client("s3", bucket["region"])
                if bucket["region"] == HOME_REGION:
                    s3.create_bucket(Bucket=name)
                else:
                    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": bucket["region"]})
                if bucket["public_access_block"] is not None:
                    s3.put_public_access_block(
                        Bucket=name, PublicAccessBlockConfiguration=bucket["public_access_block"]
                    )
            except Exception as error:  # one bucket's damage never stops the others
                objects = _values(_field(bucket, "objects"))
                self._lose(f"S3 bucket {name!r} and its objects", error, bucket, [_field(o, "file") for o in objects])
                continue
            buckets[name] = bucket
        uploads = [(name, key, entry) for name, bucket in buckets.items() for key, entry in bucket["objects"].items()]
        uploaded = self._map_by_size(
            lambda upload: self._upload(buckets[upload[0]]["region"], *upload),
            uploads,
            [_saved_size(entry) for _, _, entry in uploads],
        )
        entries = {(name, key): entry for (name, key, _), entry in zip(uploads, uploaded) if entry is not None}
        restored = {}
        for name, bucket in buckets.items():
            objects = {}
            s3 = self._client("s3", bucket["region"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    if (name, item["Key"]) in entries:
                        stamp = [item["ETag"], item["Size"], item["LastModified"].isoformat()]
                        objects[item["Key"]] = {**entries[name, item["Key"]], "stamp": stamp}
            restored[name] = {**bucket, "objects": objects}
            summary.buckets += 1
            summary.objects += len(objects)
            summary.bytes += sum(entry["stamp"][1] for entry in objects.values())
        return restored

    def _upload(self, region: str, bucket: str, key: str, entry: object) -> dict | None:
        """Put one saved object back, its file checked first; its entry (with its checksum), or None if it was lost."""
        try:
            entry = fill(entry, OBJECT_FIELDS, FORMAT)
            extra = {header: entry[header] for header in OBJECT_HEADERS if header in entry}
            with self._blobs.open(entry["file"], entry["sha256"], entry["stamp"][1]) as body:
                if entry["sha256"] is None:  # saved before checksums: its first one, from the file as it is
                    entry["sha256"] = hashlib.file_digest(body, "sha256").hexdigest()
                    body.seek(0)
                self._client("s3", region).put_object(
                    Bucket=bucket, Key=key, Body=body, Metadata=entry["Metadata"], **extra
                )
        except Exception as error:  # one object's damage never stops the others
            self._lose(f"S3 object s3://{bucket}/{key}", error, entry)
            return None
        return entry

    # CloudWatch Logs

    def _save_logs(self, previous: dict, report: SaveReport) -> dict:
        regions = {}
        for region in _moto_log_regions(self._account_id()):
            logs = self._client("logs", region)
            groups = {}
            for page in logs.get_paginator("describe_log_groups").paginate():
                for group in page["logGroups"]:
                    name = group["logGroupName"]
                    before = previous.get(region, {}).get(name, {}).get("streams", {})
                    try:
                        streams = self._save_streams(logs, region, name, before, report)
                    except ClientError as error:
                        if not _gone(error):
                            raise
                        continue
                    groups[name] = {"retention": group.get("retentionInDays"), "streams": streams}
            if groups:
                regions[region] = groups
        return regions

    def _save_streams(self, logs, region: str, group: str, previous: dict, report: SaveReport) -> dict:
        streams = {}
        for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
            for stream in page["logStreams"]:
                name = stream["logStreamName"]
                stamp = [stream.get(field) for field in STREAM_STAMP]
                entry = previous.get(name)
                if entry is None or entry["stamp"] != stamp:
                    events = _read_events(logs, group, name)
                    file, digest = None, None
                    if events:
                        file = blob_name("logs", region, group, name) + ".json"
                        content = json.dumps({SCHEMA_FIELD: FORMAT, "events": events}).encode()
                        digest = self._blobs.write(file, [content])
                        report.streams_written += 1
                    entry = {"file": file, "stamp": stamp, "events": len(events), "sha256": digest}
                streams[name] = entry
        return streams

    def _restore_logs(self, saved: dict, summary: RestoreSummary) -> dict:
        restored = {}
        for region, groups in saved.items():
            if not isinstance(groups, dict):
                self._lose(f"every log group in {region}", Damaged("they are not an object"), groups, [])
                continue
            logs = self._client("logs", region)
            restored[region] = {}
            for group, saved_group in groups.items():
                try:
                    saved_group = fill(saved_group, GROUP_FIELDS, FORMAT)
                    logs.create_log_group(logGroupName=group)
                    if saved_group["retention"] is not None:
                        logs.put_retention_policy(logGroupName=group, retentionInDays=saved_group["retention"])
                except Exception as error:  # one group's damage never stops the others
                    streams = _values(_field(saved_group, "streams"))
                    files = [_field(stream, "file") for stream in streams]
                    self._lose(f"log group {group!r} in {region} and its streams", error, saved_group, files)
                    continue
                streams = {}
                for stream, entry in saved_group["streams"].items():
                    try:
                        entry = fill(entry, STREAM_FIELDS, FORMAT)
                        events = self._events(entry) if entry["file"] is not None else []
                        logs.create_log_stream(logGroupName=group, logStreamName=stream)
                        _moto_append_log_events(self._account_id(), region, group, stream, events)
                    except Exception as error:  # one stream's damage never stops the others
                        self._lose(f"log stream {stream!r} of log group {group!r} in {region}", error, entry)
                        continue
                    streams[stream] = entry
                    summary.log_streams += 1
                    summary.log_events += len(events)
                for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
                    for stream in page["logStreams"]:
                        name = stream["logStreamName"]
                        if name in streams:
                            streams[name] = {**streams[name], "stamp": [stream.get(field) for field in STREAM_STAMP]}
                restored[region][group] = {**saved_group, "streams": streams}
                summary.log_groups += 1
        return restored

    def _events(self, entry: dict) -> list[list]:
        """A stream's saved events, its file checked (a file of format 1 is the bare list)."""
        with self._blobs.open(entry["file"], entry["sha256"]) as file:
            content = json.load(file)
        return fill({"events": content} if isinstance(content, list) else content, EVENTS_CONTENT, FORMAT)["events"]

    # IAM

    def _save_iam(self, previous: dict, report: SaveReport) -> dict:
        iam = self._client("iam", HOME_REGION)
        policies = []
        for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
            for listed in page["Policies"]:
                policy = iam.get_policy(PolicyArn=listed["Arn"])["Policy"]
                version = iam.get_policy_version(PolicyArn=listed["Arn"], VersionId=policy["DefaultVersionId"])
                saved = {
                    "PolicyName": policy["PolicyName"],
                    "Path": policy["Path"],
                    "PolicyDocument": version["PolicyVersion"]["Document"],
                }
                saved.update({field: policy[field] for field in ("Description", "Tags") if policy.get(field)})
                policies.append(saved)
        roles = []
        for page in iam.get_paginator("list_roles").paginate():
            for listed in page["Roles"]:
                roles.append(_role(iam, listed["RoleName"]))
        content = json.dumps({SCHEMA_FIELD: FORMAT, "policies": policies, "roles": roles}, sort_keys=True).encode()
        file = f"iam/{hashlib.sha256(content).hexdigest()}.json"
        if file != previous.get("file"):
            self._blobs.write(file, [content])
            report.iam_written = True
        return {"file": file, "roles": len(roles), "policies": len(policies)}

    def _restore_iam(self, saved: dict, summary: RestoreSummary) -> dict:
        if not saved:  # nothing saved (an empty entry of any kind)
            return {}
        try:
            saved = fill(saved, IAM_FIELDS, FORMAT)
            with self._blobs.open(saved["file"], Path(saved["file"]).stem) as file:  # named by its SHA-256
                content = fill(json.load(file), IAM_CONTENT, FORMAT)
        except Exception as error:  # S3 and Logs still come back
            self._lose("every IAM role and policy", error, saved)
            return {}
        iam = self._client("iam", HOME_REGION)
        for policy in content["policies"]:
            iam.create_policy(**{**policy, "PolicyDocument": json.dumps(policy["PolicyDocument"])})
        for role in content["roles"]:
            inline, attached = role.pop("InlinePolicies"), role.pop("AttachedPolicies")
            trust = json.dumps(role.pop("AssumeRolePolicyDocument"))
            iam.create_role(AssumeRolePolicyDocument=trust, **role)
            for name, document in inline.items():
                iam.put_role_policy(RoleName=role["RoleName"], PolicyName=name, PolicyDocument=json.dumps(document))
            for arn in attached:
                iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
        summary.roles, summary.policies = len(content["roles"]), len(content["policies"])
        return saved

    def _lose(self, what: str, error: Exception, entry: object, files: Iterable[object] | None = None) -> None:
        """Quarantine an entry of the index and the ``files`` it names (default: its own ``file``): one file alone
        is moved as it is; otherwise the entry goes with them, as the record of what they were."""
        reason = str(error) if isinstance(error, (Damaged, StoreCorrupt)) else f"it could not be recreated ({error!r})"
        own = files is None
        files = [_field(entry, "file")] if own else list(files)
        paths = [self.folder / f for f in files if isinstance(f, str) and _FILE.fullmatch(f)]
        paths = [path for path in paths if path.exists()]
        single = own and len(paths) == 1
        self._quarantine.lose(what, reason, paths=paths, record=None if single else entry)

    def _check_open(self, restoring: bool = False) -> None:
        if self._closed:
            raise RuntimeError(f"This MotoStore of {self.folder} is closed.")
        if self._unrestored and not restoring:
            raise RuntimeError(
                f"{self.folder} holds saved state that was not restored: call restore() first (saving now would "
                "replace it with moto's current state)."
            )

    def _account_id(self) -> str:
        if self._account is None:
            self._account = self._client("sts", HOME_REGION).get_caller_identity()["Account"]
        return self._account

    def _autosave(self) -> None:
        while True:
            self._wake.wait()
            if self._closing.wait(self._interval):
                return
            self._wake.clear()
            with self._dirty_lock:
                services, self._dirty = self._dirty, set()
            if not services:
                continue
            try:
                self.save([service for service in SERVICES if service in services])
            except Exception:
                LOG.exception("saving moto's state into %s failed; retrying in %s s", self.folder, self._interval)
                with self._dirty_lock:
                    self._dirty |= services
                self._wake.set()


def _files(index: dict) -> set[str]:
    """Every file an index names (an entry too damaged to name one names none; the restore quarantines it)."""
    objects = [entry for bucket in _values(index["s3"]) for entry in _values(_field(bucket, "objects"))]
    streams = [
        entry
        for groups in _values(index["logs"])
        for group in _values(groups)
        for entry in _values(_field(group, "streams"))
    ]
    names = {_field(entry, "file") for entry in [*objects, *streams, index["iam"]]}
    return {name for name in names if isinstance(name, str)}


def _values(value: object) -> list:
    return list(value.values()) if isinstance(value, dict) else []


def _field(value: object, name: str) -> object:
    return value.get(name) if isinstance(value, dict) else None


def _saved_size(entry: object) -> int:
    """An index entry's object size; 0 when the entry is too damaged to say (its restore then reports the damage)."""
    stamp = _field(entry, "stamp")
    return stamp[1] if isinstance(stamp, list) and len(stamp) > 1 and isinstance(stamp[1], int) else 0


def _count(number: int, noun: str, plural: str = "") -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _gone(error: ClientError) -> bool:
    """The resource was deleted while a save was reading it: it is simply not in this save."""
    return error.response.get("Error", {}).get("Code") in GONE


def _public_access_block(s3, bucket: str) -> dict | None:
    try:
        return s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise


def _read_events(logs, group: str, stream: str) -> list[list]:
    """Every event of a stream, oldest first, as [timestamp, message]."""
    events, token = [], None
    while True:
        page = logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True, **({"nextToken": token} if token else {})
        )
        events.extend([event["timestamp"], event["message"]] for event in page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def _role(iam, name: str) -> dict:
    """A role as CreateRole takes it, plus its inline policies and the ARNs of its attached ones."""
    role = iam.get_role(RoleName=name)["Role"]
    saved = {field: role[field] for field in ("RoleName", "Path", "AssumeRolePolicyDocument", "MaxSessionDuration")}
    saved.update({field: role[field] for field in ("Description", "Tags") if role.get(field)})
    if role.get("PermissionsBoundary"):
        saved["PermissionsBoundary"] = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
    saved["InlinePolicies"] = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
        for policy in page["PolicyNames"]
    }
    saved["AttachedPolicies"] = [
        policy["PolicyArn"]
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        for policy in page["AttachedPolicies"]
    ]
    return saved


# moto internals: no AWS API lists the regions in use, and PutLogEvents refuses events older than 14 days (moto
# checks it as AWS does), which would drop the logs of a workshop resumed after two weeks.


def _moto_log_regions(account: str) -> list[str]:
    """The regions where moto's Logs backend for ``account`` has log groups."""
    from moto.logs.models import logs_backends

    regions = logs_backends.get(account) or {}
    return sorted(region for region, backend in list(regions.items()) if backend.groups)


def _moto_append_log_events(account: str, region: str, group: str, stream: str, events: list[list]) -> None:
    """Append [timestamp, message] events to an existing stream, whatever their age, in the given order."""
    from moto.logs.models import logs_backends

    target = logs_backends[account][region].groups[group].streams[stream]
    target.put_log_events([{"timestamp": timestamp, "message": message} for timestamp, message in events])
