"""Adam's updates for :mod:`object2vec_numpy`, compiled with numba: one pass over each parameter, without the GIL.

In numpy an Adam step is a dozen passes over the parameter, each allocating a temporary, and the lazy step on an
embedding table adds a sort, a ``reduceat`` and gathers and scatters of three tables: together about 40% of a
Lab 2 step's CPU. Here each is one loop, so the matrix products are most of a step, and two threads training at
once (Hogwild) do not wait for each other. The arithmetic is MXNet's ``adam_update`` in float32.
Compiled code is cached in ``NUMBA_CACHE_DIR`` (a per-job folder, set by the emulator's training runner).
"""

from __future__ import annotations

import numba
import numpy as np

BETA1, BETA2 = np.float32(0.9), np.float32(0.999)
ONE_MINUS_BETA1, ONE_MINUS_BETA2 = np.float32(1 - 0.9), np.float32(1 - 0.999)
FASTMATH = {"reassoc", "contract"}
HADAMARD, CONCAT, ABS_DIFF = range(3)  # comparator codes, in object2vec_network.COMPARATORS' order


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def _adam(weight, mean, variance, gradient, step_size, rescale, decay, epsilon):
    for f in range(weight.shape[0]):
        g = gradient[f] * rescale + decay * weight[f]
        m = mean[f] * BETA1 + ONE_MINUS_BETA1 * g
        v = variance[f] * BETA2 + ONE_MINUS_BETA2 * (g * g)
        weight[f] -= step_size * m / (np.sqrt(v) + epsilon)
        mean[f], variance[f] = m, v


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def dense_adam(weight, mean, variance, gradient, step_size, rescale, decay, epsilon):
    """One Adam step on every element (1-D views of contiguous arrays)."""
    _adam(weight, mean, variance, gradient, step_size, rescale, decay, epsilon)


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def lazy_adam(table, mean, variance, rows, gradients, slots, touched, summed, step_size, rescale, decay, epsilon):
    """One Adam step on the rows a batch looked up, each row's gradients summed first (MXNet's row_sparse Adam).

    ``slots`` (one per table row, all -1 on entry and on return), ``touched`` and ``summed`` (a row each per
    lookup) are the caller's scratch space.
    """
    count = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        slot = slots[row]
        if slot < 0:
            slot = count
            slots[row], touched[count] = slot, row
            summed[slot, :] = gradients[i]
            count += 1
        else:
            summed[slot, :] += gradients[i]
    for slot in range(count):
        row = touched[slot]
        slots[row] = -1
        _adam(table[row], mean[row], variance[row], summed[slot], step_size, rescale, decay, epsilon)


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def compare(table0, table1, rows0, rows1, mask0, mask1, codes, encoded0, encoded1, joined):
    """The comparator's output ``joined`` (its parts in ``codes`` order: HADAMARD, CONCAT, ABS_DIFF) of the two
    sides' looked-up rows, times their dropout masks (``mask0``/``mask1``, empty: none), kept in ``encoded0/1``.

    Element by element: array expressions on row slices would allocate a temporary per row and part (half of this
    kernel's time at Lab 2's settings)."""
    width = table0.shape[1]
    masked = mask0.shape[0] > 0
    for i in range(rows0.shape[0]):
        a, b, out = encoded0[i], encoded1[i], joined[i]
        row0, row1 = table0[rows0[i]], table1[rows1[i]]
        for k in range(width):
            a[k], b[k] = (row0[k] * mask0[i, k], row1[k] * mask1[i, k]) if masked else (row0[k], row1[k])
        offset = 0
        for code in codes:
            for k in range(width):
                if code == HADAMARD:
                    out[offset + k] = a[k] * b[k]
                elif code == CONCAT:
                    out[offset + k], out[offset + width + k] = a[k], b[k]
                else:
                    out[offset + k] = abs(a[k] - b[k])
            offset += 2 * width if code == CONCAT else width


@numba.njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def compare_backward(gradient, encoded0, encoded1, mask0, mask1, codes, gradient0, gradient1):
    """Each side's row gradient (before its embedding's lookup) from the gradient of :func:`compare`'s output."""
    width = encoded0.shape[1]
    masked = mask0.shape[0] > 0
    for i in range(gradient.shape[0]):
        a, b, g0, g1, part = encoded0[i], encoded1[i], gradient0[i], gradient1[i], gradient[i]
        g0[:] = 0
        g1[:] = 0
        offset = 0
        for code in codes:
            for k in range(width):
                if code == HADAMARD:
                    g0[k] += part[offset + k] * b[k]
                    g1[k] += part[offset + k] * a[k]
                elif code == CONCAT:
                    g0[k] += part[offset + k]
                    g1[k] += part[offset + width + k]
                else:
                    signed = part[offset + k] * np.sign(a[k] - b[k])
                    g0[k] += signed
                    g1[k] -= signed
            offset += 2 * width if code == CONCAT else width
        if masked:
            for k in range(width):
                g0[k] *= mask0[i, k]
                g1[k] *= mask1[i, k]
