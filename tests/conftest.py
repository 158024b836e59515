"""Fixtures every test package shares: one emulator per test session on 127.0.0.1, reset before each use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sagemaker_emulator
from sagemaker_emulator.algorithms.registry import PLUGINS_VARIABLE

# The test algorithm, registered for every emulator (and container) the tests start, in this process or a child.
os.environ[PLUGINS_VARIABLE] = f"mean-regressor={Path(__file__).parent / 'emulator' / 'mean_regressor.py'}"


@pytest.fixture(scope="session")
def running_emulator():
    emulator = sagemaker_emulator.start(stop_grace_seconds=2.0)
    yield emulator
    emulator.stop()
    assert not emulator.services.supervisor.live(), "child processes were left running"


@pytest.fixture
def emulator(running_emulator):
    """The session's emulator with fresh state (no buckets, jobs, endpoints) for this test."""
    running_emulator.reset()
    yield running_emulator
    running_emulator.reset()
