"""Builders of hostile and broken model files for the security and fuzz tests.

Every builder writes into a folder the caller gives and returns the path; none
needs Keras except the ``*_marker_*`` ones, which build a real model whose Lambda
layer creates a marker file when it runs (the proof that nothing ran is that the
marker does not exist after inspector has read the file).

    from helpers.hostile import keras_archive, functional_config, h5_with_link
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SEED_KERAS = SAMPLES / "seed_cnn.keras"
SEED_H5 = SAMPLES / "seed_cnn.h5"
SEED_ONNX = SAMPLES / "lint_deep_sigmoid.onnx"


# -- .keras archives from configs ---------------------------------------------------------------

def keras_archive(path: Path, config: Any, *, extra: dict[str, bytes] | None = None,
                  compression: int = zipfile.ZIP_STORED) -> Path:
    """A ``.keras`` zip holding ``config`` as config.json (plus ``extra`` members)."""
    raw = config if isinstance(config, (bytes, str)) else json.dumps(config)
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("config.json", raw)
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def tensor_ref(layer: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [layer, 0, 0]}}


def layer_entry(cls: str, name: str, inbound: str | None, *, module: str = "keras.layers",
                registered_name: str | None = None, **config: Any) -> dict[str, Any]:
    """One Keras 3 functional layer entry (``inbound``: the layer it consumes)."""
    nodes = [] if inbound is None else [{"args": [tensor_ref(inbound)], "kwargs": {}}]
    return {"module": module, "class_name": cls, "registered_name": registered_name, "name": name,
            "config": {"name": name, "trainable": True, **config}, "inbound_nodes": nodes}


def input_entry(name: str = "x") -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None, "name": name,
            "config": {"name": name, "batch_shape": [None, 4], "dtype": "float32"}, "inbound_nodes": []}


def functional_config(*layers: dict[str, Any], name: str = "crafted") -> dict[str, Any]:
    """A Keras 3 functional model: an input ``x`` followed by ``layers`` (the last is the output)."""
    entries = [input_entry(), *layers]
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": name, "trainable": True, "layers": entries,
                       "input_layers": ["x", 0, 0], "output_layers": [entries[-1]["name"], 0, 0]}}


def nested_models_config(depth: int) -> dict[str, Any]:
    """``depth`` functional models, each the only layer of the next (a nesting bomb)."""
    inner = functional_config(layer_entry("Dense", "d", "x", units=2), name="m0")
    for i in range(1, depth):
        wrapped = dict(inner, name=f"m{i - 1}", inbound_nodes=[{"args": [tensor_ref("x")], "kwargs": {}}])
        wrapped["config"] = dict(wrapped["config"], name=f"m{i - 1}")
        inner = functional_config(wrapped, name=f"m{i}")
    return inner


def keras2_h5(path: Path, model_config: Any) -> Path:
    """A legacy ``.h5`` holding ``model_config`` and no weights."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = model_config if isinstance(model_config, str) else json.dumps(model_config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
    return path


# -- polyglots: one file, two containers ---------------------------------------------------------

def h5_then_zip(path: Path, h5: Path, zip_config: Any) -> Path:
    """The HDF5 file ``h5`` with a ``.keras`` zip holding ``zip_config`` appended."""
    archive = keras_archive(path.with_name(path.name + ".part.keras"), zip_config)
    path.write_bytes(h5.read_bytes() + archive.read_bytes())
    archive.unlink()
    return path


def zip_then_h5(path: Path, h5_config: Any, zip_config: Any, *, pad: int = 0) -> Path:
    """A legacy ``.h5`` holding ``h5_config`` whose user block starts with a ``.keras`` zip
    holding ``zip_config`` (``pad`` bytes of HDF5 data grow the file after it)."""
    import h5py

    archive = keras_archive(path.with_name(path.name + ".part.keras"), zip_config)
    head = archive.read_bytes()
    archive.unlink()
    block = 512
    while block < len(head):
        block *= 2
    with h5py.File(path, "w", userblock_size=block) as f:
        f.attrs["model_config"] = h5_config if isinstance(h5_config, str) else json.dumps(h5_config)
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
        if pad:
            f["padding"] = np.zeros(pad, dtype="uint8")
    with path.open("r+b") as fh:
        fh.write(head)
    return path


def onnx_with_hdf5_inside(path: Path, h5: Path, *, offset: int) -> Path:
    """An ONNX model whose one initializer's raw bytes are the HDF5 file ``h5``, placed
    (by the length of the model's doc string) at ``offset``, where HDF5 looks for a superblock."""
    from onnx import TensorProto, helper

    blob = h5.read_bytes()

    def build(pad: int) -> bytes:
        tensor = helper.make_tensor("blob", TensorProto.UINT8, [len(blob)], blob, raw=True)
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], initializer=[tensor])
        return helper.make_model(graph, doc_string="p" * pad).SerializeToString()

    first = build(0).find(blob[:8])
    for pad in range(max(0, offset - first - 16), offset - first + 16):
        data = build(pad)
        if data.find(blob[:8]) == offset:
            path.write_bytes(data)
            return path
    raise AssertionError(f"could not place the HDF5 file at byte {offset}")


# -- zip bombs and broken archives --------------------------------------------------------------

def patch_member_size(path: Path, member: str, size: int) -> Path:
    """Make the central directory claim that ``member`` expands to ``size`` bytes
    (a zip bomb's header, without writing the bomb)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    # find the member's central-directory record
    name = member.encode()
    pos = 0
    while True:
        pos = data.index(b"PK\x01\x02", pos)
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + name_len] == name:
            break
        pos += 4
    assert info.file_size < 0xFFFFFFFF and size < 0xFFFFFFFF
    data[pos + 24:pos + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    return path


def patch_entry_count(path: Path, entries: int, cd_size: int | None = None) -> Path:
    """Make the end-of-central-directory record claim ``entries`` members."""
    data = bytearray(path.read_bytes())
    i = data.rindex(b"PK\x05\x06")
    data[i + 8:i + 12] = struct.pack("<HH", min(entries, 0xFFFF), min(entries, 0xFFFF))
    if cd_size is not None:
        data[i + 12:i + 16] = struct.pack("<I", cd_size)
    path.write_bytes(bytes(data))
    return path


def many_members_archive(path: Path, n: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(functional_config(layer_entry("Dense", "d", "x", units=2))))
        for i in range(n):
            zf.writestr(f"assets/{i}", b"")
    return path


# -- HDF5 -------------------------------------------------------------------------------------

def copy_seed_h5(path: Path) -> Path:
    path.write_bytes(SEED_H5.read_bytes())
    return path


def seed_kernel() -> str:
    """The HDF5 path of the kernel the ``h5_with_*`` builders replace (the seed's first)."""
    import h5py

    with h5py.File(SEED_H5, "r") as f:
        return first_kernel(f)


def first_kernel(f: Any) -> str:
    """The HDF5 path of the first kernel of a legacy Keras file."""
    import h5py

    found: list[str] = []
    f["model_weights"].visititems(
        lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and "kernel" in name else None)
    return "model_weights/" + sorted(found)[0]


def _replace_seed_kernel(path: Path, put: Callable[[Any, str, tuple[int, ...], Any], None]) -> Path:
    """Copy the seed ``.h5`` to ``path``, delete its first kernel and let ``put(file, kernel_path,
    shape, dtype)`` write something else in its place."""
    import h5py

    copy_seed_h5(path)
    with h5py.File(path, "a") as f:
        kernel = first_kernel(f)
        shape, dtype = f[kernel].shape, f[kernel].dtype
        del f[kernel]
        put(f, kernel, shape, dtype)
    return path


def h5_with_unknown_filter(path: Path) -> Path:
    """The seed ``.h5`` whose first kernel is compressed with a filter (id 31,420) no HDF5
    knows: written with fletcher32, whose id is then patched in the filter pipeline."""

    def put(f: Any, kernel: str, shape: tuple[int, ...], dtype: Any) -> None:
        f.create_dataset(kernel, data=np.ones(shape, dtype), chunks=shape, fletcher32=True)

    _replace_seed_kernel(path, put)
    data = path.read_bytes()
    message = b"\x03\x00\x10\x00\x00\x00\x00\x00fletcher32"  # pipeline v1: id, name length, flags, values
    assert data.count(message) == 1
    path.write_bytes(data.replace(message, b"\xbc\x7a" + message[2:]))
    return path


def h5_with_string_kernel(path: Path, *, fill: int = 1 << 20) -> Path:
    """The seed ``.h5`` whose first kernel is a variable-length string dataset with a
    ``fill``-byte fill value and nothing stored (8 bytes per element declared)."""
    import h5py

    def put(f: Any, kernel: str, shape: tuple[int, ...], dtype: Any) -> None:
        f.create_dataset(kernel, shape=shape, dtype=h5py.string_dtype(), fillvalue="x" * fill)

    return _replace_seed_kernel(path, put)


def h5_with_shared_vlen_strings(path: Path, *, count: int = 1500, size: int = 1 << 20) -> Path:
    """A legacy ``.h5`` whose ``layer_names`` attribute lists ``count`` variable-length
    strings that all point at one ``size``-byte string (about ``size`` bytes on disk,
    ``count * size`` when read)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs.create("layer_names", data=["x" * size] + ["y"] * (count - 1), dtype=h5py.string_dtype())
    data = bytearray(path.read_bytes())
    first, one = struct.pack("<I", size), struct.pack("<I", 1)
    at = data.find(first)
    while not all(data[at + 16 * k:at + 16 * k + 4] == one for k in range(1, 4)):
        at = data.find(first, at + 1)
    record = bytes(data[at:at + 16])  # length, heap collection address, object index
    for k in range(1, count):
        data[at + 16 * k:at + 16 * k + 16] = record
    path.write_bytes(bytes(data))
    return path


def keras_with_lying_compress_size(path: Path, *, size: int = 300 << 20, ratio: int | None = 50) -> Path:
    """A ``.keras`` whose deflated ``model.weights.h5`` expands ``size`` zero bytes, while
    the directory claims it stores ``size / ratio`` bytes (below the ratio limit; ``None``:
    the directory tells the truth)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(functional_config(layer_entry("Dense", "d", "x", units=2))))
        info = zipfile.ZipInfo("model.weights.h5")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as fh:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                fh.write(chunk)
    if ratio is not None:
        data = bytearray(path.read_bytes())
        cd = data.rfind(b"PK\x01\x02")  # the last central-directory entry: the weights
        data[cd + 20:cd + 24] = struct.pack("<I", size // ratio)
        path.write_bytes(bytes(data))
    return path


def h5_with_external_link(path: Path, target: str) -> Path:
    """The seed ``.h5`` whose first kernel is an external link to ``target``."""
    import h5py

    def put(f: Any, kernel: str, shape: tuple[int, ...], dtype: Any) -> None:
        f[kernel] = h5py.ExternalLink(target, "/data")

    return _replace_seed_kernel(path, put)


def h5_with_virtual_kernel(path: Path, target: str) -> Path:
    """The seed ``.h5`` whose first kernel is a virtual dataset mapping ``target``."""
    import h5py

    def put(f: Any, kernel: str, shape: tuple[int, ...], dtype: Any) -> None:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(target, "data", shape=shape)
        f.create_virtual_dataset(kernel, layout)

    return _replace_seed_kernel(path, put)


def h5_with_external_storage(path: Path, target: str) -> Path:
    """The seed ``.h5`` whose first kernel keeps its bytes in the raw file ``target``."""

    def put(f: Any, kernel: str, shape: tuple[int, ...], dtype: Any) -> None:
        nbytes = int(np.prod(shape)) * dtype.itemsize
        f.create_dataset(kernel, shape=shape, dtype=dtype, external=[(target, 0, nbytes)])

    return _replace_seed_kernel(path, put)


def h5_with_huge_kernel(path: Path, *, elements: int = 1 << 40) -> Path:
    """The seed ``.h5`` whose first kernel declares ``elements`` float32 values (4 TiB
    by default) and stores none: a memory bomb for whoever reads it."""
    import h5py

    copy_seed_h5(path)
    with h5py.File(path, "a") as f:
        kernel = first_kernel(f)
        del f[kernel]
        f.create_dataset(kernel, shape=(elements,), dtype="float32", chunks=(1 << 20,))
    return path


def h5_with_group_cycle(path: Path) -> Path:
    """The seed ``.h5`` with a group hard-linked inside itself (a cycle)."""
    import h5py

    copy_seed_h5(path)
    with h5py.File(path, "a") as f:
        group = f["model_weights"]
        name = sorted(group)[0]
        group[name]["loop"] = group[name]
    return path


def h5_with_soft_link(path: Path) -> Path:
    import h5py

    copy_seed_h5(path)
    with h5py.File(path, "a") as f:
        f["model_weights"]["alias"] = h5py.SoftLink("/model_weights")
    return path


def h5_with_looping_global_heap(path: Path) -> Path:
    """The seed ``.h5`` with its global heap's free-space object given size 0: the
    HDF5 C library (1.14) then loops forever when it reads any variable-length
    string, such as the ``model_config`` attribute."""
    data = bytearray(SEED_H5.read_bytes())
    start = data.index(b"GCOL\x01\x00\x00\x00")
    size = struct.unpack("<Q", data[start + 8:start + 16])[0]
    p, end = start + 16, start + size
    while p + 16 <= end:
        index = struct.unpack("<H", data[p:p + 2])[0]
        obj_size = struct.unpack("<Q", data[p + 8:p + 16])[0]
        if index == 0:  # the free-space object
            data[p + 8:p + 16] = struct.pack("<Q", 0)
            path.write_bytes(bytes(data))
            return path
        p += 16 + (obj_size + 7) // 8 * 8
    raise AssertionError("the seed's global heap has no free-space object")


def h5_with_many_groups(path: Path, n: int) -> Path:
    import h5py

    copy_seed_h5(path)
    with h5py.File(path, "a") as f:
        g = f.create_group("junk")
        for i in range(n):
            g.create_group(str(i))
    return path


# -- ONNX -------------------------------------------------------------------------------------

def onnx_with_external(path: Path, location: str) -> Path:
    """A MatMul model whose weight lives in external data at ``location``."""
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 2])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "32")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def onnx_nested_ifs(path: Path, depth: int) -> Path:
    """``depth`` If nodes, each in the then-branch of the previous one (the
    else-branches are one-node graphs, so the file grows linearly)."""
    from onnx import TensorProto, helper

    def leaf(k: int) -> Any:
        out = helper.make_tensor_value_info(f"o{k}", TensorProto.FLOAT, [1])
        value = helper.make_tensor(f"c{k}", TensorProto.FLOAT, [1], [1.0])
        return helper.make_graph([helper.make_node("Constant", [], [f"o{k}"], value=value)], f"leaf{k}", [], [out])

    body = leaf(0)
    for k in range(1, depth):
        out = helper.make_tensor_value_info(f"o{k}", TensorProto.FLOAT, [1])
        node = helper.make_node("If", ["cond"], [f"o{k}"], then_branch=body, else_branch=leaf(k))
        body = helper.make_graph([node], f"b{k}", [], [out])
    top = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=leaf(depth), name="top")], "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(top, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def onnx_deeply_nested_bytes(depth: int) -> bytes:
    """An ONNX ModelProto whose If nodes nest ``depth`` graphs deep, written at the
    wire level (protobuf's own builders refuse to nest more than ~100 levels)."""
    from onnx import TensorProto, helper

    leaf = helper.make_graph(
        [helper.make_node("Constant", [], ["o"], value=helper.make_tensor("c", TensorProto.FLOAT, [1], [1.0]))],
        "leaf", [], [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])]).SerializeToString()
    out_info = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1]).SerializeToString()
    graph = leaf
    for k in range(depth):
        attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)  # type=GRAPH, g=...
        node = _field(1, b"cond") + _field(2, b"o") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, node) + _field(2, f"g{k}".encode()) + _field(12, out_info)
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, []).SerializeToString()
    graph += _field(11, cond)
    opset = _field(1, b"") + _varint(2 << 3) + _varint(17)
    return _varint(1 << 3) + _varint(8) + _field(7, graph) + _field(8, opset)


def onnx_huge_initializer(path: Path, nbytes: int = (2 << 30) + (64 << 20)) -> Path:
    """A valid ONNX model (Identity of one initializer) whose initializer stores
    ``nbytes`` of raw data inline — more than protobuf's 2 GiB message limit.  The
    zeros are a hole in a sparse file, so writing it costs no disk space or time."""
    from onnx import TensorProto, helper

    n = nbytes // 4
    head = (_varint(1 << 3) + _varint(n) + _varint(2 << 3) + _varint(TensorProto.FLOAT)
            + _field(8, b"w"))  # dims, data_type, name
    tensor_len = len(head) + 1 + len(_varint(n * 4)) + n * 4
    node = helper.make_node("Identity", ["w"], ["y"], name="identity").SerializeToString()
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n]).SerializeToString()
    tail = _field(1, node) + _field(2, b"g") + _field(12, out)
    graph_len = 1 + len(_varint(tensor_len)) + tensor_len + len(tail)
    opset = _field(1, b"") + _varint(2 << 3) + _varint(17)
    with open(path, "wb") as fh:
        fh.write(_varint(1 << 3) + _varint(8))                       # ir_version
        fh.write(_varint(7 << 3 | 2) + _varint(graph_len))           # graph
        fh.write(_varint(5 << 3 | 2) + _varint(tensor_len) + head)   # graph.initializer
        fh.write(_varint(9 << 3 | 2) + _varint(n * 4))               # raw_data
        fh.seek(n * 4, os.SEEK_CUR)                                  # … a hole of zeros
        fh.write(tail)
        fh.write(_field(8, opset))
    return path


# -- SavedModel ---------------------------------------------------------------------------------

def savedmodel_proto(folder: Path, *, main: list[tuple[str, str]] = (),
                     functions: dict[str, list[tuple[str, str]]] | None = None, restore_op: str | None = None,
                     attrs: dict[str, dict[str, bytes]] | None = None,
                     extra_meta_graphs: list[list[tuple[str, str]]] = (),
                     calls: dict[str, str] | None = None, signatures: dict[str, str] | None = None) -> Path:
    """A SavedModel folder whose ``saved_model.pb`` is built directly from protos
    (no TensorFlow runtime): ``main`` and each function list (op, node name) pairs;
    ``attrs[node name]`` sets string (or, for ``bool``/``True``, boolean) attributes;
    ``calls[node name]`` names the function the node calls (its ``f`` attribute);
    ``signatures[key]`` names a signature's output tensor; ``restore_op`` fills the saver_def."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    attrs = attrs or {}
    calls = calls or {}

    def fill(nodes: Any, pairs: list[tuple[str, str]]) -> None:
        for op, name in pairs:
            node = nodes.add(op=op, name=name)
            for key, value in attrs.get(name, {}).items():
                if isinstance(value, bool):
                    node.attr[key].b = value
                else:
                    node.attr[key].s = value
            if name in calls:
                node.attr["f"].func.name = calls[name]

    for k, pairs in enumerate([list(main), *extra_meta_graphs]):
        mg = sm.meta_graphs.add()
        mg.meta_info_def.tags.append("serve" if k == 0 else f"tag{k}")
        fill(mg.graph_def.node, pairs)
        if k == 0:
            for key, tensor in (signatures or {}).items():
                mg.signature_def[key].outputs["output_0"].name = tensor
            for fname, fpairs in (functions or {}).items():
                fn = mg.graph_def.library.function.add()
                fn.signature.name = fname
                fill(fn.node_def, fpairs)
            if restore_op:
                mg.saver_def.restore_op_name = restore_op
                mg.saver_def.filename_tensor_name = restore_op.rpartition("/")[0] + "/Const:0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(sm.SerializeToString())
    return folder


# -- watching for files being opened ------------------------------------------------------------

_POLLER = r"""
import os, sys, time, stat
report, paths = sys.argv[1], sys.argv[2:]
print("ready", flush=True)
while True:
    for p in paths:
        try:
            if not stat.S_ISFIFO(os.stat(p).st_mode):
                continue
            fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue  # ENXIO: nobody has the FIFO open for reading
        with open(report, "a") as fh:
            fh.write(p + "\n")
        os.close(fd)
    time.sleep(0.002)
"""


class OpenWatch:
    """Records whether anything opened the watched paths while it was active.

    Python-level opens (``open``, ``io.open``, ``os.open``, ``Path.open``) are
    recorded by wrapping those functions.  Opens from C libraries (HDF5, protobuf)
    do not pass through Python, so each watched path should be a FIFO: a reader
    opening a FIFO waits for a writer, and a separate process (a thread would wait
    for the GIL that h5py holds) tries every few milliseconds to open each FIFO for
    writing without blocking — which succeeds only while somebody has it open for
    reading.  It then closes it again, so the reader sees end-of-file and fails
    instead of hanging.
    """

    def __init__(self, paths: list[Path], report: Path) -> None:
        self.paths = [Path(p) for p in paths]
        self.real = {os.path.realpath(p) for p in self.paths}
        self.report = Path(report)
        self._python: list[str] = []

    @property
    def opened(self) -> list[str]:
        fifo = self.report.read_text().split() if self.report.exists() else []
        return self._python + [f"fifo:{p}" for p in fifo]

    def _hit(self, file: Any) -> None:
        try:
            name = os.fspath(file)
        except TypeError:
            return
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        if os.path.realpath(name) in self.real:
            self._python.append(f"python:{name}")

    @contextmanager
    def active(self) -> Iterator[OpenWatch]:
        import builtins
        import subprocess
        import sys

        real_open, real_io_open, real_os_open = builtins.open, io.open, os.open
        watch = self

        def wrapped_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            watch._hit(file)
            return real_open(file, *args, **kwargs)

        def wrapped_os_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            watch._hit(file)
            return real_os_open(file, *args, **kwargs)

        poller = subprocess.Popen([sys.executable, "-c", _POLLER, str(self.report), *map(str, self.paths)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert poller.stdout is not None and poller.stdout.readline().strip() == "ready"
            builtins.open = io.open = wrapped_open  # type: ignore[assignment]
            os.open = wrapped_os_open  # type: ignore[assignment]
            try:
                yield self
            finally:
                builtins.open, io.open, os.open = real_open, real_io_open, real_os_open  # type: ignore[assignment]
                time.sleep(0.02)  # let the poller see a reader that is still waiting
        finally:
            poller.terminate()
            poller.wait(timeout=10)
            if poller.stdout is not None:
                poller.stdout.close()


def stat_is_fifo(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _external_entries(t: Any, location: str, length: int) -> Any:
    """Mark ``t`` as external data at ``location`` (offset 0, ``length`` bytes)."""
    from onnx import TensorProto

    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def onnx_sparse_external(path: Path, location: str, *, where: str = "initializer", part: str = "values") -> Path:
    """A model whose sparse tensor (a ``sparse_initializer`` or a ``Constant``'s
    ``sparse_value``) keeps its ``part`` (``values`` or ``indices``) in external data
    at ``location``; the other part is inline."""
    from onnx import TensorProto, helper

    values = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2])
    indices = TensorProto(name="w_idx", data_type=TensorProto.INT64, dims=[2])
    if part == "values":
        _external_entries(values, location, 8)
        indices.int64_data.extend([0, 5])
    else:
        _external_entries(indices, location, 16)
        values.float_data.extend([1.0, 2.0])
    sparse = helper.make_sparse_tensor(values, indices, [8])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")]
    if where == "constant":
        nodes.insert(0, helper.make_node("Constant", [], ["w"], name="const", sparse_value=sparse))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        sparse_initializer=[sparse] if where == "initializer" else None)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def onnx_constant_of_shape_external(path: Path, location: str) -> Path:
    """``ConstantOfShape([4])`` whose ``value`` attribute tensor is external data at ``location``."""
    from onnx import TensorProto, helper

    value = _external_entries(TensorProto(name="fill", data_type=TensorProto.FLOAT, dims=[1]), location, 4)
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [4])
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["c"], name="fill", value=value),
         helper.make_node("Add", ["x", "c"], ["y"], name="add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


# -- TensorBoard ------------------------------------------------------------------------------

def tensorboard_events(path: Path, events: list[tuple[str, int, list[int], list[float]]]) -> Path:
    """An event file holding one ``tensor`` summary per ``(tag, step, shape, float values)``:
    the shape is declared as given, only ``values`` are stored (``float_val``)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        writer = RecordWriter(fh)
        writer.write(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
        for tag, step, shape, values in events:
            tensor = tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, float_val=values,
                tensor_shape=tensor_shape_pb2.TensorShapeProto(
                    dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]))
            value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
            value.metadata.plugin_data.plugin_name = "scalars"
            event = event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=[value]))
            writer.write(event.SerializeToString())
    return path


def outside_folder(tmp_path: Path) -> tuple[Path, Path, OpenWatch]:
    """A model folder and, next to it, a FIFO called ``secret`` that records any open."""
    folder = tmp_path / "model"
    folder.mkdir()
    secret = make_fifo(tmp_path / "secret")
    return folder, secret, OpenWatch([secret], tmp_path / "opened.txt")


ONNXTXT_HEADER = '<ir_version: 8, opset_import: ["" : 17]>\n'
_ONNXTXT_LEAF = "{ o = Constant <value = float[1] {1.0}> () }"


def nested_onnxtxt(depth: int) -> str:
    """An ``onnxtxt`` model whose ``If`` then-branches nest ``depth`` graphs deep (two
    brackets a level)."""
    body = _ONNXTXT_LEAF
    for k in range(depth):
        body = (f"{{ o = If (c) <then_branch = t{k} () => (float[1] o) {body}, "
                f"else_branch = e{k} () => (float[1] o) {_ONNXTXT_LEAF}> }}")
    return f"{ONNXTXT_HEADER}g (bool c) => (float[1] o) {body}\n"


def affine_saved_model(path: Path) -> Path:
    """A SavedModel written by TensorFlow at ``path``: one variable ``w`` (3×2 ones), a serving signature."""
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(tf.ones((3, 2)), name="w")

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
        def __call__(self, x: Any) -> Any:
            return tf.matmul(x, self.w)

    tf.saved_model.save(Affine(), str(path))
    return path
