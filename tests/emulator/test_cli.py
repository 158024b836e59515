"""``python -m sagemaker_emulator serve``: prints the exports, answers on loopback, refuses other hosts."""
from __future__ import annotations

import signal
import subprocess
import sys

import boto3
from emulator_helpers import REGION


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sagemaker_emulator", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_serve_prints_the_exports_and_answers():
    process = _serve("--port", "0")
    try:
        first = process.stdout.readline()
        assert first.startswith("SageMaker emulator listening on http://127.0.0.1:")
        url = first.split(" on ", 1)[1].split(" ", 1)[0]
        lines = [process.stdout.readline().strip() for _ in range(4)]
        assert lines[0] == f"export AWS_ENDPOINT_URL={url}"
        assert lines[1] == "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1"
        assert lines[2].startswith("export SAGEMAKER_USER_CONFIG_OVERRIDE=") and lines[3] == "Press Ctrl-C to stop."
        sagemaker = boto3.client(
            "sagemaker", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
        )
        assert sagemaker.list_endpoints()["Endpoints"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def test_serve_refuses_a_public_host():
    process = _serve("--host", "0.0.0.0", "--port", "0")
    assert process.wait(60) == 2
    assert process.stderr.read().strip() == (
        "Refusing to listen on '0.0.0.0': the emulator only listens on loopback (e.g. 127.0.0.1)."
    )
