"""FailureReason formatting: the prefix that says whose fault it was, and AWS's 1,024-character cap."""

from __future__ import annotations

from sagemaker_emulator.algorithms.failures import (
    ALGORITHM_ERROR,
    CLIENT_ERROR,
    MAX_LENGTH,
    capped,
    failure_reason,
    out_of_memory_reason,
    room,
)


def test_a_reason_is_its_prefix_then_the_message():
    assert failure_reason(CLIENT_ERROR, "bad channel") == "ClientError: bad channel"


def test_a_long_reason_is_cut_at_1024_characters():
    reason = failure_reason(ALGORITHM_ERROR, "x" * 5000)
    assert len(reason) == MAX_LENGTH == 1024
    assert reason.startswith("AlgorithmError: xxx")
    assert capped("y" * 2000) == "y" * 1024


def test_room_is_what_a_message_may_take_after_its_prefix():
    message = "z" * room(ALGORITHM_ERROR)
    assert failure_reason(ALGORITHM_ERROR, message) == f"AlgorithmError: {message}"
    assert len(failure_reason(ALGORITHM_ERROR, message + "!")) == MAX_LENGTH


def test_out_of_memory_is_a_client_error_naming_the_limit():
    reason = out_of_memory_reason("8 GiB, the memory of an ml.m5.large", "MemoryError")
    assert reason.startswith("ClientError: Please use an instance type with more memory")
    assert reason.endswith("under its limit of 8 GiB, the memory of an ml.m5.large: MemoryError")
