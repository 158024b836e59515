"""Data-parallel training across a job's hosts with MXNet's distributed key-value store (ps-lite), on loopback.

AWS's FM and k-NN containers synchronise their hosts through MXNet's kvstore; here each host's container starts
the same machinery: ``algo-1`` a scheduler, every host one server (``DMLC_NUM_SERVER`` = hosts, as AWS's
``_num_kv_servers`` ``auto`` does), and the container itself joins as a worker of a ``dist_sync`` store. The job
runner gives every host the scheduler's address (``DMLC_PS_ROOT_URI``/``DMLC_PS_ROOT_PORT``) and the counts
(``DMLC_NUM_WORKER``/``DMLC_NUM_SERVER``); this module adds each process's ``DMLC_ROLE``.

The store's servers hold no optimizer, so a ``dist_sync`` push of one key by every worker leaves the *sum* of
the pushes on the server (ps-lite's default merge): :meth:`Cluster.merge` and :meth:`Cluster.gather` are
built on that sum. A one-host job has no cluster (:func:`join` returns None) and never imports MXNet here.
"""

from __future__ import annotations

import atexit
import gc
import os
import subprocess
import sys
from collections.abc import Sequence

import numpy as np

from sagemaker_emulator.algorithms.base import log
from sagemaker_emulator.algorithms.layout import JobLayout

# numpy 1.24 removed numpy.bool, which mxnet 1.9.1 references (design §6); restored before the import
_PS_NODE = "import numpy; numpy.bool = bool; import mxnet"
# How often data-parallel FM merges its hosts' parameters. Measured on the tests' planted ratings (2 hosts, 30
# epochs, 3 data seeds): a plain mean of the hosts' parameters left the test RMSE 0.014-0.031 above one host's
# once an epoch and 0.014-0.018 at 8 times, because a row (a user, an item) that only one host's shard touches had
# its update halved; merging each row's updates over the hosts that made them (:meth:`Cluster.merge`) at 8 times
# an epoch brought it within 0.004 of one host's (one host's own spread over the seeds: 0.249-0.255).
SYNCS_PER_EPOCH = 8
ROOT_VARIABLES = ("DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_WORKER", "DMLC_NUM_SERVER")


class Cluster:
    """This host's worker in the job's ``dist_sync`` kvstore, with the scheduler and server it started."""

    def __init__(self, layout: JobLayout):
        missing = [name for name in ROOT_VARIABLES if name not in os.environ]
        if missing:
            raise RuntimeError(f"a multi-instance job's container needs {', '.join(missing)} from the job runner")
        self.hosts = layout.hosts()
        self.host = layout.current_host()
        self._nodes = []
        atexit.register(_end_nodes, self._nodes)  # a host that fails or is stopped leaves no node waiting
        if self.host == self.hosts[0]:
            self._nodes.append(_start_node("scheduler"))
        self._nodes.append(_start_node("server"))
        os.environ["DMLC_ROLE"] = "worker"
        import mxnet as mx

        self._mx = mx
        self._store = mx.kv.create("dist_sync")
        self.rank = self._store.rank
        self.size = self._store.num_workers
        self._keys: dict[tuple[int, ...], int] = {}
        self._params: list[np.ndarray] = []
        self._bases: list[np.ndarray] = []
        log(f"{self.host}: joined the kvstore as worker {self.rank} of {self.size}")

    def _key(self, shape: tuple[int, ...]) -> int:
        """One key per shape, initialised at its first use and reused: every worker makes the same calls in the
        same order, so keys agree. A key per exchange would leave every exchange's buffers in the worker and the
        servers until the job ends: 1.8 GiB per host after 3 epochs at 4M rows (2 hosts), growing with epochs."""
        key = self._keys.get(shape)
        if key is None:
            key = self._keys[shape] = len(self._keys) + 1
            self._store.init(key, self._mx.nd.zeros(shape))
        return key

    def total(self, array: np.ndarray) -> np.ndarray:
        """The element-wise sum of ``array`` over every host (float32; the same shape on every host). A
        ``dist_sync`` server answers a round's pushes only once every worker's is in and, holding no optimizer,
        keeps their sum in place of the key's last value, so a key serves any number of rounds."""
        mx = self._mx
        value = mx.nd.array(np.ascontiguousarray(array, dtype=np.float32))
        key = self._key(value.shape)
        self._store.push(key, value)
        out = mx.nd.zeros(value.shape)
        self._store.pull(key, out=out)
        return out.asnumpy()

    def schedule(self, batches: int) -> frozenset[int]:
        """The batches of this epoch after which to :meth:`merge`: ``SYNCS_PER_EPOCH`` spread evenly, the last
        batch always among them, and as many on every host (hosts' shards differ in size, so each host's batch
        count is shared first and the fewest bounds the number)."""
        counts = np.zeros(self.size, np.float32)
        counts[self.rank] = batches
        fewest = int(self.total(counts).min())
        syncs = max(1, min(SYNCS_PER_EPOCH, fewest))
        return frozenset(batches * number // syncs - 1 for number in range(1, syncs + 1))

    def track(self, params: Sequence[np.ndarray]) -> None:
        """The parameter arrays :meth:`merge` keeps in step, as they are now (the same on every host)."""
        self._params = list(params)
        self._bases = [param.copy() for param in params]

    def merge(self) -> None:
        """Add to every tracked array, in place, the hosts' updates since the last merge: along its first axis,
        each row gets the mean update of the hosts that changed it (lazy, row-sparse updates leave the others'
        rows as they were), so every host continues from the same parameters."""
        for param, base in zip(self._params, self._bases, strict=True):
            delta = param - base
            rows = delta.reshape(len(delta), -1)
            changed = np.any(rows != 0, axis=1).astype(np.float32)
            summed = self.total(np.column_stack([changed, rows]))
            hosts = np.maximum(summed[:, 0], 1.0)[:, None]
            param[...] = base + (summed[:, 1:] / hosts).reshape(param.shape)
            base[...] = param

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Every host's ``rows`` (2-D float32, the same width everywhere), stacked in worker-rank order."""
        counts = np.zeros(self.size, np.float32)
        counts[self.rank] = len(rows)
        counts = self.total(counts).astype(np.int64)
        width = rows.shape[1]
        padded = np.zeros((self.size, int(counts.max(initial=0)), width), np.float32)
        padded[self.rank, : len(rows)] = rows
        if padded.size == 0:
            return np.zeros((0, width), np.float32)
        summed = self.total(padded)
        return np.concatenate([summed[rank, :count] for rank, count in enumerate(counts)])

    def close(self) -> None:
        """Leave the store (its last barrier), then wait for this host's scheduler and server to end."""
        self._store = None
        gc.collect()
        for node in self._nodes:
            node.wait()


def _start_node(role: str) -> subprocess.Popen:
    """A ps-lite scheduler or server: importing mxnet with ``DMLC_ROLE`` set runs it until the workers finish."""
    return subprocess.Popen([sys.executable, "-c", _PS_NODE], env={**os.environ, "DMLC_ROLE": role})


def _end_nodes(nodes: list[subprocess.Popen]) -> None:
    for node in nodes:
        if node.poll() is None:
            node.kill()
            node.wait()


def join(layout: JobLayout) -> Cluster | None:
    """This host's place in a multi-instance job, or None on one host (where training needs no exchange)."""
    return Cluster(layout) if len(layout.hosts()) > 1 else None


def is_leader(layout: JobLayout) -> bool:
    """Whether this host writes the model: ``algo-1``, whose ``model/`` the job uploads."""
    return layout.current_host() == layout.hosts()[0]
