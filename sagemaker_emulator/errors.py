"""The errors the emulator answers with, each carrying AWS's error code, HTTP status and message.

Handlers raise these; only ``server.py`` turns them into wire bodies. Codes and wording follow what AWS
answers (a missing SageMaker resource is mostly ``ValidationException``, not the ``ResourceNotFound`` the
service model declares: aws/aws-sdk#165).
"""

from __future__ import annotations


class ServiceError(Exception):
    """An AWS error: ``code`` (the ``__type``), HTTP ``status`` and ``message``; ``extra`` goes into the body."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"__type": self.code, "message": self.message, **self.extra}


class ValidationException(ServiceError):
    code = "ValidationException"
    status = 400


class SerializationException(ServiceError):
    code = "SerializationException"
    status = 400


class UnknownOperationException(ServiceError):
    code = "UnknownOperationException"
    status = 400


class ResourceNotFound(ServiceError):
    code = "ResourceNotFound"
    status = 400


class ResourceInUse(ServiceError):
    code = "ResourceInUse"
    status = 400


class ResourceLimitExceeded(ServiceError):
    code = "ResourceLimitExceeded"
    status = 400


class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


class RuntimeValidationError(ServiceError):
    """SageMaker Runtime's own rejection of a request (unknown endpoint, body too large)."""

    code = "ValidationError"
    status = 400

    def body(self) -> dict:
        return {"ErrorCode": self.code, "Message": self.message, **self.extra}


class ModelError(RuntimeValidationError):
    """The model answered an invocation with an error status; the runtime relays it as a 424."""

    code = "ModelError"
    status = 424


def limit_exceeded(quota: str, limit: int, used: int, delta: int) -> ResourceLimitExceeded:
    """AWS's wording for an account quota that a request would exceed."""
    return ResourceLimitExceeded(
        f"The account-level service limit '{quota}' is {limit} Instances, with current utilization of {used} "
        f"Instances and a request delta of {delta} Instances. Please use AWS Service Quotas to request an "
        "increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an "
        "increase for this quota."
    )


class JobInputError(Exception):
    """A fault in what a job or endpoint was given (an S3 URI or key, a manifest, a channel name, an archive).

    Not an API answer: the job fails with FailureReason ``ClientError: <message>``, as SageMaker words it. The control
    plane's own type; the algorithm plug-ins raise theirs (``algorithms.base.ClientError``) inside the container.
    """
