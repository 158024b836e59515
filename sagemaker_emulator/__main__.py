"""``python -m sagemaker_emulator serve | start | status | stop | setup-examples``: one emulator per checkout, run and
looked after.

- ``serve`` runs it in the foreground and prints its key pair and the variables to export, as Jupyter prints its
  token. ``--access-key-id`` (or ``SAGEMAKER_EMULATOR_ACCESS_KEY_ID``) with ``SAGEMAKER_EMULATOR_SECRET_ACCESS_KEY``
  or ``--secret-access-key-file`` (mode 0600) fix the pair for scripts that need a known one; the secret is never
  taken from the command line, which every user can read. SIGTERM or Ctrl-C stops it within
  ``emulator.stop_bound_seconds`` (the children's grace plus a margin), its children ended and its state saved.
- ``start`` starts it in the background if it is not running (what the notebooks do) and prints the same.
- ``status`` says whether this checkout's emulator runs, and where, then lists the other checkouts' (their code,
  and whether they are busy); ``stop`` stops this checkout's and everything it started, ``stop --all`` every one.
- ``setup-examples`` makes AWS's own examples run unchanged: it starts the emulator if needed, creates the execution
  role a SageMaker user has (``EXAMPLES_ROLE``, trusting SageMaker, allowed what the examples do, so SDK v3's role
  check passes) and the SDK's default bucket, and writes both as SDK config defaults for examples that pass neither.
- ``policy RECORD`` turns the actions a recording emulator noted (``SAGEMAKER_EMULATOR_ACTIONS``) into a
  least-privilege IAM policy (``--out``), and writes it into a CloudFormation template too (``--template``).
Only loopback hosts are accepted. Its state persists in its home folder (``--home``, default this checkout's in
the user's folder; see ``store/home.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
from pathlib import Path

from sagemaker_emulator.auth import Credentials
from sagemaker_emulator.iam.actions import ACTIONS_VARIABLE
from sagemaker_emulator.loopback import is_loopback
from sagemaker_emulator.store import home as homes
from sagemaker_emulator.store import quarantine
from sagemaker_emulator.store.files import UnsafePath, write_atomically
from sagemaker_emulator.store.running import sdk_config

DEFAULT_PORT = 5123
DEFAULT_REGION = "us-east-1"
KEY_VARIABLES = ("SAGEMAKER_EMULATOR_ACCESS_KEY_ID", "SAGEMAKER_EMULATOR_SECRET_ACCESS_KEY")
SECRET_IN_ARGV = (
    "Refusing --secret-access-key: a command line is visible to every user of this machine (ps), so the secret is "
    f"no longer one; choose a new secret and give it in the environment ({KEY_VARIABLES[1]}) or in a file of mode "
    "0600 (--secret-access-key-file)."
)
SDK_CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""
EXAMPLES_ROLE = "AmazonSageMaker-ExecutionRole-Emulator"  # the console names its roles AmazonSageMaker-ExecutionRole-*
EXAMPLES_CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
      Session:
        DefaultS3Bucket: {bucket}
  TrainingJob:
    RoleArn: {role}
  Model:
    ExecutionRoleArn: {role}
  ProcessingJob:
    RoleArn: {role}
"""
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# What the examples' jobs do and what SDK v3's role check simulates (its IAM_POLICY_CONFIG's actions on "*",
# network interfaces included), on every resource: the emulator holds nothing else.
_EXAMPLES_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "sagemaker:*",
                "s3:*",
                "logs:*",
                "cloudwatch:*",
                "ecr:*",
                "iam:GetRole",
                "iam:PassRole",
                "ec2:CreateNetworkInterface*",
                "ec2:DeleteNetworkInterface*",
                "ec2:Describe*",
            ],
            "Resource": "*",
        }
    ],
}


def read_secret_file(path: Path) -> str:
    """The secret in ``path`` (one line), which must be a regular file of the user's, readable by nobody else.

    Raises:
        SystemExit: with what is wrong and how to fix it.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise SystemExit(f"Cannot read the secret access key file {path}: {error.strerror}.") from None
    with os.fdopen(descriptor) as file:
        info = os.fstat(file.fileno())
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or mode & 0o077:
            raise SystemExit(
                f"Refusing the secret access key file {path} (owner uid {info.st_uid}, mode {mode:04o}): it must be "
                f"a file of yours that nobody else can read; run chmod 600 {path}."
            )
        secret = file.read().strip()
    if not secret or "\n" in secret:
        raise SystemExit(f"The secret access key file {path} must hold the secret on one line.")
    return secret


def _credentials(access_key_id: str | None, secret_file: Path | None) -> Credentials | None:
    access_key_id = access_key_id or os.environ.get(KEY_VARIABLES[0])
    secret_access_key = read_secret_file(secret_file) if secret_file else os.environ.get(KEY_VARIABLES[1])
    if bool(access_key_id) != bool(secret_access_key):
        raise SystemExit("Give both an access key id and a secret access key, or neither.")
    return Credentials(access_key_id, secret_access_key) if access_key_id else None


def _stop_within(emulator, bound: float) -> int:
    """Stop ``emulator``, and be gone ``bound`` seconds from now whatever hangs (its stop, or the interpreter's exit
    waiting for a thread): past the bound its children are killed and the process leaves, with 1 if the stop itself
    had not finished, 0 if it had.

    What it saved is kept either way: the savers replace their files atomically, so an overrun loses at most the
    changes since their last save.
    """
    stopped = threading.Event()

    def overrun() -> None:
        if stopped.is_set():
            os._exit(0)
        emulator.signal_children(signal.SIGKILL)
        os.set_blocking(sys.stderr.fileno(), False)  # a reader that stopped reading must not keep us alive
        try:
            os.write(
                sys.stderr.fileno(), f"The emulator did not stop within {bound:g} s; killed its children.\n".encode()
            )
        finally:
            os._exit(1)

    watchdog = threading.Timer(bound, overrun)
    watchdog.daemon = True  # still runs while the interpreter waits for other threads at exit
    watchdog.start()
    emulator.stop()
    stopped.set()
    return 0


def serve(host: str, port: int, home: Path, credentials: Credentials | None) -> int:
    from sagemaker_emulator.emulator import Emulator, stop_bound_seconds

    if not is_loopback(host):
        print(
            f"Refusing to listen on {host!r}: the emulator only listens on loopback (e.g. 127.0.0.1).", file=sys.stderr
        )
        return 2
    lock = homes.ServeLock(home)
    if not lock.acquire():
        running = homes.find(home)
        where = f" at {running.url} (pid {running.pid})" if running else ""
        print(
            f"An emulator already serves {home}{where}; `python -m sagemaker_emulator stop` stops it.", file=sys.stderr
        )
        return 1
    homes.remove_runtime(home)  # one a killed emulator left (the OOM killer, say) would name its dead address
    done = threading.Event()  # set by SIGTERM or Ctrl-C, even while the state is still being restored
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        if not sdk_config(home).exists():  # setup-examples may have added defaults: keep them
            write_atomically(sdk_config(home), [SDK_CONFIG.encode()])
        actions = os.environ.get(ACTIONS_VARIABLE)  # a notebook run that records the actions it performs
        emulator = Emulator(
            host,
            port,
            credentials=credentials,
            state_dir=home / "state",
            actions_file=Path(actions) if actions else None,
        ).start()
        if done.is_set():
            return _stop_within(emulator, stop_bound_seconds(emulator.services.timings))
        homes.write_runtime(home, emulator.url, emulator.credentials)
        running = homes.find(home)
        print(
            f"SageMaker emulator listening on {emulator.url} (loopback only; requests must be signed with its key). "
            f"{emulator.restored}",
            flush=True,
        )
        print("To use it from a shell:", flush=True)
        print(running.exports(DEFAULT_REGION), flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        # Python runs signal handlers in the main thread only, when it runs bytecode. SIGTERM delivered to another
        # thread (a busy server thread, say) never woke a main thread blocked in a bare wait(): poll instead.
        while not done.wait(0.5):
            pass
        homes.remove_runtime(home)
        return _stop_within(emulator, stop_bound_seconds(emulator.services.timings))
    finally:
        lock.release()


def start(home: Path) -> int:
    running = homes.ensure(home)
    if running.notice:
        print(running.notice)
    print(f"SageMaker emulator at {running.url} (pid {running.pid}). To use it from a shell:")
    print(running.exports(DEFAULT_REGION))
    return 0


def status(home: Path) -> int:
    running = homes.find(home)
    if running is None:
        print(f"No emulator is running for {home}.")
        return 3
    print(f"SageMaker emulator running at {running.url} (pid {running.pid}), home {home}.")
    for line in quarantine.last_start(home / "state"):
        print(line)
    return 0


def stop(home: Path) -> int:
    if homes.stop(home):
        print(f"Stopped the SageMaker emulator of {home}.")
    else:
        print(f"No emulator is running for {home}.")
    return 0


def activity(home: Path) -> str:
    """One line on the emulator serving ``home``: the checkout and code it runs, what runs in it, who uses it."""
    running = homes.find(home)
    if running is None:
        return ""
    from sagemaker_emulator.store import busy

    work, kernels = busy.work(running), busy.attached(home, running)
    return (
        f"  checkout {running.checkout or 'unknown (started by an earlier version)'}, code "
        f"{running.code or 'unknown'}{' (not the code installed now)' if running.code != homes.code_version() else ''}"
        f", {'busy: ' + ', '.join(work) if work else 'idle'}"
        f"{'; kernels attached: pid ' + ', '.join(map(str, kernels)) if kernels else ''}."
    )


def status_all(home: Path | None) -> int:
    """``status`` of ``home`` (default: this checkout's), then of every other emulator home in the user's folder;
    the exit code is the first one's."""
    own = home or homes.default_home()
    others = [] if home is not None else [place for place in homes.emulator_homes() if place != own]
    codes = []
    for place in [own, *others]:
        codes.append(status(place))
        if codes[-1] == 0:
            print(activity(place))
    return codes[0]


def stop_all() -> int:
    stopped = homes.stop_all()
    for home in stopped:
        print(f"Stopped the SageMaker emulator of {home}.")
    if not stopped:
        print(f"No emulator is running in {homes.user_home()}.")
    return 0


def setup_examples(home: Path) -> int:
    """Create the examples' role and bucket in the emulator serving ``home`` (started if need be), idempotently,
    and write them as the SDK's defaults into its config file (the one ``SAGEMAKER_USER_CONFIG_OVERRIDE`` names)."""
    import json

    import boto3

    running = homes.ensure(home)
    session = boto3.session.Session(region_name=DEFAULT_REGION, **running.credentials.as_boto3())
    from botocore.config import Config

    direct = Config(proxies={})  # loopback never goes through HTTP_PROXY
    iam, s3 = (session.client(name, endpoint_url=running.url, config=direct) for name in ("iam", "s3"))
    account = session.client("sts", endpoint_url=running.url, config=direct).get_caller_identity()["Account"]
    try:
        role = iam.get_role(RoleName=EXAMPLES_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=EXAMPLES_ROLE, AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=EXAMPLES_ROLE, PolicyName="SageMakerExamples", PolicyDocument=json.dumps(_EXAMPLES_POLICY)
    )
    bucket = f"sagemaker-{DEFAULT_REGION}-{account}"  # what the SDK's default_bucket() names
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    config = sdk_config(running.home)  # the emulator's, which may be an earlier version's shared one
    write_atomically(config, [EXAMPLES_CONFIG.format(bucket=bucket, role=role).encode()])
    print(f"Role {role} (trusts SageMaker; SDK v3's role check passes), bucket s3://{bucket}.")
    print(f"SDK defaults for examples that pass no role or bucket: {config}. To use it from a shell:")
    print(running.exports(DEFAULT_REGION))
    print("Still pass role= to ModelBuilder, and avoid get_execution_role() and Session.account_id(): they call")
    print("STS at AWS's own address (see the traps in sagemaker_emulator/README.md).")
    return 0


def policy(args: argparse.Namespace) -> int:
    import json

    from sagemaker_emulator.iam.actions import read_actions
    from sagemaker_emulator.iam.policy import build, write_template

    inputs = json.loads(args.extra.read_text()) if args.extra else {}
    entries = [e for e in read_actions(args.record) if e["action"] not in inputs.get("local_only", [])]
    if not entries:
        print(f"{args.record} holds no recorded actions: run the notebooks with {ACTIONS_VARIABLE} set first.")
        return 1
    extra = inputs.get("actions", [])
    document = build(
        entries, bucket=args.bucket, role_arn=args.role_arn, prefix=args.prefix, region=args.region, extra=extra
    )
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    if args.template:
        write_template(args.template, document)
    actions = sum(len(statement["Action"]) for statement in document["Statement"])
    print(f"{args.out}: {actions} actions in {len(document['Statement'])} statements, from {len(entries)} records.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagemaker_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the SageMaker, S3, STS, IAM and CloudWatch Logs APIs on loopback")
    run.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free port")
    run.add_argument("--access-key-id", help=f"a fixed key pair instead of a random one (or {KEY_VARIABLES[0]})")
    run.add_argument(
        "--secret-access-key-file", type=Path, help=f"a file of mode 0600 holding its secret (or {KEY_VARIABLES[1]})"
    )
    run.add_argument("--secret-access-key", help=argparse.SUPPRESS)  # refused: argv is public
    for name, text in (
        ("start", "start it in the background unless it runs"),
        ("status", "is it running, and where"),
        ("stop", "stop this checkout's emulator and every job and model server it runs"),
        ("setup-examples", "create the role and bucket AWS's examples expect, and write them as SDK defaults"),
    ):
        commands.add_parser(name, help=text)
    build = commands.add_parser("policy", help="build a least-privilege IAM policy from recorded actions")
    build.add_argument("record", type=Path, help=f"the JSON-lines file {ACTIONS_VARIABLE} named")
    build.add_argument("--out", type=Path, required=True, help="the policy document to write (JSON)")
    build.add_argument(
        "--template", type=Path, help="a CloudFormation template with '# BEGIN generated policy' markers"
    )
    build.add_argument(
        "--extra",
        type=Path,
        help='JSON {"actions": [{"action", "resource", "why"}], "local_only": [action]}: grant, drop',
    )
    build.add_argument("--prefix", default="lab", help="resource names starting with it become PREFIX* (default lab)")
    build.add_argument("--bucket", default=f"sagemaker-{DEFAULT_REGION}-123456789012", help="the run's bucket")
    build.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/SageMakerWorkshopRole")
    build.add_argument("--region", default=DEFAULT_REGION)
    for name, command in commands.choices.items():
        if name == "policy":
            continue
        command.add_argument(
            "--home",
            type=Path,
            default=None,
            help=f"its folder (default this checkout's in ${homes.HOME_VARIABLE} or ~/.cache/sagemaker-emulator)",
        )
    commands.choices["stop"].add_argument(
        "--all", action="store_true", help=f"stop every checkout's emulator in ${homes.HOME_VARIABLE}"
    )
    args = parser.parse_args(argv)
    if args.command == "policy":
        return policy(args)
    home = args.home or homes.default_home()
    try:
        if args.command == "status":
            return status_all(args.home)
        if args.command == "stop" and args.all:
            return stop_all()
        if args.command == "serve":
            if args.secret_access_key is not None:
                print(SECRET_IN_ARGV, file=sys.stderr)
                return 2
            return serve(args.host, args.port, home, _credentials(args.access_key_id, args.secret_access_key_file))
        commands = {"start": start, "status": status, "stop": stop, "setup-examples": setup_examples}
        return commands[args.command](home)
    except UnsafePath as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
