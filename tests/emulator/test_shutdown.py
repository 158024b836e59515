"""SIGTERM stops a busy ``serve`` within its stated bound, leaving no child process behind.

A model server in service, a training job running and clients hammering S3 and the endpoint: ``serve`` stops
accepting, stops its children with their grace, saves its state and exits. The limit below is a hang check (the
bound plus generous slack for a loaded machine), not a speed assertion.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from emulator_helpers import (
    BUCKET,
    EXIT_HANG_SECONDS,
    channel,
    deploy,
    model_artifact,
    put_csv,
    training_request,
    wait_for,
)
from test_persistence import Served

from sagemaker_emulator.emulator import stop_bound_seconds
from sagemaker_emulator.state import Timings
from sagemaker_emulator.store import home as homes

BOUND_SECONDS = stop_bound_seconds(Timings())  # what ``serve`` (default timings) promises


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "home"
    homes.stop(tmp_path / "home")


def _descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (read from /proc: children and their children)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = set(), [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.add(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _hammer(served: Served, stop: threading.Event) -> None:
    """A busy client: writes objects and invokes the endpoint until told to stop (errors are expected at the end)."""
    s3, runtime = served.client("s3"), served.client("sagemaker-runtime")
    count = 0
    while not stop.is_set():
        try:
            s3.put_object(Bucket=BUCKET, Key=f"busy/{threading.get_ident()}-{count}", Body=os.urandom(4096))
            runtime.invoke_endpoint(EndpointName="busy", Body=b"1,2\n", ContentType="text/csv")
        except Exception:
            time.sleep(0.05)
        count += 1


def test_sigterm_stops_a_busy_emulator_within_its_bound_and_leaves_no_child(home):
    served = Served(home)
    s3, sm = served.client("s3"), served.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    assert deploy(sm, "busy", model_artifact(s3, "model/model.tar.gz"))["EndpointStatus"] == "InService"
    data = put_csv(s3, "data/train.csv", "1,0\n")
    sm.create_training_job(
        **training_request("long", [channel("train", data)], HyperParameters={"sleep_seconds": "600"})
    )
    wait_for(lambda: sm.describe_training_job(TrainingJobName="long")["SecondaryStatus"], lambda s: s == "Training")
    stop = threading.Event()
    clients = [threading.Thread(target=_hammer, args=(served, stop), daemon=True) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(2)
        children = _descendants(served.process.pid)
        assert children  # the model server and the training container
        started = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(EXIT_HANG_SECONDS) == 0
        print(f"SIGTERM under load to exit: {time.monotonic() - started:.1f} s (bound {BOUND_SECONDS:.0f} s)")
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    assert [pid for pid in children if _alive(pid)] == []
    assert homes.find(home) is None and not (home / homes.RUNTIME_FILE).exists()
    again = Served(home)  # healthy after: it comes back with its state
    assert again.client("sagemaker").describe_endpoint(EndpointName="busy")["EndpointStatus"] == "InService"
    again.stop()


def test_a_stop_that_overruns_its_bound_kills_the_children_and_exits_1():
    """The last resort, in a child Python: an emulator whose stop hangs is left after the bound, children killed."""
    code = (
        "import signal, time\n"
        "from sagemaker_emulator.__main__ import _stop_within\n"
        "class Hanging:\n"
        "    def stop(self): time.sleep(600)\n"
        "    def signal_children(self, signum): print('children sent', signal.Signals(signum).name, flush=True)\n"
        "_stop_within(Hanging(), 0.5)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=EXIT_HANG_SECONDS)
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "children sent SIGKILL\n",
        "The emulator did not stop within 0.5 s; killed its children.\n",
    )


def test_an_exit_that_hangs_after_a_stop_in_time_is_cut_at_the_bound_with_0():
    code = (
        "import threading, time\n"
        "from sagemaker_emulator.__main__ import _stop_within\n"
        "class Stopping:\n"
        "    def stop(self): pass\n"
        "_stop_within(Stopping(), 0.5)\n"
        "threading.Thread(target=time.sleep, args=(600,)).start()  # a thread the interpreter's exit would wait for\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=EXIT_HANG_SECONDS)
    assert (done.returncode, done.stderr) == (0, "")
