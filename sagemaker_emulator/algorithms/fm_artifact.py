"""The factorization-machines artifact (``model_algo-1``) written and read without importing MXNet.

``import mxnet`` costs about 3 CPU-seconds and 0.6 GiB, more than a small job's whole training, and a job or an
endpoint needs nothing from it but two file formats, both small and stable in MXNet 1.x:

- the parameter file, MXNet's NDArray list (``mx.nd.save``, ``src/ndarray/ndarray.cc``): uint64 magic 0x112,
  uint64 0, uint64 count, the arrays, uint64 count, the names (uint64 length, bytes); an array is uint32 magic
  0xF993FAC9, int32 storage type (0 dense), int32 ndim, int64 dims, int32 device type and id, int32 dtype flag,
  then its bytes in C order, all little-endian;
- the graph, ``symbol.json``: the node list ``mx.sym`` writes for the model (checked against MXNet in the tests).

Loading the artifact with MXNet (``mx.module.Module.load``, as AWS's examples and Lab 1a do) works as before.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

LIST_MAGIC = 0x112
ARRAY_MAGIC = 0xF993FAC9
DENSE = 0
CPU = 1
MXNET_VERSION = 10901  # what MXNet 1.9.1 stamps on a graph
DTYPE_FLAGS = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
}
FLAG_OF_DTYPE = {dtype: flag for flag, dtype in DTYPE_FLAGS.items()}
_U64, _I32 = struct.Struct("<Q"), struct.Struct("<i")


def save_ndarrays(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes ``mx.nd.save`` writes for ``arrays`` (dense, on the CPU).

    Raises:
        ValueError: an array of a dtype MXNet has no flag for, or with no dimension.
    """
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for name, array in arrays.items():
        array = np.asarray(array)
        flag = FLAG_OF_DTYPE.get(array.dtype.newbyteorder("<"))
        if flag is None or array.ndim == 0:
            raise ValueError(f"array {name!r} of dtype {array.dtype} and shape {array.shape} has no MXNet NDArray form")
        parts.append(struct.pack(f"<Iii{array.ndim}qiii", ARRAY_MAGIC, DENSE, array.ndim, *array.shape, CPU, 0, flag))
        parts.append(np.ascontiguousarray(array, dtype=DTYPE_FLAGS[flag]).tobytes())
    parts.append(_U64.pack(len(arrays)))
    for name in arrays:
        encoded = name.encode()
        parts += [_U64.pack(len(encoded)), encoded]
    return b"".join(parts)


def load_ndarrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``mx.nd.save`` file, by name (what ``mx.nd.load`` returns, as numpy arrays).

    Raises:
        ValueError: not an NDArray list, a sparse or legacy-format array, an unknown dtype, or truncated data.
    """
    view = memoryview(data)
    position = 0

    def take(fmt: str) -> tuple:
        nonlocal position
        size = struct.calcsize(fmt)
        if position + size > len(view):
            raise ValueError(f"truncated NDArray file: {size} bytes wanted at offset {position}, {len(view)} in all")
        values = struct.unpack_from(fmt, view, position)
        position += size
        return values

    magic, _, count = take("<QQQ")
    if magic != LIST_MAGIC:
        raise ValueError(f"not an MXNet NDArray file: magic 0x{magic:X}, expected 0x{LIST_MAGIC:X}")
    arrays = []
    for index in range(count):
        array_magic, storage, ndim = take("<Iii")
        if array_magic != ARRAY_MAGIC or storage != DENSE or ndim < 1:
            raise ValueError(
                f"array {index}: only dense arrays of MXNet's current format are read (magic 0x{array_magic:X}, "
                f"storage type {storage}, ndim {ndim})"
            )
        shape = take(f"<{ndim}q")
        _, _, flag = take("<iii")
        if flag not in DTYPE_FLAGS:
            raise ValueError(f"array {index}: unknown dtype flag {flag}")
        size = int(np.prod(shape)) * DTYPE_FLAGS[flag].itemsize
        if position + size > len(view):
            raise ValueError(f"truncated NDArray file: array {index} needs {size} bytes at offset {position}")
        arrays.append(np.frombuffer(view, DTYPE_FLAGS[flag], int(np.prod(shape)), position).reshape(shape).copy())
        position += size
    (n_names,) = take("<Q")
    names = []
    for _ in range(n_names):
        (length,) = take("<Q")
        if position + length > len(view):
            raise ValueError(f"truncated NDArray file: a name of {length} bytes at offset {position}")
        names.append(bytes(view[position : position + length]).decode())
        position += length
    if len(names) != len(arrays):
        raise ValueError(f"NDArray file has {len(arrays)} arrays but {len(names)} names")
    return dict(zip(names, arrays))


def _node(op: str, name: str, inputs: tuple[int, ...] = (), attrs: dict[str, str] | None = None) -> dict:
    node = {"op": op, "name": name}
    if attrs:
        node["attrs"] = attrs
    node["inputs"] = [[source, 0, 0] for source in inputs]
    return node


def symbol_json(feature_dim: int, num_factors: int, output_op: str) -> str:
    """``symbol.json`` of ŷ = w0 + x·w1 + ½ Σ_f [(x·V_f)² − (x²)·(V_f²)] with ``output_op`` on top, as ``mx.sym``
    writes it (inputs ``data`` and ``out_label``; parameters ``w0_weight``, ``w1_weight``, ``v``)."""
    nodes = [
        _node("null", "data"),  # 0
        _node("null", "w1_weight", attrs={"__shape__": f"({feature_dim}, 1)"}),  # 1
        _node("dot", "dot0", (0, 1)),  # 2: x·w1
        _node("null", "w0_weight", attrs={"__shape__": "(1,)"}),  # 3
        _node("Reshape", "reshape0", (3,), {"shape": "(1, 1)"}),  # 4
        _node("broadcast_add", "broadcast_add0", (2, 4)),  # 5: x·w1 + w0
        _node("null", "v", attrs={"__shape__": f"({feature_dim}, {num_factors})"}),  # 6
        _node("dot", "dot1", (0, 6)),  # 7: x·V
        _node("square", "square2", (7,)),  # 8
        _node("square", "square0", (0,)),  # 9: x²
        _node("square", "square1", (6,)),  # 10: V²
        _node("dot", "dot2", (9, 10)),  # 11
        _node("elemwise_sub", "_minus0", (8, 11)),  # 12
        _node("sum", "sum0", (12,), {"axis": "1", "keepdims": "True"}),  # 13
        _node("_mul_scalar", "_mulscalar0", (13,), {"scalar": "0.5"}),  # 14
        _node("elemwise_add", "_plus0", (5, 14)),  # 15
        _node("null", "out_label"),  # 16
        _node(output_op, "out", (15, 16)),  # 17
    ]
    graph = {
        "nodes": nodes,
        "arg_nodes": [index for index, node in enumerate(nodes) if node["op"] == "null"],
        "node_row_ptr": list(range(len(nodes) + 1)),
        "heads": [[len(nodes) - 1, 0, 0]],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }
    return json.dumps(graph, indent=2)


def write_artifact(path: Path, params: dict[str, np.ndarray], symbol: str, meta: dict) -> None:
    """``model_algo-1``: a zip of ``symbol.json``, ``params`` (``arg:`` keys, as ``save_checkpoint``), ``meta.json``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("symbol.json", symbol)
        archive.writestr("params", save_ndarrays({f"arg:{name}": array for name, array in params.items()}))
        archive.writestr("meta.json", json.dumps(meta))


def read_artifact(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(the graph, the ``arg:`` parameters by name without the prefix) of a ``model_algo-1``.

    Raises:
        OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, ValueError: an unreadable artifact.
    """
    with zipfile.ZipFile(path) as archive:
        graph = json.loads(archive.read("symbol.json"))
        arrays = load_ndarrays(archive.read("params"))
    return graph, {name.removeprefix("arg:"): array for name, array in arrays.items() if name.startswith("arg:")}
