"""make kernel: the workshop kernel always runs this clone's interpreter."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "register_kernel.py"
ARGS = ["--name", "workshop-test", "--display-name", "Workshop Test"]


def _register(tmp_path) -> str:
    env = {"JUPYTER_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(SCRIPT), *ARGS], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def _argv(tmp_path) -> list[str]:
    return json.loads((tmp_path / "kernels" / "workshop-test" / "kernel.json").read_text())["argv"]


def test_a_kernel_left_by_another_clone_is_registered_again(tmp_path):
    spec = tmp_path / "kernels" / "workshop-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/elsewhere/.venv/bin/python", "-m", "ipykernel_launcher"],
                "display_name": "Workshop Test",
                "language": "python",
            }
        )
    )
    said = _register(tmp_path)
    assert _argv(tmp_path)[0] == sys.executable
    assert f"for {sys.executable} (it ran /elsewhere/.venv/bin/python)" in said


def test_a_kernel_that_runs_this_interpreter_is_left_alone(tmp_path):
    _register(tmp_path)
    assert _argv(tmp_path)[0] == sys.executable
    assert _register(tmp_path) == ""
