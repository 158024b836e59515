"""A training job's memory is its instance type's, within a share of this machine's; running out fails it as AWS does.

The FM cases are jobs that used to run until the kernel's OOM killer ended them (and the emulator with them, on a
laptop): ``feature_dim=10**9`` or ``num_factors=100000`` on a few tiny RecordIO rows. The limit is lowered to
1 GiB here (``Limits.training_memory_bytes``) so that failing is quick whatever this machine has.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import tarfile
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp
from emulator_helpers import BUCKET, REGION, ROLE, assert_healthy, channel, finished_training, training_request

import recordio_protobuf as records
from sagemaker_emulator.jobs import sandbox
from sagemaker_emulator.jobs.process import GIB, MACHINE_MEMORY_SHARE, MemoryLimit, Supervisor, memory_limit

FM = f"382416733822.dkr.ecr.{REGION}.amazonaws.com/factorization-machines:1"
MXNET = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/mxnet-training:1.9.0-cpu-py38"
RECORDIO = "application/x-recordio-protobuf"
AWS_OUT_OF_MEMORY = (
    "ClientError: Please use an instance type with more memory, or reduce the size of job data processed on an "
    "instance. The training container ran out of memory under its limit of "
)
TEST_LIMIT = "1 GiB, set by the emulator's Limits.training_memory_bytes (an ml.m5.large has 8 GiB)"


@pytest.fixture
def one_gib(emulator, monkeypatch):
    """Every training job of this test gets 1 GiB."""
    limits = dataclasses.replace(emulator.services.limits, training_memory_bytes=GIB)
    monkeypatch.setattr(emulator.services, "limits", limits)


def _fm_job(sm, s3, name: str, feature_dim: int, num_factors: int) -> dict:
    """An FM regressor job on four one-hot rows that are ``feature_dim`` wide; returns it once it ends."""
    rows = sp.csr_matrix((np.ones(4, np.float32), ([0, 1, 2, 3], [0, 1, 2, 3])), shape=(4, feature_dim))
    buffer = io.BytesIO()
    records.write_records(buffer, rows, np.array([1, 2, 3, 4], np.float32))
    s3.put_object(Bucket=BUCKET, Key=f"{name}/train/part-0.pbr", Body=buffer.getvalue())
    request = training_request(
        name,
        [channel("train", f"s3://{BUCKET}/{name}/train", RECORDIO)],
        image=FM,
        HyperParameters={
            "feature_dim": str(feature_dim),
            "num_factors": str(num_factors),
            "predictor_type": "regressor",
            "epochs": "1",
            "mini_batch_size": "4",
        },
    )
    sm.create_training_job(**request)
    return finished_training(sm, name, timeout=120)


def _script_job(sm, s3, name: str, script: str) -> dict:
    """A script-mode job running ``script`` with the model folder as its argument; returns it once it ends."""
    s3.put_object(Bucket=BUCKET, Key=f"{name}/code/train.py", Body=textwrap.dedent(script).encode())
    request = training_request(name, [channel("code", f"s3://{BUCKET}/{name}/code", "text/x-python")], image=MXNET)
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["python3", "/opt/ml/input/data/code/train.py"], ContainerArguments=["/opt/ml/model"]
    )
    sm.create_training_job(**request)
    return finished_training(sm, name, timeout=120)


@pytest.mark.parametrize(("feature_dim", "num_factors"), [(10**9, 8), (10**4, 100_000)])
def test_an_fm_job_too_big_for_its_memory_fails_quickly(sm, s3, emulator, one_gib, feature_dim, num_factors):
    started = time.monotonic()
    job = _fm_job(sm, s3, f"fm-oom-{num_factors}", feature_dim, num_factors)
    assert time.monotonic() - started < 60
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(AWS_OUT_OF_MEMORY + TEST_LIMIT + ": MemoryError: Unable to allocate")
    assert_healthy(emulator)


def test_a_sigkilled_container_is_reported_as_out_of_memory(sm, s3, emulator):
    script = """
        import os, signal
        os.killpg(0, signal.SIGKILL)  # the container and the script, as the kernel's OOM killer would
    """
    job = _script_job(sm, s3, "killed", script)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"{AWS_OUT_OF_MEMORY}8 GiB, the memory of an ml.m5.large: the algorithm process was killed with SIGKILL "
        "(exit code -9), as the kernel's out-of-memory killer does"
    )
    assert_healthy(emulator)


def test_a_script_killed_alone_is_reported_as_out_of_memory(sm, s3, emulator):
    job = _script_job(sm, s3, "script-killed", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert job["FailureReason"] == (
        f"{AWS_OUT_OF_MEMORY}8 GiB, the memory of an ml.m5.large: the script was killed with SIGKILL (exit code -9), "
        "as the kernel's out-of-memory killer does"
    )
    assert_healthy(emulator)


def test_a_script_killed_under_the_sdks_driver_is_reported_as_out_of_memory(sdk, sm, s3, emulator, tmp_path):
    """SDK v3's driver runs the script and exits with -9 & 0xFF = 247, its failure file saying "died with SIGKILL"."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, OutputDataConfig, SourceCode
    from sagemaker.train import ModelTrainer

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    trainer = ModelTrainer(
        training_image=MXNET,
        role=ROLE,
        sagemaker_session=Session(default_bucket=BUCKET),
        base_job_name="sdk-killed",
        source_code=SourceCode(source_dir=str(tmp_path / "src"), entry_script="train.py"),
        compute=Compute(instance_type="ml.c5.xlarge", instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/sdk-killed"),
    )
    trainer.train(wait=False)
    job = finished_training(sm, trainer._latest_training_job.training_job_name, timeout=120)
    assert job["FailureReason"] == (
        f"{AWS_OUT_OF_MEMORY}8 GiB, the memory of an ml.c5.xlarge: the script was killed with SIGKILL "
        "(exit code 247), as the kernel's out-of-memory killer does"
    )
    assert_healthy(emulator)


def test_a_script_beyond_the_limit_fails_with_its_memory_error(sm, s3, emulator, one_gib):
    job = _script_job(sm, s3, "script-oom", "blocks = [bytearray(256 << 20) for _ in range(8)]\n")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == f"{AWS_OUT_OF_MEMORY}{TEST_LIMIT}: The script's error: MemoryError"
    assert_healthy(emulator)


def test_a_job_within_its_limit_trains_and_sees_the_limit(sm, s3, emulator):
    script = """
        import json, pathlib, resource, sys
        blocks = [bytearray(256 << 20) for _ in range(4)]  # 1 GiB, within an ml.m5.large's 8 GiB
        pathlib.Path(sys.argv[1], "limit.json").write_text(json.dumps(resource.getrlimit(resource.RLIMIT_DATA)))
    """
    job = _script_job(sm, s3, "within", script)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as archive:
        assert json.loads(archive.extractfile("limit.json").read()) == [8 * GIB, 8 * GIB]
    assert_healthy(emulator)


def test_a_small_fm_job_completes_under_a_lowered_limit(sm, s3, emulator, one_gib):
    job = _fm_job(sm, s3, "fm-small", 50, 4)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert_healthy(emulator)


def test_the_limit_is_the_instance_types_memory_within_a_share_of_the_machines(emulator):
    machine = 16 * GIB
    assert memory_limit("ml.m5.large", machine=machine) == MemoryLimit(8 * GIB, "8 GiB, the memory of an ml.m5.large")
    assert memory_limit("ml.c4.xlarge", machine=machine).note == "7.5 GiB, the memory of an ml.c4.xlarge"
    assert memory_limit("ml.p3.2xlarge", machine=machine) == MemoryLimit(
        int(machine * MACHINE_MEMORY_SHARE),
        "12 GiB, 75% of this machine's 16 GiB (an ml.p3.2xlarge has 61 GiB); a larger instance type cannot raise it "
        "here",
    )
    assert memory_limit("ml.inf1.xlarge", machine=machine).note == (
        "12 GiB, 75% of this machine's 16 GiB (the emulator lacks ml.inf1.xlarge's memory)"
    )
    assert memory_limit("ml.p3.2xlarge", override=GIB, machine=machine).bytes == GIB
    assert_healthy(emulator)


@pytest.fixture
def small_limit(emulator, monkeypatch):
    """Every training job of this test gets 256 MiB, over all its processes."""
    limits = dataclasses.replace(emulator.services.limits, training_memory_bytes=SMALL)
    monkeypatch.setattr(emulator.services, "limits", limits)


SMALL = 256 << 20
SMALL_LIMIT = "0.2 GiB, set by the emulator's Limits.training_memory_bytes (an ml.m5.large has 8 GiB)"
WHOLE_JOB = re.compile(
    re.escape(f"{AWS_OUT_OF_MEMORY}{SMALL_LIMIT}: the job's ")
    + r"\d+ processes used [\d,]+ MiB of memory \(shared memory included\), so all of them were killed"
)


FORKED = """
    import os, time
    for _ in range(2):
        if os.fork() == 0:
            block = bytearray(160 << 20)  # within the limit alone (RLIMIT_DATA counts one process)
            time.sleep(120)
            os._exit(0)
    os.wait(); os.wait()
"""


def test_children_that_fit_alone_but_not_together_fail_the_job_as_out_of_memory(sm, s3, emulator, small_limit):
    job = _script_job(sm, s3, "forked", FORKED)
    assert job["TrainingJobStatus"] == "Failed"
    assert WHOLE_JOB.fullmatch(job["FailureReason"]), job["FailureReason"]
    assert_healthy(emulator)


def test_without_the_sandbox_the_guard_counts_the_process_tree(sm, s3, emulator, small_limit, monkeypatch):
    monkeypatch.setattr(emulator.services, "supervisor", Supervisor(use_sandbox=False))
    job = _script_job(sm, s3, "forked-unsandboxed", FORKED)
    assert job["TrainingJobStatus"] == "Failed"
    assert WHOLE_JOB.fullmatch(job["FailureReason"]), job["FailureReason"]
    assert_healthy(emulator)


def test_a_shared_mapping_over_the_limit_fails_the_job_as_out_of_memory(sm, s3, emulator, small_limit):
    script = """
        import mmap, time
        shared = mmap.mmap(-1, 320 << 20, flags=mmap.MAP_SHARED)  # not private, so RLIMIT_DATA does not count it
        for offset in range(0, len(shared), mmap.PAGESIZE):
            shared[offset] = 1
        time.sleep(120)
    """
    job = _script_job(sm, s3, "shared-mapping", script)
    assert job["TrainingJobStatus"] == "Failed"
    assert WHOLE_JOB.fullmatch(job["FailureReason"]), job["FailureReason"]
    assert_healthy(emulator)


def test_numpy_beyond_the_limit_fails_the_job_as_out_of_memory(sm, s3, emulator, small_limit):
    job = _script_job(sm, s3, "numpy-oom", "import numpy\nblock = numpy.ones(320 << 20, dtype=numpy.uint8)\n")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"{AWS_OUT_OF_MEMORY}{SMALL_LIMIT}: The script's error: "), job[
        "FailureReason"
    ]
    assert "Unable to allocate 320. MiB" in job["FailureReason"]
    assert_healthy(emulator)


@pytest.mark.skipif(sandbox.find()[0] is None, reason="/dev/shm is the job's own only in the sandbox")
def test_files_in_dev_shm_count_towards_the_limit(sm, s3, emulator, small_limit):
    script = """
        import pathlib, time
        pathlib.Path("/dev/shm/batch").write_bytes(bytes(200 << 20))  # memory, though no process maps it
        block = bytearray(100 << 20)
        time.sleep(120)
    """
    job = _script_job(sm, s3, "dev-shm", script)
    assert job["TrainingJobStatus"] == "Failed"
    assert WHOLE_JOB.fullmatch(job["FailureReason"]), job["FailureReason"]
    assert_healthy(emulator)
