"""Moving job data between S3 (moto) and local folders, with SageMaker's rules and its error wording.

- ``S3Prefix``: every object whose key starts with the prefix; each lands at its key relative to the prefix
  when the prefix is a folder of the key, with or without its final ``/`` (SDK v3 uploads script-mode code to
  ``.../input/code`` and runs it from ``/opt/ml/input/data/code``), else relative to the prefix's parent folder
  (``s3://b/data/train.csv`` becomes ``train.csv``). Keys ending in ``/`` (folder markers) are skipped.
- ``ManifestFile``: a JSON list, ``[{"prefix": "s3://b/p/"}, "relative/key", ...]``; each entry lands at itself.
Where an object lands is checked by :func:`sagemaker_emulator.algorithms.paths.confined` before anything is written: a key
that would leave its folder (``..``, ``prefix//abs``, over-long names) fails the job. Faults in what the caller
gave (an empty prefix, a missing object, such a key) raise :class:`~sagemaker_emulator.errors.JobInputError`.
Batch transform only names S3 output objects after relative keys, so it takes them as they are, as AWS does.
An S3 URI may also be an https URL of an S3 object (the API's patterns, ``^(https|s3)://...``, allow it, and
AWS's own examples pass ``https://<bucket>.s3-<region>.amazonaws.com/<key>`` as a ``ModelDataUrl``): virtual-hosted
and path-style, with or without a region, dash or dot, dualstack, and the China partition's ``amazonaws.com.cn``.
"""

from __future__ import annotations

import json
import re
import tarfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError as BotoClientError

from sagemaker_emulator.algorithms.paths import confined
from sagemaker_emulator.errors import JobInputError

CHUNK = 1 << 20  # bytes of an object held at once while it is copied to a channel's folder


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    relative: str  # where it lands under the channel (or output) folder

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


_ENDPOINT = r"s3(?:[.-](?:dualstack\.)?[a-z]{2}(?:-[a-z]+)+-\d+|\.dualstack)?\.amazonaws\.com(?:\.cn)?"
_PATH_STYLE = re.compile(_ENDPOINT)  # https://s3.<region>.amazonaws.com/<bucket>/<key>
_VIRTUAL_HOSTED = re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.-]*?)\." + _ENDPOINT)  # https://<bucket>.s3...


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key``, or an https URL of an S3 object (virtual-hosted or path-style) → ``(bucket, key)``."""
    if uri.startswith("s3://") and len(uri) > 5:
        bucket, _, key = uri[5:].partition("/")
        return bucket, key
    if uri.startswith("https://"):
        parts = urlsplit(uri)
        host, path = (parts.hostname or "").lower(), unquote(parts.path).removeprefix("/")
        virtual = _VIRTUAL_HOSTED.fullmatch(host)
        if _PATH_STYLE.fullmatch(host) and path:
            bucket, _, key = path.partition("/")
            return bucket, key
        if virtual:
            return virtual.group("bucket"), path
    raise JobInputError(
        f'"{uri}" is not an S3 URI of the form s3://bucket/key or https://bucket.s3.region.amazonaws.com/key.'
    )


def relative_key(prefix: str, key: str) -> str:
    """Where ``key`` lands: relative to ``prefix`` if the prefix is a folder of the key, else to the prefix's parent."""
    folder = prefix if prefix.endswith("/") else prefix + "/"
    if key.startswith(folder):
        return key[len(folder) :]
    base = prefix[: prefix.rfind("/") + 1]
    return key[len(base) :] if key.startswith(base) else PurePosixPath(key).name


def _no_objects(uri: str, region: str, role: str | None) -> JobInputError:
    bucket, _ = split_uri(uri)
    return JobInputError(
        f'Data download failed: No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure '
        f"that the bucket exists in the selected region ({region}), that objects exist under that S3 prefix, and "
        f'that the role "{role}" has "s3:ListBucket" permissions on bucket "{bucket}".'
    )


def list_prefix(client, uri: str, region: str, role: str | None = None) -> list[S3Object]:
    """Every object under an ``S3Prefix`` URI, sorted by key; none is a JobInputError."""
    bucket, prefix = split_uri(uri)
    found: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    found.append(S3Object(bucket, item["Key"], relative_key(prefix, item["Key"])))
    except BotoClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchBucket", "404"):
            raise _no_objects(uri, region, role) from None
        raise
    if not found:
        raise _no_objects(uri, region, role)
    return sorted(found, key=lambda o: o.key)


def list_manifest(client, uri: str) -> list[S3Object]:
    """The objects a ``ManifestFile`` names (its first entry is ``{"prefix": ...}``)."""
    try:
        entries = json.loads(read_object(client, uri))
        prefix_uri = entries[0]["prefix"]
        names = entries[1:]
    except (ValueError, IndexError, KeyError, TypeError):
        raise JobInputError(
            f'The manifest file "{uri}" is not a JSON list beginning with {{"prefix": "s3://..."}}.'
        ) from None
    if not names:
        raise JobInputError(f'The manifest file "{uri}" lists no objects.')
    if not all(isinstance(name, str) for name in names):
        raise JobInputError(
            f'The manifest file "{uri}" has an entry after the prefix that is not a string (an S3 key).'
        )
    bucket, prefix = split_uri(prefix_uri)
    return [S3Object(bucket, prefix + name, name) for name in names]


def list_source(client, s3_data_source: dict, region: str, role: str | None = None) -> list[S3Object]:
    kind = s3_data_source.get("S3DataType", "S3Prefix")
    if kind == "S3Prefix":
        return list_prefix(client, s3_data_source["S3Uri"], region, role)
    if kind == "ManifestFile":
        return list_manifest(client, s3_data_source["S3Uri"])
    raise JobInputError(f"S3DataType {kind} is not supported by the local SageMaker emulator (S3Prefix, ManifestFile).")


def _body(client, uri: str):
    """The object's streaming body; a missing object or bucket is the caller's fault (JobInputError)."""
    bucket, key = split_uri(uri)
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"]
    except BotoClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "NoSuchBucket", "404"):
            raise JobInputError(f'Could not read "{uri}": the object does not exist.') from None
        raise


def read_object(client, uri: str) -> bytes:
    return _body(client, uri).read()


def download(client, objects: list[S3Object], folder: Path) -> None:
    """Every object at its relative path in ``folder``; all paths are checked before the first is written.

    Raises:
        JobInputError: a path that would leave ``folder`` (see :mod:`sagemaker_emulator.algorithms.paths`), or two keys that
            need the same path as a file and as a folder (``p/a`` and ``p/a/b``).
    """
    targets = [confined(folder, item.relative, f'The S3 object "{item.uri}"') for item in objects]
    folder.mkdir(parents=True, exist_ok=True)
    for item, target in zip(objects, targets):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with closing(_body(client, item.uri)) as body, open(target, "wb") as file:
                for chunk in body.iter_chunks(CHUNK):  # a channel's file may be larger than the memory left
                    file.write(chunk)
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            raise JobInputError(
                f'The S3 object "{item.uri}" cannot be written to "{item.relative}": another object of the channel '
                "needs that path as a folder, or one of its folders as a file."
            ) from None


def upload_file(client, path: Path, uri: str) -> None:
    bucket, key = split_uri(uri)
    client.upload_file(str(path), bucket, key)


def put_bytes(client, data: bytes, uri: str, content_type: str | None = None) -> None:
    bucket, key = split_uri(uri)
    extra = {"ContentType": content_type} if content_type else {}
    client.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def tar_folder(folder: Path, target: Path) -> Path:
    """``folder``'s contents at the archive's root, gzip-compressed (what ``model.tar.gz`` holds)."""
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return target


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
