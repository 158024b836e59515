"""FM's compiled path (``fm_compiled``, numba) against the numpy path: same models, its threshold, its cache."""

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from test_algorithm_factorization_machines import config, planted_ratings

from sagemaker_emulator.algorithms import factorization_machines as fm
from sagemaker_emulator.algorithms.base import ClientError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data():
    """The planted ratings with feature values other than 1 (x² ≠ x), so every term of the gradient counts."""
    train_x, train_y, test_x, test_y, *_ = planted_ratings(users=60, items=80, per_user=40)
    scale = np.random.default_rng(1).uniform(0.5, 1.5, train_x.nnz).astype(np.float32)
    train_x = train_x.copy()
    train_x.data *= scale
    return train_x, train_y, test_x, test_y


def fit(data, monkeypatch, compiled, **overrides):
    """Train on ``data`` with the compiled kernels or numpy, chunks of 3 batches, one thread."""
    monkeypatch.setattr(fm, "COMPILED_MIN_ROWS", 0 if compiled else 1 << 40)
    monkeypatch.setattr(fm, "ROWS_PER_CHUNK", 3 * 150)
    settings = {"epochs": 3, "mini_batch_size": 150, **overrides}  # 1,600 rows: the last batch is short
    return fm.fit(data[0], data[1], config(data[0], **settings))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"predictor_type": "binary_classifier"},
        {"_optimizer": "sgd", "clip_gradient": 0.05, "factors_lr": 0.05},
        {"use_bias": "false", "use_linear": "false", "eps": 1e-4, "rescale_grad": 0.01},
    ],
    ids=["adam-regressor", "adam-classifier", "sgd-clipped", "factors-only"],
)
def test_one_thread_compiled_equals_numpy(data, monkeypatch, overrides):
    if overrides.get("predictor_type") == "binary_classifier":
        data = (data[0], (data[1] >= 4).astype(np.float32), *data[2:])
    numpy_model = fit(data, monkeypatch, False, **overrides)
    compiled_model = fit(data, monkeypatch, True, **overrides)
    for name in ("w0", "w", "v"):
        np.testing.assert_allclose(getattr(compiled_model, name), getattr(numpy_model, name), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("values", ["one-hot", "wide-rows"])
def test_compiled_equals_numpy_on_one_hot_and_wide_rows(data, monkeypatch, values):
    """One-hot rows (the kernel then never reads the values) and rows of 12-18 non-zeros (more than the kernel's
    first staging room per batch, so it grows): the same model as numpy's."""
    features = data[0].copy()
    if values == "one-hot":
        features.data[:] = 1
    else:
        rng = np.random.default_rng(2)
        extra = sp.random(features.shape[0], features.shape[1], density=12 / features.shape[1], random_state=3)
        features = (features + extra.multiply(rng.uniform(0.1, 0.5)).tocsr()).astype(np.float32).tocsr()
        assert np.diff(features.indptr).mean() > 4
    models = [fit((features, *data[1:]), monkeypatch, compiled, epochs=2) for compiled in (False, True)]
    for name in ("w0", "w", "v"):
        np.testing.assert_allclose(getattr(models[1], name), getattr(models[0], name), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("predictor_type", ["regressor", "binary_classifier"])
def test_both_paths_log_the_same_metrics(data, monkeypatch, capsys, predictor_type):
    """Batch metrics at an interval of 2 against chunks of 3 batches (the compiled path logs a chunk's batches
    after it) and each epoch's metrics: the same lines, the same figures to rounding."""
    if predictor_type == "binary_classifier":
        data = (data[0], (data[1] >= 4).astype(np.float32), *data[2:])
    lines = {}
    for compiled in (False, True):
        fit(data, monkeypatch, compiled, batch_metrics_publish_interval=2, predictor_type=predictor_type)
        found = re.findall(r"#quality_metric: host=\S+, (.*) <\w+>=(\S+)", capsys.readouterr().out)
        lines[compiled] = {scope: float(value) for scope, value in found}
    batches = -(-data[0].shape[0] // 150)
    logged = {scope.rsplit("train", 1)[0].strip() for scope in lines[True]}
    assert logged == {f"epoch={e}, batch={b}" for e in range(3) for b in range(0, batches, 2)} | {
        f"epoch={e}," for e in range(3)
    } | {""}
    assert lines[True].keys() == lines[False].keys()
    np.testing.assert_allclose(list(lines[True].values()), list(lines[False].values()), rtol=1e-4, atol=1e-3)


def test_compiled_shuffle_is_a_seeded_uniform_permutation():
    """Several buckets (``SHUFFLE_BUCKET_ROWS`` rows each): a permutation, the same for the same seed, and where an
    element lands is independent of where it was (each quarter of the input spread evenly over the output's)."""
    from sagemaker_emulator.algorithms import fm_compiled

    n = 6 * fm_compiled.SHUFFLE_BUCKET_ROWS + 123
    orders = []
    for seed in (7, 7, 8):
        order = np.arange(n, dtype=np.int32)
        fm_compiled.shuffle(order, seed)
        orders.append(order)
    assert np.array_equal(np.sort(orders[0]), np.arange(n))
    assert np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[0], orders[2])
    quarters = np.histogram2d(orders[0] * 4 // n, np.arange(n) * 4 // n, bins=4)[0]
    np.testing.assert_allclose(quarters / (n / 16), 1.0, atol=0.05)


def test_compiled_hogwild_is_as_good_as_numpy(data, monkeypatch, capsys):
    """Two unlocked threads are not bit-exact: their test RMSE is within 2% of the sequential numpy model's."""
    sequential = fit(data, monkeypatch, False, epochs=30)
    monkeypatch.setattr(fm, "TWO_THREADS_MIN_ROWS", 0)
    hogwild = fit(data, monkeypatch, True, epochs=30)
    assert "compiled kernels" in capsys.readouterr().out
    test_x, test_y = data[2], data[3]
    rmse = {
        name: np.sqrt(np.mean((model.decision(test_x) - test_y) ** 2))
        for name, model in (("numpy", sequential), ("hogwild", hogwild))
    }
    assert rmse["hogwild"] < 1.02 * rmse["numpy"], rmse


def test_kernels_are_ready_before_the_first_epoch_is_timed(data, monkeypatch, capsys):
    """Compiling (or loading) the kernels is logged with its time before epoch 0 starts, so the epoch's logged
    throughput is training only, in one thread and in two."""
    for threshold in (1 << 40, 0):
        monkeypatch.setattr(fm, "TWO_THREADS_MIN_ROWS", threshold)
        fit(data, monkeypatch, True, epochs=1)
        out = capsys.readouterr().out
        ready = re.search(r"compiled kernels \(numba\), ready in [0-9.]+ s", out)
        assert ready and ready.end() < out.index("epoch=0"), out


def test_prefetch_hints_change_nothing_and_never_fault():
    """The hint on rows of 1-, 2- and 3-D arrays, by int32 or int64, at offsets up to past the array's end."""
    import numba

    from sagemaker_emulator.algorithms.prefetch import prefetch

    @numba.njit
    def hinted_sum(array, rows, offset):
        total = 0.0
        for row in rows:
            prefetch(array, row, offset, False)
            prefetch(array, row, offset, True)
            total += array[row : row + 1].sum()
        return total

    for array in (np.arange(10.0), np.ones((10, 4), np.float32), np.ones((10, 3, 64), np.float32)):
        for rows in (np.arange(10, dtype=np.int32), np.arange(9, -1, -1, dtype=np.int64)):
            for offset in (0, 64, array.nbytes):
                assert hinted_sum(array, rows, offset) == array.sum()


def test_divergence_in_the_compiled_path_fails_the_job_with_advice(data, monkeypatch):
    with pytest.raises(ClientError, match="Training diverged in epoch 0 .* lower the learning rates"):
        fit(data, monkeypatch, True, _optimizer="sgd", linear_lr=1e30, factors_lr=1e30, rescale_grad=1.0)


def run_python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env={**os.environ, **env}
    )


FIT_SCRIPT = """
    import os
    import sys
    import numpy as np
    import scipy.sparse as sp
    from sagemaker_emulator.algorithms import factorization_machines as fm
    from sagemaker_emulator.algorithms.base import parse_hyperparameters
    fm.COMPILED_MIN_ROWS = int(os.environ.get("TEST_COMPILED_MIN_ROWS", fm.COMPILED_MIN_ROWS))
    features = sp.random(500, 40, density=0.1, format="csr", dtype=np.float32, random_state=0)
    raw = {"feature_dim": "40", "num_factors": "4", "predictor_type": "regressor"}
    fm.fit(features, np.ones(500, np.float32), parse_hyperparameters(fm.HYPERPARAMETERS, raw))
    compiled = "sagemaker_emulator.algorithms.fm_compiled" in sys.modules
    print("numba" in sys.modules, compiled and bool(sys.modules[fm.__package__ + ".fm_compiled"].train_chunk.stats.cache_hits))
"""


def test_small_jobs_never_import_numba():
    result = run_python(FIT_SCRIPT, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_kernels_are_cached_in_numba_cache_dir_beside_read_only_code(tmp_path):
    """The job's NUMBA_CACHE_DIR holds the compiled kernels, the second process loads them, and a read-only copy
    of the code (the job sandbox's) is never written to."""
    code = tmp_path / "code"
    shutil.copytree(
        ROOT / "sagemaker_emulator", code / "sagemaker_emulator", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        ROOT / "recordio_protobuf", code / "recordio_protobuf", ignore=shutil.ignore_patterns("__pycache__")
    )
    for path in [code, *code.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    cache = tmp_path / "cache" / "numba"
    env = {
        "PYTHONPATH": str(code),
        "NUMBA_CACHE_DIR": str(cache),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TEST_COMPILED_MIN_ROWS": "0",
    }
    try:
        first = run_python(FIT_SCRIPT, env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.split()[-2:] == ["True", "False"]
        assert list(cache.rglob("*.nbi")), "no kernel was cached"
        second = run_python(FIT_SCRIPT, env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.split()[-2:] == ["True", "True"], "the second process compiled again"
        assert not [path.name for path in code.rglob("*") if "nb" in path.suffix or path.name == "__pycache__"]
    finally:
        for path in [code, *code.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
