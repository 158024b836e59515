"""The FM artifact's formats written and read without MXNet, checked against MXNet itself."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import recordio_protobuf as records
import sagemaker_emulator  # noqa: F401  (numpy.bool alias before mxnet)
from sagemaker_emulator.algorithms import fm_artifact
from sagemaker_emulator.algorithms.layout import create_layout

ARRAYS = {
    "arg:w0_weight": np.array([0.25], np.float32),
    "arg:w1_weight": np.arange(6, dtype=np.float32).reshape(6, 1),
    "arg:v": np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32),
    "counts": np.arange(4, dtype=np.int64),
    "halves": np.ones((2, 2, 2), np.float16),
}


def test_saved_bytes_are_mxnets(tmp_path):
    import mxnet as mx

    mx.nd.save(str(tmp_path / "params"), {name: mx.nd.array(a, dtype=a.dtype) for name, a in ARRAYS.items()})
    assert fm_artifact.save_ndarrays(ARRAYS) == (tmp_path / "params").read_bytes()


def test_mxnet_loads_what_is_saved_and_back(tmp_path):
    import mxnet as mx

    (tmp_path / "params").write_bytes(fm_artifact.save_ndarrays(ARRAYS))
    loaded = mx.nd.load(str(tmp_path / "params"))
    assert loaded.keys() == ARRAYS.keys()
    for name, array in ARRAYS.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name].asnumpy(), array)
    again = fm_artifact.load_ndarrays((tmp_path / "params").read_bytes())
    for name, array in ARRAYS.items():
        assert again[name].dtype == array.dtype
        np.testing.assert_array_equal(again[name], array)


@pytest.mark.parametrize("output_op", ["LinearRegressionOutput", "LogisticRegressionOutput"])
def test_the_graph_is_the_one_mxnet_writes(output_op):
    import mxnet as mx

    with mx.name.NameManager():  # operator names are numbered per name manager (dot0, dot1, ...)
        data, label = mx.sym.Variable("data"), mx.sym.Variable("out_label")
        w0 = mx.sym.Variable("w0_weight", shape=(1,))
        w1 = mx.sym.Variable("w1_weight", shape=(7, 1))
        v = mx.sym.Variable("v", shape=(7, 3))
        linear = mx.sym.broadcast_add(mx.sym.dot(data, w1), mx.sym.reshape(w0, shape=(1, 1)))
        xv = mx.sym.dot(data, v)
        squares = mx.sym.dot(mx.sym.square(data), mx.sym.square(v))  # built before square(xv), as the names say
        pairwise = 0.5 * mx.sym.sum(mx.sym.square(xv) - squares, axis=1, keepdims=True)
        expected = getattr(mx.sym, output_op)(linear + pairwise, label, name="out")
    ours = fm_artifact.symbol_json(7, 3, output_op)
    assert json.loads(ours) == json.loads(expected.tojson())
    assert mx.sym.load_json(ours).list_arguments() == ["data", "w1_weight", "w0_weight", "v", "out_label"]


def test_bad_files_are_refused():
    good = fm_artifact.save_ndarrays({"a": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="not an MXNet NDArray file: magic 0x0"):
        fm_artifact.load_ndarrays(bytes(24))
    with pytest.raises(ValueError, match="truncated NDArray file: array 0 needs 12 bytes"):
        fm_artifact.load_ndarrays(good[:-20])
    with pytest.raises(ValueError, match="truncated NDArray file"):
        fm_artifact.load_ndarrays(good[:10])
    sparse = bytearray(good)
    sparse[28:32] = (1).to_bytes(4, "little")  # storage type row_sparse
    with pytest.raises(ValueError, match="only dense arrays .* storage type 1"):
        fm_artifact.load_ndarrays(bytes(sparse))
    with pytest.raises(ValueError, match="array 'b' of dtype bool"):
        fm_artifact.save_ndarrays({"b": np.ones(2, bool)})


def test_a_job_and_its_endpoint_never_import_mxnet(tmp_path):
    """The start-up budget (issue 24): training, saving and loading an FM model without ``import mxnet``."""
    rng = np.random.default_rng(0)
    features = sp.random(200, 30, density=0.1, format="csr", dtype=np.float32, random_state=0)
    hyperparameters = {"feature_dim": "30", "predictor_type": "regressor", "num_factors": "4"}
    layout = create_layout(tmp_path, hyperparameters, {"train": {"ContentType": "application/x-recordio-protobuf"}})
    with (layout.channel_dir("train") / "part-0.pbr").open("wb") as stream:
        records.write_records(stream, features, rng.normal(size=200).astype(np.float32))
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from sagemaker_emulator.algorithms import factorization_machines as fm
        from sagemaker_emulator.algorithms.base import parse_hyperparameters
        from sagemaker_emulator.algorithms.layout import JobLayout
        layout = JobLayout(Path({str(tmp_path)!r}))
        fm.train(layout, parse_hyperparameters(fm.HYPERPARAMETERS, layout.hyperparameters()))
        fm.load(layout.model_dir)
        assert "mxnet" not in sys.modules, "mxnet was imported"
        assert "numba" not in sys.modules, "numba was imported for a tiny job"
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
