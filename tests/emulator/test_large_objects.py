"""An S3 object larger than the memory left passes through the emulator held whole at most once.

moto keeps each object in a file and reads it whole into memory to answer a GetObject; that one copy is all the
emulator may add. At ml-20m's size a channel's file is 1.3-1.5 GB, and a copy more per download (the response's
head joined to its body, a job reading the body whole before writing it) ran a 24 GiB machine out of memory.
"""

from __future__ import annotations

import hashlib
import os

from emulator_helpers import BUCKET, held_bytes

from sagemaker_emulator.jobs import s3 as job_s3

SIZE = 48 * 1024 * 1024


def test_a_job_downloads_a_channel_file_holding_it_at_most_once(emulator, s3, tmp_path):
    body = os.urandom(SIZE)
    s3.put_object(Bucket=BUCKET, Key="big/train/part-0.pbr", Body=body)
    client = emulator.client("s3", "us-east-1")
    objects = job_s3.list_prefix(client, f"s3://{BUCKET}/big/train", "us-east-1")

    with held_bytes() as held:
        job_s3.download(client, objects, tmp_path / "train")

    assert held["peak"] < 1.25 * SIZE
    written = (tmp_path / "train" / "part-0.pbr").read_bytes()
    assert hashlib.sha256(written).digest() == hashlib.sha256(body).digest()


def test_a_large_response_body_reaches_the_client_whole(s3):
    """Past the size the server sends in one write with its head, the body goes out as it is."""
    body = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=BUCKET, Key="big/model.tar.gz", Body=body)

    answer = s3.get_object(Bucket=BUCKET, Key="big/model.tar.gz")

    assert answer["ContentLength"] == len(body)
    assert answer["Body"].read() == body
