"""Behind a proxy (``HTTP_PROXY``/``HTTPS_PROXY`` set, as on a corporate laptop), loopback traffic never goes to it.

The proxy here is a real one on 127.0.0.2 that answers 502 to everything and notes what it got: a request that
reached it would fail, and the test checks that none did.
"""

from __future__ import annotations

import json
import sys

from emulator_helpers import ACCOUNT, BUCKET, REGION, channel, client, finished_training, put_csv, training_request

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.emulator import Emulator
from sagemaker_emulator.jobs.process import ChildProcess
from sagemaker_emulator.loopback import bypass_proxies

TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:*"}]}
CALLER = "import boto3, os; print(boto3.client('sts').get_caller_identity()['Account'], os.environ['NO_PROXY'])"


def _behind(monkeypatch, proxy) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_emulators_own_clients_go_direct(monkeypatch, refusing_proxy):
    """Its IAM reads (for a policy simulation) and a training job's S3 and Logs calls, from clients it makes after
    the proxy is set; the test's own clients are told not to use a proxy."""
    _behind(monkeypatch, refusing_proxy)
    with Emulator(credentials=Credentials.generate()).start() as emulator:
        iam = client(emulator, "iam", proxies={})
        arn = iam.create_role(RoleName="proxied", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_role_policy(RoleName="proxied", PolicyName="s3", PolicyDocument=json.dumps(grant))
        answer = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"])
        assert answer["EvaluationResults"][0]["EvalDecision"] == "allowed"
        s3, sm = client(emulator, "s3", proxies={}), client(emulator, "sagemaker", proxies={})
        s3.create_bucket(Bucket=BUCKET)
        train = put_csv(s3, "proxied/train.csv", "1,0\n3,0\n")
        sm.create_training_job(**training_request("proxied", [channel("train", train)]))
        job = finished_training(sm, "proxied")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        emulator.reset()
    assert refusing_proxy.requests == []


def test_a_container_reaches_the_emulator_past_its_jobs_proxy(emulator, refusing_proxy, tmp_path):
    """A job's ``Environment`` may set a proxy (for pip, say): its AWS calls still reach the emulator, and the
    job's own ``NO_PROXY`` entries stay."""
    proxy = {"HTTP_PROXY": refusing_proxy.url, "HTTPS_PROXY": refusing_proxy.url, "NO_PROXY": "corp.example"}
    child = ChildProcess(
        [sys.executable, "-c", CALLER], tmp_path, proxy, services=emulator.services, region=REGION, home=tmp_path / "h"
    )
    output = child.stdout.read()
    assert child.terminate(grace_seconds=1) == 0, output
    assert output.split() == [ACCOUNT, "corp.example,127.0.0.1"]
    assert refusing_proxy.requests == []


def test_the_emulators_address_is_added_to_no_proxy():
    assert bypass_proxies({}, "http://127.0.0.1:5123") == {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    both = bypass_proxies({"NO_PROXY": "a.example, b.example", "no_proxy": "b.example,c"}, "http://127.0.0.1:1")
    assert both["NO_PROXY"] == both["no_proxy"] == "b.example,c,a.example,127.0.0.1"
    assert bypass_proxies({"no_proxy": "127.0.0.1"}, "http://127.0.0.1:1")["NO_PROXY"] == "127.0.0.1"
    assert bypass_proxies({"NO_PROXY": "*"}, "http://127.0.0.1:1")["no_proxy"] == "*"  # already bypasses all
    assert bypass_proxies({}, "http://[::1]:1")["NO_PROXY"] == "::1,[::1]"
