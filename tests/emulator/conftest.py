"""One emulator per test session on 127.0.0.1; every test that uses it starts from a reset (fresh) state."""
from __future__ import annotations

import pytest
from emulator_helpers import BUCKET, client

import sagemaker_emulator


@pytest.fixture(scope="session")
def running_emulator():
    emulator = sagemaker_emulator.start(stop_grace_seconds=2.0)
    yield emulator
    emulator.stop()
    assert not emulator.services.supervisor.live(), "child processes were left running"


@pytest.fixture
def emulator(running_emulator):
    running_emulator.reset()
    yield running_emulator
    running_emulator.reset()


@pytest.fixture
def sm(emulator):
    return client(emulator, "sagemaker")


@pytest.fixture
def sm_unchecked(emulator):
    """A SageMaker client that sends bad requests as they are, so the server's own validation answers."""
    return client(emulator, "sagemaker", parameter_validation=False)


@pytest.fixture
def runtime(emulator):
    return client(emulator, "sagemaker-runtime")


@pytest.fixture
def logs(emulator):
    return client(emulator, "logs")


@pytest.fixture
def s3(emulator):
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3
