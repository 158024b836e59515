"""Factorization Machines' mini-batch step compiled with numba, for large jobs (``factorization_machines``).

The numpy trainer spends its time in per-batch set-up and in memory round trips of gathered copies: about 0.4M
records per CPU-second. These kernels do a whole chunk of batches per call (forward pass, gradients, lazy
Adam/SGD updates of the rows the batch touched), reading rows of the training matrix in place and updating the
parameter tables where they are, without the GIL, so the two Hogwild threads really run on two cores; they are
bound by memory latency and ask for the cache lines they will need ahead (``prefetch``). ``shuffle``
reorders the rows between the epochs of those two-thread runs, the one step left where both cores wait for one.

Same semantics and, single-threaded, the same float32 operations as the numpy path (sums of squares in float64,
as its ``bincount`` does), only summed in another order (``FASTMATH``, so that loops vectorise): the two agree to
rounding (tests: 1e-5 after 3 epochs). Importing this module imports numba (about a
second of CPU, plus a few seconds to compile on first use): ``factorization_machines`` imports it only for jobs
above its size threshold. Compiled code is cached in ``NUMBA_CACHE_DIR`` (the emulator's training runner gives each
job its own, in the job folder: a cache shared between jobs would let one job plant code another runs), never
beside this file, which may be read-only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sagemaker_emulator.algorithms.prefetch import CACHE_LINE, prefetch

# Per group, one row of SETTINGS: the columns below. A negative clip means no clipping.
LR, WD, RESCALE, CLIP, EPS = range(5)
ADAM_BETA1, ADAM_BETA2 = 0.9, 0.999
# Sums may be reordered (vectorised) and multiply-adds fused: rounding differs from numpy's by about 1e-7.
FASTMATH = {"reassoc", "contract"}
BETA1, BETA2 = np.float32(ADAM_BETA1), np.float32(ADAM_BETA2)
ONE_MINUS_BETA1, ONE_MINUS_BETA2 = np.float32(1 - ADAM_BETA1), np.float32(1 - ADAM_BETA2)
# How many rows ahead of the one being scored ``train_chunk`` asks for what that row will need: its place in indptr
# and its label, then its column numbers and values, then its columns' parameter rows; and how many touched
# features ahead of the one being updated it asks for that one's parameters. Each stage needs the line the one
# before it fetched. Rows come in shuffled order from tables of hundreds of MB, so each would otherwise wait on
# main memory. One thread on ml-20m's shape (2026-12-08): 1,450 ns a row without hints, 1,050 with them, 830 once
# the backward pass also read the batch's staged slots and values instead of the matrix (1,000 rows a batch).
AHEAD_ROW, AHEAD_COLUMNS, AHEAD_PARAMETERS, AHEAD_UPDATE = 24, 16, 8, 4
SHUFFLE_BUCKET_ROWS = 1 << 14  # rows per bucket of ``shuffle``: 64 kB of int32, within a core's L2 cache


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def _update_row(table, row, grad, settings, adam, step_size):
    """One Adam (or SGD) step on ``table[row]`` with the summed gradient ``grad``, as ``_GroupOptimizer.update``
    does it, element by element in float32; ``step_size`` is Adam's bias-corrected rate for this step."""
    lr, wd = np.float32(settings[LR]), np.float32(settings[WD])
    rescale, clip, eps = np.float32(settings[RESCALE]), np.float32(settings[CLIP]), np.float32(settings[EPS])
    weights = table[row, 0]
    if adam:
        means, variances = table[row, 1], table[row, 2]
        for f in range(grad.shape[0]):
            g = grad[f] * rescale
            if clip >= 0:
                g = min(max(g, -clip), clip)
            g += wd * weights[f]
            mean = means[f] * BETA1 + ONE_MINUS_BETA1 * g
            var = variances[f] * BETA2 + (g * g) * ONE_MINUS_BETA2
            weights[f] -= (mean / (np.sqrt(var) + eps)) * step_size
            means[f], variances[f] = mean, var
        return
    for f in range(grad.shape[0]):
        g = grad[f] * rescale
        if clip >= 0:
            g = min(max(g, -clip), clip)
        g += wd * weights[f]
        weights[f] -= g * lr


@numba.njit(nogil=True, cache=True)
def _prefetch_rows(r, rows, indptr, indices, data, binary, labels, linear, factors):
    """Ask for what row ``r + AHEAD_*`` of ``rows`` will need, each stage from the line an earlier one fetched."""
    if r + AHEAD_ROW < rows.shape[0]:
        row = rows[r + AHEAD_ROW]
        prefetch(indptr, row, 0, False)
        prefetch(labels, row, 0, False)
    if r + AHEAD_COLUMNS < rows.shape[0]:
        first = indptr[rows[r + AHEAD_COLUMNS]]
        prefetch(indices, first, 0, False)
        if not binary:
            prefetch(data, first, 0, False)
    if r + AHEAD_PARAMETERS < rows.shape[0]:
        row = rows[r + AHEAD_PARAMETERS]
        for p in range(indptr[row], indptr[row + 1]):
            _prefetch_parameters(indices[p], linear, factors)


@numba.njit(nogil=True, cache=True)
def _prefetch_parameters(column, linear, factors):
    """Ask for a feature's linear weight and whole factor row (values and Adam's moments: all will be written)."""
    prefetch(linear, column, 0, True)
    for offset in range(0, factors.shape[1] * factors.shape[2] * factors.itemsize, CACHE_LINE):
        prefetch(factors, column, offset, True)


@numba.njit(nogil=True, cache=True)
def _draw(state, bound):
    """A draw in [0, bound) (bound < 2**32) from the splitmix64 generator ``state[0]``: 32 random bits scaled by
    multiplication (Lemire), biased by at most bound / 2**32 (below 1e-5 for ``shuffle``'s bounds)."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return np.int64(((z >> np.uint64(32)) * np.uint64(bound)) >> np.uint64(32))


@numba.njit(nogil=True, cache=True)
def shuffle(order, seed):
    """Shuffle ``order`` in place, seeded: each element goes to one of ``len // SHUFFLE_BUCKET_ROWS`` buckets drawn at
    random, then each bucket (64 kB: in cache) is shuffled by Fisher-Yates. As random as one Fisher-Yates over the
    whole array (given the buckets' sizes every arrangement is equally likely), without its random access over tens
    of MB, and with a generator (splitmix64) cheaper than numpy's: a single core does it while both wait, at every
    epoch. The same seed gives another permutation than ``Generator.shuffle``. Plain loops where numpy calls would
    do (``np.full``, ``copy``, slice assignment): those take numba 3.4 s to compile instead of 0.9, in every job."""
    state = np.empty(1, np.uint64)
    state[0] = seed
    n = order.shape[0]
    buckets = min(max(n // SHUFFLE_BUCKET_ROWS, 1), 65535)
    keys = np.empty(n, np.uint16)
    starts = np.zeros(buckets + 1, np.int64)
    for i in range(n):
        key = _draw(state, buckets)
        keys[i] = key
        starts[key + 1] += 1
    for key in range(buckets):
        starts[key + 1] += starts[key]
    placed = np.empty(buckets, np.int64)
    for key in range(buckets):
        placed[key] = starts[key]
    dealt = np.empty(n, order.dtype)
    for i in range(n):
        key = keys[i]
        dealt[placed[key]] = order[i]
        placed[key] += 1
    for key in range(buckets):
        first = starts[key]
        for i in range(starts[key + 1] - 1, first, -1):
            j = first + _draw(state, i + 1 - first)
            dealt[i], dealt[j] = dealt[j], dealt[i]
    for i in range(n):
        order[i] = dealt[i]


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def train_chunk(
    indptr,
    indices,
    data,
    binary,
    labels,
    rows,
    bias,
    linear,
    factors,
    settings,
    adam,
    classifier,
    use_bias,
    use_linear,
    batch_size,
    step,
    decisions,
    scratch_linear,
    scratch_factors,
    scratch_squares,
    slots,
    staged_slots,
    staged_values,
):
    """Train on ``rows`` of the CSR matrix (indptr, indices, data), ``batch_size`` at a time; returns the step.

    ``binary``: every value in ``data`` is 1, so it is never read. ``bias``, ``linear``, ``factors`` are the groups'
    (rows, 3 or 1, width) tables, updated in place; ``settings`` holds one row per group (bias, linear, factors).
    ``decisions`` receives ŷ of every row before its batch's update. The scratch arrays (feature_dim-long, zero on
    entry and on return; a batch's gradients fill their first rows, in the order its features are first seen, so
    they stay in cache), ``slots`` (feature_dim int32, -1 on entry and on return) and ``staged_slots``/``_values``
    (int32 and float32, room for a batch's non-zeros) belong to the calling thread.

    Memory, not arithmetic, sets the pace: rows come in shuffled order, so each one's CSR entries, label and
    parameter rows are scattered over hundreds of MB. Each is asked for ahead (``_prefetch_rows``), read once per
    batch (the backward pass reads the batch's staged slots and values, not the matrix again), and a feature's
    place in the batch lives in one small table (``slots``).
    """
    k = factors.shape[2]
    xv = np.zeros((batch_size, k), np.float32)
    residual = np.zeros(batch_size, np.float32)
    touched = np.empty(slots.shape[0], np.int64)  # the distinct features of the current batch, in order seen
    staged = np.zeros(batch_size + 1, np.int64)  # where each row of the batch starts in staged_slots/values
    bias_grad = np.zeros(1, np.float32)
    for start in range(0, rows.shape[0], batch_size):
        stop = min(start + batch_size, rows.shape[0])
        step += 1
        count = 0
        q = 0
        for r in range(start, stop):
            _prefetch_rows(r, rows, indptr, indices, data, binary, labels, linear, factors)
            row = rows[r]
            first, last = indptr[row], indptr[row + 1]
            linear_sum = np.float32(0.0)
            squares = 0.0
            out = xv[r - start]
            out[:] = 0
            for p in range(first, last):
                column = indices[p]
                x = np.float32(1.0) if binary else data[p]
                linear_sum += x * linear[column, 0, 0]
                norm = np.float32(0.0)
                for f in range(k):
                    value = factors[column, 0, f]
                    out[f] += x * value
                    norm += value * value
                squares += (x * x) * norm
                if slots[column] < 0:
                    slots[column] = count
                    touched[count] = column
                    count += 1
                staged_slots[q], staged_values[q] = slots[column], x
                q += 1
            staged[r - start + 1] = q
            pairwise = np.float32(0.0)
            for f in range(k):
                pairwise += out[f] * out[f]
            decision = bias[0, 0, 0] + linear_sum + np.float32(0.5) * (pairwise - np.float32(squares))
            decisions[r] = decision
            predicted = np.float32(1.0 / (1.0 + math.exp(-decision))) if classifier else decision
            residual[r - start] = predicted - labels[row]
        # ∂ŷ/∂V_if = x_i (x·V)_f − x_i² V_if, summed over the batch per touched feature
        bias_grad[0] = 0
        for i in range(stop - start):
            error = residual[i]
            bias_grad[0] += error
            out = xv[i]
            for p in range(staged[i], staged[i + 1]):
                slot, x = staged_slots[p], staged_values[p]
                scratch_linear[slot] += x * error
                scratch_squares[slot] += (x * x) * error
                grad = scratch_factors[slot]
                for f in range(k):
                    grad[f] += x * (error * out[f])
        corrections = math.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step)
        step_sizes = (settings[:, LR] * corrections).astype(np.float32)
        if use_bias:
            _update_row(bias, 0, bias_grad, settings[0], adam, step_sizes[0])
        for j in range(count):
            column = touched[j]
            if j + AHEAD_UPDATE < count:
                _prefetch_parameters(touched[j + AHEAD_UPDATE], linear, factors)
            if use_linear:
                _update_row(linear, column, scratch_linear[j : j + 1], settings[1], adam, step_sizes[1])
            grad = scratch_factors[j]
            scale = np.float32(scratch_squares[j])
            for f in range(k):
                grad[f] -= factors[column, 0, f] * scale
            _update_row(factors, column, grad, settings[2], adam, step_sizes[2])
            grad[:] = 0
            scratch_linear[j] = 0
            scratch_squares[j] = 0
            slots[column] = -1
    return step
