"""Lab 2's Lambda functions on AWS: package the handler module, create (or update) the functions, call, delete.

Local mode does not run Lambda (the emulator has no function runtime), so the notebook calls the handlers
in-process there; these helpers are the AWS-mode path, tested against the emulator's Lambda API (moto), which
creates and deletes functions without running them.

    package = functions.package("lambda_function.py")
    functions.deploy({f"{run_id}-predict": "lambda_function.predict_handler"}, package, role_arn, environment)
    functions.invoke(f"{run_id}-predict", {"user_id": 1, ...})
    functions.delete(run_id)
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3

RUNTIME = "python3.13"
TIMEOUT_SECONDS = 30
MEMORY_MB = 256  # the least a function gets: enough for ml-latest-small's catalogue of about 5 MB
MAX_MEMORY_MB = 10_240  # Lambda's ceiling
RUNTIME_MB = 128  # the Python runtime and boto3, before the catalogue
PARSED_PER_JSON_BYTE = 12  # parsed Python lists per byte of their JSON: 11x for ratings lists, 5x for vectors


def memory_for(document_bytes: int) -> int:
    """The MemorySize (MB) a function needs to read a JSON document of ``document_bytes`` once and keep it: the
    runtime plus the body and its parsed objects, in steps of 64 MB, from :data:`MEMORY_MB` to Lambda's ceiling.

    Raises:
        ValueError: the document would not fit in the largest function.
    """
    needed = RUNTIME_MB + (1 + PARSED_PER_JSON_BYTE) * document_bytes / 2**20
    if needed > MAX_MEMORY_MB:
        raise ValueError(
            f"a document of {document_bytes / 1e6:,.0f} MB needs about {needed:,.0f} MB of memory, "
            f"more than Lambda's {MAX_MEMORY_MB:,} MB: make it smaller"
        )
    return max(MEMORY_MB, -(-int(needed) // 64) * 64)


def package(*paths: str | Path) -> bytes:
    """A deployment package: each file at the root of a zip archive, as Lambda imports it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in map(Path, paths):
            archive.write(path, arcname=path.name)
    return buffer.getvalue()


def deploy(
    handlers: dict[str, str],
    code: bytes,
    role_arn: str,
    environment: dict[str, str],
    tags: dict[str, str] | None = None,
    memory_mb: int = MEMORY_MB,
) -> list[str]:
    """Create each function ``name -> handler`` (``module.function``) from ``code`` and wait until it is active;
    a function left by an earlier run of the same name gets the new code and settings instead. ``memory_mb``:
    each function's MemorySize (:func:`memory_for` the document it reads; Lambda gives CPU in proportion).

    Returns:
        The function names, in order.
    """
    client = boto3.client("lambda")
    settings = {
        "Runtime": RUNTIME,
        "Role": role_arn,
        "Environment": {"Variables": environment},
        "Timeout": TIMEOUT_SECONDS,
        "MemorySize": memory_mb,
    }
    for name, handler in handlers.items():
        try:
            client.create_function(
                FunctionName=name, Handler=handler, Code={"ZipFile": code}, Tags=tags or {}, **settings
            )
        except client.exceptions.ResourceConflictException:
            client.update_function_code(FunctionName=name, ZipFile=code)
            client.get_waiter("function_updated_v2").wait(FunctionName=name)
            client.update_function_configuration(FunctionName=name, Handler=handler, **settings)
        client.get_waiter("function_active_v2").wait(FunctionName=name)
    return list(handlers)


def invoke(name: str, event: dict) -> dict:
    """Call a function synchronously and return its decoded JSON answer."""
    answer = boto3.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return json.loads(answer["Payload"].read())


def names(prefix: str) -> list[str]:
    """The functions whose names start with ``prefix``."""
    if not prefix:
        raise ValueError("A name prefix is required: an empty one would match every function in the account.")
    pages = boto3.client("lambda").get_paginator("list_functions").paginate()
    return [f["FunctionName"] for page in pages for f in page["Functions"] if f["FunctionName"].startswith(prefix)]


def delete(prefix: str) -> list[str]:
    """Delete the functions named ``prefix...``; returns their names."""
    client = boto3.client("lambda")
    found = names(prefix)
    for name in found:
        client.delete_function(FunctionName=name)
    return found
