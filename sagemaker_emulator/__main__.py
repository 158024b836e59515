"""``python -m sagemaker_emulator serve [--host 127.0.0.1] [--port 5123]``: run the emulator in the foreground.

Prints the environment variables that point boto3 and the SageMaker SDK at it. Only loopback hosts are
accepted. Ctrl-C (or SIGTERM) stops it, and with it every training job and model server it started.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sagemaker_emulator.loopback import is_loopback

DEFAULT_PORT = 5123
SDK_CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def exports(url: str, sdk_config: Path) -> str:
    return "\n".join(
        [
            f"export AWS_ENDPOINT_URL={url}",
            "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1",
            f"export SAGEMAKER_USER_CONFIG_OVERRIDE={sdk_config}",
        ]
    )


def serve(host: str, port: int) -> int:
    from sagemaker_emulator.emulator import Emulator

    if not is_loopback(host):
        print(f"Refusing to listen on {host!r}: the emulator only listens on loopback (e.g. 127.0.0.1).", file=sys.stderr)
        return 2
    emulator = Emulator(host, port).start()
    sdk_config = emulator.services.workdir / "sagemaker-config.yaml"
    sdk_config.write_text(SDK_CONFIG)
    print(f"SageMaker emulator listening on {emulator.url} (loopback only). To use it from a shell:", flush=True)
    print(exports(emulator.url, sdk_config), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagemaker_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the SageMaker, S3, STS, IAM and CloudWatch Logs APIs on loopback")
    run.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free port")
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
