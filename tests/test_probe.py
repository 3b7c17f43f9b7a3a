"""The activation probe: what it measures, what it feeds, what it refuses, and its CLI.

Oracles: numpy recomputes pre-activations from the saved weights; the same
network through Keras and through ONNX (onnx.helper or tf2onnx) must measure the
same; architectural facts (channels with a bias of -10 never fire) fix the rest.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info
from helpers.probe import HIDDEN, IN_DIM, batch_file, dense_onnx, mlp, pre_activation, probe_path
from inspector.analysis.probe import SIGMOID_LIMIT, SOFTSIGN_LIMIT, TANH_LIMIT, saturation_region
from inspector.errors import MissingDependency, UnsafeModel, UnsupportedFormat, UsageError


def _keras_file(tmp_path: Path, name: str, build) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path / f"{name}.keras"
    build().save(path)
    return path


# -- the numbers ------------------------------------------------------------------------------


def test_saturation_limits_are_where_the_derivative_is_one_percent_of_its_max():
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    d_sig = sigmoid(SIGMOID_LIMIT) * (1 - sigmoid(SIGMOID_LIMIT))
    assert d_sig == pytest.approx(0.01 * 0.25, rel=1e-9)
    assert 1 - np.tanh(TANH_LIMIT) ** 2 == pytest.approx(0.01, rel=1e-9)
    assert 1 / (1 + SOFTSIGN_LIMIT) ** 2 == pytest.approx(0.01, rel=1e-12)
    assert saturation_region("hard_sigmoid") == (-3.0, 3.0, True)  # Keras 3: relu6(x + 3) / 6
    lo, hi, inclusive = saturation_region("hard_sigmoid", {"alpha": 0.2, "beta": 0.5}, onnx=True)
    assert (lo, hi, inclusive) == (pytest.approx(-2.5), pytest.approx(2.5), True)


@pytest.mark.parametrize("fmt", ["keras", "onnx"])
def test_moments_and_shares_match_numpy(fmt):
    pair = mlp("sat_partial", activation="sigmoid", kernel_std=0.75)
    x = np.load(batch_file())
    report = probe_path(pair.keras if fmt == "keras" else pair.onnx, inputs=batch_file())
    stats = report.layers[0]
    pre = pre_activation(pair, x)
    assert stats.units == HIDDEN and stats.values == pre.size and stats.calls == 1
    assert stats.mean == pytest.approx(pre.mean(), rel=1e-4, abs=1e-5)
    assert stats.std == pytest.approx(pre.std(), rel=1e-4)
    assert stats.saturated == pytest.approx(float(np.mean(np.abs(pre) > SIGMOID_LIMIT)), abs=1 / pre.size)
    assert stats.nonfinite == 0
    assert report.samples == 64 and report.inputs[0].source == "file"


def test_keras_and_onnx_agree_on_a_convnet(tmp_path):
    # tf2onnx turns the NHWC Keras model into NCHW ONNX: the probe's unit axes must follow.
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Conv2D(5, 3, name="conv2")(x)
    x = keras.layers.Activation("tanh", name="act")(x)
    out = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    w, b = model.get_layer("conv").get_weights()
    b[:3] = -50.0  # three of six channels can never fire
    model.get_layer("conv").set_weights([w, b])
    kpath = tmp_path / "cnn.keras"
    model.save(kpath)
    opath = tmp_path / "cnn.onnx"
    spec = (tf.TensorSpec((None, 12, 12, 3), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(opath))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 12, 12, 3)).astype(np.float32))
    k = probe_path(kpath, inputs=tmp_path / "x.npy")
    o = probe_path(opath, inputs=tmp_path / "x.npy")
    assert [s.activation for s in k.layers] == [s.activation for s in o.layers] == ["relu", "tanh"]
    for ks, os_ in zip(k.layers, o.layers, strict=True):
        assert ks.units == os_.units and ks.values == os_.values
        assert ks.mean == pytest.approx(os_.mean, rel=1e-3, abs=1e-4)
        assert ks.std == pytest.approx(os_.std, rel=1e-3)
    assert k.layers[0].units == 6 and k.layers[0].dead_units == o.layers[0].dead_units == 0.5
    assert k.layers[1].saturated == pytest.approx(o.layers[1].saturated, abs=2 / k.layers[1].values)


def test_onnx_nchw_units_are_channels(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32) * 0.3
    b = np.array([-40.0, 0.0, -40.0], np.float32)  # channels 0 and 2 never fire
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    model = onnx_model(nodes, [value_info("x", ["N", 2, 10, 10])], [value_info("y", ["N", 3, 8, 8])],
                       [tensor("W", w), tensor("B", b)])
    path = save_onnx(model, tmp_path / "conv.onnx")
    stats = probe_path(path).layers[0]
    assert stats.units == 3
    assert stats.dead_units == pytest.approx(2 / 3)
    assert stats.values == 8 * 3 * 8 * 8


def test_shared_layer_counts_every_call(tmp_path):
    import keras

    def build():
        a, b = keras.Input((IN_DIM,), name="a"), keras.Input((IN_DIM,), name="b")
        shared = keras.layers.Dense(16, activation="relu", name="shared")
        return keras.Model([a, b], keras.layers.Concatenate()([shared(a), shared(b)]))

    path = _keras_file(tmp_path, "shared", build)
    report = probe_path(path, batch_size=4)
    (stats,) = report.layers
    assert stats.calls == 2 and stats.values == 2 * 4 * 16 and stats.units == 16
    assert [i.name for i in report.inputs] == ["a", "b"]


def test_nested_model_layers_are_measured_under_their_path(tmp_path):
    import keras

    def build():
        inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="d"),
                                  keras.layers.Activation("tanh", name="t")], name="inner")
        inp = keras.Input((IN_DIM,))
        return keras.Model(inp, inner(keras.layers.Dense(8, activation="relu", name="first")(inp)))

    report = probe_path(_keras_file(tmp_path, "nested", build))
    assert [s.layer for s in report.layers] == ["first", "inner/t"]


def test_report_is_frozen():
    import dataclasses

    report = probe_path(mlp("dead_he", activation="relu", initializer="he_normal").keras)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.layers[0].mean = 0.0  # type: ignore[misc]


# -- inputs ---------------------------------------------------------------------------------------


def test_synthetic_inputs_are_standard_normal_and_seeded():
    path = mlp("dead_he", activation="relu", initializer="he_normal").keras
    a, b, c = (probe_path(path, seed=s, batch_size=16) for s in (0, 0, 1))
    assert a.inputs[0].source == "normal" and a.inputs[0].shape == (16, IN_DIM) and a.samples == 16
    assert a.layers[0].mean == b.layers[0].mean
    assert a.layers[0].mean != c.layers[0].mean


def _pixel_model_keras(tmp_path, scale):
    import keras

    def build():
        inp = keras.Input((8, 8, 3), name="image")
        x = keras.layers.Rescaling(scale)(inp)
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
        return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))

    return _keras_file(tmp_path, f"pix_{scale}", build)


def test_inputs_the_model_rescales_get_pixel_values(tmp_path):
    report = probe_path(_pixel_model_keras(tmp_path, 1 / 255.0))
    assert report.inputs[0].source == "pixels"
    near_miss = probe_path(_pixel_model_keras(tmp_path, 0.5))
    assert near_miss.inputs[0].source == "normal"


def test_pixel_values_reach_the_model(tmp_path):
    # Rescaling(1/255) of 0..255 integers: the conv's input lies in [0, 1]; with a
    # kernel of ones and no bias the pre-activation mean is 27 * E[x] = 27 * 127.5/255.
    import keras

    def build():
        inp = keras.Input((4, 4, 3), name="image")
        x = keras.layers.Rescaling(1 / 255.0)(inp)
        x = keras.layers.Conv2D(1, 3, activation="relu", kernel_initializer="ones", name="conv")(x)
        return keras.Model(inp, x)

    report = probe_path(_keras_file(tmp_path, "pix_mean", build), batch_size=64)
    assert report.layers[0].mean == pytest.approx(27 * 0.5, rel=0.03)


def test_normalization_of_raw_pixels_means_pixel_inputs(tmp_path):
    import keras

    def build():
        inp = keras.Input((6, 6, 3), name="image")
        norm = keras.layers.Normalization(mean=[120.0, 115.0, 100.0], variance=[3600.0, 3500.0, 3700.0])
        x = keras.layers.Dense(4, activation="relu")(norm(inp))
        return keras.Model(inp, x)

    assert probe_path(_keras_file(tmp_path, "norm_pix", build)).inputs[0].source == "pixels"


def test_onnx_scaling_by_one_over_255_means_pixel_inputs(tmp_path):
    from onnx import helper

    def build(scale):
        w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
        nodes = [helper.make_node("Mul", ["x", "s"], ["xs"], name="scale"),
                 helper.make_node("MatMul", ["xs", "W"], ["m"], name="mm"),
                 helper.make_node("Relu", ["m"], ["y"], name="relu")]
        return onnx_model(nodes, [value_info("x", ["N", 3])], [value_info("y", ["N", 4])],
                          [tensor("s", np.array(scale, np.float32)), tensor("W", w)])

    pix = probe_path(save_onnx(build(1 / 255), tmp_path / "pix.onnx"))
    plain = probe_path(save_onnx(build(2.0), tmp_path / "plain.onnx"))
    assert pix.inputs[0].source == "pixels" and plain.inputs[0].source == "normal"


def test_integer_inputs_index_their_embedding(tmp_path):
    import keras

    def build():
        inp = keras.Input((5,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(50, 8, name="emb")(inp)
        return keras.Model(inp, keras.layers.Dense(4, activation="relu", name="d")(x))

    report = probe_path(_keras_file(tmp_path, "emb", build))  # an index >= 50 would fail in TF
    assert report.inputs[0].source == "integers" and report.inputs[0].dtype == "int32"
    assert report.layers[0].values == 8 * 5 * 4


def test_unknown_dimensions_ask_for_inputs(tmp_path):
    import keras

    def build():
        inp = keras.Input((None, 3), name="seq")
        return keras.Model(inp, keras.layers.Dense(4, activation="relu")(inp))

    path = _keras_file(tmp_path, "varlen", build)
    with pytest.raises(UsageError, match=r"input 'seq' has unknown dimensions \(None, None, 3\).*--inputs"):
        probe_path(path)
    np.save(tmp_path / "seq.npy", np.ones((2, 7, 3), np.float32))
    report = probe_path(path, inputs=tmp_path / "seq.npy")
    assert report.layers[0].values == 2 * 7 * 4


def test_npz_inputs_by_name_and_by_position(tmp_path):
    import keras

    def build():
        a, b = keras.Input((3,), name="left"), keras.Input((2,), name="right")
        x = keras.layers.Concatenate()([a, b])
        return keras.Model([a, b], keras.layers.Dense(4, activation="relu", name="d")(x))

    path = _keras_file(tmp_path, "two", build)
    left, right = np.ones((5, 3), np.float32), np.full((5, 2), 2.0, np.float32)
    np.savez(tmp_path / "named.npz", right=right, left=left)
    np.savez(tmp_path / "positional.npz", left, right)
    by_name = probe_path(path, inputs=tmp_path / "named.npz")
    by_pos = probe_path(path, inputs=tmp_path / "positional.npz")
    assert by_name.layers[0].mean == by_pos.layers[0].mean
    assert [i.shape for i in by_name.inputs] == [(5, 3), (5, 2)]
    np.savez(tmp_path / "swapped.npz", right, left)  # positional, wrong order: shapes do not fit
    with pytest.raises(UsageError, match="input 'left' has shape"):
        probe_path(path, inputs=tmp_path / "swapped.npz")
    np.save(tmp_path / "one.npy", left)
    with pytest.raises(UsageError, match="one array for a model with 2 inputs"):
        probe_path(path, inputs=tmp_path / "one.npy")
    np.savez(tmp_path / "bad.npz", left=left, other=right)
    with pytest.raises(UsageError, match="no array for input"):
        probe_path(path, inputs=tmp_path / "bad.npz")


def test_inputs_files_are_never_unpickled_and_must_be_finite(tmp_path):
    path = mlp("dead_he", activation="relu", initializer="he_normal").keras
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UsageError, match="never unpickled"):
        probe_path(path, inputs=tmp_path / "obj.npy")
    x = np.zeros((4, IN_DIM), np.float32)
    x[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(UsageError, match="1 NaN/Inf"):
        probe_path(path, inputs=tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(UsageError, match="junk.npy"):
        probe_path(path, inputs=tmp_path / "junk.npy")


def test_file_batches_run_in_chunks_of_batch_size():
    pair = mlp("sat_partial", activation="sigmoid", kernel_std=0.75)
    whole = probe_path(pair.onnx, inputs=batch_file())
    chunked = probe_path(pair.onnx, inputs=batch_file(), batch_size=5)  # 64 = 12 * 5 + 4
    assert chunked.samples == whole.samples == 64
    a, b = whole.layers[0], chunked.layers[0]
    assert a.values == b.values and a.saturated_units == b.saturated_units
    assert a.mean == pytest.approx(b.mean, rel=1e-5) and a.std == pytest.approx(b.std, rel=1e-5)


def test_fixed_batch_onnx_model_runs_one_sample_at_a_time(tmp_path):
    pair = mlp("dead_he", activation="relu", initializer="he_normal")
    from inspector.loaders import load

    w1 = pair.kernel
    keras_head = load(pair.keras).layer("head").weights
    w2, b2 = (w.read() for w in keras_head)
    model = dense_onnx([(w1, pair.bias, "relu"), (w2, b2, None)], batch=1)
    path = save_onnx(model, tmp_path / "fixed.onnx")
    report = probe_path(path, batch_size=6)
    assert report.samples == 6 and report.inputs[0].shape == (6, IN_DIM)
    assert report.layers[0].values == 6 * HIDDEN


# -- refusals -----------------------------------------------------------------------------------


def test_models_with_security_findings_are_not_run(tmp_path):
    import keras

    marker = tmp_path / "marker"

    def build():
        inp = keras.Input((4,))
        x = keras.layers.Lambda(lambda t, m=str(marker): (open(m, "w").close(), t * 2)[1], name="code")(inp)
        return keras.Model(inp, keras.layers.Dense(2, activation="relu")(x))

    path = _keras_file(tmp_path, "lambda", build)
    assert marker.exists()  # the lambda ran while Keras built the model ...
    marker.unlink()
    with pytest.raises(UnsafeModel, match="SEC001.*--trust"):
        probe_path(path)
    assert not marker.exists()  # ... and never while inspector looked at it


def test_a_missing_framework_is_one_line_naming_the_extra(monkeypatch):
    pair = mlp("dead_he", activation="relu", initializer="he_normal")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependency, match=r"onnxruntime.*inspector\[runtime\]"):
        probe_path(pair.onnx)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependency, match=r"tensorflow.*inspector\[tensorflow\]"):
        probe_path(pair.keras)


def test_savedmodel_is_not_probed():
    from inspector.analysis.probe import probe
    from inspector.ir import ModelGraph

    with pytest.raises(UnsupportedFormat, match="SavedModel"):
        probe(ModelGraph(name="m", format="savedmodel", path="somewhere"))


# -- command line -----------------------------------------------------------------------------------


def test_probe_command_prints_a_table_and_json(cli):
    pair = mlp("dead_bias", activation="relu", bias=-10.0)
    code, out, err = cli("probe", str(pair.keras), "--inputs", str(batch_file()))
    assert code == 0 and err == ""  # stderr is no terminal: no progress line
    lines = out.splitlines()
    assert lines[0].startswith("___") and lines[2].startswith("===")
    row = next(line for line in lines if line.startswith(" hidden"))
    assert "100.0%" in row and "relu (Dense)" in row
    assert f"Input features: (64, {IN_DIM}) float32, from the inputs file" in out
    code, out, _ = cli("probe", str(pair.onnx), "-f", "json")
    doc = json.loads(out)
    assert doc["schema"] == "inspector.probe/1" and doc["model"]["format"] == "onnx"
    (layer,) = doc["layers"]
    assert layer["layer"] == "relu_0" and layer["dead_units"] == 1.0 and layer["units"] == HIDDEN
    assert doc["inputs"][0]["source"] == "normal" and doc["samples"] == 8
    code, out, _ = cli("probe", str(pair.onnx), "-f", "github")
    assert out.splitlines()[0].startswith("| Layer")


def test_probe_command_errors_are_one_line(cli, tmp_path):
    code, out, err = cli("probe", str(mlp("dead_he", activation="relu", initializer="he_normal").keras),
                          "-f", "nope")
    assert code == 2 and err.startswith("inspector: error: unknown format 'nope'") and err.count("\n") == 1
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage")
    code, _, err = cli("probe", str(bad))
    assert code == 2 and err.startswith(f"inspector: error: {bad}:") and err.count("\n") == 1


def test_lint_probe_reports_measured_findings_and_exit_code(cli):
    pair = mlp("dead_bias", activation="relu", bias=-10.0)
    code, out, _ = cli("lint", "--probe", "--select", "ACT004", str(pair.onnx))
    assert code == 0  # ACT004 is a warning, --fail-on defaults to error
    assert f"{pair.onnx}:relu_0: ACT004 [warning]" in out
    code, out, _ = cli("lint", "--probe", "--select", "ACT004", "--fail-on", "warning", str(pair.keras))
    assert code == 1 and f"{pair.keras}:hidden: ACT004" in out
    code, out, _ = cli("lint", "--select", "ACT004", str(pair.keras))  # without --probe: static only
    assert code == 0 and "ACT004" not in out


def test_lint_probe_skips_unsafe_models_with_a_warning(cli, tmp_path):
    import keras

    def build():
        inp = keras.Input((4,))
        return keras.Model(inp, keras.layers.Lambda(lambda t: t + 1, name="code")(inp))

    path = _keras_file(tmp_path, "lambda2", build)
    code, out, err = cli("lint", "--probe", str(path))
    assert "SEC001" in out and code == 1
    assert f"inspector: warning: {path}: probe skipped: refusing to run the model" in err


def test_progress_line_only_on_a_terminal():
    from inspector.reporters.progress import ProgressLine

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    with ProgressLine("probe m", stream=tty, delay=0.0) as progress:
        progress("running the model", 3, 8)
    text = tty.getvalue()
    assert "\rprobe m: running the model [#########...............] 3/8" in text
    assert text.endswith("\r")  # cleared at the end
    pipe = io.StringIO()
    with ProgressLine("probe m", stream=pipe, delay=0.0) as progress:
        progress("running the model", 3, 8)
    assert pipe.getvalue() == ""


def _onnx_single(tmp_path, name, op, *, opset=17, dtype=None, **attrs):
    from onnx import TensorProto, helper

    elem = dtype or TensorProto.FLOAT
    nodes = [helper.make_node(op, ["x"], ["y"], name=name, **attrs)]
    model = onnx_model(nodes, [value_info("x", ["N", 6], elem)], [value_info("y", ["N", 6], elem)], opset=opset)
    return save_onnx(model, tmp_path / f"{name}.onnx")


def test_onnx_hard_sigmoid_uses_its_alpha_and_beta(tmp_path):
    # HardSigmoid(alpha=0.5, beta=0.5) is linear for -1 < x < 1 and flat from there on.
    path = _onnx_single(tmp_path, "hs", "HardSigmoid", alpha=0.5, beta=0.5)
    x = np.array([[-3.0, -1.0, -0.5, 0.0, 0.99, 1.0]] * 4, np.float32)
    np.save(tmp_path / "x.npy", x)
    stats = probe_path(path, inputs=tmp_path / "x.npy").layers[0]
    assert stats.region == (-1.0, 1.0)
    assert stats.saturated == pytest.approx(3 / 6)  # -3, -1 and 1 are in the flat part
    assert stats.saturated_units == pytest.approx(3 / 6)


def test_old_opsets_and_float16_measure_the_same(tmp_path):
    from onnx import TensorProto

    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    np.save(tmp_path / "x32.npy", x)
    np.save(tmp_path / "x16.npy", x.astype(np.float16))
    new = probe_path(_onnx_single(tmp_path, "relu17", "Relu"), inputs=tmp_path / "x32.npy").layers[0]
    old = probe_path(_onnx_single(tmp_path, "relu9", "Relu", opset=9), inputs=tmp_path / "x32.npy").layers[0]
    half = probe_path(_onnx_single(tmp_path, "relu16", "Relu", dtype=TensorProto.FLOAT16),
                      inputs=tmp_path / "x16.npy").layers[0]
    assert old.units == new.units == half.units == 6
    assert old.dead_units == new.dead_units == half.dead_units == float(np.mean(np.all(x <= 0, axis=0)))
    assert old.mean == pytest.approx(new.mean, rel=1e-5) and old.std == pytest.approx(new.std, rel=1e-5)
    assert half.mean == pytest.approx(x.astype(np.float16).astype(np.float64).mean(), rel=1e-3)


def test_lint_probe_does_not_run_the_model_when_no_probe_rule_is_selected(cli, monkeypatch):
    import inspector.probe_run as command

    def refuse(*args, **kwargs):
        raise AssertionError("the model was run")

    monkeypatch.setattr(command, "run_probe", refuse)
    pair = mlp("dead_bias", activation="relu", bias=-10.0)
    code, out, err = cli("lint", "--probe", "--select", "ACT001,INIT", str(pair.keras))
    assert code == 0 and err == ""
    with pytest.raises(AssertionError, match="the model was run"):
        cli("lint", "--probe", "--select", "ACT004", "--debug", str(pair.keras))
