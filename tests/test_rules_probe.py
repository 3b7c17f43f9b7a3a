"""ACT003, ACT004 and NUM005: the rules on measured activations, through Keras and ONNX.

Every fixture is one network saved twice — ``.keras`` built by Keras and ``.onnx``
built with onnx.helper from the same weights — and probed on the same
standard-normal batch; what each rule must conclude follows from the weights
(the numpy oracle in ``helpers.probe`` recomputes the pre-activations).
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.lint import hits
from helpers.probe import HIDDEN, batch_file, lint_probe, mlp, pre_activation

FORMATS = ("keras", "onnx")

COVERED = {
    "ACT003": ["test_act003_fires_on_large_sigmoid_weights", "test_act003_silent_on_well_scaled_sigmoid",
               "test_act003_near_miss_partial_saturation", "test_act003_ignores_a_saturated_output",
               "test_act003_threshold_is_configurable"],
    "ACT004": ["test_act004_fires_on_large_negative_biases", "test_act004_silent_on_he_initialization",
               "test_act004_half_dead_fires_just_under_half_does_not", "test_act004_needs_enough_samples",
               "test_act004_leaves_constant_layers_to_the_init_rules"],
    "NUM005": ["test_num005_fires_where_values_overflow", "test_num005_silent_on_finite_activations",
               "test_num005_reports_the_origin_once"],
}


def _file(pair, fmt):
    return pair.keras if fmt == "keras" else pair.onnx


def _x() -> np.ndarray:
    return np.load(batch_file())


# -- ACT003 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softsign"])
def test_act003_fires_on_large_sigmoid_weights(fmt, activation):
    # N(0, 4^2) weights on 64 standard-normal features: pre-activations with std ~32,
    # far beyond every saturation limit (5.99 / 2.99 / 9) for most values.
    pair = mlp(f"sat_{activation}", activation=activation, kernel_std=4.0)
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    found = hits(findings, "ACT003")
    layer = "hidden" if fmt == "keras" else f"{activation}_0"
    assert [f.layer for f in found] == [layer]
    assert found[0].severity.value == "warning"
    # the oracle: the share of units saturated for most samples
    limit = {"sigmoid": 5.986, "tanh": 2.993, "softsign": 9.0}[activation]
    pre = pre_activation(pair, _x())
    expected = float(np.mean(np.mean(np.abs(pre) > limit, axis=0) > 0.5))
    assert expected > 0.5
    assert report.layer(layer).saturated_units == pytest.approx(expected)
    assert f"{round(expected * HIDDEN)} of {HIDDEN} units" in found[0].message


@pytest.mark.parametrize("fmt", FORMATS)
def test_act003_silent_on_well_scaled_sigmoid(fmt):
    pair = mlp("sat_glorot", activation="sigmoid")  # Glorot: pre-activation std ~0.9
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    assert hits(findings, "ACT003") == []
    stats = report.layers[0]
    assert stats.saturated_units == 0.0
    assert stats.saturated == pytest.approx(float(np.mean(np.abs(pre_activation(pair, _x())) > 5.986)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_act003_near_miss_partial_saturation(fmt):
    # std ~6: about a third of the values are saturated, but few units for most samples
    pair = mlp("sat_partial", activation="sigmoid", kernel_std=0.75)
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    stats = report.layers[0]
    assert 0.15 < stats.saturated < 0.5
    assert stats.saturated_units < 0.5
    assert hits(findings, "ACT003") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_act003_ignores_a_saturated_output(fmt, tmp_path):
    # A saturated *output* sigmoid is a confident prediction, not a vanishing gradient.
    import keras

    from helpers.onnx_models import save_onnx
    from helpers.probe import dense_onnx

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,), name="features"),
                              keras.layers.Dense(8, activation="sigmoid", name="out",
                                                 kernel_initializer=keras.initializers.RandomNormal(stddev=4.0))])
    if fmt == "keras":
        path = tmp_path / "out.keras"
        model.save(path)
    else:
        w, b = model.layers[0].get_weights()
        path = save_onnx(dense_onnx([(w, b, "sigmoid")]), tmp_path / "out.onnx")
    findings, report = lint_probe(path, inputs=batch_file())
    assert report.layers[0].saturated_units > 0.5  # measured ...
    assert hits(findings, "ACT003") == []  # ... but not a finding


def test_act003_threshold_is_configurable():
    from inspector.config import from_table

    pair = mlp("sat_sigmoid", activation="sigmoid", kernel_std=4.0)
    strict = from_table({"rules": {"ACT003": {"max-saturated-units": 1.0}}})
    findings, _ = lint_probe(pair.keras, inputs=batch_file(), config=strict)
    assert hits(findings, "ACT003") == []


# -- ACT004 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_act004_fires_on_large_negative_biases(fmt):
    pair = mlp("dead_bias", activation="relu", bias=-10.0)
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    found = hits(findings, "ACT004")
    layer = "hidden" if fmt == "keras" else "relu_0"
    assert [f.layer for f in found] == [layer]
    pre = pre_activation(pair, _x())
    expected = float(np.mean(np.all(pre <= 0, axis=0)))
    assert expected == 1.0
    assert report.layer(layer).dead_units == expected
    assert f"{HIDDEN} of {HIDDEN} units (100%)" in found[0].message


@pytest.mark.parametrize("fmt", FORMATS)
def test_act004_silent_on_he_initialization(fmt):
    pair = mlp("dead_he", activation="relu", initializer="he_normal")
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    assert hits(findings, "ACT004") == []
    pre = pre_activation(pair, _x())
    assert report.layers[0].dead_units == float(np.mean(np.all(pre <= 0, axis=0))) < 0.05


@pytest.mark.parametrize("fmt", FORMATS)
def test_act004_half_dead_fires_just_under_half_does_not(fmt):
    # Units with bias -10 never fire; the others (bias 0, Glorot kernel) do.
    half = np.where(np.arange(HIDDEN) < HIDDEN // 2, -10.0, 0.0).astype(np.float32)
    under = np.where(np.arange(HIDDEN) < HIDDEN // 2 - 2, -10.0, 0.0).astype(np.float32)
    fire = mlp("dead_half", activation="relu", bias=half)
    miss = mlp("dead_under", activation="relu", bias=under)
    f_fire, r_fire = lint_probe(_file(fire, fmt), inputs=batch_file())
    f_miss, r_miss = lint_probe(_file(miss, fmt), inputs=batch_file())
    assert r_fire.layers[0].dead_units == 0.5
    assert r_miss.layers[0].dead_units == (HIDDEN // 2 - 2) / HIDDEN
    assert len(hits(f_fire, "ACT004")) == 1
    assert hits(f_miss, "ACT004") == []


def test_act004_needs_enough_samples():
    # One sample per unit: a healthy unit misses half the time, so no verdict.
    pair = mlp("dead_half", activation="relu",
               bias=np.where(np.arange(HIDDEN) < HIDDEN // 2, -10.0, 0.0).astype(np.float32))
    findings, report = lint_probe(pair.keras, batch_size=2)
    assert report.samples == 2 and report.layers[0].dead_units >= 0.5
    assert hits(findings, "ACT004") == []


def test_act004_leaves_constant_layers_to_the_init_rules():
    # A zero kernel and zero bias: every pre-activation is exactly 0, so every unit is
    # "dead" -- but the problem is the symmetric initialization, which INIT002 reports.
    pair = mlp("zero_kernel", activation="relu", kernel_scale=0.0)
    findings, report = lint_probe(pair.keras, select=("ACT004", "INIT002"), inputs=batch_file())
    assert report.layers[0].dead_units == 1.0 and report.layers[0].std == 0
    assert [f.code for f in findings] == ["INIT002"]


# -- NUM005 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_num005_fires_where_values_overflow(fmt, tmp_path):
    # A constant kernel of 1e38: a sample with one feature of 10 overflows float32
    # (1e39 > 3.4e38) in every unit; samples of small features (|x| < 0.05) stay finite.
    x = (np.random.default_rng(3).standard_normal((64, 64)) * 0.01).clip(-0.05, 0.05).astype(np.float32)
    x[:16, 0] = 10.0
    np.save(tmp_path / "x.npy", x)
    pair = mlp("overflow", activation="tanh", kernel_scale=1e38)
    findings, report = lint_probe(_file(pair, fmt), inputs=tmp_path / "x.npy")
    layer = "hidden" if fmt == "keras" else "tanh_0"
    found = hits(findings, "NUM005")
    assert [f.layer for f in found] == [layer]
    assert found[0].severity.value == "error"
    stats = report.layer(layer)
    assert stats.nonfinite == 16 * HIDDEN
    assert f"{16 * HIDDEN:,} of {64 * HIDDEN:,}" in found[0].message
    expected = x[16:].astype(np.float64).sum(axis=1) * 1e38  # the finite ones: every unit equal
    assert stats.mean == pytest.approx(expected.mean(), rel=1e-4)
    assert stats.std == pytest.approx(expected.std(), rel=1e-3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_num005_silent_on_finite_activations(fmt):
    pair = mlp("finite_big", activation="tanh", kernel_scale=1e30)  # huge but finite: 1e30 * |sum(x)| < 3.4e38
    findings, report = lint_probe(_file(pair, fmt), inputs=batch_file())
    assert report.layers[0].nonfinite == 0
    assert hits(findings, "NUM005") == []


def test_num005_reports_the_origin_once(tmp_path):
    # NaN born in the first tanh flows through two more activations: one finding, at the first.
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((64,), name="features")
    x = keras.layers.Dense(16, name="blowup")(inp)
    x = keras.layers.Activation("tanh", name="first")(x)
    x = keras.layers.Dense(16, name="d2")(x)
    x = keras.layers.Activation("relu", name="second")(x)
    x = keras.layers.Dense(16, name="d3")(x)
    out = keras.layers.Activation("sigmoid", name="third")(x)
    model = keras.Model(inp, out)
    w, b = model.get_layer("blowup").get_weights()
    w[:] = np.nan
    model.get_layer("blowup").set_weights([w, b])
    path = tmp_path / "nan.keras"
    model.save(path)
    findings, report = lint_probe(path, inputs=batch_file())
    assert [s.nonfinite > 0 for s in report.layers] == [True, True, True]
    found = hits(findings, "NUM005")
    assert [f.layer for f in found] == ["first"]
    assert "2 later activation(s)" in found[0].message
