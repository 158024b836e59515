"""Saved state across versions and damage: today's save loads in this emulator, and whatever an upgrade, a crash or a
hand damaged is quarantined and named (serve.log, ``status``) while the rest comes back.

Each test copies the save that commit de1386f made (``data/save-2026-12-06``, see ``data/README.md``) into a fresh
home, damages it, and serves it in a child process, as a restart would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import test_persistence
from emulator_helpers import BUCKET, wait_for

from sagemaker_emulator import __main__ as cli
from sagemaker_emulator.resources.models import Model
from sagemaker_emulator.store import home as homes
from sagemaker_emulator.store import moto_store
from sagemaker_emulator.store.quarantine import FOLDER, LAST_START

SAVE = Path(__file__).parent / "data" / "save-2026-12-06" / "state"
REGION = "us-east-1"
KINDS = {  # persistence.KINDS: what each kind is called on the wire
    "models": ("describe_model", "ModelName"),
    "endpoint_configs": ("describe_endpoint_config", "EndpointConfigName"),
    "endpoints": ("describe_endpoint", "EndpointName"),
    "training_jobs": ("describe_training_job", "TrainingJobName"),
    "transform_jobs": ("describe_transform_job", "TransformJobName"),
    "tuning_jobs": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName"),
}
STATUS = {
    "endpoints": "EndpointStatus",
    "training_jobs": "TrainingJobStatus",
    "transform_jobs": "TransformJobStatus",
    "tuning_jobs": "HyperParameterTuningJobStatus",
}


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shutil.copytree(SAVE, home / "state")
    yield home
    homes.stop(home)


def saved_records(home) -> dict[str, list[dict]]:
    return json.loads((home / "state" / "sagemaker.json").read_text())["regions"][REGION]


def edit_records(home, change) -> None:
    path = home / "state" / "sagemaker.json"
    document = json.loads(path.read_text())
    change(document["regions"][REGION])
    path.write_text(json.dumps(document))


def index(home) -> dict:
    return json.loads((home / "state" / "moto" / "index.json").read_text())


def object_file(home, key: str) -> Path:
    return home / "state" / "moto" / index(home)["s3"][BUCKET]["objects"][key]["file"]


def status_lines(home, capsys) -> list[str]:
    capsys.readouterr()
    assert cli.status(home) == 0
    return capsys.readouterr().out.splitlines()


def last_losses(home) -> list[dict]:
    return json.loads((home / "state" / FOLDER / LAST_START).read_text())["losses"]


class Served(test_persistence.Served):
    """The served emulator, with ``log``: what it printed up to its banner (serve.log's start, in the background)."""

    def __init__(self, home):
        super().__init__(home)
        lines = [self.banner]
        while not lines[-1].startswith("SageMaker emulator listening on") and lines[-1]:
            lines.append(self.process.stdout.readline())
        self.log = "".join(lines)


def assert_resources(sm, records: dict[str, list[dict]], missing: set[str] = frozenset()) -> None:
    for kind, (describe, key) in KINDS.items():
        for record in records[kind]:
            if record["name"] in missing:
                continue
            described = getattr(sm, describe)(**{key: record["name"]})
            assert (described[key], described.get(STATUS.get(kind))) == (record["name"], record["status"] or None)


def test_todays_save_loads_with_every_resource_intact(home, capsys):
    records, saved = saved_records(home), index(home)
    bodies = {key: object_file(home, key).read_bytes() for key in saved["s3"][BUCKET]["objects"]}
    served = Served(home)
    sm, s3 = served.client("sagemaker"), served.client("s3")

    assert_resources(sm, records)
    (job,) = [record for record in records["training_jobs"] if record["name"] == "fixture-train"]
    described = sm.describe_training_job(TrainingJobName="fixture-train")
    assert described["TrainingJobStatus"] == job["status"] == "Completed"
    assert [(m["MetricName"], m["Value"]) for m in described["FinalMetricDataList"]] == [
        (m["MetricName"], m["Value"]) for m in job["final_metrics"]
    ]
    for key, body in bodies.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)
        entry = saved["s3"][BUCKET]["objects"][key]
        assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
            body,
            entry["ContentType"],
            entry["Metadata"],
        )
    logs = served.client("logs")
    for group, saved_group in saved["logs"][REGION].items():
        for stream, entry in saved_group["streams"].items():
            events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
            assert len(events) == entry["events"]
    role = served.client("iam").get_role_policy(RoleName="SageMakerRole", PolicyName="s3")
    assert role["PolicyDocument"]["Statement"][0]["Action"] == "s3:*"
    assert sm.describe_endpoint(EndpointName="fixture-endpoint")["EndpointStatus"] == "InService"
    runtime = served.client("sagemaker-runtime")
    answer = wait_for(lambda: _invoke(runtime), lambda body: body is not None, timeout=60)
    assert json.loads(answer)
    assert "Lost at start" not in served.log and last_losses(home) == []
    assert not [line for line in status_lines(home, capsys) if line.startswith("Lost")]
    served.stop()

    upgraded = index(home)  # rewritten in today's format, every object with its checksum
    assert upgraded["format"] == moto_store.FORMAT
    assert all(entry["sha256"] for entry in upgraded["s3"][BUCKET]["objects"].values())
    assert {record["schema"] for kind in saved_records(home).values() for record in kind} == {1}


def _invoke(runtime) -> bytes | None:
    try:
        answer = runtime.invoke_endpoint(
            EndpointName="fixture-endpoint", Body=b"1,2\n", ContentType="text/csv", Accept="application/json"
        )
    except runtime.exceptions.ServiceUnavailable:
        return None
    return answer["Body"].read()


def test_a_field_added_by_a_later_release_is_filled_from_its_declaration(emulator):
    """The mechanism itself: a release that adds a field declares its default, and today's record loads into it."""

    class NextModel(Model):
        PERSISTED = {**Model.PERSISTED, "added_later": {"default": True}}

    (record,) = json.loads((SAVE / "sagemaker.json").read_text())["regions"][REGION]["models"]
    model = NextModel.from_record(emulator.state_for(REGION), record)

    assert model.added_later == {"default": True} and model.to_wire()["ModelName"] == record["name"]
    assert model.to_record() == {**record, "schema": Model.SCHEMA, "added_later": {"default": True}}


def test_a_record_saved_before_a_field_existed_gets_the_default(home, capsys):
    """What the next release that adds a field meets: today's records lack it (here: two fields with defaults)."""

    def drop(records):
        del records["models"][0]["network_isolation"]
        del records["training_jobs"][0]["final_metrics"]

    edit_records(home, drop)
    records = saved_records(home)
    served = Served(home)
    sm = served.client("sagemaker")

    assert_resources(sm, records)
    assert sm.describe_model(ModelName=records["models"][0]["name"])["EnableNetworkIsolation"] is False
    assert "FinalMetricDataList" not in sm.describe_training_job(TrainingJobName=records["training_jobs"][0]["name"])
    assert last_losses(home) == []
    served.stop()


def _set(records: dict, kind: str, value) -> None:
    records[kind][0] = value


@pytest.mark.parametrize(
    "kind, name, damage, reason",
    [
        (
            "transform_jobs",
            "'fixture-transform'",
            lambda records: records["transform_jobs"][0].update(schema=99),
            "the record has schema 99, and this emulator reads schemas up to 1: a newer emulator saved it; start that "
            "one to get it back",
        ),
        (
            "transform_jobs",
            "'fixture-transform'",
            lambda records: records["transform_jobs"][0].pop("params"),
            "the record lacks params, which no default can stand for",
        ),
        (
            "transform_jobs",
            "without a name",
            lambda records: _set(records, "transform_jobs", ["not", "a", "record"]),
            "the record is a JSON list, not an object",
        ),
        (
            "training_jobs",
            "'fixture-train'",
            lambda records: records["training_jobs"][0].update(status="InProgress", secondary="not a list"),
            "it could not be rebuilt (TypeError(",
        ),
    ],
    ids=["newer-schema", "required-field-missing", "not-an-object", "fails-to-rebuild"],
)
def test_a_record_that_cannot_be_loaded_is_quarantined_alone(home, capsys, kind, name, damage, reason):
    assert saved_records(home)["training_jobs"][0]["name"] == "fixture-train"
    edit_records(home, damage)
    records = saved_records(home)
    damaged = records[kind][0]
    served = Served(home)
    sm = served.client("sagemaker")

    assert_resources(sm, {**records, kind: records[kind][1:]})
    describe, key = KINDS[kind]
    with pytest.raises(sm.exceptions.ClientError):
        getattr(sm, describe)(**{key: name.strip("'")})
    what = f"SageMaker {kind[:-5].replace('_', ' ')} job {name} in {REGION}"
    assert f"Lost at start: {what}: {reason}" in served.log
    (loss,) = last_losses(home)
    assert loss["what"] == what and loss["reason"].startswith(reason)
    kept = Path(loss["kept"])
    assert json.loads(kept.read_text()) == damaged
    assert kept.with_name(kept.name + ".reason.txt").read_text().startswith(f"{what}: {reason}")
    lines = status_lines(home, capsys)
    assert lines[1].startswith("Lost at last start (") and lines[2].startswith(f"  - {what}: {reason}")
    served.stop()
    assert len(saved_records(home)[kind]) == len(records[kind]) - 1


def test_a_state_file_that_is_not_json_is_quarantined_and_moto_state_still_loads(home, capsys):
    (home / "state" / "sagemaker.json").write_text("{not json")
    served = Served(home)

    assert served.client("sagemaker").list_models()["Models"] == []
    assert served.client("s3").get_object(Bucket=BUCKET, Key="notes/kept.txt")["Body"].read() == b"still here"
    (loss,) = last_losses(home)
    assert loss["what"] == "every SageMaker resource (sagemaker.json)" and loss["reason"].startswith(
        "it is not JSON (Expecting"
    )
    assert Path(loss["kept"]).read_text() == "{not json"
    assert any("every SageMaker resource (sagemaker.json)" in line for line in status_lines(home, capsys))
    served.stop()


def test_a_newer_state_file_is_quarantined_with_the_way_back(home):
    path = home / "state" / "sagemaker.json"
    path.write_text(path.read_text().replace('"version": 1', '"version": 7'))
    served = Served(home)

    assert served.client("sagemaker").list_models()["Models"] == []
    (loss,) = last_losses(home)
    assert loss["reason"] == (
        "it has version 7, and this emulator reads versions up to 1: a newer emulator saved it; start that one to get "
        "it back"
    )
    served.stop()


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda file: file.unlink(), "is missing"),
        (lambda file: file.write_bytes(file.read_bytes()[:4]), "holds 4 bytes, not the 10 it was saved with"),
    ],
    ids=["missing", "truncated"],
)
def test_a_damaged_object_file_is_quarantined_and_get_answers_no_such_key(home, capsys, damage, reason):
    damage(object_file(home, "notes/kept.txt"))
    records = saved_records(home)
    served = Served(home)
    s3 = served.client("s3")

    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="notes/kept.txt")
    assert s3.get_object(Bucket=BUCKET, Key="data/train.csv")["Body"].read() == b"1,0\n3,0\n"
    assert_resources(served.client("sagemaker"), records)
    what = f"S3 object s3://{BUCKET}/notes/kept.txt"
    (loss,) = last_losses(home)
    assert loss["what"] == what and reason in loss["reason"]
    assert f"Lost at start: {what}: its file s3/" in served.log
    assert any(line.startswith(f"  - {what}: its file s3/") for line in status_lines(home, capsys))
    served.stop()


def test_a_log_stream_file_that_is_not_json_loses_that_stream_only(home):
    group = "/aws/sagemaker/TrainingJobs"
    streams = index(home)["logs"][REGION][group]["streams"]
    damaged, kept = sorted(streams)
    (home / "state" / "moto" / streams[damaged]["file"]).write_text("[[1, ")
    served = Served(home)
    logs = served.client("logs")

    listed = [stream["logStreamName"] for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert listed == [kept]
    (loss,) = last_losses(home)
    assert loss["what"] == f"log stream {damaged!r} of log group {group!r} in {REGION}"
    served.stop()


def test_a_corrupted_moto_index_is_quarantined_with_its_files_and_sagemaker_still_loads(home, capsys):
    path = home / "state" / "moto" / "index.json"
    damaged = path.read_text()[:100]
    path.write_text(damaged)
    records = saved_records(home)
    served = Served(home)

    assert served.client("s3").list_buckets()["Buckets"] == []
    sm = served.client("sagemaker")
    (endpoint,) = [record["name"] for record in records["endpoints"]]
    assert_resources(sm, records, missing={endpoint})
    # Its model artifact was in S3, lost with the index: hosting it again fails, when the re-hosting gets to it.
    hosted = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), lambda e: e["EndpointStatus"] == "Failed")
    assert hosted["FailureReason"]
    (loss,) = last_losses(home)
    assert loss["what"] == "every S3 bucket, log group and IAM role (moto's index)"
    assert loss["reason"].startswith("index.json is not a readable store index (JSONDecodeError: ")
    kept = Path(loss["kept"])
    assert (kept / "index.json").read_text() == damaged
    assert sorted(path.name for path in kept.iterdir()) == ["iam", "index.json", "logs", "s3"]
    assert len(list((kept / "s3").rglob("*-*"))) == 8
    assert any("moto's index" in line for line in status_lines(home, capsys))
    served.stop()


def test_a_background_emulator_names_each_loss_in_serve_log(home, capsys):
    """What a notebook starts (``start``/``ensure``) writes serve.log: one line per loss, as status lists them."""
    edit_records(home, lambda records: records["models"][0].update(schema=99))
    damage = object_file(home, "notes/kept.txt")
    damage.write_bytes(damage.read_bytes()[:4])

    homes.ensure(home)

    lines = [line for line in (home / homes.LOG_FILE).read_text().splitlines() if line.startswith("Lost at start: ")]
    assert [line.split(": the record")[0].split(": its file")[0] for line in lines] == [
        f"Lost at start: S3 object s3://{BUCKET}/notes/kept.txt",
        f"Lost at start: SageMaker model 'fixture-endpoint' in {REGION}",
    ]
    listed = [line for line in status_lines(home, capsys) if line.startswith("  - ")]
    assert [line.split(": ")[0] for line in listed] == [
        f"  - S3 object s3://{BUCKET}/notes/kept.txt",
        f"  - SageMaker model 'fixture-endpoint' in {REGION}",
    ]
