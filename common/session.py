"""How a notebook reaches SageMaker: :func:`start_session`, the one call at the top of every notebook.

It decides the mode from ``common.settings``, and in local mode starts this checkout's SageMaker emulator on 127.0.0.1
if it is not running (or uses ``WORKSHOP_EMULATOR_URL``) and points this kernel's AWS clients at it.

The SDK's role check: before each training job, ``ModelTrainer`` simulates a fixed list of actions for the role
(``iam:SimulatePrincipalPolicy``) and refuses a role denied any of them. The list includes EC2 network-interface
actions on ``*``, which only VPC-attached jobs use and the labs never do; granting them would give the workshop's
least-privilege role account-wide ENI creation. So :func:`start_session` sets ``SAGEMAKER_VALIDATE_ROLE=false`` unless
it is set: AWS still checks every call the job makes, and an ``AccessDenied`` names the missing action. The emulator
evaluates the simulation for real, so ``SAGEMAKER_VALIDATE_ROLE=true`` fails locally exactly where it would on AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.settings import Settings, settings

MODES = ("aws", "local")
LOCAL_REGION = "us-east-1"
LOCAL_ROLE_NAME = "SageMakerWorkshopRole"
CHECKED_SERVICES = ("s3", "sts", "iam", "logs", "sagemaker", "sagemaker-runtime")
SAGEMAKER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ROLE_CHECK_VARIABLE = "SAGEMAKER_VALIDATE_ROLE"
WORKSHOP_POLICY = Path(__file__).resolve().parents[1] / "aws" / "workshop-policy.json"  # generated, see INSTRUCTOR.md


@dataclass(frozen=True)
class WorkshopSession:
    """What a notebook needs to call SageMaker, the same in both modes."""

    mode: str
    region: str
    role_arn: str
    bucket: str
    sagemaker_session: object  # sagemaker.core.helper.session_helper.Session; None for start_session(sdk=False)
    emulator_url: str | None = None


class _Kernel:
    """What local mode remembers for the life of the kernel: the emulator it uses."""

    url: str | None = None


_KERNEL = _Kernel()


def choose_mode(current: Settings) -> str:
    """``WORKSHOP_MODE`` if set; else local in CI, once local in this kernel, or without credentials and a region.

    Raises:
        ValueError: ``WORKSHOP_MODE`` is neither ``aws`` nor ``local``.
    """
    if current.mode is not None:
        if current.mode not in MODES:
            raise ValueError(f"WORKSHOP_MODE must be 'aws' or 'local', not {current.mode!r}.")
        return current.mode
    if current.ci or _KERNEL.url is not None:
        return "local"
    import boto3

    session = boto3.session.Session()
    return "aws" if session.get_credentials() is not None and session.region_name else "local"


def start_session(sdk: bool = True) -> WorkshopSession:
    """Decide the mode, prepare it and print one line saying which mode is active.

    Local mode: use this checkout's emulator on 127.0.0.1, starting it in the background if it is not running (it
    outlives this kernel, so what earlier kernels made is still there), or the one at ``WORKSHOP_EMULATOR_URL``;
    point every AWS client of this kernel at it with its key pair, turn the SDK's telemetry off, create the bucket
    and an execution role, and refuse to go on if any AWS endpoint in use is not loopback.
    AWS mode: find the execution role (``WORKSHOP_ROLE_ARN``, else the notebook's own role) and the bucket
    (``WORKSHOP_BUCKET``, else ``sagemaker-<region>-<account>``, created with public access blocked).

    Args:
        sdk: build the SageMaker SDK's session (``sagemaker_session``, None otherwise): importing the SDK takes
            seconds, which a tool that needs only boto3 (Lab 2's demo server) should not wait for.

    Raises:
        RuntimeError: local mode would reach a non-loopback endpoint, or AWS mode lacks a region or a role.
    """
    current = settings()
    os.environ.setdefault(ROLE_CHECK_VARIABLE, "false")
    if choose_mode(current) == "local":
        return _start_local(current, sdk)
    return _start_aws(current, sdk)


def stop_local_emulator() -> None:
    """Stop this checkout's emulator (and every job and model server it runs), if it is running."""
    from sagemaker_emulator.store import home

    home.stop()
    _KERNEL.url = None


def check_endpoints_are_loopback(region: str) -> None:
    """Raise unless every ``AWS_ENDPOINT_URL*`` variable and every client the labs use resolve to loopback."""
    import boto3

    from sagemaker_emulator.loopback import is_loopback_url

    def refuse(what: str, url: str) -> RuntimeError:
        return RuntimeError(
            f"Local mode refuses to continue: {what} is {url}, which is not a loopback address, so a call could "
            "reach a real AWS account. Unset it, or choose AWS mode on purpose with WORKSHOP_MODE=aws."
        )

    for name, value in sorted(os.environ.items()):
        if name.startswith("AWS_ENDPOINT_URL") and value and not is_loopback_url(value):
            raise refuse(name, value)
    if (os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or "").lower() == "true":
        raise refuse("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true (endpoint variables are ignored)")
    session = boto3.session.Session(region_name=region)
    for service in CHECKED_SERVICES:
        url = session.client(service).meta.endpoint_url
        if not is_loopback_url(url):
            raise refuse(f"the {service} endpoint", url)


def _emulator(current: Settings) -> tuple[str, dict[str, str]]:
    """The emulator's URL and the key variables to sign with: ``WORKSHOP_EMULATOR_URL`` with the key pair its
    ``serve`` printed (exported in this environment), else this checkout's own emulator, started if need be."""
    from sagemaker_emulator.loopback import is_loopback_url
    from sagemaker_emulator.store import home

    if current.emulator_url:
        url = current.emulator_url.rstrip("/")
        if not is_loopback_url(url):
            raise RuntimeError(
                f"Local mode refuses to continue: WORKSHOP_EMULATOR_URL is {url}, which is not a loopback address."
            )
        running = home.find()
        if running is not None and running.url == url:
            return url, running.credentials.as_environment()
        keys = {name: os.environ.get(name, "") for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        if not all(keys.values()):
            raise RuntimeError(
                "WORKSHOP_EMULATOR_URL is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not: export the key "
                "pair that `python -m sagemaker_emulator serve` printed, or unset WORKSHOP_EMULATOR_URL."
            )
        return url, keys
    running = home.ensure()
    if running.notice:  # it kept other code running (a job or another kernel uses it): say why, and until when
        print(running.notice)
    return running.url, running.credentials.as_environment()


def _point_environment_at(url: str, region: str, keys: dict[str, str]) -> None:
    """Point every AWS client made from now on at the emulator, the default boto3 session's too (it caches keys),
    directly: the emulator's address is added to ``NO_PROXY``, so a proxy the machine uses is never asked."""
    import boto3

    from sagemaker_emulator.loopback import bypass_proxies

    boto3.DEFAULT_SESSION = None
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(keys)
    os.environ.update(bypass_proxies(os.environ, url))  # behind a proxy (HTTP_PROXY), loopback goes direct
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ENDPOINT_URL_SAGEMAKER": url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }
    )


def _write_sdk_config(bucket: str, role_arn: str) -> Path:
    """The SDK config local mode needs: telemetry off (its HTTPS call ignores the endpoint variables), defaults.

    It lives in the emulator's home, one file per checkout, rewritten by each kernel (folders of earlier versions of
    this workshop under the temp folder are swept).
    """
    import shutil
    import tempfile

    from sagemaker_emulator.store import home
    from sagemaker_emulator.store.files import write_atomically

    for stale in Path(tempfile.gettempdir()).glob("workshop-sagemaker-config-*"):
        shutil.rmtree(stale, ignore_errors=True)
    path = home.prepare(home.default_home()) / "workshop-sagemaker-config.yaml"
    config = (
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        "      TelemetryOptOut: true\n"
        "      Session:\n"
        f"        DefaultS3Bucket: {bucket}\n"
        "  TrainingJob:\n"
        f"    RoleArn: {role_arn}\n"
    )
    write_atomically(path, [config.encode()])  # never through a link planted in the home
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(path)
    return path


def _forget_sdk_clients() -> None:
    """Drop the clients sagemaker-core caches process-wide, so they are rebuilt with this environment."""
    import sys

    if "sagemaker.core.utils.utils" in sys.modules:
        from sagemaker.core.utils.logs import CloudWatchLogsClient
        from sagemaker.core.utils.utils import SageMakerClient, SingletonMeta

        SageMakerClient.reset()
        SingletonMeta._instances.pop(CloudWatchLogsClient, None)


def _ensure_bucket(s3, bucket: str, region: str, create: bool) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in ("404", "NoSuchBucket"):
            raise RuntimeError(
                f"The bucket {bucket} cannot be used ({code}): it may belong to another account."
            ) from None
    if not create:
        raise RuntimeError(f"The bucket {bucket} (WORKSHOP_BUCKET) does not exist.")
    options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **options)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _sdk_session(boto_session, bucket: str):
    from sagemaker.core.helper.session_helper import Session

    return Session(boto_session=boto_session, default_bucket=bucket)


def _start_local(current: Settings, sdk: bool) -> WorkshopSession:
    import json

    import boto3
    from botocore.exceptions import EndpointConnectionError

    url, keys = _emulator(current)
    _KERNEL.url = url
    region = LOCAL_REGION
    _point_environment_at(url, region, keys)
    check_endpoints_are_loopback(region)
    session = boto3.session.Session(region_name=region)
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except EndpointConnectionError:
        raise RuntimeError(
            f"No SageMaker emulator answers at {url}; start one (python -m sagemaker_emulator serve) "
            "or unset WORKSHOP_EMULATOR_URL to let the notebook start its own."
        ) from None
    bucket = f"sagemaker-{region}-{account}"
    _ensure_bucket(session.client("s3"), bucket, region, create=True)
    iam = session.client("iam")
    try:
        role_arn = iam.get_role(RoleName=LOCAL_ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(
            RoleName=LOCAL_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST_POLICY)
        )["Role"]["Arn"]
    _grant_workshop_policy(iam, role_arn, bucket, region, account)
    _write_sdk_config(bucket, role_arn)
    _forget_sdk_clients()
    print(
        f"Local mode: SageMaker emulator at {url} (loopback only, no AWS account is used); "
        f"region {region}, bucket {bucket}."
    )
    return WorkshopSession("local", region, role_arn, bucket, _sdk_session(session, bucket) if sdk else None, url)


def _grant_workshop_policy(iam, role_arn: str, bucket: str, region: str, account: str) -> None:
    """Give the local role the policy the AWS stack gives its role, so the emulator's policy simulation answers as
    AWS would for it (the policy is generated from a recorded notebook run; see INSTRUCTOR.md)."""
    import json

    if not WORKSHOP_POLICY.exists():
        return
    text = WORKSHOP_POLICY.read_text()
    for name, value in {
        "Bucket": bucket,
        "Role.Arn": role_arn,
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": account,
    }.items():
        text = text.replace("${" + name + "}", value)
    iam.put_role_policy(RoleName=LOCAL_ROLE_NAME, PolicyName="workshop", PolicyDocument=json.dumps(json.loads(text)))


def _find_role(boto_session) -> str:
    """The role this kernel runs as (a SageMaker notebook's or Studio's execution role), from the caller identity.

    STS names an assumed role ``arn:aws:sts::<account>:assumed-role/<name>/<session>``; IAM gives its ARN with its
    path. Done here rather than with the SDK's ``get_execution_role``, which asks a fixed STS address and so
    ignores ``AWS_ENDPOINT_URL``.
    """
    from botocore.exceptions import ClientError

    identity = boto_session.client("sts").get_caller_identity()
    arn = identity["Arn"]
    if ":role/" in arn:
        return arn
    if ":assumed-role/" not in arn:
        raise RuntimeError(
            f"AWS mode found no execution role: the AWS identity here is {arn}, not a role (this is not a SageMaker "
            "notebook). Set WORKSHOP_ROLE_ARN to the ARN of a role that trusts sagemaker.amazonaws.com (the "
            "workshop stack's RoleArn output, see INSTRUCTOR.md), or run without AWS: WORKSHOP_MODE=local."
        )
    name = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    try:
        return boto_session.client("iam").get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("AccessDenied", "AccessDeniedException"):
            raise
    partition = arn.split(":", 2)[1]
    return f"arn:{partition}:iam::{identity['Account']}:role/{name}"  # no iam:GetRole: a role without a path


def _start_aws(current: Settings, sdk: bool) -> WorkshopSession:
    import boto3

    session = boto3.session.Session()
    region = session.region_name
    if not region:
        raise RuntimeError("AWS mode needs a region: set AWS_DEFAULT_REGION or run `aws configure`.")
    account = session.client("sts").get_caller_identity()["Account"]
    role_arn = current.role_arn or _find_role(session)
    bucket = current.bucket or f"sagemaker-{region}-{account}"
    _ensure_bucket(session.client("s3"), bucket, region, create=current.bucket is None)
    print(
        f"AWS mode: account {account}, region {region}, role {role_arn}, bucket {bucket}. What you create is "
        "billed to this account; the cleanup cells delete it."
    )
    return WorkshopSession("aws", region, role_arn, bucket, _sdk_session(session, bucket) if sdk else None)
