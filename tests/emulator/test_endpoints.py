"""Endpoints and InvokeEndpoint: model servers per variant, statuses, updates, deletes, errors, concurrency."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, BUCKET, IMAGE, REGION, ROLE, deploy, error_of, model_artifact, wait_for

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def _invoke(runtime, name: str, body: bytes = b"1,2\n3,4\n") -> dict:
    answer = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", Accept="application/json")
    return json.loads(answer["Body"].read())


@pytest.fixture
def endpoint(sm, s3):
    described = deploy(sm, "ep", model_artifact(s3, "models/a/model.tar.gz", value=2.5))
    assert described["EndpointStatus"] == "InService"
    return described


def test_create_describe_invoke(sm, runtime, endpoint):
    assert endpoint["EndpointArn"] == f"{ARN}:endpoint/ep"
    assert endpoint["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert endpoint["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    answer = runtime.invoke_endpoint(
        EndpointName="ep", Body=b"1,2\n3,4\n", ContentType="text/csv", Accept="application/json"
    )
    assert answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads(answer["Body"].read()) == {"predictions": [{"score": 2.5}, {"score": 2.5}]}


def test_accept_is_honoured(runtime, endpoint):
    answer = runtime.invoke_endpoint(EndpointName="ep", Body=b"1\n2\n", ContentType="text/csv", Accept="text/csv")
    assert (answer["ContentType"], answer["Body"].read()) == ("text/csv", b"2.5\n2.5\n")


def test_create_is_describable_at_once(sm, s3):
    model_data = model_artifact(s3, "models/a/model.tar.gz")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[{"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large"}],
    )
    assert sm.create_endpoint(EndpointName="e", EndpointConfigName="c")["EndpointArn"] == f"{ARN}:endpoint/e"
    assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Creating"
    wait_for(lambda: sm.describe_endpoint(EndpointName="e"), lambda e: e["EndpointStatus"] == "InService")


def test_unknown_config_is_refused(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint(EndpointName="e", EndpointConfigName="ghost")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
    )


def test_duplicate_endpoint_is_refused(sm, endpoint):
    with pytest.raises(ClientError) as excinfo:
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    assert error_of(excinfo) == ("ValidationException", f'Cannot create already existing endpoint "{ARN}:endpoint/ep".')


def test_unloadable_artifact_fails_the_endpoint(sm, s3, runtime):
    s3.put_object(Bucket=BUCKET, Key="models/broken.tar.gz", Body=b"not a tarball")
    described = deploy(sm, "broken", f"s3://{BUCKET}/models/broken.tar.gz")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        f'Failed to extract model data archive from URL "s3://{BUCKET}/models/broken.tar.gz". Please ensure that the '
        "object located at the URL is a valid tar.gz archive."
    )
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="broken", Body=b"1", ContentType="text/csv")
    assert error_of(excinfo) == ("ValidationError", f"Endpoint broken of account {ACCOUNT} not found.")


def test_model_that_does_not_load_fails_the_endpoint(sm, s3):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz"):
        pass
    s3.put_object(Bucket=BUCKET, Key="models/empty.tar.gz", Body=buffer.getvalue())
    described = deploy(sm, "empty", f"s3://{BUCKET}/models/empty.tar.gz")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == (
        "The primary container for production variant AllTraffic did not pass the ping health check. Please check "
        "CloudWatch logs for this endpoint. (ClientError: The model artifact holds no mean.json.)"
    )


def test_missing_artifact_fails_the_endpoint(sm):
    described = deploy(sm, "missing", f"s3://{BUCKET}/models/none.tar.gz")
    assert described["FailureReason"] == (
        f"Failed to download model data(bucket: {BUCKET}, key: models/none.tar.gz). Please ensure that there is an "
        "object located at the URL and that the role passed to CreateModel has permissions to download the model."
    )


def test_invoke_unknown_endpoint(runtime):
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ghost", Body=b"1", ContentType="text/csv")
    assert error_of(excinfo) == ("ValidationError", f"Endpoint ghost of account {ACCOUNT} not found.")


def test_malformed_body_is_a_model_error(runtime, endpoint):
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"a,b\n", ContentType="text/csv")
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"].startswith("unable to evaluate payload provided: ")
    assert response["LogStreamArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/ep"
    code, message = error_of(excinfo)
    assert code == "ModelError"
    assert message.startswith(
        'Received client error (400) from model with message "unable to evaluate payload provided'
    )
    assert message.endswith(
        f"See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/ep in account {ACCOUNT} for more information."
    )
    assert _invoke(runtime, "ep") == {"predictions": [{"score": 2.5}, {"score": 2.5}]}


def test_unsupported_content_type_is_relayed(runtime, endpoint):
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"<x/>", ContentType="application/xml")
    assert excinfo.value.response["OriginalStatusCode"] == 415


def test_fifty_concurrent_invocations(runtime, endpoint):
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda i: _invoke(runtime, "ep", f"{i},1\n".encode()), range(50)))
    assert answers == [{"predictions": [{"score": 2.5}]}] * 50


def test_deleting_the_config_and_model_in_use_is_allowed(sm, runtime, endpoint):
    sm.delete_endpoint_config(EndpointConfigName="ep")
    sm.delete_model(ModelName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"
    assert _invoke(runtime, "ep") == {"predictions": [{"score": 2.5}, {"score": 2.5}]}


def test_update_swaps_the_model(sm, s3, runtime, endpoint):
    model_data = model_artifact(s3, "models/b/model.tar.gz", value=7.0)
    sm.create_model(
        ModelName="m2", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName="c2",
        ProductionVariants=[{"VariantName": "v2", "ModelName": "m2", "InstanceType": "ml.m5.large"}],
    )
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    with pytest.raises(ClientError) as excinfo:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    assert error_of(excinfo) == ("ValidationException", f'Cannot update in-progress endpoint "{ARN}:endpoint/ep".')
    assert _invoke(runtime, "ep")["predictions"][0]["score"] in (2.5, 7.0)
    described = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] == "InService")
    assert described["EndpointConfigName"] == "c2"
    assert _invoke(runtime, "ep") == {"predictions": [{"score": 7.0}, {"score": 7.0}]}


def test_failed_update_rolls_back(sm, s3, runtime, endpoint):
    sm.create_model(
        ModelName="m2", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/none"}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName="c2",
        ProductionVariants=[{"VariantName": "v2", "ModelName": "m2", "InstanceType": "ml.m5.large"}],
    )
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    described = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] != "Updating")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "ep")
    assert described["FailureReason"].startswith("Updating the endpoint to c2 failed: Failed to download model data")
    assert _invoke(runtime, "ep") == {"predictions": [{"score": 2.5}, {"score": 2.5}]}


def test_delete_stops_serving(sm, runtime, endpoint, emulator):
    servers = len(emulator.services.supervisor.live())
    sm.delete_endpoint(EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"1", ContentType="text/csv")
    assert error_of(excinfo) == ("ValidationError", f"Endpoint ep of account {ACCOUNT} not found.")
    wait_for(lambda: [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]], lambda names: names == [])
    assert len(emulator.services.supervisor.live()) == servers - 1
    with pytest.raises(ClientError) as excinfo:
        sm.describe_endpoint(EndpointName="ep")
    assert error_of(excinfo) == ("ValidationException", f'Could not find endpoint "{ARN}:endpoint/ep".')


def test_list_by_status(sm, s3, endpoint):
    deploy(sm, "broken", f"s3://{BUCKET}/none")
    failed = sm.list_endpoints(StatusEquals="Failed")["Endpoints"]
    assert [e["EndpointName"] for e in failed] == ["broken"]


def test_body_above_the_runtime_limit_is_refused(runtime, endpoint):
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"1\n" * (3 * 1024 * 1024 + 1), ContentType="text/csv")
    assert error_of(excinfo) == (
        "ValidationError",
        "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length less "
        "than or equal to 6291456",
    )


def _listening_addresses(root_pid: int) -> list[str]:
    """Local addresses of every listening TCP socket owned by ``root_pid`` and its descendants (Linux /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root_pid}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    inodes = set()
    for pid in tree:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            if columns[3] == "0A" and columns[9] in inodes:
                found.append(columns[1].split(":")[0])
    return found


LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}


def test_nothing_listens_beyond_loopback(sm, s3, endpoint, emulator):
    addresses = _listening_addresses(os.getpid())
    assert len(addresses) >= 2  # the emulator and the endpoint's model server at least
    assert set(addresses) <= LOOPBACK_HEX


def _stream_lines(logs, group: str) -> list[str]:
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [re.fullmatch(r"AllTraffic/i-[0-9a-f]{17}", s["logStreamName"]) is not None for s in streams] == [True]
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])["events"]
    return [event["message"] for event in events]


def test_the_endpoint_log_tells_the_model_servers_life_and_each_failed_request(sm, runtime, logs, endpoint):
    group = "/aws/sagemaker/Endpoints/ep"
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"<x/>", ContentType="application/xml", Accept="text/csv")
    assert error_of(excinfo)[0] == "ModelError"
    lines = wait_for(lambda: _stream_lines(logs, group), lambda lines: any("Invocation failed" in x for x in lines))
    (failed,) = [line for line in lines if "Invocation failed" in line]
    assert re.search(r"\bERROR\b.*Invocation failed: status 415, Content type application/xml is not supported", failed)
    assert failed.endswith("; request Content-Type application/xml, Accept text/csv, 4 bytes")
    assert any("Loading the model from " in line for line in lines)
    assert any("Model server listening on 127.0.0.1:" in line for line in lines)
    wait_for(
        lambda: _stream_lines(logs, group), lambda lines: any("Health check GET /ping answered 200" in x for x in lines)
    )
    sm.delete_endpoint(EndpointName="ep")
    lines = wait_for(lambda: _stream_lines(logs, group), lambda lines: "Model server stopped" in lines[-1])
    assert any("Received SIGTERM: the model server is shutting down" in line for line in lines)


def test_weights_and_capacities_change_in_place(sm, endpoint):
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 0.5, "DesiredInstanceCount": 2}],
    )
    done = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] == "InService")
    variant = done["ProductionVariants"][0]
    assert (variant["CurrentWeight"], variant["DesiredInstanceCount"]) == (0.5, 2)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"VariantName": "Ghost", "DesiredWeight": 1.0}, "The variant name(s) ['Ghost'] are not present"),
        (
            {"VariantName": "AllTraffic", "ServerlessUpdateConfig": {"MaxConcurrency": 2}},
            "ServerlessUpdateConfig is not supported by the local SageMaker emulator",
        ),
    ],
)
def test_weights_for_unknown_variants_are_refused(sm, endpoint, change, message):
    with pytest.raises(ClientError) as excinfo:
        sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=[change])
    code, text = error_of(excinfo)
    assert code == "ValidationException" and text.startswith(message)
    assert sm.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["CurrentWeight"] == 1.0


def test_monitoring_schedules_and_inference_components_list_empty(sm, endpoint):
    assert sm.list_monitoring_schedules(EndpointName="ep")["MonitoringScheduleSummaries"] == []
    assert sm.list_inference_components(EndpointNameEquals="ep")["InferenceComponents"] == []
    with pytest.raises(ClientError) as excinfo:
        sm.list_monitoring_schedules(NextToken="not-a-token")
    assert error_of(excinfo) == ("ValidationException", "Invalid pagination token.")
