"""Endpoint health: a model server that dies or stops answering /ping is replaced as SageMaker replaces an
unhealthy instance (the endpoint stays InService), and a model that keeps crashing fails the endpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import threading
import time

import psutil
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, IMAGE, REGION, ROLE, assert_healthy, deploy, error_of, model_artifact, wait_for

from sagemaker_emulator.jobs.inference import ModelServer
from sagemaker_emulator.jobs.process import Supervisor

GROUP = "/aws/sagemaker/Endpoints/ep"
JSON = "application/json"
NOTE = "[SageMaker health check] "
UNAVAILABLE = (
    "Production variant AllTraffic of endpoint ep has no healthy instance right now: an instance that failed its "
    "health check is being replaced. Try your call again."
)


@pytest.fixture
def fast_health(emulator, monkeypatch):
    """Health checks ten times a second, a silent server replaced after two missed pings."""
    fast = dataclasses.replace(
        emulator.services.timings,
        health_check_interval_seconds=0.1,
        health_check_timeout_seconds=0.5,
        health_check_misses=2,
    )
    monkeypatch.setattr(emulator.services, "timings", fast)


class SteppedClock:
    """The wall clock plus an offset the test moves forward."""

    def __init__(self):
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def marker(emulator, monkeypatch, tmp_path):
    """Where mean-regressor's test hook notes its first start: a file on this machine, which only a model server
    outside the sandbox can write, so these tests' model servers run without it."""
    monkeypatch.setattr(emulator.services, "supervisor", Supervisor(use_sandbox=False))
    return tmp_path / "started"


def _deploy_restarting(sm, s3, marker, mode: str) -> None:
    """Endpoint ``ep`` whose model loads once; every later start crashes or hangs (mean-regressor's test hook)."""
    environment = {"MEAN_REGRESSOR_TEST_FIRST_START": str(marker), "MEAN_REGRESSOR_TEST_RESTARTS": mode}
    container = {"Image": IMAGE, "ModelDataUrl": model_artifact(s3, "models/ep.tar.gz"), "Environment": environment}
    sm.create_model(ModelName="ep", PrimaryContainer=container, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(
        EndpointConfigName="ep",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "ep", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    described = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] != "Creating")
    assert described["EndpointStatus"] == "InService"


def _server(emulator):
    """The model server of endpoint ep's only variant now (None while it is being replaced)."""
    return emulator.state_for(REGION).endpoints.get("ep").deployment.variants[0].server


def _answer(runtime):
    """The endpoint's prediction for one row, or the error code it answers instead."""
    try:
        reply = runtime.invoke_endpoint(EndpointName="ep", Body=b"1,2\n", ContentType="text/csv", Accept=JSON)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return json.loads(reply["Body"].read())


def _healed(sm, runtime) -> tuple[dict, set[str]]:
    """Invoke until the endpoint answers again; returns the answer and every status seen meanwhile."""
    statuses = set()

    def probe():
        statuses.add(sm.describe_endpoint(EndpointName="ep")["EndpointStatus"])
        return _answer(runtime)

    return wait_for(probe, lambda answer: isinstance(answer, dict), timeout=60), statuses


def _notes(logs) -> dict[str, list[str]]:
    """The emulator's health lines in endpoint ep's log group, by stream."""
    found = {}
    for stream in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]:
        name = stream["logStreamName"]
        events = logs.get_log_events(logGroupName=GROUP, logStreamName=name)["events"]
        found[name] = [e["message"][len(NOTE) :] for e in events if e["message"].startswith(NOTE)]
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(server) -> None:
    """SIGKILL to a model server's first process; in the sandbox the server inside dies a moment later (until then
    it may still answer), so this waits for it."""
    inside = server.child.processes()
    os.kill(server.child.popen.pid, signal.SIGKILL)
    wait_for(lambda: [pid for pid in inside if _live(pid)], lambda live: not live)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _monitors() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "health:ep"]


def test_killed_model_server_is_replaced(sm, s3, runtime, logs, emulator, fast_health):
    deploy(sm, "ep", model_artifact(s3, "models/ep.tar.gz"))
    old = _server(emulator)
    _kill(old)
    answer, statuses = _healed(sm, runtime)
    assert answer == {"predictions": [{"score": 2.5}]}
    assert statuses == {"InService"}
    new = _server(emulator)
    assert new is not old and new.alive
    old_instance, new_instance = old.logs.stream.split("/")[1], new.logs.stream.split("/")[1]
    notes = wait_for(lambda: _notes(logs), lambda found: all(found.values()))
    assert notes == {
        old.logs.stream: [
            f"Instance {old_instance} failed its health check: the model server was killed by SIGKILL. Replacing it."
        ],
        new.logs.stream: [
            f"Instance {new_instance} replaces instance {old_instance} of production variant AllTraffic."
        ],
    }
    assert_healthy(emulator)


def test_model_server_that_stops_answering_ping_is_replaced(sm, s3, runtime, logs, emulator, fast_health):
    deploy(sm, "ep", model_artifact(s3, "models/ep.tar.gz"))
    old = _server(emulator)
    for pid in old.child.processes():  # the model server and its sandbox, whose first process is not bwrap
        os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: _server(emulator), lambda server: server is not None and server is not old, timeout=60)
    assert not _running(old.child.popen.pid)
    answer, statuses = _healed(sm, runtime)
    assert (answer, statuses) == ({"predictions": [{"score": 2.5}]}, {"InService"})
    notes = wait_for(lambda: _notes(logs)[old.logs.stream], bool)
    assert notes == [
        f"Instance {old.logs.stream.split('/')[1]} failed its health check: it did not answer 2 GET /ping health "
        "checks in a row within 0.5 s each. Replacing it."
    ]
    assert_healthy(emulator)


def test_requests_during_a_replacement_get_service_unavailable(sm, s3, runtime, emulator, monkeypatch, marker):
    slow = dataclasses.replace(emulator.services.timings, health_check_interval_seconds=3600.0)
    monkeypatch.setattr(emulator.services, "timings", slow)  # only a request wakes it
    _deploy_restarting(sm, s3, marker, "hang")  # the replacement never gets ready: the gap lasts
    old = _server(emulator)
    _kill(old)
    wait_for(lambda: old.alive, lambda alive: not alive)
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"1,2\n", ContentType="text/csv")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error_of(excinfo) == ("ServiceUnavailable", UNAVAILABLE)
    wait_for(emulator.services.supervisor.live, lambda children: len(children) == 1)  # the request woke the monitor
    assert _server(emulator) is None
    assert _answer(runtime) == "ServiceUnavailable"
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"
    assert_healthy(emulator)


def test_model_that_crashes_on_every_restart_fails_the_endpoint(sm, s3, runtime, logs, emulator, fast_health, marker):
    _deploy_restarting(sm, s3, marker, "crash")
    _kill(_server(emulator))
    described = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] != "InService")
    assert described["EndpointStatus"] == "Failed"
    crash = (
        "The primary container for production variant AllTraffic did not pass the ping health check. Please check "
        f"CloudWatch logs for this endpoint. (AlgorithmError: Not the first start ({marker} exists): "
        "crashing, as MEAN_REGRESSOR_TEST_RESTARTS asks.)"
    )
    assert re.fullmatch(
        "The primary container for production variant AllTraffic failed 3 times within 600 seconds, so its instance "
        "is no longer replaced. Please check CloudWatch logs for this endpoint. Last failure: Instance i-[0-9a-f]{17} "
        f"did not start: {re.escape(crash)}",
        described["FailureReason"],
    )
    assert emulator.services.supervisor.live() == []
    wait_for(_monitors, lambda threads: threads == [])
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="ep", Body=b"1,2\n", ContentType="text/csv")
    assert error_of(excinfo) == ("ValidationError", f"Endpoint ep of account {ACCOUNT} not found.")
    notes = [line for lines in _notes(logs).values() for line in lines]
    assert sum(line.endswith("Not replacing it: 3 failures within 600 s.") for line in notes) == 1
    assert_healthy(emulator)


def test_failures_count_within_the_window_only(sm, s3, runtime, emulator, fast_health, monkeypatch):
    clock = SteppedClock()
    monkeypatch.setattr(emulator.services, "clock", clock)
    monkeypatch.setattr(
        emulator.services, "timings", dataclasses.replace(emulator.services.timings, max_instance_failures=2)
    )
    deploy(sm, "ep", model_artifact(s3, "models/ep.tar.gz"))
    _kill(_server(emulator))
    assert _healed(sm, runtime)[1] == {"InService"}
    clock.offset += 601.0
    _kill(_server(emulator))
    assert _healed(sm, runtime)[1] == {"InService"}
    _kill(_server(emulator))
    described = wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] != "InService")
    assert described["EndpointStatus"] == "Failed"
    assert "failed 2 times within 600 seconds" in described["FailureReason"]
    assert_healthy(emulator)


def test_delete_during_a_replacement_leaves_no_child(sm, s3, runtime, emulator, fast_health, marker):
    _deploy_restarting(sm, s3, marker, "hang")
    old_pid = _server(emulator).child.popen.pid
    os.kill(old_pid, signal.SIGKILL)
    starting = wait_for(
        lambda: [child for child in emulator.services.supervisor.live() if child.popen.pid != old_pid],
        lambda children: len(children) == 1,
    )[0]
    assert _answer(runtime) == "ServiceUnavailable"
    sm.delete_endpoint(EndpointName="ep")
    wait_for(lambda: sm.list_endpoints()["Endpoints"], lambda endpoints: endpoints == [])
    assert starting.returncode is not None
    assert emulator.services.supervisor.live() == []
    assert _monitors() == []
    assert_healthy(emulator)


def test_reset_during_a_replacement_leaves_no_child(sm, s3, emulator, fast_health, marker):
    _deploy_restarting(sm, s3, marker, "hang")
    old_pid = _server(emulator).child.popen.pid
    os.kill(old_pid, signal.SIGKILL)
    starting = wait_for(
        lambda: [child for child in emulator.services.supervisor.live() if child.popen.pid != old_pid],
        lambda children: len(children) == 1,
    )[0]
    emulator.reset()
    assert starting.returncode is not None
    assert emulator.services.supervisor.live() == []
    assert _monitors() == []
    assert_healthy(emulator)


def test_update_hands_health_checks_to_the_new_configuration(sm, s3, runtime, emulator, fast_health):
    deploy(sm, "ep", model_artifact(s3, "models/ep.tar.gz"))
    model_data = model_artifact(s3, "models/ep2.tar.gz", value=7.0)
    sm.create_model(
        ModelName="m2", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "m2", "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[variant])
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2")
    wait_for(lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointConfigName"] == "c2")
    wait_for(emulator.services.supervisor.live, lambda children: len(children) == 1)
    assert len(_monitors()) == 1
    _kill(_server(emulator))
    answer, statuses = _healed(sm, runtime)
    assert (answer, statuses) == ({"predictions": [{"score": 7.0}]}, {"InService"})
    assert_healthy(emulator)


def test_a_model_server_that_never_answers_ping_fails_the_endpoint(sm, s3, emulator, monkeypatch):
    monkeypatch.setattr(ModelServer, "ping", lambda server, timeout: False)
    described = deploy(sm, "ep", model_artifact(s3, "models/ep.tar.gz"))
    assert (described["EndpointStatus"], described["FailureReason"]) == (
        "Failed",
        "The primary container for production variant AllTraffic did not pass the ping health check. Please check "
        "CloudWatch logs for this endpoint. (It did not answer 3 GET /ping health checks in a row within 2 s each.)",
    )
    assert emulator.services.supervisor.live() == []
    assert_healthy(emulator)
