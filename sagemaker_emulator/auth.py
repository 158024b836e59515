"""Who may talk to the emulator: one key pair per emulator, checked on every request with AWS's SigV4.

The emulator runs code on request, so it is guarded like any local service that does (as Jupyter guards its
kernels with a token): a request must carry a valid SigV4 signature made with this emulator's secret key.
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Credentials:
    """An AWS-style key pair; ``generate()`` makes a fresh random one."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> "Credentials":
        access = "ASIAEMU" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(13))
        return cls(access, secrets.token_urlsafe(30))

    def as_boto3(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}

    def as_environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
