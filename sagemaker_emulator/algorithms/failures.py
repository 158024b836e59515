"""AWS's ``FailureReason``: whose fault it was, then what happened, in at most 1,024 characters.

SageMaker prefixes the reason with ``ClientError: `` (what the caller sent), ``AlgorithmError: `` (the algorithm)
or ``InternalServerError: `` (the service itself), and DescribeTrainingJob documents ``FailureReason`` as at most
1,024 characters. Every reason the emulator writes, in a container or in a runner, goes through here.
"""

from __future__ import annotations

MAX_LENGTH = 1024
CLIENT_ERROR = "ClientError"
ALGORITHM_ERROR = "AlgorithmError"
INTERNAL_ERROR = "InternalServerError"

# SageMaker's FailureReason (after "ClientError: ") for a job whose container ran out of memory
OUT_OF_MEMORY = "Please use an instance type with more memory, or reduce the size of job data processed on an instance."


def failure_reason(kind: str, message: str) -> str:
    """``<kind>: <message>`` within AWS's 1,024 characters (``kind`` is one of the three prefixes above)."""
    return capped(f"{kind}: {message}")


def capped(reason: str) -> str:
    """A reason already prefixed (read from a container's ``output/failure``) within AWS's 1,024 characters."""
    return reason[:MAX_LENGTH]


def room(kind: str) -> int:
    """How many characters a message after ``<kind>: `` may have before :func:`failure_reason` cuts it."""
    return MAX_LENGTH - len(kind) - 2


def out_of_memory_reason(limit_note: str, detail: str) -> str:
    """A FailureReason for running out of memory: SageMaker's words, then the limit here and what happened."""
    return failure_reason(
        CLIENT_ERROR,
        f"{OUT_OF_MEMORY} The training container ran out of memory under its limit of {limit_note}: {detail}",
    )
