"""The ONNX loader: real files from the onnx package, exporter styles, external
data, nesting, quantization, and hostile input.

Expected parameter counts come from the published architectures (AlexNet,
VGG-19, ResNet-50, SqueezeNet 1.1) or are computed independently from the
ONNX protos in the test (initializer sizes, ``ConstantOfShape`` shape values),
never copied from inspector's own output.
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import inspector
from inspector.analysis.macs import count_macs
from inspector.analysis.params import count_params
from inspector.errors import InspectorError, LimitExceeded, ModelLoadError, UnsafeModel, UnsupportedFormat
from inspector.ir import ModelGraph
from inspector.loaders import load
from inspector.loaders import onnx as onnx_loader
from inspector.loaders.onnx import inference as onnx_inference

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
BACKEND_FILES = sorted(DATA.rglob("*.onnx"))
LIGHT = DATA / "light"


# -- helpers ---------------------------------------------------------------------------------
def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def make_model(nodes, inputs, outputs, initializers=(), *, opset=17, ir_version=8, **kw) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, kw.pop("name", "g"), inputs, outputs, list(initializers),
                              value_info=kw.pop("value_info", None))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)
    model.ir_version = ir_version
    return model


def vi(name, dtype=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def external_tensor(name, dims, location, offset, length, dtype=TensorProto.FLOAT):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def init(name, shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def check_wiring(graph: ModelGraph) -> None:
    """Structural invariants of every loaded graph, nested ones included."""
    stack = [graph]
    seen = set()
    while stack:
        g = stack.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        names = [lay.name for lay in g.layers]
        assert len(names) == len(set(names)), f"duplicate layer names in {g.name}"
        index = {lay.name: lay for lay in g.layers}
        for lay in g.layers:
            assert len(lay.inbound) == 1 and len(lay.node_shapes) == 1, lay.name
            for ref in lay.inbound[0]:
                assert ref.layer in index, f"{lay.name} consumes unknown {ref}"
                assert ref.node_index == 0
                assert ref.tensor_index < len(index[ref.layer].node_shapes[0])
            for shape in lay.node_shapes[0]:
                assert shape is None or all(d is None or isinstance(d, (int, str)) for d in shape)
            stack.extend(lay.subgraphs.values())
        for ref in g.inputs:
            assert index[ref.layer].type == "InputLayer"
        for ref in g.outputs:
            assert ref.layer in index


def proto_param_count(model: onnx.ModelProto) -> tuple[int, int]:
    """Independent count for caffe2-style files: every float tensor that is an
    initializer or a ConstantOfShape output and is consumed by some node; the
    non-trainable ones are consumed as BatchNormalization mean/variance."""
    g = model.graph
    sizes: dict[str, int] = {}
    values = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for t in g.initializer:
        if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
            sizes[t.name] = int(np.prod(t.dims))
    for node in g.node:
        if node.op_type == "ConstantOfShape":
            sizes[node.output[0]] = int(np.prod(values[node.input[0]]))
    consumed = {name for node in g.node if node.op_type != "ConstantOfShape" for name in node.input}
    stats = {node.input[i] for node in g.node if node.op_type == "BatchNormalization" for i in (3, 4)}
    total = sum(n for name, n in sizes.items() if name in consumed)
    non_trainable = sum(n for name, n in sizes.items() if name in consumed and name in stats)
    return total, non_trainable


# -- every file of the onnx package's test data ------------------------------------------------
def test_backend_data_is_present():
    assert len(BACKEND_FILES) >= 100, "the onnx package's backend test data is missing"


@pytest.mark.parametrize("path", BACKEND_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_backend_file_loads(path):
    graph = load(path)
    report = count_params(graph)
    count_macs(graph)
    assert graph.format == "onnx" and graph.kind == "onnx"
    check_wiring(graph)
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    real_inputs = [i.name for i in model.graph.input if i.name not in inits]
    assert [graph.layer(r.layer).config["name"] for r in graph.inputs] == real_inputs
    assert len(graph.outputs) == len(model.graph.output)
    assert report.totals.params >= 0
    assert graph.metadata["ir_version"] == model.ir_version


def test_backend_files_load_fast():
    """All files together stay far below a minute (measured, not just hoped for)."""
    start = time.perf_counter()
    for path in BACKEND_FILES:
        count_params(load(path))
    assert time.perf_counter() - start < 30


def test_onnx_generated_node_models_load(tmp_path_factory):
    """Every model the onnx package's own test-case generator builds (one per
    operator test case, ~1,900: If/Loop/Scan bodies, sequences, optionals,
    quantized ops, functions …) loads into a consistent graph."""
    import onnx.backend.test.case.model as model_cases
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None) + model_cases.collect_testcases()
    folder = tmp_path_factory.mktemp("node-cases")
    failures = []
    count = 0
    start = time.perf_counter()
    for case in cases:
        if case.model is None:
            continue
        path = folder / f"{case.name}.onnx"
        path.write_bytes(case.model.SerializeToString())
        try:
            graph = load(path)
            count_params(graph)
            count_macs(graph)
            check_wiring(graph)
        except Exception as exc:  # noqa: BLE001 - collect them all
            failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
        count += 1
    assert count > 1000
    assert not failures, "\n".join(failures[:30])
    assert time.perf_counter() - start < 120


# -- weight-stripped real architectures -------------------------------------------------------
PUBLISHED = {
    # total, non-trainable (BN running mean/variance)
    "light_bvlc_alexnet.onnx": (60_965_224, 0),
    "light_vgg19.onnx": (143_667_240, 0),
    # torchvision's 25,557,032 parameters + 2 x 26,560 BN running statistics
    "light_resnet50.onnx": (25_557_032 + 53_120, 53_120),
    "light_squeezenet.onnx": (1_235_496, 0),  # SqueezeNet 1.1
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_light_models_match_published_counts(name):
    report = count_params(load(LIGHT / name))
    total, non_trainable = PUBLISHED[name]
    assert report.totals.params == total
    assert report.totals.non_trainable == non_trainable
    assert report.totals.trainable == total - non_trainable
    assert report.totals.bytes == 4 * total


@pytest.mark.parametrize("path", sorted(LIGHT.glob("*.onnx")), ids=lambda p: p.name)
def test_light_models_match_proto_count(path):
    model = onnx.load(str(path))
    total, non_trainable = proto_param_count(model)
    report = count_params(load(path))
    assert (report.totals.params, report.totals.non_trainable) == (total, non_trainable)


def test_light_model_layers_fold_constants():
    graph = load(LIGHT / "light_bvlc_alexnet.onnx")
    types = [lay.type for lay in graph.layers]
    assert "ConstantOfShape" not in types
    assert types[0] == "InputLayer" and graph.layers[0].name == "data_0"
    conv = graph.layers[1]
    assert conv.type == "Conv"
    assert [(w.role, w.shape) for w in conv.weights] == [("W", (96, 3, 11, 11)), ("B", (96,))]
    assert conv.node_shapes == [[(1, 96, 54, 54)]]
    reshape = next(lay for lay in graph.layers if lay.type == "Reshape")
    assert reshape.weights == []  # the shape operand is not a parameter
    assert reshape.operands[1].value == [1, 9216]
    assert graph.metadata["folded_nodes"] == 16
    assert graph.metadata["ir_version"] == 3


def test_unused_initializer_is_reported_not_counted():
    model = onnx.load(str(LIGHT / "light_resnet50.onnx"))
    consumed = {n for node in model.graph.node for n in node.input}
    unused = sorted(t.name for t in model.graph.initializer if t.name not in consumed)
    assert unused  # the file really has one
    graph = load(LIGHT / "light_resnet50.onnx")
    assert graph.metadata["unused_initializers"] == unused
    assert all(w.name not in unused for w in graph.iter_weights())


# -- exporter styles -----------------------------------------------------------------------------
def pytorch_style(tmp_path: Path, *, keep_initializers_as_inputs: bool = False) -> tuple[Path, onnx.ModelProto]:
    """What torch.onnx.export writes: named nodes (/conv1/Conv), BatchNormalization
    kept as a node with running statistics, Gemm with transB, symbolic batch."""
    inits = [init("conv1.weight", (16, 3, 3, 3)), init("conv1.bias", (16,)),
             init("bn1.weight", (16,)), init("bn1.bias", (16,)), init("bn1.running_mean", (16,)),
             numpy_helper.from_array(np.abs(np.random.default_rng(1).standard_normal(16)).astype(np.float32),
                                     "bn1.running_var"),
             init("fc.weight", (10, 16)), init("fc.bias", (10,))]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"],
                         name="/conv1/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["/conv1/Conv_output_0", "bn1.weight", "bn1.bias",
                                                "bn1.running_mean", "bn1.running_var"],
                         ["/bn1/BatchNormalization_output_0"], name="/bn1/BatchNormalization", epsilon=1e-5),
        helper.make_node("Relu", ["/bn1/BatchNormalization_output_0"], ["/relu/Relu_output_0"], name="/relu/Relu"),
        helper.make_node("GlobalAveragePool", ["/relu/Relu_output_0"], ["/pool/GlobalAveragePool_output_0"],
                         name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["/pool/GlobalAveragePool_output_0"], ["/Flatten_output_0"], name="/Flatten"),
        helper.make_node("Gemm", ["/Flatten_output_0", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                         alpha=1.0, beta=1.0, transB=1),
    ]
    inputs = [vi("input", shape=["batch_size", 3, 32, 32])]
    if keep_initializers_as_inputs:
        inputs += [vi(t.name, t.data_type, list(t.dims)) for t in inits]
    model = make_model(nodes, inputs, [vi("output", shape=["batch_size", 10])], inits, opset=17,
                       producer_name="pytorch", producer_version="2.3.0")
    return save(model, tmp_path / "torch.onnx"), model


@pytest.mark.parametrize("as_inputs", [False, True])
def test_pytorch_style_export(tmp_path, as_inputs):
    path, model = pytorch_style(tmp_path, keep_initializers_as_inputs=as_inputs)
    graph = load(path)
    check_wiring(graph)
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    report = count_params(graph)
    assert report.totals.params == sum(sizes.values())
    assert report.totals.non_trainable == sizes["bn1.running_mean"] + sizes["bn1.running_var"]
    assert [r.layer for r in graph.inputs] == ["input"]  # initializers listed as inputs are weights
    bn = graph.layer("/bn1/BatchNormalization")
    assert {w.name: w.trainable for w in bn.weights} == {
        "bn1.weight": True, "bn1.bias": True, "bn1.running_mean": False, "bn1.running_var": False}
    assert bn.config["epsilon"] == pytest.approx(1e-5)
    assert graph.layer("input").node_shapes == [[("batch_size", 3, 32, 32)]]
    assert graph.layer("/fc/Gemm").node_shapes == [[("batch_size", 10)]]
    assert [str(r) for r in graph.layer("/relu/Relu").inbound[0]] == ["/bn1/BatchNormalization[0][0]"]
    assert graph.metadata["producer_name"] == "pytorch"
    assert graph.metadata["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch_size", 10]}]


def tf2onnx_style(tmp_path: Path) -> tuple[Path, onnx.ModelProto]:
    """What tf2onnx writes for a Keras CNN: NHWC input transposed to NCHW, BN
    folded into the Conv weights and bias, Dense as MatMul + Add with the kernel
    as [in, out], ``unk__`` symbolic batch, ``:0`` tensor names, shape constants
    as int64 initializers."""
    inits = [
        init("model/conv2d/Conv2D/ReadVariableOp:0", (8, 3, 3, 3)),
        init("model/conv2d/BiasAdd/ReadVariableOp:0", (8,)),
        init("model/dense/MatMul/ReadVariableOp:0", (8 * 6 * 6, 10)),
        init("model/dense/BiasAdd/ReadVariableOp:0", (10,)),
        numpy_helper.from_array(np.array([-1, 8 * 6 * 6], dtype=np.int64), "const_fold_opt__12"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["model/conv2d/Conv2D__6:0"], name="model/conv2d/Conv2D__6",
                         perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["model/conv2d/Conv2D__6:0", "model/conv2d/Conv2D/ReadVariableOp:0",
                                  "model/conv2d/BiasAdd/ReadVariableOp:0"], ["model/conv2d/BiasAdd:0"],
                         name="model/conv2d/BiasAdd", kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1],
                         group=1, pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["model/conv2d/BiasAdd:0"], ["model/conv2d/Relu:0"], name="model/conv2d/Relu"),
        helper.make_node("MaxPool", ["model/conv2d/Relu:0"], ["model/max_pooling2d/MaxPool:0"],
                         name="model/max_pooling2d/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["model/max_pooling2d/MaxPool:0"], ["model/flatten/Reshape__9:0"],
                         name="model/flatten/Reshape__9", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["model/flatten/Reshape__9:0", "const_fold_opt__12"],
                         ["model/flatten/Reshape:0"], name="model/flatten/Reshape"),
        helper.make_node("MatMul", ["model/flatten/Reshape:0", "model/dense/MatMul/ReadVariableOp:0"],
                         ["model/dense/MatMul:0"], name="model/dense/MatMul"),
        helper.make_node("Add", ["model/dense/MatMul:0", "model/dense/BiasAdd/ReadVariableOp:0"], ["dense"],
                         name="model/dense/BiasAdd"),
    ]
    model = make_model(nodes, [vi("input_1", shape=["unk__20", 14, 14, 3])], [vi("dense", shape=["unk__21", 10])],
                       inits, opset=13, ir_version=7, producer_name="tf2onnx", producer_version="1.16.1 15c810")
    return save(model, tmp_path / "tf2onnx.onnx"), model


def test_tf2onnx_style_graph(tmp_path):
    path, model = tf2onnx_style(tmp_path)
    graph = load(path)
    check_wiring(graph)
    float_inits = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)
    report = count_params(graph)
    assert report.totals.params == float_inits  # the int64 shape constant is not a parameter
    assert report.totals.non_trainable == 0
    assert graph.layer("model/flatten/Reshape").weights == []
    assert graph.layer("model/conv2d/Conv2D__6").node_shapes == [[("unk__20", 3, 14, 14)]]
    (batch, features), = graph.layer("model/flatten/Reshape").node_shapes[0]  # -1 becomes a new symbol
    assert isinstance(batch, str) and features == 288
    assert graph.layer("model/dense/BiasAdd").node_shapes[0][0][1] == 10
    macs = count_macs(graph)
    # Conv: 12x12 outputs x 8 filters x 3x3x3 kernel; Dense: 288 x 10 (batch 1).
    assert macs.layer("model/conv2d/BiasAdd") == 12 * 12 * 8 * 27
    assert macs.layer("model/dense/MatMul") == 288 * 10
    assert macs.total == 12 * 12 * 8 * 27 + 288 * 10 and macs.complete


def test_real_tf2onnx_export_of_keras_model(tmp_path):
    """A Keras model exported by tf2onnx itself: the ONNX graph holds the same
    multiply-accumulates as the Keras model (computed from Keras's layers)."""
    tf2onnx = pytest.importorskip("tf2onnx")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2)(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)
    km = keras.Model(inp, out)
    path = tmp_path / "k.onnx"
    spec = (tf.TensorSpec((None, 16, 16, 3), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(km, input_signature=spec, opset=13, output_path=str(path))
    expected = 16 * 16 * 8 * 27 + 7 * 7 * 8 * 9 + 7 * 7 * 8 * 5  # Keras: out positions x kernel
    graph = load(path)
    check_wiring(graph)
    macs = count_macs(graph)
    assert macs.complete and macs.total == expected
    model = onnx.load(str(path))
    floats = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)
    assert count_params(graph).totals.params == floats


# -- external data -------------------------------------------------------------------------------
def _external_model(tmp_path: Path) -> tuple[Path, onnx.ModelProto]:
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["h2"]),
             helper.make_node("MatMul", ["h2", "w2"], ["y"])]
    inits = [init("w1", (64, 128)), init("b1", (128,), seed=1), init("w2", (128, 32), seed=2)]
    model = make_model(nodes, [vi("x", shape=["N", 64])], [vi("y", shape=["N", 32])], inits)
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    to_save = onnx.ModelProto()
    to_save.CopyFrom(model)  # save_model rewrites the proto it is given
    onnx.save_model(to_save, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights/data.bin", size_threshold=0)
    return folder / "m.onnx", model


def test_external_data_in_sub_folder_by_reference(tmp_path, monkeypatch):
    path, original = _external_model(tmp_path)
    on_disk = onnx.load(str(path), load_external_data=False)
    refs = {t.name: {e.key: e.value for e in t.external_data} for t in on_disk.graph.initializer}
    opened: list[str] = []
    real_open = builtins.open
    real_path_open = Path.open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    def spy_path(self, *a, **k):
        opened.append(str(self))
        return real_path_open(self, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(Path, "open", spy_path)
    graph = load(path)
    report = count_params(graph)
    monkeypatch.undo()
    assert not any(p.endswith("data.bin") for p in opened), opened  # a summary reads no weight bytes
    assert report.totals.params == 64 * 128 + 128 + 128 * 32
    weights = {w.name: w for w in graph.iter_weights()}
    for name, entry in refs.items():
        ext = weights[name].external
        assert ext.location == "weights/data.bin" == entry["location"]
        assert ext.offset == int(entry.get("offset", 0)) and ext.length == int(entry["length"])
    for t in original.graph.initializer:
        np.testing.assert_array_equal(weights[t.name].read(), numpy_helper.to_array(t))
    (info,) = graph.metadata["external_data"]
    assert info["location"] == "weights/data.bin"
    assert info["size"] == (path.parent / "weights" / "data.bin").stat().st_size
    assert info["tensors"] == 3
    assert graph.security == []


def test_missing_external_file_still_summarizes(tmp_path):
    path, _ = _external_model(tmp_path)
    (path.parent / "weights" / "data.bin").unlink()
    graph = load(path)
    assert count_params(graph).totals.params == 64 * 128 + 128 + 128 * 32
    assert graph.metadata["external_data"][0]["status"] == "missing"
    with pytest.raises(ModelLoadError):
        next(graph.iter_weights()).read()


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "weights/../../secret.bin", "link/data.bin",
                                      "C:\\\\Windows\\\\system.ini"])
def test_external_data_outside_the_folder_is_never_opened(tmp_path, monkeypatch, location):
    folder = tmp_path / "model"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"\0" * 4096)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 4096)
    (folder / "link").symlink_to(outside, target_is_directory=True)
    t = external_tensor("w", [4, 4], location, 0, 64)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", shape=[1, 4])],
                       [vi("y", shape=[1, 4])], [t])
    path = save(model, folder / "m.onnx")
    opened: list[str] = []
    real_path_open = Path.open
    real_open = builtins.open
    monkeypatch.setattr(Path, "open",
                        lambda self, *a, **k: (opened.append(str(self)), real_path_open(self, *a, **k))[1])
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: (opened.append(str(f)), real_open(f, *a, **k))[1])
    graph = load(path)
    assert count_params(graph).totals.params == 16
    (fact,) = graph.security
    assert fact.code == "SEC003" and fact.detail == location and fact.layer == "MatMul_0"
    with pytest.raises(UnsafeModel):
        next(graph.iter_weights()).read()
    monkeypatch.undo()
    forbidden = {os.path.realpath(p) for p in (tmp_path / "secret.bin", outside / "data.bin", "/etc/passwd")}
    assert [p for p in opened if os.path.realpath(p) in forbidden] == []
    assert all(os.path.realpath(p) == os.path.realpath(path) for p in opened)


SPARSE_SCRIPT = r"""
import sys
from pathlib import Path
from inspector.loaders import load
from inspector.analysis.params import count_params
graph = load(Path(sys.argv[1]))
report = count_params(graph)
w = {w.name: w for w in graph.iter_weights()}["tail"]
value = w.read()
# VmHWM is this process's own peak (ru_maxrss would include the forking parent's).
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(report.totals.params, int(value.sum()), peak)
"""


def test_external_data_beyond_2_gib_sparse(tmp_path):
    """3 GiB of (sparse) external data: loads, counts exactly, reads a tensor that
    sits past the 2 GiB mark, and the process stays small."""
    gib = 1 << 30
    data = tmp_path / "big.bin"
    with data.open("wb") as fh:
        fh.truncate(3 * gib)
    tensors = []
    dims = [16384, 16384]  # 1 GiB of float32 each
    for i in range(3):
        tensors.append(external_tensor(f"w{i}", dims, "big.bin", i * gib, gib))
    tail = external_tensor("tail", [4], "big.bin", 3 * gib - 16, 16)
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"] if i == 0 else [f"h{i - 1}", f"w{i}"], [f"h{i}"])
             for i in range(3)] + [helper.make_node("Add", ["h2", "tail4"], ["y"]),
                                   helper.make_node("Tile", ["tail", "reps"], ["tail4"])]
    reps = numpy_helper.from_array(np.array([4096], dtype=np.int64), "reps")
    model = make_model(nodes, [vi("x", shape=[1, 16384])], [vi("y", shape=[1, 16384])], tensors + [tail, reps])
    path = save(model, tmp_path / "big.onnx")
    env = dict(os.environ, PYTHONPATH=str(Path(inspector.__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", SPARSE_SCRIPT, str(path)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    params, total, maxrss_kib = (int(v) for v in out.stdout.split())
    assert params == 3 * 16384 * 16384 + 4
    assert total == 0
    assert maxrss_kib < 250 * 1024  # far below the 3 GiB of data


# -- old IR, nesting, functions ------------------------------------------------------------------
def test_ir3_weights_listed_as_inputs(tmp_path):
    inits = [init("W", (4, 3, 3, 3)), init("B", (4,))]
    nodes = [helper.make_node("Conv", ["data", "W", "B"], ["conv"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["conv"], ["out"])]
    inputs = [vi("data", shape=[1, 3, 8, 8]), vi("W", shape=[4, 3, 3, 3]), vi("B", shape=[4])]
    model = make_model(nodes, inputs, [vi("out", shape=[1, 4, 6, 6])], inits, opset=8, ir_version=3)
    graph = load(save(model, tmp_path / "ir3.onnx"))
    assert [r.layer for r in graph.inputs] == ["data"]
    assert [lay.name for lay in graph.layers] == ["data", "Conv_0", "Relu_1"]  # unnamed: OpType_index
    assert count_params(graph).totals.params == 4 * 27 + 4
    assert graph.metadata["ir_version"] == 3 and graph.metadata["opset_import"] == {"ai.onnx": 8}
    assert graph.layer("Relu_1").node_shapes == [[(1, 4, 6, 6)]]


def test_if_subgraphs_count_outer_constants_once(tmp_path):
    shared = init("shared_w", (8, 8))
    then_local = init("then_b", (8,), seed=3)
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "shared_w"], ["t1"]), helper.make_node("Add", ["t1", "then_b"], ["t_out"])],
        "then", [], [vi("t_out", shape=[1, 8])], [then_local])
    else_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "shared_w"], ["e1"]),
         helper.make_node("Constant", [], ["e_c"], value=numpy_helper.from_array(np.ones(8, np.float32))),
         helper.make_node("Mul", ["e1", "e_c"], ["e_out"])],
        "else", [], [vi("e_out", shape=[1, 8])])
    nodes = [helper.make_node("MatMul", ["x", "shared_w"], ["pre"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="branch")]
    model = make_model(nodes, [vi("x", shape=[1, 8]), vi("cond", TensorProto.BOOL, [])],
                       [vi("y", shape=[1, 8]), vi("pre", shape=[1, 8])], [shared])
    graph = load(save(model, tmp_path / "if.onnx"))
    check_wiring(graph)
    layer = graph.layer("branch")
    assert set(layer.subgraphs) == {"then_branch", "else_branch"}
    then_graph = layer.subgraphs["then_branch"]
    outer_x = then_graph.layer("x")
    assert outer_x.type == "InputLayer" and outer_x.config.get("outer_scope") is True
    keys = {w.key for w in graph.iter_weights()}
    assert "shared_w" in keys
    # shared_w once (64) + then_b (8) + the else branch's Constant (8)
    assert count_params(graph).totals.params == 64 + 8 + 8
    paths = [p for p, _ in graph.walk()]
    assert "branch/then_branch/MatMul_0" in paths


def test_model_local_function_body_counts_once(tmp_path):
    body = [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.full((4,), 2.0, np.float32))),
            helper.make_node("Mul", ["a", "k"], ["b"])]
    fn = helper.make_function("custom", "Scale", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Scale", ["x"], ["y1"], domain="custom"),
             helper.make_node("Scale", ["y1"], ["y2"], domain="custom")]
    graph_proto = helper.make_graph(nodes, "g", [vi("x", shape=[1, 4])], [vi("y2", shape=[1, 4])])
    model = helper.make_model(graph_proto, functions=[fn],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    graph = load(save(model, tmp_path / "fn.onnx"))
    check_wiring(graph)
    calls = [lay for lay in graph.layers if lay.type == "custom.Scale"]
    assert len(calls) == 2
    assert calls[0].subgraphs["function"] is calls[1].subgraphs["function"]
    assert count_params(graph).totals.params == 4
    assert graph.metadata["functions"] == ["custom::Scale"]
    assert graph.layer("Scale_0").node_shapes == [[(1, 4)]]


def test_recursive_functions_do_not_hang(tmp_path):
    f = helper.make_function("d", "F", ["a"], ["b"], [helper.make_node("G", ["a"], ["b"], domain="d")],
                             [helper.make_opsetid("", 17), helper.make_opsetid("d", 1)])
    g = helper.make_function("d", "G", ["a"], ["b"], [helper.make_node("F", ["a"], ["b"], domain="d")],
                             [helper.make_opsetid("", 17), helper.make_opsetid("d", 1)])
    graph_proto = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="d")], "g",
                                    [vi("x", shape=[1])], [vi("y", shape=[1])])
    model = helper.make_model(graph_proto, functions=[f, g],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("d", 1)])
    graph = load(save(model, tmp_path / "rec.onnx"))
    assert graph.layers[-1].subgraphs == {}
    assert any("calls itself" in n for n in graph.notes)
    assert count_macs(graph).layers[-1][1] is None


def _deep_if_bytes(depth: int) -> bytes:
    """A ModelProto with ``depth`` nested If bodies, written as raw protobuf so
    that no protobuf library recursion limit stops us from creating it."""
    def ld(field: int, payload: bytes) -> bytes:
        return onnx_wire_key(field) + varint(len(payload)) + payload

    leaf_node = ld(1, b"x") + ld(2, b"y") + ld(4, b"Identity")
    graph = ld(1, leaf_node) + ld(2, b"leaf")
    for _ in range(depth):
        attr = ld(1, b"then_branch") + ld(6, graph) + bytes([0xA0, 0x01]) + varint(5)  # type=GRAPH (field 20)
        node = ld(1, b"c") + ld(2, b"y") + ld(4, b"If") + ld(5, attr)
        graph = ld(1, node) + ld(2, b"g")
    return bytes([0x08, 0x08]) + ld(7, graph) + ld(8, bytes([0x10, 17]))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def onnx_wire_key(field: int) -> bytes:
    return varint(field << 3 | 2)


@pytest.mark.parametrize("depth", [5, 60, 3000])
def test_deep_nesting_is_bounded(tmp_path, depth):
    path = tmp_path / "deep.onnx"
    path.write_bytes(_deep_if_bytes(depth))
    if depth == 5:
        graph = load(path)
        paths = [p for p, _ in graph.walk()]
        assert max(p.count("/then_branch/") for p in paths) == 5
        return
    with pytest.raises(InspectorError) as err:
        load(path)
    assert isinstance(err.value, (LimitExceeded, ModelLoadError))
    assert "\n" not in str(err.value)


# -- types, quantization, names -------------------------------------------------------------------
def test_float16_model(tmp_path):
    inits = [numpy_helper.from_array(np.ones((16, 8), np.float16), "w"),
             numpy_helper.from_array(np.ones((8,), np.float16), "b")]
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")]
    model = make_model(nodes, [vi("x", TensorProto.FLOAT16, [2, 16])], [vi("y", TensorProto.FLOAT16, [2, 8])], inits)
    graph = load(save(model, tmp_path / "fp16.onnx"))
    report = count_params(graph)
    assert report.totals.params == 136 and report.totals.bytes == 272
    assert report.bytes_by_dtype == (("float16", 136, 272),)
    assert graph.layer("fc").dtype == "float16"
    assert count_macs(graph).layer("fc") == 2 * 8 * 16


def qdq_model(tmp_path: Path) -> tuple[Path, onnx.ModelProto]:
    """A QDQ model plus a QLinearConv, in the style of onnxruntime's static quantizer."""
    rng = np.random.default_rng(0)
    w_q = numpy_helper.from_array(rng.integers(-127, 127, (8, 3, 3, 3)).astype(np.int8), "w_quantized")
    w_s = numpy_helper.from_array(np.full((8,), 0.02, np.float32), "w_scale")
    w_zp = numpy_helper.from_array(np.zeros((8,), np.int8), "w_zero_point")
    b_q = numpy_helper.from_array(rng.integers(-100, 100, (8,)).astype(np.int32), "b_quantized")
    x_s = numpy_helper.from_array(np.array(0.1, np.float32), "x_scale")
    x_zp = numpy_helper.from_array(np.array(0, np.uint8), "x_zero_point")
    w2 = numpy_helper.from_array(rng.integers(0, 255, (4, 8, 1, 1)).astype(np.uint8), "w2_quantized")
    w2_s = numpy_helper.from_array(np.array(0.05, np.float32), "w2_scale")
    w2_zp = numpy_helper.from_array(np.array(128, np.uint8), "w2_zero_point")
    y_s = numpy_helper.from_array(np.array(0.2, np.float32), "y_scale")
    y_zp = numpy_helper.from_array(np.array(0, np.uint8), "y_zero_point")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], ["x_q"], name="quant_in"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero_point"], ["x_dq"], name="dequant_in"),
        helper.make_node("DequantizeLinear", ["w_quantized", "w_scale", "w_zero_point"], ["w_dq"], axis=0),
        helper.make_node("Conv", ["x_dq", "w_dq"], ["conv"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("QuantizeLinear", ["conv", "x_scale", "x_zero_point"], ["conv_q"], name="quant_mid"),
        helper.make_node("QLinearConv", ["conv_q", "x_scale", "x_zero_point", "w2_quantized", "w2_scale",
                                         "w2_zero_point", "y_scale", "y_zero_point"], ["y_q"], name="qconv",
                         kernel_shape=[1, 1]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero_point"], ["y"], name="dequant_out"),
    ]
    model = make_model(nodes, [vi("x", shape=[1, 3, 10, 10])], [vi("y", shape=[1, 4, 8, 8])],
                       [w_q, w_s, w_zp, b_q, x_s, x_zp, w2, w2_s, w2_zp, y_s, y_zp], opset=13)
    return save(model, tmp_path / "qdq.onnx"), model


def test_quantized_model_separates_scales_and_zero_points(tmp_path):
    path, model = qdq_model(tmp_path)
    graph = load(path)
    check_wiring(graph)
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    report = count_params(graph)
    assert report.totals.params == sizes["w_quantized"] + sizes["w2_quantized"]  # b_quantized is unused
    assert dict((d, n) for d, n, _ in report.bytes_by_dtype) == {"int8": 216, "uint8": 32}
    quant_names = {"w_scale", "w_zero_point", "x_scale", "x_zero_point", "w2_scale", "w2_zero_point", "y_scale",
                   "y_zero_point"}
    assert report.quantization.params == sum(sizes[n] for n in quant_names)
    conv = graph.layer("conv")
    assert [(w.name, w.dtype, w.quantization) for w in conv.weights] == [
        ("w_quantized", "int8", False), ("w_scale", "float32", True), ("w_zero_point", "int8", True)]
    assert "DequantizeLinear_2" not in graph  # the constant-only DequantizeLinear is folded
    macs = count_macs(graph)
    assert macs.layer("conv") == 8 * 8 * 8 * 27 and macs.layer("qconv") == 8 * 8 * 4 * 8


def test_onnxruntime_dynamic_quantization(tmp_path):
    """``quantize_dynamic`` output (DynamicQuantizeLinear + MatMulInteger): the
    int8 weights are the parameters, their scales and zero points apart."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Add", ["h", "b"], ["y"])]
    fp = make_model(nodes, [vi("x", shape=[1, 256])], [vi("y", shape=[1, 128])],
                    [init("w", (256, 128)), init("b", (128,))], opset=13, ir_version=8)
    src = save(fp, tmp_path / "fp.onnx")
    dst = tmp_path / "q.onnx"
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    qmodel = onnx.load(str(dst))
    graph = load(dst)
    check_wiring(graph)
    report = count_params(graph)
    # Independently: initializers at MatMulInteger's zero-point operands are
    # quantization data; the 0-d weight scale feeds a plain Mul, so by the convention
    # it is a constant; every other consumed initializer is a parameter.
    sizes = {t.name: int(np.prod(t.dims)) for t in qmodel.graph.initializer}
    scalars = {t.name for t in qmodel.graph.initializer if len(t.dims) == 0}
    quant = {n.input[i] for n in qmodel.graph.node if n.op_type == "MatMulInteger" for i in (2, 3)} & set(sizes)
    used = {i for n in qmodel.graph.node for i in n.input} & set(sizes)
    assert report.totals.params == sum(sizes[n] for n in used - quant - scalars)
    assert report.constants.params == sum(sizes[n] for n in (used - quant) & scalars) > 0
    assert report.quantization.params == sum(sizes[n] for n in quant) > 0
    assert {w.dtype for w in graph.iter_weights() if w.name.endswith("quantized")} == {"int8"}
    mm = next(lay for lay in graph.layers if lay.type == "MatMulInteger")
    assert count_macs(graph).layer(mm.name) == 256 * 128


def test_names_for_unnamed_and_duplicate_nodes(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="act"),
             helper.make_node("Relu", ["b"], ["c"], name="act"), helper.make_node("Split", ["c"], ["s0", "s1"],
                                                                                  axis=1, num_outputs=2),
             helper.make_node("Add", ["s1", "s0"], ["y"])]
    model = make_model(nodes, [vi("x", shape=[1, 4])], [vi("y", shape=[1, 2])], opset=18)
    graph = load(save(model, tmp_path / "names.onnx"))
    assert [lay.name for lay in graph.layers] == ["x", "Relu_0", "act", "act_2", "Split_3", "Add_4"]
    assert [str(r) for r in graph.layer("Add_4").inbound[0]] == ["Split_3[0][1]", "Split_3[0][0]"]
    assert graph.layer("Split_3").node_shapes == [[(1, 2), (1, 2)]]


def test_nodes_out_of_order_are_listed_in_dependency_order(tmp_path):
    nodes = [helper.make_node("Relu", ["a"], ["y"], name="second"), helper.make_node("Neg", ["x"], ["a"], name="first")]
    model = make_model(nodes, [vi("x", shape=[2])], [vi("y", shape=[2])])
    graph = load(save(model, tmp_path / "order.onnx"))
    assert [lay.name for lay in graph.layers] == ["x", "first", "second"]


def test_shape_inference_failure_is_a_note(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="act"), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, [vi("x", shape=[2, 3])], [vi("y", shape=[2, 3])])
    del model.opset_import[:]  # shape inference refuses a model without opset imports
    graph = load(save(model, tmp_path / "bad.onnx"))
    assert graph.metadata["shape_inference"].startswith("failed")
    assert any("Shape inference failed" in n for n in graph.notes)
    assert graph.layer("act").node_shapes == [[None]]  # unknown, not invented
    assert graph.layer("Relu_1").node_shapes == [[(2, 3)]]  # declared in the file


def test_unknown_and_symbolic_dims(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    model = make_model(nodes, [vi("x", shape=["batch", "seq_len", 16])], [vi("y")], [init("w", (16, 4))])
    x = model.graph.input[0].type.tensor_type.shape.dim[1]
    x.Clear()  # a dimension with neither value nor name: unknown
    graph = load(save(model, tmp_path / "sym.onnx"))
    assert graph.layer("x").node_shapes == [[("batch", None, 16)]]
    assert graph.layer("mm").node_shapes[0][0][0] == "batch"
    assert count_macs(graph).layer("mm") is None  # the sequence length is unknown


def test_text_format_model(tmp_path):
    path, model = pytorch_style(tmp_path)
    text = tmp_path / "m.onnxtxt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx.save_model(model, str(text), format="onnxtxt")
    graph = load(text)
    assert count_params(graph).totals.params == count_params(load(path)).totals.params


@pytest.mark.parametrize("content,error", [
    (b"", ModelLoadError),
    (b"\x00\xff" * 100, ModelLoadError),
    (b"\x1c\x00\x00\x00ORTM" + b"\x00" * 64, UnsupportedFormat),
    (b"hello, I am a text file\n", ModelLoadError),
])
def test_bad_bytes_raise_one_actionable_error(tmp_path, content, error):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(error) as err:
        onnx_loader.load(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300


def test_truncated_model_raises_model_load_error(tmp_path):
    path, _ = pytorch_style(tmp_path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 3, 40):
        bad = tmp_path / f"cut{cut}.onnx"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError) as err:
            load(bad)
        assert "truncated" in str(err.value) or "not an ONNX model" in str(err.value)


def test_detected_by_content_without_suffix(tmp_path):
    path, _ = pytorch_style(tmp_path)
    other = tmp_path / "model.bin"
    other.write_bytes(path.read_bytes())
    assert load(other).format == "onnx"


def test_weight_read_returns_initializer_values(tmp_path):
    path, model = pytorch_style(tmp_path)
    weights = {w.name: w for w in load(path).iter_weights()}
    for t in model.graph.initializer:
        np.testing.assert_array_equal(weights[t.name].read(), numpy_helper.to_array(t))


def test_constant_of_shape_weight_reads_its_fill_value():
    graph = load(LIGHT / "light_bvlc_alexnet.onnx")
    w = graph.layers[1].weights[0]
    value = w.read()
    assert value.shape == (96, 3, 11, 11) and value.dtype == np.float32
    model = onnx.load(str(LIGHT / "light_bvlc_alexnet.onnx"))
    node = next(n for n in model.graph.node if n.output[0] == w.name)
    fill = numpy_helper.to_array(node.attribute[0].t).reshape(-1)[0]
    assert np.all(value == fill)


def test_info_json_for_onnx(tmp_path, cli):
    path, model = _external_model(tmp_path)
    code, out, err = cli("info", path, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "inspector.info/1"
    assert doc["model"]["format"] == "onnx"
    assert doc["ir_version"] == model.ir_version
    assert doc["opset_import"] == {"ai.onnx": 17}
    assert doc["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 64]}]
    assert doc["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["N", 32]}]
    assert doc["file_size"] == path.stat().st_size
    (ext,) = doc["external_data"]
    assert ext["size"] == (path.parent / "weights" / "data.bin").stat().st_size
    assert doc["params"]["params"] == 64 * 128 + 128 + 128 * 32


def test_info_text_for_onnx_and_keras(tmp_path, cli):
    path, _ = pytorch_style(tmp_path)
    code, out, _ = cli("info", path, "--macs")
    assert code == 0
    assert "Producer       pytorch 2.3.0" in out
    assert "Opset imports  ai.onnx 17" in out
    assert "  input  float32  (batch_size, 3, 32, 32)" in out
    assert "MACs" in out
    sample = Path(__file__).resolve().parents[1] / "samples" / "seed_cnn.keras"
    code, out, _ = cli("info", sample)
    assert code == 0 and "Keras version" in out and "Format         keras" in out


def test_invalid_utf8_names_become_text(tmp_path):
    """protobuf hands back bytes for a proto2 string that is not UTF-8; the graph
    must still hold text (JSON reporters depend on it)."""
    from inspector import summarize

    nodes = [helper.make_node("Relu", ["x"], ["h"], name="AB"), helper.make_node("Relu", ["h"], ["y"], name="ok")]
    model = make_model(nodes, [vi("x", shape=["NN", 4])], [vi("y", shape=["NN", 4])])
    data = model.SerializeToString().replace(b"AB", b"\xff\xfe").replace(b"NN", b"\xc3\x28")
    path = tmp_path / "utf8.onnx"
    path.write_bytes(data)
    graph = load(path)
    assert all(isinstance(lay.name, str) for lay in graph.layers)
    assert graph.layers[1].name == "\ufffd\ufffd"
    assert isinstance(graph.layer("x").node_shapes[0][0][0], str)
    json.loads(summarize(graph, fmt="json"))


FUZZ_CASES = int(os.environ.get("INSPECTOR_FUZZ_CASES", 300))
"""Cases of the mutation test (``INSPECTOR_FUZZ_CASES=3000`` for a longer local run, as in test_fuzz.py)."""


def test_mutated_files_never_escape_as_tracebacks(tmp_path):
    """Random byte flips and cuts in real models end in a model or one InspectorError,
    and so does reading every weight of a model that loads (what ``lint`` does)."""
    import random

    rng = random.Random(int(os.environ.get("INSPECTOR_FUZZ_SEED", 1234)))
    sources = sorted(LIGHT.glob("*.onnx"))[:4] + sorted((DATA / "simple").rglob("*.onnx"))[:10]
    blobs = [p.read_bytes() for p in sources]
    path = tmp_path / "fuzz.onnx"
    loaded = 0
    for _ in range(FUZZ_CASES):
        data = bytearray(rng.choice(blobs))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(1, len(data))]
        path.write_bytes(bytes(data))
        try:
            graph = load(path)
            count_params(graph)
            count_macs(graph)
            loaded += 1
            for w in graph.iter_weights():
                if w.reader is not None and w.size <= 1 << 24:
                    try:
                        w.read()
                    except InspectorError as exc:
                        assert "\n" not in str(exc)
        except InspectorError as exc:
            assert "\n" not in str(exc)
    assert loaded > FUZZ_CASES // 10  # the damage does not stop every file at the first check


# -- limits, hostile tensors, isolated shape inference -------------------------------------------
def _if_with_large_branch(tmp_path: Path) -> Path:
    """An If whose then-branch holds a 4 KiB initializer: the wire walker descends
    model > graph > node > attribute > graph > tensor to strip it."""
    big = init("then_w", (32, 32))
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "then_w"], ["t"])], "then", [],
                               [vi("t", shape=[1, 32])], [big])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [vi("e", shape=[1, 32])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="if")
    model = make_model([node], [vi("c", TensorProto.BOOL, []), vi("x", shape=[1, 32])], [vi("y", shape=[1, 32])])
    return save(model, tmp_path / "if_big.onnx")


def _five_nested_ifs(tmp_path: Path) -> Path:
    path = tmp_path / "deep.onnx"
    path.write_bytes(_deep_if_bytes(5))
    return path


LIMIT_MODELS = {
    # limit field: (value, model builder, what the error says)
    "onnx_nodes": ("2", lambda t: pytorch_style(t)[0], "nodes"),
    "onnx_expanded_layers": ("3", lambda t: pytorch_style(t)[0], "layers"),
    "onnx_graph_depth": ("2", _five_nested_ifs, "levels deep"),
    "proto_bytes": ("100", lambda t: pytorch_style(t)[0], "bytes of graph structure"),
    "proto_depth": ("2", _if_with_large_branch, "protobuf messages"),
}


@pytest.mark.parametrize("field", sorted(LIMIT_MODELS))
def test_onnx_limits_are_configurable_and_named(field, tmp_path, monkeypatch):
    from inspector.limits import Limits, hint

    value, build, says = LIMIT_MODELS[field]
    path = build(tmp_path)
    assert load(path).layers  # within the defaults
    monkeypatch.setenv(Limits.env_name(field), value)
    with pytest.raises(LimitExceeded) as err:
        load(path)
    message = str(err.value)
    assert says in message and field in message and message.endswith(hint(field)), message
    assert "\n" not in message


def test_limits_in_force_when_loading_starts_apply_to_the_whole_file(tmp_path, monkeypatch):
    """One file is read under one set of limits, however the environment changes meanwhile."""
    from inspector import limits

    path, _ = pytorch_style(tmp_path)
    real = limits.current
    calls = []

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(limits, "current", counting)
    load(path)
    assert len(calls) == 1


def test_text_model_size_is_limited(tmp_path, monkeypatch):
    path, model = pytorch_style(tmp_path)
    text = tmp_path / "m.onnxtxt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx.save_model(model, str(text), format="onnxtxt")
    assert load(text).layers
    monkeypatch.setenv("INSPECTOR_MAX_PROTO_BYTES", "100")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_PROTO_BYTES"):
        load(text)


def _tensor_kinds(tmp_path: Path) -> dict[str, tuple[Path, str, np.ndarray]]:
    """One model per way a tensor is stored: inline and small (parsed by protobuf),
    inline and big (stripped, read back from the file), external data."""
    small = init("small", (4, 4), seed=1)
    big = init("big", (64, 64), seed=2)
    nodes = [helper.make_node("MatMul", ["x", "small"], ["h"]), helper.make_node("Add", ["h", "x"], ["y"])]
    inline = save(make_model(nodes, [vi("x", shape=[4, 4])], [vi("y", shape=[4, 4])], [small]), tmp_path / "s.onnx")
    nodes = [helper.make_node("MatMul", ["x", "big"], ["y"])]
    stripped = save(make_model(nodes, [vi("x", shape=[1, 64])], [vi("y", shape=[1, 64])], [big]), tmp_path / "b.onnx")
    external, original = _external_model(tmp_path / "ext")
    first = original.graph.initializer[0]
    return {"inline": (inline, "small", numpy_helper.to_array(small)),
            "stripped": (stripped, "big", numpy_helper.to_array(big)),
            "external": (external, first.name, numpy_helper.to_array(first))}


@pytest.mark.parametrize("kind", ["inline", "stripped", "external"])
def test_tensor_bytes_limit_is_checked_before_reading(kind, tmp_path, monkeypatch):
    path, name, expected = _tensor_kinds(tmp_path)[kind]
    weight = {w.name: w for w in load(path).iter_weights()}[name]
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", str(expected.nbytes))
    np.testing.assert_array_equal(weight.read(), expected)  # at the limit: read
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", str(expected.nbytes - 1))
    opened: list[str] = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: (opened.append(str(self)), real_open(self, *a, **k))[1])
    with pytest.raises(LimitExceeded) as err:
        weight.read()
    assert str(err.value).endswith("set INSPECTOR_MAX_TENSOR_BYTES to raise the limit")
    assert f"{expected.nbytes:,} bytes" in str(err.value)
    assert opened == []  # refused before a byte was read


def test_constant_of_shape_declaring_terabytes_is_refused_without_allocating(tmp_path):
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], dtype=np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["w"],
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    model = make_model(nodes, [vi("x", shape=[1, 1 << 20])], [vi("y", shape=[1, 1 << 20])], [shape])
    graph = load(save(model, tmp_path / "cos.onnx"))
    (weight,) = graph.layer("mm").weights
    assert weight.size == 1 << 40  # counted as declared
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_TENSOR_BYTES"):
        weight.read()  # 4 TiB of float32: np.full would raise MemoryError, or worse, succeed lazily
    assert time.perf_counter() - start < 1


def test_raw_data_is_read_in_chunks_straight_into_the_array(tmp_path, monkeypatch):
    from inspector.loaders.onnx import wire as onnx_wire

    path, name, expected = _tensor_kinds(tmp_path)["stripped"]
    weight = {w.name: w for w in load(path).iter_weights()}[name]
    monkeypatch.setattr(onnx_wire, "READ_CHUNK", 7)  # many short reads, none of them aligned
    value = weight.read()
    np.testing.assert_array_equal(value, expected)
    assert value.flags.writeable and value.dtype == np.float32


def test_inline_initializer_beyond_2_gib(tmp_path, monkeypatch):
    """protobuf cannot parse a message over 2 GiB; the loader never asks it to: the
    structure is tiny and the tensor's raw bytes go straight from the file."""
    from helpers.hostile import onnx_huge_initializer

    nbytes = (2 << 30) + (64 << 20)
    path = onnx_huge_initializer(tmp_path / "huge.onnx", nbytes)
    graph = load(path)
    (weight,) = graph.layer("identity").weights
    assert count_params(graph).totals.params == nbytes // 4 == weight.size
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", "1GiB")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_TENSOR_BYTES"):
        weight.read()
    monkeypatch.delenv("INSPECTOR_MAX_TENSOR_BYTES")
    value = weight.read()
    assert value.shape == (nbytes // 4,) and value.dtype == np.float32
    assert not value[:: 1 << 16].any() and not value[-1]  # the sparse file's hole reads as zeros
    del value


def _raw_tensor(name: str, dims: list[int], raw: bytes, dtype: int = TensorProto.FLOAT) -> TensorProto:
    t = TensorProto(name=name, data_type=dtype, dims=dims)
    t.raw_data = raw
    return t


def _one_weight_model(tmp_path: Path, tensor: TensorProto, name: str = "m.onnx") -> Path:
    nodes = [helper.make_node("Identity", [tensor.name], ["y"], name="id")]
    return save(make_model(nodes, [], [vi("y")], [tensor]), tmp_path / name)


@pytest.mark.parametrize("case", ["short raw (stripped)", "short raw (inline)", "typed count",
                                  "typed surplus (stripped)", "unknown dtype", "strings as raw", "external length",
                                  "external offset"])
def test_tensor_bytes_that_do_not_decode_are_one_model_load_error(case, tmp_path):
    if case == "short raw (stripped)":
        tensor = _raw_tensor("w", [64, 64], b"\0" * 4096)  # needs 16,384 bytes
    elif case == "short raw (inline)":
        tensor = _raw_tensor("w", [4, 8], b"\0" * 64)  # needs 128 bytes
    elif case == "typed count":
        tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 3], float_data=[1.0, 2.0])
    elif case == "typed surplus (stripped)":  # one value declared, 100,000 stored: refused before decoding
        tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1], float_data=[1.0] * 100_000)
    elif case == "unknown dtype":
        tensor = _raw_tensor("w", [4], b"\0" * 16, dtype=93)
    elif case == "strings as raw":
        tensor = _raw_tensor("w", [2], b"ab", dtype=TensorProto.STRING)
    else:
        (tmp_path / "data.bin").write_bytes(b"\0" * 256)
        offset, length = (0, 60) if case == "external length" else (-8, 64)
        tensor = external_tensor("w", [4, 4], "data.bin", offset, length)
    graph = load(_one_weight_model(tmp_path, tensor))
    (weight,) = graph.layer("id").weights
    with pytest.raises(ModelLoadError) as err:
        weight.read()
    message = str(err.value)
    assert "'w'" in message and "\n" not in message and len(message) < 300
    assert not isinstance(err.value, LimitExceeded)


def _expand_bomb(tmp_path: Path, length: int) -> Path:
    """Expand (opset 11) whose 1-D shape operand is declared ``length`` long: onnx's
    shape inference builds an output shape of that rank."""
    nodes = [helper.make_node("Expand", ["x", "shape"], ["y"], name="expand")]
    model = make_model(nodes, [vi("x", shape=[1, 3, 1]), vi("shape", TensorProto.INT64, [length])],
                       [vi("y", shape=[1, 3, 1])], opset=11, ir_version=7)
    return save(model, tmp_path / f"expand_{length}.onnx")


def _data_prop_bomb(tmp_path: Path) -> Path:
    """A one-element shape constant holding 10**8: with data propagation onnx
    materializes a 10**8-long shape vector for the Cast of the generated tensor."""
    shape = numpy_helper.from_array(np.array([10 ** 8], dtype=np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["zeros"], name="zeros"),
             helper.make_node("Add", ["x", "zeros"], ["sum"], name="add"),
             helper.make_node("Cast", ["sum"], ["y"], to=TensorProto.INT64, name="cast")]
    model = make_model(nodes, [vi("x", TensorProto.INT64, [1])], [vi("y", TensorProto.INT64)], [shape], opset=13)
    return save(model, tmp_path / "data_prop.onnx")


ONNX_ALONE = r"""
import resource, sys
import onnx
from onnx import shape_inference
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
model = onnx.load(sys.argv[1])
try:
    shape_inference.infer_shapes(model, data_prop=sys.argv[2] == "1")
    print("ok")
except MemoryError:
    print("MemoryError")
"""


@pytest.mark.parametrize("bomb,data_prop", [("expand", "0"), ("data_prop", "1")])
def test_the_shape_inference_bombs_are_real(bomb, data_prop, tmp_path):
    """The oracle: onnx alone, in a process limited to 1 GiB, runs out of memory."""
    path = _expand_bomb(tmp_path, 1 << 62) if bomb == "expand" else _data_prop_bomb(tmp_path)
    out = subprocess.run([sys.executable, "-c", ONNX_ALONE, str(path), data_prop], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 or out.stdout.strip() == "MemoryError", (out.stdout, out.stderr[-500:])


def test_shape_inference_bombs_are_contained(tmp_path, monkeypatch):
    # The helper's memory budget is what contains this; the cheaper pre-check (next test) is turned off.
    monkeypatch.setattr(onnx_inference, "DATA_PROP_ELEMENTS", 1 << 62)
    start = time.perf_counter()
    graph = load(_expand_bomb(tmp_path, 1 << 62))
    assert time.perf_counter() - start < 30
    assert graph.metadata["shape_inference"] == "failed: it ran out of memory"
    assert graph.layer("expand").node_shapes == [[(1, 3, 1)]]  # as declared in the file
    graph = load(_data_prop_bomb(tmp_path))
    assert graph.metadata["shape_inference"] == "ok (without data propagation)"
    assert any("ran out of memory" in note for note in graph.notes)
    assert graph.layer("cast").node_shapes == [[(10 ** 8,)]]
    path, _ = pytorch_style(tmp_path)  # after a helper was replaced, inference works as before
    good = load(path)
    assert good.metadata["shape_inference"] == "ok"
    assert good.layer("/fc/Gemm").node_shapes == [[("batch_size", 10)]]


def test_data_propagation_of_long_1d_tensors_is_not_run(tmp_path):
    """A 1-D tensor longer than DATA_PROP_ELEMENTS reaching an op onnx propagates data through: data
    propagation is refused before it runs (no helper hits its memory budget), shapes come without it."""
    graph = load(_data_prop_bomb(tmp_path))
    assert graph.metadata["shape_inference"] == "ok (without data propagation)"
    assert any("a 1-D tensor of 100,000,000 elements reaches Add 'add'" in note for note in graph.notes)
    assert not any("ran out of memory" in note for note in graph.notes)
    assert graph.layer("cast").node_shapes == [[(10 ** 8,)]]
    short = onnx.load(_data_prop_bomb(tmp_path))
    short.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([16], dtype=np.int64), "shape"))
    assert onnx_inference.data_prop_hazard(short.graph) == ""
    assert load(save(short, tmp_path / "short.onnx")).metadata["shape_inference"] == "ok"


def test_shape_inference_time_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_inference, "INFER_SECONDS", 1)
    path = _expand_bomb(tmp_path, 3_000_000)  # several seconds of inference, within the memory budget
    start = time.perf_counter()
    graph = load(path)
    assert time.perf_counter() - start < 10
    assert graph.metadata["shape_inference"] == "failed: stopped after 1 s"
    monkeypatch.undo()
    path, _ = pytorch_style(tmp_path)
    assert load(path).metadata["shape_inference"] == "ok"


def test_shape_inference_in_process_gives_the_same_graph(tmp_path, monkeypatch):
    path, _ = tf2onnx_style(tmp_path)
    isolated = load(path)
    monkeypatch.setattr(onnx_inference, "ISOLATE_INFERENCE", False)
    direct = load(path)
    assert [lay.node_shapes for lay in isolated.layers] == [lay.node_shapes for lay in direct.layers]
    assert isolated.metadata == direct.metadata and isolated.notes == direct.notes


def test_attribute_tensors_marked_external_are_never_opened(tmp_path, monkeypatch):
    """onnx's own to_array would resolve an attribute tensor's external location
    against the working directory: a ConstantOfShape fill value must not come from there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    np.array([7.0], np.float32).tofile(cwd / "fill.bin")
    monkeypatch.chdir(cwd)
    value = external_tensor("v", [1], "fill.bin", 0, 4)
    assert numpy_helper.to_array(value).tolist() == [7.0]  # the oracle: onnx itself would read it
    shape = numpy_helper.from_array(np.array([2, 2], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["w"], value=value),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    model = make_model(nodes, [vi("x", shape=[2, 2])], [vi("y", shape=[2, 2])], [shape])
    graph = load(save(model, tmp_path / "model" / "cos.onnx"))
    (weight,) = graph.layer("mm").weights
    assert weight.shape == (2, 2) and not weight.read().any()


def test_info_prints_nested_sequence_and_map_types_in_full(tmp_path, cli):
    """An skl2onnx ZipMap output, ``seq(map(int64, tensor(float)))``, printed as ``map(...)`` before."""
    from inspector.loaders.onnx.protos import type_info

    seq_map = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None)))
    zipmap = helper.make_node("ZipMap", ["x"], ["probs"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])
    model = make_model([zipmap], [vi("x", shape=["N", 2])], [helper.make_value_info("probs", seq_map)])
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    code, out, _ = cli("info", save(model, tmp_path / "zipmap.onnx"))
    assert code == 0
    assert "probs  seq(map(int64,float32))  ?" in out
    tensor = helper.make_tensor_type_proto(TensorProto.FLOAT, [2, "n"])
    assert type_info(tensor) == ("float32", (2, "n"))
    assert type_info(helper.make_optional_type_proto(tensor)) == ("optional(float32)", (2, "n"))
    assert type_info(helper.make_sequence_type_proto(tensor)) == ("seq(float32)", None)
    map_of_seq = helper.make_map_type_proto(TensorProto.STRING, helper.make_sequence_type_proto(tensor))
    assert type_info(helper.make_optional_type_proto(map_of_seq)) == ("optional(map(string,seq(float32)))", None)
