"""Batch transform: SageMaker's splitting, batching and assembling rules, and jobs through boto3."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, BUCKET, IMAGE, REGION, ROLE, error_of, model_artifact, put_csv, wait_for

from recordio_protobuf import frame
from sagemaker_emulator.errors import JobInputError
from sagemaker_emulator.jobs.s3 import split_uri
from sagemaker_emulator.jobs.transform import assemble, batch_records, split_records


def test_split_none_keeps_the_object_whole():
    assert split_records(b"1\n2\n", "None") == [b"1\n2\n"]


def test_split_line_drops_blank_lines():
    assert split_records(b"1,2\r\n\n3,4\n\n", "Line") == [b"1,2", b"3,4"]


def test_split_recordio_keeps_records_framed():
    records = [frame(b"abc"), frame(b"de")]
    assert split_records(b"".join(records), "RecordIO") == records


def test_split_recordio_rejects_other_bytes():
    with pytest.raises(JobInputError, match="The input is not valid RecordIO: bad RecordIO magic"):
        split_records(b"1,2,3,4,5,6,7,8\n", "RecordIO")


def test_split_tfrecord_is_not_emulated():
    with pytest.raises(JobInputError, match=r"SplitType TFRecord is not supported .* \(None, Line, RecordIO\)"):
        split_records(b"x", "TFRecord")


def test_single_record_sends_one_record_per_request():
    assert list(batch_records([b"1", b"2"], "SingleRecord", 6, "Line")) == [b"1", b"2"]


def test_multi_record_packs_up_to_the_payload_limit():
    records = [b"aaa", b"bbb", b"ccc"]
    assert list(batch_records(records, "MultiRecord", 7, "Line")) == [b"aaa\nbbb", b"ccc"]
    assert list(batch_records(records, "MultiRecord", 0, "Line")) == [b"aaa\nbbb\nccc"]
    assert list(batch_records(records, "MultiRecord", 6, "RecordIO")) == [b"aaabbb", b"ccc"]


def test_a_record_above_the_limit_fails():
    with pytest.raises(JobInputError, match=r"Record 2 is 2097152 bytes, larger than MaxPayloadInMB \(1 MB\)"):
        list(batch_records([b"a", b"x" * 2 * 1024 * 1024], "MultiRecord", 1024 * 1024, "Line"))


def test_assemble_line_ends_every_answer_once():
    assert assemble([b"a", b"b\n"], "Line") == b"a\nb\n"
    assert assemble([b"a", b"b\n"], "None") == b"ab\n"


@pytest.fixture
def model(sm, s3):
    model_data = model_artifact(s3, "models/t/model.tar.gz", value=1.5)
    sm.create_model(
        ModelName="tm", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    return "tm"


def _transform(sm, name: str, model: str, source: str, output: str, **options) -> dict:
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": "text/csv",
            "SplitType": options.pop("SplitType", "Line"),
        },
        "TransformOutput": {
            "S3OutputPath": output,
            "Accept": options.pop("Accept", "application/jsonlines"),
            "AssembleWith": options.pop("AssembleWith", "Line"),
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **options,
    }
    sm.create_transform_job(**request)
    return wait_for(
        lambda: sm.describe_transform_job(TransformJobName=name),
        lambda job: job["TransformJobStatus"] not in ("InProgress", "Stopping"),
    )


def _read(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_outputs_keep_the_relative_keys(sm, s3, model):
    put_csv(s3, "batch/in/a.csv", "1\n2\n\n3\n")
    put_csv(s3, "batch/in/sub/b.csv", "4\n")
    job = _transform(
        sm, "t-lines", model, f"s3://{BUCKET}/batch/in/", f"s3://{BUCKET}/batch/out", BatchStrategy="SingleRecord"
    )
    assert job["TransformJobStatus"] == "Completed"
    assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert _read(s3, "batch/out/a.csv.out") == b'{"score": 1.5}\n' * 3
    assert _read(s3, "batch/out/sub/b.csv.out") == b'{"score": 1.5}\n'


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://b.s3-us-west-2.amazonaws.com/m/model.tar.gz", ("b", "m/model.tar.gz")),  # AWS's v3 example
        ("https://b.s3.us-east-1.amazonaws.com/m/a%20b", ("b", "m/a b")),
        ("https://b.s3.amazonaws.com/k", ("b", "k")),
        ("https://b.s3.dualstack.eu-west-1.amazonaws.com/k", ("b", "k")),
        ("https://s3.amazonaws.com/b/m/k", ("b", "m/k")),
        ("https://s3-eu-west-1.amazonaws.com/b/k", ("b", "k")),
        ("https://s3.us-gov-west-1.amazonaws.com/b/k", ("b", "k")),
        ("https://my.bucket.s3.cn-north-1.amazonaws.com.cn/k", ("my.bucket", "k")),
        ("s3://b/k", ("b", "k")),
    ],
)
def test_s3_https_urls_name_their_bucket_and_key(url, expected):
    assert split_uri(url) == expected


@pytest.mark.parametrize("url", ["https://example.com/b/k", "http://b.s3.amazonaws.com/k", "https://s3.amazonaws.com/"])
def test_other_urls_are_not_s3_objects(url):
    with pytest.raises(
        JobInputError,
        match=f'"{url}" is not an S3 URI of the form s3://bucket/key or https://bucket.s3.region.amazonaws.com/key.',
    ):
        split_uri(url)


def test_a_model_data_url_in_https_form_serves_the_transform(sm, s3):
    model_artifact(s3, "models/https/model.tar.gz", value=2.0)
    url = f"https://{BUCKET}.s3-{REGION}.amazonaws.com/models/https/model.tar.gz"
    sm.create_model(
        ModelName="https-model", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": url}, ExecutionRoleArn=ROLE
    )
    put_csv(s3, "batch/https/a.csv", "1\n")
    job = _transform(sm, "t-https", "https-model", f"s3://{BUCKET}/batch/https/", f"s3://{BUCKET}/batch/https-out")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert _read(s3, "batch/https-out/a.csv.out") == b'{"score": 2.0}\n'


def test_batch_strategy_decides_the_requests(sm, s3, model):
    put_csv(s3, "batch/in/a.csv", "1\n2\n3\n")
    source = f"s3://{BUCKET}/batch/in/"
    _transform(
        sm,
        "t-single",
        model,
        source,
        f"s3://{BUCKET}/single",
        BatchStrategy="SingleRecord",
        Accept="application/json",
        AssembleWith="None",
    )
    _transform(
        sm,
        "t-multi",
        model,
        source,
        f"s3://{BUCKET}/multi",
        BatchStrategy="MultiRecord",
        Accept="application/json",
        AssembleWith="None",
    )
    one = json.dumps({"predictions": [{"score": 1.5}]}).encode()
    assert _read(s3, "single/a.csv.out") == one * 3
    assert _read(s3, "multi/a.csv.out") == json.dumps({"predictions": [{"score": 1.5}] * 3}).encode()


def test_split_none_sends_each_object_whole(sm, s3, model):
    put_csv(s3, "batch/in/a.csv", "1\n2\n")
    _transform(
        sm,
        "t-none",
        model,
        f"s3://{BUCKET}/batch/in/a.csv",
        f"s3://{BUCKET}/whole/",
        SplitType="None",
        Accept="text/csv",
        AssembleWith="None",
    )
    assert _read(s3, "whole/a.csv.out") == b"1.5\n1.5\n"


def test_a_model_error_fails_the_job(sm, s3, model):
    put_csv(s3, "batch/bad/a.csv", "1\nnot-a-number\n")
    job = _transform(
        sm, "t-bad", model, f"s3://{BUCKET}/batch/bad/", f"s3://{BUCKET}/bad-out", BatchStrategy="SingleRecord"
    )
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        f"ClientError: The model answered request 2 for s3://{BUCKET}/batch/bad/a.csv with status 400: "
        "unable to evaluate payload provided"
    )


def test_unknown_model_is_refused(sm, s3):
    with pytest.raises(ClientError) as excinfo:
        _transform(sm, "t-ghost", "ghost", f"s3://{BUCKET}/x/", f"s3://{BUCKET}/y/")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/ghost".',
    )


def test_empty_input_fails(sm, s3, model):
    job = _transform(sm, "t-empty", model, f"s3://{BUCKET}/nothing/", f"s3://{BUCKET}/y/")
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        f'ClientError: Data download failed: No S3 objects found under S3 URL "s3://{BUCKET}/nothing/"'
    )


def test_stop_and_duplicate(sm, s3, model):
    put_csv(s3, "batch/in/a.csv", "1\n")
    request_source = f"s3://{BUCKET}/batch/in/"
    sm.create_transform_job(
        TransformJobName="t-stop",
        ModelName=model,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": request_source}}},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/stopped"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sm.stop_transform_job(TransformJobName="t-stop")
    with pytest.raises(ClientError) as excinfo:
        _transform(sm, "t-stop", model, request_source, f"s3://{BUCKET}/again")
    assert error_of(excinfo) == (
        "ResourceInUse",
        "Transform job names must be unique within an AWS account and region, and a transform job with this name "
        f"already exists (arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/t-stop)",
    )
    job = wait_for(
        lambda: sm.describe_transform_job(TransformJobName="t-stop"), lambda j: j["TransformJobStatus"] == "Stopped"
    )
    assert job["TransformJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as excinfo:
        sm.stop_transform_job(TransformJobName="t-stop")
    assert error_of(excinfo) == (
        "ValidationException",
        "The request was rejected because the transform job is in status Stopped.",
    )
    listed = sm.list_transform_jobs(StatusEquals="Stopped")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == ["t-stop"]
