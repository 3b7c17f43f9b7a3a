"""Multiply-accumulates for Keras and ONNX graphs.

Oracles: for Keras, the MACs are recomputed here from the *live* Keras model
(Keras's own output shapes and weight shapes, layer by layer); for ONNX, from
the dimensions of hand-built graphs.  Published figures: ResNet-50 v1 (Keras)
≈ 3.86 G; ResNet-50 v1.5 (the onnx package's caffe2 model, stride on the 3x3
convolution like torchvision's) 4.09 G, torchvision's published "GFLOPS" for
``resnet50``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inspector.analysis.macs import MacsReport, count_macs
from inspector.ir import Inbound, Layer, ModelGraph, Weight
from inspector.loaders import load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


# -- Keras oracle -------------------------------------------------------------------------------
def _shape(x):
    return tuple(x.shape)


def _out(layer):
    out = layer.output
    return _shape(out[0] if isinstance(out, (list, tuple)) else out)


def _in(layer, i=0):
    inp = layer.input
    if isinstance(inp, (list, tuple)):
        return _shape(inp[i])
    return _shape(inp)


def _size(shape):
    return math.prod(int(d) for d in shape)


def keras_layer_macs(layer) -> int | None:
    """MACs of one live Keras layer from Keras's own shapes (batch = 1)."""
    cls = type(layer).__name__
    w = {v.path.split("/")[-1]: tuple(v.shape) for v in layer.weights}
    if cls in ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "DepthwiseConv1D"):
        kernel = tuple(layer.weights[0].shape)
        return _size(_out(layer)[1:-1]) * _size(kernel)
    if cls in ("Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose"):
        return _size(_in(layer)[1:-1]) * _size(tuple(layer.weights[0].shape))
    if cls in ("SeparableConv2D", "SeparableConv1D"):
        return _size(_out(layer)[1:-1]) * (_size(w["depthwise_kernel"]) + _size(w["pointwise_kernel"]))
    if cls == "Dense":
        return _size(_out(layer)[1:-1]) * _size(tuple(layer.kernel.shape))
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        steps = _in(layer)[1]
        return steps * (_size(tuple(layer.cell.kernel.shape)) + _size(tuple(layer.cell.recurrent_kernel.shape)))
    if cls == "Bidirectional":
        steps = _in(layer)[1]
        total = 0
        for sub in (layer.forward_layer, layer.backward_layer):
            total += _size(tuple(sub.cell.kernel.shape)) + _size(tuple(sub.cell.recurrent_kernel.shape))
        return steps * total
    if cls == "TimeDistributed":
        steps = _in(layer)[1]
        inner = layer.layer
        return steps * _size(_out(layer)[2:-1]) * _size(tuple(inner.kernel.shape))
    if cls == "EinsumDense":
        lhs = layer.equation.split("->")[0].split(",")
        sizes = {}
        for term, shape in zip(lhs, (_in(layer), tuple(layer.kernel.shape)), strict=False):
            for letter, d in zip(term, shape, strict=False):
                sizes[letter] = 1 if d is None else int(d)
        return _size(sizes.values())
    if cls == "MultiHeadAttention":
        q, v = _in(layer, 0), _in(layer, 1)
        tq, tv = q[1], v[1]
        wq = tuple(layer._query_dense.kernel.shape)
        wk = tuple(layer._key_dense.kernel.shape)
        wv = tuple(layer._value_dense.kernel.shape)
        wo = tuple(layer._output_dense.kernel.shape)
        heads, key_dim, value_dim = wq[1], wq[2], wv[2]
        return (tq * _size(wq) + tv * _size(wk) + tv * _size(wv) + tq * _size(wo)
                + tq * tv * heads * key_dim + tq * tv * heads * value_dim)
    if cls in ("Functional", "Model", "Sequential"):
        return sum(keras_layer_macs(sub) for sub in layer.layers)
    if cls == "Lambda":
        return None
    return 0  # element-wise, pooling, normalization, reshapes (the documented convention)


def keras_macs(model) -> int:
    return sum(keras_layer_macs(layer) for layer in model.layers)


@pytest.fixture(scope="session")
def keras_resnet50():
    from helpers.keras_models import app_model, saved_app

    return app_model("ResNet50"), saved_app("ResNet50", "keras"), saved_app("ResNet50", "h5")


def test_keras_resnet50_matches_keras_and_publication(keras_resnet50):
    model, keras_path, h5_path = keras_resnet50
    expected = keras_macs(model)
    for path in (keras_path, h5_path):
        report = count_macs(load(path))
        assert report.complete, report.unknown
        assert report.total == expected
    assert abs(expected - 3.86e9) / 3.86e9 < 0.01


def _resnet50_v1_from_light(tmp_path: Path) -> Path:
    """The onnx package's ResNet-50 is v1.5 (stride 2 on the 3x3 convolution);
    Keras's is v1 (stride 2 on the first 1x1).  Moving the stride back gives
    the Keras architecture in ONNX form."""
    model = onnx.load(str(LIGHT / "light_resnet50.onnx"))
    convs = {n.input[1]: n for n in model.graph.node if n.op_type == "Conv"}
    moved = 0
    for name, node in convs.items():
        m = re.match(r"(.*res\d_0)_branch2b_w_0", name)
        strides = next((a for a in node.attribute if a.name == "strides"), None)
        if m and strides is not None and list(strides.ints) == [2, 2]:
            strides.ints[:] = [1, 1]
            first = convs[f"{m.group(1)}_branch2a_w_0"]
            next(a for a in first.attribute if a.name == "strides").ints[:] = [2, 2]
            moved += 1
    assert moved == 3
    path = tmp_path / "resnet50_v1.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_onnx_and_keras_resnet50_agree(keras_resnet50, tmp_path):
    _, keras_path, _ = keras_resnet50
    keras_total = count_macs(load(keras_path)).total
    onnx_report = count_macs(load(_resnet50_v1_from_light(tmp_path)))
    assert onnx_report.complete
    assert abs(onnx_report.total - keras_total) / keras_total < 0.01


def test_onnx_resnet50_v15_matches_published():
    report = count_macs(load(LIGHT / "light_resnet50.onnx"))
    assert report.complete
    assert abs(report.total - 4.09e9) / 4.09e9 < 0.01
    # VGG-19's published cost: 19.6 GMACs.
    vgg = count_macs(load(LIGHT / "light_vgg19.onnx"))
    assert abs(vgg.total - 19.6e9) / 19.6e9 < 0.01


@pytest.fixture(scope="session")
def keras_zoo(tmp_path_factory):
    """Small Keras models covering every layer family macs.py knows."""
    import keras
    from keras import layers

    folder = tmp_path_factory.mktemp("keras-macs")
    models = {}
    inp = keras.Input((16, 16, 4))
    x = layers.Conv2D(8, 3, padding="same", groups=2)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = layers.SeparableConv2D(6, 3, strides=2)(x)
    x = layers.Conv2DTranspose(5, 3, strides=2)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv1D(4, 3)(layers.Reshape((-1, 5))(x))
    x = layers.GlobalAveragePooling1D()(x)
    models["conv"] = keras.Model(inp, layers.Dense(3)(x))

    seq = keras.Input((12, 6))
    y = layers.LSTM(8, return_sequences=True)(seq)
    y = layers.Bidirectional(layers.GRU(5, return_sequences=True))(y)
    y = layers.SimpleRNN(4, return_sequences=True)(y)
    y = layers.TimeDistributed(layers.Dense(7))(y)
    models["rnn"] = keras.Model(seq, layers.Dense(2)(y))

    tok = keras.Input((10,), dtype="int32")
    e = layers.Embedding(50, 16)(tok)
    a = layers.MultiHeadAttention(num_heads=2, key_dim=8, value_dim=4)(e, e)
    a = layers.EinsumDense("abc,cd->abd", output_shape=(10, 6))(a)
    models["attention"] = keras.Model(tok, a)

    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, layers.Dense(4)(inner_in), name="inner")
    outer_in = keras.Input((8,))
    models["nested"] = keras.Model(outer_in, layers.Dense(2)(inner(outer_in)))

    paths = {}
    for name, model in models.items():
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    return models, paths


@pytest.mark.parametrize("name", ["conv", "rnn", "attention", "nested"])
def test_keras_layer_families(keras_zoo, name):
    models, paths = keras_zoo
    model = models[name]
    graph = load(paths[name])
    report = count_macs(graph)
    assert report.complete, report.unknown
    by_name = dict(report.layers)
    for layer in model.layers:
        expected = keras_layer_macs(layer)
        assert by_name[layer.name] == expected, layer.name
    assert report.total == keras_macs(model) > 0


# -- ONNX operators --------------------------------------------------------------------------
def vi(name, dtype=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def w(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.zeros(shape, dtype), name)


def onnx_graph(tmp_path, nodes, inputs, outputs, inits=(), opset=17, name="m"):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return load(path)


def test_onnx_convolutions(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="grouped", group=4, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], name="depthwise", group=16, kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("ConvTranspose", ["b", "w3"], ["c"], name="up", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["c", "w4"], ["y"], name="conv1d_like", kernel_shape=[1, 1]),
    ]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=["N", 8, 16, 16])], [vi("y")],
                   [w("w1", (16, 2, 3, 3)), w("w2", (16, 1, 3, 3)), w("w3", (16, 4, 2, 2)), w("w4", (2, 4, 1, 1))])
    m = count_macs(g)
    assert m.layer("grouped") == 16 * 16 * 16 * (2 * 9)
    assert m.layer("depthwise") == 16 * 7 * 7 * 9
    assert m.layer("up") == 16 * 7 * 7 * (4 * 4)  # input positions x (C_out/groups) x kernel
    assert m.layer("conv1d_like") == 2 * 14 * 14 * 4
    assert m.layer("x") == 0 and m.complete


def test_onnx_matrix_products(tmp_path):
    nodes = [
        helper.make_node("Gemm", ["x", "wg"], ["a"], name="gemm", transB=1),
        helper.make_node("Gemm", ["wt", "a"], ["a2"], name="gemm_ta", transA=1),
        helper.make_node("MatMul", ["q", "k"], ["s"], name="batched"),
        helper.make_node("Einsum", ["q", "k"], ["e"], name="einsum", equation="bhqd,bhdk->bhqk"),
        helper.make_node("Einsum", ["q"], ["t"], name="transpose", equation="bhqd->bhdq"),
        helper.make_node("Einsum", ["q", "k", "k2"], ["three"], name="three", equation="bhqd,bhdk,bhkj->bhqj"),
    ]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=[3, 20]), vi("q", shape=["B", 4, 10, 8]),
                                     vi("k", shape=["B", 4, 8, 12]), vi("k2", shape=["B", 4, 12, 2])],
                   [vi("a2"), vi("s"), vi("e"), vi("t"), vi("three")], [w("wg", (30, 20)), w("wt", (3, 5))])
    m = count_macs(g)
    assert m.layer("gemm") == 3 * 30 * 20
    assert m.layer("gemm_ta") == 5 * 30 * 3
    assert m.layer("batched") == 4 * 10 * 12 * 8  # symbolic batch B counts as 1
    assert m.layer("einsum") == 4 * 10 * 12 * 8
    assert m.layer("transpose") == 0
    assert m.layer("three") is None  # depends on contraction order
    assert m.unknown == ("three",)
    assert m.total == sum(v for _, v in m.layers if v is not None)


def _flattened_gemm(tmp_path, dims, name):
    """A GPT-2-style projection: ``Reshape([batch, seq, 768] -> [-1, 768])`` then ``Gemm``."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "wp"], ["y"], name="proj")]
    inits = [w("wp", (768, 768)), numpy_helper.from_array(np.array([-1, 768], np.int64), "shape")]
    return onnx_graph(tmp_path, nodes, [vi("x", shape=dims)], [vi("y")], inits, name=name)


@pytest.mark.parametrize("dims", [["batch", "seq", 768], [None, "seq", 768], ["batch", 4, 768]])
def test_onnx_flattened_leading_dim_is_not_batch(tmp_path, dims):
    """Item 11.1: the ``[unk, 768]`` a Reshape makes of ``[batch, seq, 768]`` is batch x seq,
    not the batch: the Gemm's MACs are unknown and the total a lower bound, never 768 x 768."""
    g = _flattened_gemm(tmp_path, dims, "dynamic")
    assert g.layer("proj").output_shapes[0][0] not in (None, "batch")  # a fresh symbol from inference
    m = count_macs(g)
    assert m.layer("proj") is None
    assert m.unknown == ("proj",) and not m.complete
    assert m.total == 0


def test_onnx_flattened_static_dims_are_exact(tmp_path):
    m = count_macs(_flattened_gemm(tmp_path, [2, 5, 768], "static"))
    assert m.complete
    assert m.layer("proj") == 2 * 5 * 768 * 768


@pytest.mark.parametrize("batch", ["N", None])
def test_onnx_cnn_symbolic_batch_stays_per_sample(tmp_path, batch):
    """The graph inputs' leading dim (named, or unnamed and renamed by shape inference
    in each consumer) is the batch: counted as 1, the total complete."""
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc")]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=[batch, 3, 8, 8])], [vi("y")],
                   [w("wc", (4, 3, 3, 3)), w("wf", (4, 10))])
    m = count_macs(g)
    assert m.complete, m.unknown
    assert m.layer("conv") == 4 * 8 * 8 * 27
    assert m.layer("fc") == 4 * 10
    assert m.total == 4 * 8 * 8 * 27 + 40


def test_onnx_leading_symbol_other_than_batch_is_unknown(tmp_path):
    """A MatMul whose leading dim is a symbol that is not the inputs' batch (``seq``, moved
    to the front by a Transpose) is unknown; the same product on the batch symbol is not."""
    nodes = [helper.make_node("Transpose", ["t"], ["tt"], name="swap", perm=[1, 0]),
             helper.make_node("MatMul", ["tt", "wm"], ["y"], name="on_seq"),
             helper.make_node("MatMul", ["x", "wm"], ["z"], name="on_batch")]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=["batch", 16]), vi("t", shape=[16, "seq"])],
                   [vi("y"), vi("z")], [w("wm", (16, 8))])
    m = count_macs(g)
    assert m.layer("on_batch") == 16 * 8
    assert m.layer("on_seq") is None
    assert m.unknown == ("on_seq",)


@pytest.mark.parametrize("rows_per_sample,k", [(1, 24), (4, 6)])
def test_onnx_reshape_of_unknown_shape_then_matmul(tmp_path, rows_per_sample, k):
    """A tf2onnx-style Flatten (``Reshape`` to a shape computed from ``Shape``: the output
    dims stay unknown) then a MatMul: the product is per sample only when it contracts a
    whole sample (24 elements); with 4 rows per sample its leading dim is not the batch."""
    ints = lambda n, v: numpy_helper.from_array(np.array(v, np.int64), n)  # noqa: E731
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "one"], ["b"]),
             helper.make_node("Mul", ["b", "rows"], ["br"]),
             helper.make_node("Concat", ["br", "last"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"], name="flatten"),
             helper.make_node("MatMul", ["flat", "wm"], ["y"], name="dense")]
    inits = [ints("zero", [0]), ints("one", [1]), ints("rows", [rows_per_sample]), ints("last", [-1]),
             w("wm", (k, 5))]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=["N", 2, 3, 4])], [vi("y")], inits)
    assert g.layer("flatten").output_shapes[0] in (None, ("unk__0", "unk__1"))  # no dim inferred
    m = count_macs(g)
    if rows_per_sample == 1:
        assert m.complete and m.layer("dense") == 24 * 5
    else:
        assert m.layer("dense") is None and m.unknown == ("dense",)


@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_onnx_recurrent(tmp_path, op, gates):
    hidden, inp, seq = 6, 5, 7
    nodes = [helper.make_node(op, ["x", "W", "R"], ["y"], name="rnn", hidden_size=hidden,
                              direction="bidirectional")]
    inits = [w("W", (2, gates * hidden, inp)), w("R", (2, gates * hidden, hidden))]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=[seq, "batch", inp])], [vi("y")], inits, name="known")
    assert count_macs(g).layer("rnn") == seq * 2 * gates * hidden * (inp + hidden)
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=["seq", "batch", inp])], [vi("y")], inits, name="unknown")
    assert count_macs(g).layer("rnn") is None  # unknown steps stay unknown


def test_onnx_quantized_ops(tmp_path):
    scalar = lambda n, v, t: numpy_helper.from_array(np.array(v, t), n)  # noqa: E731
    inits = [w("wq", (8, 3, 3, 3), np.uint8), scalar("xs", 0.1, np.float32), scalar("xz", 0, np.uint8),
             scalar("ws", 0.1, np.float32), scalar("wz", 0, np.uint8), scalar("ys", 0.1, np.float32),
             scalar("yz", 0, np.uint8), w("wm", (64, 10), np.uint8), w("wc", (4, 8, 1, 1), np.uint8)]
    nodes = [
        helper.make_node("QLinearConv", ["x", "xs", "xz", "wq", "ws", "wz", "ys", "yz"], ["c"], name="qconv"),
        helper.make_node("ConvInteger", ["c", "wc"], ["ci"], name="convint"),
        helper.make_node("Cast", ["ci"], ["cf"], to=TensorProto.UINT8),
        helper.make_node("Reshape", ["cf", "shape"], ["flat"]),
        helper.make_node("MatMulInteger", ["flat", "wm"], ["y"], name="mmint"),
    ]
    inits.append(numpy_helper.from_array(np.array([1, 64], np.int64), "shape"))
    g = onnx_graph(tmp_path, nodes, [vi("x", TensorProto.UINT8, [1, 3, 6, 6])], [vi("y")], inits)
    m = count_macs(g)
    assert m.layer("qconv") == 8 * 4 * 4 * 27
    assert m.layer("convint") == 4 * 4 * 4 * 8
    assert m.layer("mmint") == 64 * 10


def _loop_model(tmp_path, trips):
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h", "wl"], ["h2"]), helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("cond", TensorProto.BOOL, []), vi("h", shape=[1, 8])],
        [vi("cond_out", TensorProto.BOOL, []), vi("h2", shape=[1, 8])])
    inits = [w("wl", (8, 8)), numpy_helper.from_array(np.array(True), "true")]
    inputs = [vi("x", shape=[1, 8])]
    if trips is None:
        inputs.append(vi("M", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(trips, np.int64), "M"))
    nodes = [helper.make_node("Loop", ["M", "true", "x"], ["y"], name="loop", body=body)]
    return onnx_graph(tmp_path, nodes, inputs, [vi("y")], inits, name=f"loop{trips}")


def test_onnx_loop_body_times_trip_count(tmp_path):
    assert count_macs(_loop_model(tmp_path, 5)).layer("loop") == 5 * 8 * 8
    assert count_macs(_loop_model(tmp_path, None)).layer("loop") is None


def test_onnx_if_takes_the_costlier_branch(tmp_path):
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "wa"], ["t"])], "then", [], [vi("t", shape=[1, 8])])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [], [vi("e", shape=[1, 8])])
    nodes = [helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)]
    g = onnx_graph(tmp_path, nodes, [vi("x", shape=[1, 8]), vi("c", TensorProto.BOOL, [])], [vi("y")],
                   [w("wa", (8, 8))])
    assert count_macs(g).layer("branch") == 64


def test_unknown_is_none_never_zero():
    graph = ModelGraph(name="m", format="keras")
    graph.layers = [
        Layer("in", "InputLayer", inbound=[[]], node_shapes=[[(None, 4)]]),
        Layer("custom", "MyCustomLayer", inbound=[[Inbound("in")]], node_shapes=[[(None, 4)]]),
        Layer("dense", "Dense", config={"units": 2}, inbound=[[Inbound("custom")]], node_shapes=[[(None, 2)]],
              weights=[Weight("kernel", "kernel", (4, 2), "float32")]),
        Layer("lam", "Lambda", inbound=[[Inbound("dense")]], node_shapes=[[(None, 2)]]),
    ]
    report = count_macs(graph)
    assert isinstance(report, MacsReport)
    assert report.layers == (("in", 0), ("custom", None), ("dense", 8), ("lam", None))
    assert report.unknown == ("custom", "lam") and report.total == 8 and not report.complete


def test_shared_keras_layer_counts_every_call():
    graph = ModelGraph(name="m", format="keras")
    graph.layers = [
        Layer("a", "InputLayer", inbound=[[]], node_shapes=[[(None, 4)]]),
        Layer("b", "InputLayer", inbound=[[]], node_shapes=[[(None, 3, 4)]]),
        Layer("shared", "Dense", config={"units": 5}, inbound=[[Inbound("a")], [Inbound("b")]],
              node_shapes=[[(None, 5)], [(None, 3, 5)]], weights=[Weight("kernel", "kernel", (4, 5), "float32")]),
    ]
    assert count_macs(graph).layer("shared") == 4 * 5 + 3 * 4 * 5


def test_keras2_tf_op_layers_are_element_wise(tmp_path):
    """tf_keras turns ``x + 3.0`` and ``tf.math.multiply`` into ``TFOpLambda`` layers (MobileNetV3's
    hard-swish, EfficientNetV2): element-wise, 0 MACs.  They were unknown, so tf_keras's
    MobileNetV3Small gave a lower bound where the same model from Keras 3 gives 11,057,600."""
    import tensorflow as tf

    from helpers.keras_models import tf_keras_module

    k = tf_keras_module()
    x = k.Input((8,), name="x")
    h = k.layers.Dense(4, name="d1")(x)
    h = tf.math.multiply(h + 3.0, h)
    model = k.Model(x, k.layers.Dense(2, name="d2")(h))
    path = tmp_path / "tfop.h5"
    model.save(path)
    graph = load(path)
    assert sorted(lay.type for lay in graph.layers).count("TFOpLambda") == 2
    report = count_macs(graph)
    assert report.complete and report.total == 8 * 4 + 4 * 2
