"""Fixtures every test package shares: one emulator per test session on 127.0.0.1, reset before each use."""

from __future__ import annotations

import pytest

import sagemaker_emulator


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
