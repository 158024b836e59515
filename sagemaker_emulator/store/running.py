"""A serving emulator as a kernel sees it: its address, keys and home, read from its runtime file by ``home.py`` and
passed to ``busy.py``, which both import it from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sagemaker_emulator.auth import Credentials

SDK_CONFIG = "sagemaker-config.yaml"


@dataclass(frozen=True)
class Running:
    """A serving emulator as its runtime file describes it."""

    url: str
    pid: int
    credentials: Credentials
    home: Path
    started: float
    code: str = ""  # code_version() of the process serving
    checkout: str = ""  # code_root() of the process serving ("" if an earlier version started it)
    notice: str = ""  # set by ensure() when it had to keep an emulator running other code: why, and until when

    def exports(self, region: str) -> str:
        """The shell lines that point boto3 and the SageMaker SDK at this emulator."""
        keys = self.credentials
        host = urlparse(self.url).hostname
        return "\n".join(
            [
                f"export AWS_ENDPOINT_URL={self.url}",
                f"export AWS_ACCESS_KEY_ID={keys.access_key_id} AWS_SECRET_ACCESS_KEY={keys.secret_access_key}",
                f"export AWS_DEFAULT_REGION={region}",
                f"export SAGEMAKER_USER_CONFIG_OVERRIDE={sdk_config(self.home)}",
                # behind a proxy, loopback must bypass it (added to what the shell already has)
                f'export NO_PROXY="${{NO_PROXY:+$NO_PROXY,}}{host}" no_proxy="${{no_proxy:+$no_proxy,}}{host}"',
            ]
        )


def sdk_config(home: Path) -> Path:
    """The SDK config file for this emulator: telemetry off (its HTTPS call ignores the endpoint variables)."""
    return home / SDK_CONFIG
