"""Invocations while an endpoint changes: no request fails because of an UpdateEndpoint, a reweigh or a delete.

The traffic tests keep a few threads invoking a slow model in a loop while the control plane changes the endpoint,
and collect every error a caller saw (retries off, so a 503 counts too). The held tests keep one request inside
the model (mean-regressor's hold hook) to pin down what happens to it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import ACCOUNT, IMAGE, ROLE, assert_healthy, error_of, model_artifact, wait_for

from sagemaker_emulator.jobs.inference import ModelServer
from sagemaker_emulator.jobs.process import Supervisor

CALLERS = 4
UPDATES = 4
REWEIGHS = 20  # even
SLOW = {"MEAN_REGRESSOR_TEST_LATENCY_SECONDS": "0.1"}  # requests queue in the model, so some are always in flight


class Traffic:
    """``CALLERS`` threads invoking endpoint ``ep`` until the block ends; collects the scores and the errors seen."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.scores: Counter[float] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._call, daemon=True) for _ in range(CALLERS)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()

    def _call(self) -> None:
        while not self._done.is_set():
            try:
                reply = self.runtime.invoke_endpoint(
                    EndpointName="ep", Body=b"1,2\n", ContentType="text/csv", Accept="application/json"
                )
            except ClientError as error:
                with self._lock:
                    self.errors[_code_and_message(error)] += 1
                continue
            score = json.loads(reply["Body"].read())["predictions"][0]["score"]
            with self._lock:
                self.scores[score] += 1

    def wait_for_answers(self, count: int) -> None:
        """Until ``count`` more answers (or errors) came back: each change below happens under live traffic."""
        with self._lock:
            start = self.scores.total() + self.errors.total()
        wait_for(lambda: self.scores.total() + self.errors.total() - start, lambda seen: seen >= count)


def _code_and_message(error: ClientError) -> tuple[str, str]:
    return error.response["Error"]["Code"], error.response["Error"]["Message"]


def _config(sm, s3, name: str, value: float, environment: dict) -> None:
    """Model and endpoint config ``name``, one variant predicting ``value``."""
    container = {
        "Image": IMAGE,
        "ModelDataUrl": model_artifact(s3, f"models/{name}.tar.gz", value=value),
        "Environment": environment,
    }
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large"}],
    )


def _in_service(sm) -> dict:
    return wait_for(
        lambda: sm.describe_endpoint(EndpointName="ep"), lambda e: e["EndpointStatus"] not in ("Creating", "Updating")
    )


def test_no_invocation_fails_during_updates(sm, s3, runtime, emulator):
    _config(sm, s3, "ep", 2.5, SLOW)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    _config(sm, s3, "seven", 7.0, SLOW)
    assert _in_service(sm)["EndpointStatus"] == "InService"
    with Traffic(runtime) as traffic:
        for step in range(UPDATES):
            traffic.wait_for_answers(CALLERS)
            sm.update_endpoint(EndpointName="ep", EndpointConfigName="seven" if step % 2 == 0 else "ep")
            assert _in_service(sm)["EndpointStatus"] == "InService"
        traffic.wait_for_answers(CALLERS)
    assert traffic.errors == Counter()
    assert set(traffic.scores) == {2.5, 7.0}
    wait_for(emulator.services.supervisor.live, lambda children: len(children) == 1)


def test_an_update_whose_model_never_answers_ping_rolls_back_under_traffic(sm, s3, runtime, emulator, monkeypatch):
    answers = ModelServer.ping
    monkeypatch.setattr(
        ModelServer, "ping", lambda server, timeout: server.variant == "AllTraffic" and answers(server, timeout)
    )
    _config(sm, s3, "ep", 2.5, SLOW)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    model_data = model_artifact(s3, "models/silent.tar.gz", value=7.0)
    sm.create_model(
        ModelName="silent", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName="silent",
        ProductionVariants=[{"VariantName": "Silent", "ModelName": "silent", "InstanceType": "ml.m5.large"}],
    )
    assert _in_service(sm)["EndpointStatus"] == "InService"
    with Traffic(runtime) as traffic:
        traffic.wait_for_answers(CALLERS)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="silent")
        described = _in_service(sm)
        traffic.wait_for_answers(CALLERS)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "ep")
    assert described["FailureReason"].startswith(
        "Updating the endpoint to silent failed: The primary container for production variant Silent did not pass "
        "the ping health check."
    )
    assert (traffic.errors, set(traffic.scores)) == (Counter(), {2.5})
    assert len(emulator.services.supervisor.live()) == 1


def test_no_invocation_fails_while_weights_change(sm, s3, runtime, emulator):
    for name, value in (("a", 2.5), ("b", 7.0)):
        model_data = model_artifact(s3, f"models/{name}.tar.gz", value=value)
        sm.create_model(
            ModelName=name, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data}, ExecutionRoleArn=ROLE
        )
    sm.create_endpoint_config(
        EndpointConfigName="ab",
        ProductionVariants=[
            {"VariantName": "A", "ModelName": "a", "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
            {"VariantName": "B", "ModelName": "b", "InstanceType": "ml.m5.large", "InitialVariantWeight": 0.0},
        ],
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ab")
    assert _in_service(sm)["EndpointStatus"] == "InService"
    with Traffic(runtime) as traffic:
        for step in range(REWEIGHS):
            traffic.wait_for_answers(CALLERS)
            first = float(step % 2)  # A and B swap all the traffic each time
            sm.update_endpoint_weights_and_capacities(
                EndpointName="ep",
                DesiredWeightsAndCapacities=[
                    {"VariantName": "A", "DesiredWeight": first},
                    {"VariantName": "B", "DesiredWeight": 1.0 - first},
                ],
            )
            assert _in_service(sm)["EndpointStatus"] == "InService"
        traffic.wait_for_answers(CALLERS)
    assert traffic.errors == Counter()
    assert set(traffic.scores) == {2.5, 7.0}
    assert [_score(runtime) for _ in range(CALLERS)] == [2.5] * CALLERS  # an even number of swaps: all to A again


def test_invocations_during_a_delete_are_answered_or_find_no_endpoint(sm, s3, runtime, emulator):
    _config(sm, s3, "ep", 2.5, SLOW)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    assert _in_service(sm)["EndpointStatus"] == "InService"
    with Traffic(runtime) as traffic:
        traffic.wait_for_answers(CALLERS)
        sm.delete_endpoint(EndpointName="ep")
        wait_for(lambda: sm.list_endpoints()["Endpoints"], lambda endpoints: endpoints == [])
        traffic.wait_for_answers(CALLERS)
    assert set(traffic.errors) == {("ValidationError", f"Endpoint ep of account {ACCOUNT} not found.")}
    assert set(traffic.scores) == {2.5}
    assert emulator.services.supervisor.live() == []


def _score(runtime) -> float:
    reply = runtime.invoke_endpoint(EndpointName="ep", Body=b"1,2\n", ContentType="text/csv", Accept="application/json")
    return json.loads(reply["Body"].read())["predictions"][0]["score"]


@pytest.fixture
def held(sm, s3, emulator, monkeypatch, tmp_path):
    """Endpoint ``ep`` whose model holds each request while the returned file exists (mean-regressor's test hook).

    The hook's file lives on this machine, which only a model server outside the sandbox sees: these run without it."""
    monkeypatch.setattr(emulator.services, "supervisor", Supervisor(use_sandbox=False))
    hold = tmp_path / "hold"
    hold.touch()
    _config(sm, s3, "ep", 2.5, {"MEAN_REGRESSOR_TEST_HOLD": str(hold)})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    assert _in_service(sm)["EndpointStatus"] == "InService"
    return hold


def test_a_request_in_flight_during_an_update_is_answered_by_the_old_model(sm, s3, runtime, emulator, held):
    _config(sm, s3, "seven", 7.0, {})
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(_score, runtime)
        wait_for(lambda: held.with_suffix(".held").exists(), bool)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="seven")
        assert _in_service(sm)["EndpointConfigName"] == "seven"
        assert _score(runtime) == 7.0  # new requests go to the new model while the old one still answers one
        assert len(emulator.services.supervisor.live()) == 2
        held.unlink()
        assert in_flight.result() == 2.5
    wait_for(emulator.services.supervisor.live, lambda children: len(children) == 1)


def test_a_request_in_flight_during_a_delete_is_answered(sm, runtime, emulator, held):
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(_score, runtime)
        wait_for(lambda: held.with_suffix(".held").exists(), bool)
        sm.delete_endpoint(EndpointName="ep")
        with pytest.raises(ClientError) as excinfo:
            _score(runtime)
        assert error_of(excinfo) == ("ValidationError", f"Endpoint ep of account {ACCOUNT} not found.")
        assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
        held.unlink()
        assert in_flight.result() == 2.5
    wait_for(lambda: sm.list_endpoints()["Endpoints"], lambda endpoints: endpoints == [])
    assert emulator.services.supervisor.live() == []


def test_a_delete_waits_no_longer_than_an_invocation_may_take(sm, runtime, emulator, held, monkeypatch):
    quick = dataclasses.replace(emulator.services.timings, invocation_timeout_seconds=1.0)
    monkeypatch.setattr(emulator.services, "timings", quick)
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(_score, runtime)
        wait_for(lambda: held.with_suffix(".held").exists(), bool)
        sm.delete_endpoint(EndpointName="ep")
        with pytest.raises(ClientError) as excinfo:
            in_flight.result()
    assert excinfo.value.response["Error"]["Code"] == "ModelError"
    assert excinfo.value.response["OriginalStatusCode"] == 504
    wait_for(lambda: sm.list_endpoints()["Endpoints"], lambda endpoints: endpoints == [])
    assert emulator.services.supervisor.live() == []
    assert held.exists()  # the model never answered: the delete went ahead without it


def test_a_reset_while_an_update_drains_leaves_no_child(sm, s3, runtime, emulator, held):
    _config(sm, s3, "seven", 7.0, {})
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(_score, runtime)
        wait_for(lambda: held.with_suffix(".held").exists(), bool)
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="seven")
        assert _in_service(sm)["EndpointConfigName"] == "seven"
        emulator.reset()
        assert emulator.services.supervisor.live() == []
        with pytest.raises(ClientError):
            in_flight.result()
    assert_healthy(emulator)
