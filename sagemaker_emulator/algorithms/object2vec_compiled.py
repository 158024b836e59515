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
