"""Paths built from request data stay inside their folder: S3 keys, manifest entries, channel names, model archives
and resource names that would land elsewhere fail the job or endpoint as AWS words it, and nothing is written outside.

Hostile paths aim at ``outside``, a folder under pytest's ``tmp_path``: enough ``..`` climb from any emulator folder
to ``/``, then the path descends into it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    assert_healthy,
    channel,
    deploy,
    error_of,
    finished_training,
    put_csv,
    training_request,
    wait_for,
)

from sagemaker_emulator.algorithms.paths import NAME_MAX, confined
from sagemaker_emulator.errors import JobInputError

CLIMB = "../" * 40
RULE = f"Every segment between slashes must be a file name (not empty, . or .., at most {NAME_MAX} bytes)."
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


def _untouched(folder: Path) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["sentinel.txt"] and (
        (folder / "sentinel.txt").read_text() == "original"
    )


def _refused(uri: str, relative: str, fault: str) -> str:
    return (
        f'ClientError: The S3 object "{uri}" cannot be placed inside its local folder: the path "{relative}" '
        f"{fault}. {RULE}"
    )


def _train(sm, name: str, channels: list[dict]) -> dict:
    sm.create_training_job(**training_request(name, channels))
    return finished_training(sm, name)


def _manifest(s3, key: str, prefix: str, entries: list) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps([{"prefix": prefix}, *entries]).encode())
    return f"s3://{BUCKET}/{key}"


@pytest.mark.parametrize(
    "relative, fault",
    [
        ("{climb}{outside}/escaped.csv", 'has a ".." segment'),
        ("/{outside}/escaped.csv", "is absolute"),  # the key holds "train//tmp/..."
        ("sub/./escaped.csv", 'has a "." segment'),
        ("sub//escaped.csv", "has an empty segment"),
        ("a\x00b.csv", "contains a NUL character"),
    ],
    ids=["dotdot", "double-slash-absolute", "dot", "empty-segment", "nul"],
)
def test_a_key_that_cannot_be_placed_fails_the_job(emulator, sm, s3, outside, relative, fault):
    relative = relative.format(climb=CLIMB, outside=str(outside).lstrip("/"))
    put_csv(s3, "data/train/part.csv", "1,0\n")
    uri = put_csv(s3, f"data/train/{relative}", "9,0\n")
    job = _train(sm, "confine-key", [channel("train", f"s3://{BUCKET}/data/train/")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == _refused(uri, relative, fault)
    assert _untouched(outside)
    assert_healthy(emulator)


def test_a_segment_over_name_max_bytes_fails_the_job(emulator, sm, s3, outside):
    relative = "é" * 128 + ".csv"  # 132 characters, 260 bytes
    uri = put_csv(s3, f"data/train/{relative}", "1,0\n")
    job = _train(sm, "confine-long", [channel("train", f"s3://{BUCKET}/data/train/")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == _refused(uri, relative, f"has a segment longer than {NAME_MAX} bytes")
    assert_healthy(emulator)


def test_a_segment_of_name_max_bytes_is_placed(emulator, sm, s3):
    put_csv(s3, "data/train/" + "a" * (NAME_MAX - 4) + ".csv", "3,0\n")
    job = _train(sm, "confine-name-max", [channel("train", f"s3://{BUCKET}/data/train/")])
    assert job["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["train:mse"] == 0.0
    assert_healthy(emulator)


def test_a_key_that_is_a_file_and_a_folder_fails_the_job(emulator, sm, s3):
    put_csv(s3, "data/train/a", "1,0\n")
    uri = put_csv(s3, "data/train/a/b.csv", "2,0\n")
    job = _train(sm, "confine-clash", [channel("train", f"s3://{BUCKET}/data/train/")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f'ClientError: The S3 object "{uri}" cannot be written to "a/b.csv": another object of the channel needs '
        "that path as a folder, or one of its folders as a file."
    )
    assert_healthy(emulator)


@pytest.mark.parametrize(
    "entry, fault",
    [
        ("{climb}{outside}/escaped.csv", 'has a ".." segment'),
        ("/{outside}/escaped.csv", "is absolute"),
        ("", "is empty"),
    ],
    ids=["dotdot", "absolute", "empty"],
)
def test_a_manifest_entry_that_cannot_be_placed_fails_the_job(emulator, sm, s3, outside, entry, fault):
    entry = entry.format(climb=CLIMB, outside=str(outside).lstrip("/"))
    put_csv(s3, f"data/{entry}", "9,0\n")
    manifest = _manifest(s3, "manifests/m.json", f"s3://{BUCKET}/data/", ["part.csv", entry])
    put_csv(s3, "data/part.csv", "1,0\n")
    job = _train(sm, "confine-manifest", [channel("train", manifest, data_type="ManifestFile")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == _refused(f"s3://{BUCKET}/data/{entry}", entry, fault)
    assert _untouched(outside)
    assert_healthy(emulator)


def test_a_manifest_entry_that_is_not_a_key_fails_the_job(emulator, sm, s3):
    manifest = _manifest(s3, "manifests/m.json", f"s3://{BUCKET}/data/", [{"path": "../x"}])
    job = _train(sm, "confine-entry-type", [channel("train", manifest, data_type="ManifestFile")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f'ClientError: The manifest file "{manifest}" has an entry after the prefix that is not a string (an S3 key).'
    )
    assert_healthy(emulator)


def test_a_manifest_prefix_outside_s3_fails_the_job(emulator, sm, s3, outside):
    prefix = f"file://{outside}/"
    manifest = _manifest(s3, "manifests/m.json", prefix, ["sentinel.txt"])
    job = _train(sm, "confine-prefix-file", [channel("train", manifest, data_type="ManifestFile")])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f'ClientError: "{prefix}" is not an S3 URI of the form s3://bucket/key or '
        "https://bucket.s3.region.amazonaws.com/key."
    )
    assert _untouched(outside)
    assert_healthy(emulator)


def test_a_manifest_prefix_elsewhere_in_s3_only_chooses_what_is_read(emulator, sm, s3, outside):
    put_csv(s3, "elsewhere/deep/down/part.csv", "4,0\n")
    manifest = _manifest(s3, "manifests/m.json", f"s3://{BUCKET}/elsewhere/deep/", ["down/part.csv"])
    job = _train(sm, "confine-prefix-s3", [channel("train", manifest, data_type="ManifestFile")])
    assert job["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["train:mse"] == 0.0
    assert _untouched(outside)
    assert_healthy(emulator)


@pytest.mark.parametrize(
    "name, fault", [(".", 'has a "." segment'), ("..", 'has a ".." segment')], ids=["dot", "dotdot"]
)
def test_a_dot_channel_name_fails_the_job(emulator, sm, s3, name, fault):
    uri = put_csv(s3, "data/train/part.csv", "1,0\n")
    job = _train(sm, "confine-channel", [channel("train", uri), channel(name, uri)])
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f'ClientError: The channel name "{name}" cannot be placed inside its local folder: the path "{name}" {fault}. '
        f"{RULE}"
    )
    assert_healthy(emulator)


def test_a_symlink_inside_the_folder_is_followed(outside, tmp_path):
    root = tmp_path / "channel"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(JobInputError) as excinfo:
        confined(root, "link/escaped.csv", 'The S3 object "s3://b/p/link/escaped.csv"')
    assert str(excinfo.value) == (
        'The S3 object "s3://b/p/link/escaped.csv" cannot be placed inside its local folder: the path '
        f'"link/escaped.csv" resolves outside its folder. {RULE}'
    )
    assert confined(root, "sub/ok.csv", "x") == root / "sub" / "ok.csv"


@pytest.mark.parametrize(
    "name, error",
    [
        (
            "../x",
            f"1 validation error detected: Value '../x' at 'trainingJobName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
        ),
        (
            "a" * 300,
            f"2 validation errors detected: Value '{'a' * 300}' at 'trainingJobName' failed to satisfy "
            f"constraint: Member must have length less than or equal to 63; Value '{'a' * 300}' at "
            f"'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression "
            f"pattern: {NAME_PATTERN}",
        ),
    ],
    ids=["dotdot", "long"],
)
def test_a_hostile_job_name_is_refused_before_any_folder(emulator, sm, sm_unchecked, s3, name, error):
    uri = put_csv(s3, "data/train/part.csv", "1,0\n")
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.create_training_job(**training_request(name, [channel("train", uri)]))
    assert error_of(excinfo) == ("ValidationException", error)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    workdir = emulator.services.workdir
    assert not list(workdir.glob("x-*")) and not list(workdir.glob("training/a*"))
    assert_healthy(emulator)


def test_a_hostile_endpoint_name_is_refused_before_any_folder(emulator, sm, sm_unchecked):
    with pytest.raises(ClientError) as excinfo:
        sm_unchecked.create_endpoint(EndpointName="../x", EndpointConfigName="c")
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '../x' at 'endpointName' failed to satisfy constraint: Member must "
        f"satisfy regular expression pattern: {NAME_PATTERN}",
    )
    assert sm.list_endpoints()["Endpoints"] == []
    assert not list(emulator.services.workdir.glob("x-*"))
    assert_healthy(emulator)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"") -> tuple:
    return name, kind, link, data


def tar_gz(members: list[tuple], modes: dict[str, int] | None = None) -> bytes:
    """A .tar.gz of ``members`` (:func:`_member` tuples), owned by a stranger, with the file modes in ``modes``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, kind, link, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            info.mode = (modes or {}).get(name, 0o644)
            info.uid, info.gid, info.uname, info.gname = 4321, 4321, "stranger", "strangers"
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


def _upload_archive(s3, key: str, members: list[tuple]) -> str:
    """A model.tar.gz holding a valid mean.json first, then ``members``; returns its URI."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=tar_gz([_member("mean.json", data=b'{"value": 2.5}'), *members]))
    return f"s3://{BUCKET}/{key}"


def _link_chain(outside: Path) -> tuple[list[tuple], str, str]:
    """Members that escape tarfile's ``data`` filter before Python 3.11.13 (CVE-2025-4517), and the first refused.

    Short links to long folder names make the resolved path longer than PATH_MAX, where ``os.path.realpath``
    stops following links; a link from there back up to the extraction folder passes the filter, and links built
    on it climb further while the filter reads them as plain names.
    """
    long_name = "d" * 250
    levels = os.pathconf("/", "PC_PATH_MAX") // len(long_name) + 2
    members, short = [], ""
    for level in range(levels):
        members += [
            _member(os.path.join(short, long_name), tarfile.DIRTYPE),
            _member(os.path.join(short, f"s{level}"), tarfile.SYMTYPE, long_name),
        ]
        short = os.path.join(short, f"s{level}")
    top = "../" * levels
    members.append(_member(f"{short}/up0", tarfile.SYMTYPE, top))
    hops = 5  # each climbs 8 folders; Linux follows at most 40 links per lookup
    members += [_member(f"{short}/up{i}", tarfile.SYMTYPE, f"up{i - 1}" + "/.." * 8) for i in range(1, hops + 1)]
    members.append(_member(f"{short}/esc", tarfile.SYMTYPE, f"up{hops}/{str(outside).lstrip('/')}"))
    members.append(_member(f"{short}/esc/escaped.txt", data=b"escaped"))
    return members, f"{short}/up0", f'the link target "{top}"'


HOSTILE_CASES = [
    "absolute-name",
    "dotdot-name",
    "symlink-absolute",
    "symlink-dotdot",
    "hardlink-absolute",
    "hardlink-dotdot",
    "link-chain-past-path-max",
]  # the keys of _hostile_archives()


def _hostile_archives(outside: Path) -> dict[str, tuple[list[tuple], str, str]]:
    """Kind of hostile model.tar.gz → (its members, the member refused first, what is wrong with it)."""
    up = CLIMB + str(outside).lstrip("/")
    sentinel = str(outside / "sentinel.txt")
    up_to_sentinel = CLIMB + sentinel.lstrip("/")
    overwrite = _member("h", data=b"overwritten")  # through a hard link, this would write the linked file
    return {
        "absolute-name": (
            [_member(f"{outside}/escaped.txt", data=b"x")],
            f"{outside}/escaped.txt",
            f'the name "{outside}/escaped.txt"',
        ),
        "dotdot-name": ([_member(f"{up}/escaped.txt", data=b"x")], f"{up}/escaped.txt", f'the name "{up}/escaped.txt"'),
        "symlink-absolute": (
            [_member("link", tarfile.SYMTYPE, str(outside)), _member("link/escaped.txt", data=b"x")],
            "link",
            f'the link target "{outside}"',
        ),
        "symlink-dotdot": (
            [_member("link", tarfile.SYMTYPE, up), _member("link/escaped.txt", data=b"x")],
            "link",
            f'the link target "{up}"',
        ),
        "hardlink-absolute": (
            [_member("h", tarfile.LNKTYPE, sentinel), overwrite],
            "h",
            f'the link target "{sentinel}"',
        ),
        "hardlink-dotdot": (
            [_member("h", tarfile.LNKTYPE, up_to_sentinel), overwrite],
            "h",
            f'the link target "{up_to_sentinel}"',
        ),
        "link-chain-past-path-max": _link_chain(outside),
    }


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_a_hostile_model_archive_fails_the_endpoint(emulator, sm, s3, outside, case):
    members, member, fault = _hostile_archives(outside)[case]
    uri = _upload_archive(s3, "models/hostile.tar.gz", members)
    described = deploy(sm, "confine-archive", uri)
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == (
        f'Failed to extract model data archive from URL "{uri}". Please ensure that the object located at the URL '
        f'is a valid tar.gz archive. (The archive member "{member}" has {fault}, which is absolute or contains "..".)'
    )
    assert _untouched(outside)
    assert_healthy(emulator)


def test_a_model_archive_in_tar_conventions_is_served(emulator, sm, s3, runtime, outside):
    uri = _upload_archive(
        s3,
        "models/dotted.tar.gz",
        [
            _member(".", tarfile.DIRTYPE),
            _member("./code", tarfile.DIRTYPE),
            _member("./code/alias.json", tarfile.SYMTYPE, "data/mean.json"),  # dangling, but pointing down
            _member("./alias.json", tarfile.SYMTYPE, "mean.json"),
            _member("./copy.json", tarfile.LNKTYPE, "./mean.json"),
        ],
    )
    described = deploy(sm, "confine-dotted", uri)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    reply = runtime.invoke_endpoint(
        EndpointName="confine-dotted", Body=b"1", ContentType="text/csv", Accept="application/json"
    )
    assert json.loads(reply["Body"].read()) == {"predictions": [{"score": 2.5}]}
    assert _untouched(outside)
    assert_healthy(emulator)


def test_a_transform_keeps_hostile_keys_in_s3(emulator, sm, s3, outside):
    """A transform writes no local file per key: a ``..`` key only names its output object, as on AWS."""
    relative = f"{CLIMB}{str(outside).lstrip('/')}/escaped.csv"
    put_csv(s3, f"batch/in/{relative}", "1\n")
    sm.create_model(
        ModelName="confine-tm",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": _upload_archive(s3, "models/t.tar.gz", [])},
    )
    sm.create_transform_job(
        TransformJobName="confine-transform",
        ModelName="confine-tm",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch/out", "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    job = wait_for(
        lambda: sm.describe_transform_job(TransformJobName="confine-transform"),
        lambda j: j["TransformJobStatus"] not in ("InProgress", "Stopping"),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert s3.get_object(Bucket=BUCKET, Key=f"batch/out/{relative}.out")["Body"].read() == b"2.5\n"
    assert _untouched(outside)
    assert_healthy(emulator)
