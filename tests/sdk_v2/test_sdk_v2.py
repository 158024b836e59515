"""SageMaker Python SDK v2 users' code against the emulator: each script in ``scripts/`` runs in its own virtualenv.

SDK v2 and v3 cannot share an environment, so the scripts run in ``build/sdk-v2/<hash>/`` (built by
``build_venv.py``, which ``make test`` runs first) with only the environment a local-mode user sets: the emulator's
URL and key, a region, and an SDK config that opts out of telemetry. Marked ``sdk_v2``: deselect them locally
with ``-m "not sdk_v2"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from build_venv import is_built
from build_venv import python as v2_python

pytestmark = pytest.mark.sdk_v2

SCRIPTS = Path(__file__).with_name("scripts")
REGION = "us-east-1"
BUCKET = "sdk-v2-tests"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def v2_environment(emulator, tmp_path) -> dict:
    if not is_built():
        pytest.fail(
            f"The SDK v2 virtualenv is missing: run {Path(__file__).with_name('build_venv.py')} (make test does)."
        )
    keys = emulator.credentials.as_boto3()
    boto3.client("s3", endpoint_url=emulator.url, region_name=REGION, **keys).create_bucket(Bucket=BUCKET)
    iam = boto3.client("iam", endpoint_url=emulator.url, region_name=REGION, **keys)
    iam.create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=json.dumps(TRUST))
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR", "LANG") if name in os.environ}
    return {
        **keep,
        **emulator.credentials.as_environment(),
        "AWS_ENDPOINT_URL": emulator.url,
        "AWS_DEFAULT_REGION": REGION,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "TEST_ROLE": ROLE,
        "TEST_BUCKET": BUCKET,
    }


def _run(script: str, environment: dict, python: Path | None = None) -> str:
    """The script's output; it runs with the SDK v2 virtualenv's Python unless ``python`` is given."""
    done = subprocess.run(
        [str(python or v2_python()), str(SCRIPTS / script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.mark.parametrize(
    "script, done",
    [
        ("factorization_machines.py", "SDK v2 factorization-machines: OK"),
        ("knn.py", "SDK v2 knn: OK"),
        ("object2vec.py", "SDK v2 object2vec: OK"),
        ("tuner.py", "SDK v2 tuner: OK"),
        ("sklearn_script.py", "SDK v2 sklearn script: OK"),
        ("knn_float64.py", "SDK v2 knn float64: OK"),
        ("training_analytics.py", "SDK v2 training analytics: OK"),
    ],
)
def test_sdk_v2_user_code_runs_unchanged(v2_environment, script, done):
    assert done in _run(script, v2_environment)


def test_sdk_v2_attaches_to_a_tuning_job_that_sdk_v3_made(v2_environment):
    """A notebook tunes with SDK v3; after a kernel restart, SDK v2 code resumes the tuner by name."""
    v3_environment = {**v2_environment, "SAGEMAKER_VALIDATE_ROLE": "false"}  # as common.session sets it
    assert "SDK v3 tuner: OK" in _run("v3_tuner.py", v3_environment, python=Path(sys.executable))
    assert "SDK v2 attach: OK" in _run("attach.py", v2_environment)
