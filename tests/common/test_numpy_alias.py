import subprocess
import sys


def test_common_restores_numpy_bool_so_mxnet_imports():
    code = "import common, numpy, mxnet; assert numpy.bool is bool; print(mxnet.nd.ones((2,)).sum().asscalar())"
    out = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2.0"
