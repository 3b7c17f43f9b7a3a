"""``inspector diff``: a model against a modified copy (built with Keras here, so
Keras says what changed), renamed layers, a .keras against its own ONNX export,
the output formats and the ``--fail-on-change`` exit codes."""

from __future__ import annotations

import json
import os

import pytest

from inspector import load
from inspector.analysis.diff import diff_models

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(*, variant: str = "base", prefix: str = ""):
    """The base CNN, or a variant: ``changed`` widens ``conv_b`` (16 → 24 filters),
    removes ``pool``, adds ``drop`` after ``hidden`` and gives ``hidden`` an
    all-zero kernel initializer."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    changed = variant == "changed"
    inp = keras.Input((16, 16, 3), name=prefix + "image")
    x = layers.Conv2D(8, 3, name=prefix + "conv_a")(inp)
    x = layers.BatchNormalization(name=prefix + "bn_a")(x)
    x = layers.ReLU(name=prefix + "relu_a")(x)
    x = layers.Conv2D(24 if changed else 16, 3, name=prefix + "conv_b")(x)
    if not changed:
        x = layers.MaxPooling2D(name=prefix + "pool")(x)
    x = layers.Flatten(name=prefix + "flat")(x)
    x = layers.Dense(32, activation="relu", name=prefix + "hidden",
                     kernel_initializer="zeros" if changed else "glorot_uniform")(x)
    if changed:
        x = layers.Dropout(0.3, name=prefix + "drop")(x)
    out = layers.Dense(10, activation="softmax", name=prefix + "head")(x)
    return keras.Model(inp, out, name="cnn")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diff")
    out = {}
    for key, kwargs in {"base": {}, "changed": {"variant": "changed"}, "renamed": {"prefix": "v2_"}}.items():
        model = build(**kwargs)
        path = folder / f"{key}.keras"
        model.save(path)
        out[key] = (path, model)
    return out


def keras_layer_facts(model) -> dict[str, tuple[int, tuple]]:
    return {layer.name: (layer.count_params(), tuple(layer.output.shape)) for layer in model.layers}


def test_modified_copy(models):
    (pa, ma), (pb, mb) = models["base"], models["changed"]
    d = diff_models(load(pa), load(pb))
    fa, fb = keras_layer_facts(ma), keras_layer_facts(mb)
    assert {f.name for f in d.removed} == set(fa) - set(fb) == {"pool"}
    assert {f.name for f in d.added} == set(fb) - set(fa) == {"drop"}
    # Keras says which common layers changed parameters or output shape.
    expected = {n for n in set(fa) & set(fb) if fa[n] != fb[n]}
    changed = {p.a.name for p in d.changed if any(c.what in ("params", "shape") for c in p.changes)}
    assert changed == expected and expected >= {"conv_b", "hidden"}
    conv_b = next(p for p in d.changed if p.a.name == "conv_b")
    assert any(c.what == "config" and c.before.startswith("filters: 16") and c.after.endswith("24")
               for c in conv_b.changes)
    hidden = next(p for p in d.changed if p.a.name == "hidden")
    assert any(c.what == "config" and "kernel_initializer" in c.before for c in hidden.changes)
    params = d.total("params")
    assert (params.before, params.after) == (ma.count_params(), mb.count_params())
    assert set(d.kinds_changed()) >= {"params", "shapes", "layers", "macs"}


def test_findings_new_and_fixed(models, cli):
    (pa, _), (pb, _) = models["base"], models["changed"]
    code, out, _ = cli("diff", str(pa), str(pb), "--format", "json", "--isolated")
    doc = json.loads(out)
    new = {(f["code"], f["layer"]) for f in doc["findings"]["new"]}
    assert ("INIT002", "hidden") in new  # the all-zero kernel
    code, out, _ = cli("diff", str(pb), str(pa), "--format", "json", "--isolated")
    fixed = {(f["code"], f["layer"]) for f in json.loads(out)["findings"]["fixed"]}
    assert ("INIT002", "hidden") in fixed


def test_fail_on_change_exit_codes(models, cli):
    (pa, _), (pb, _) = models["base"], models["changed"]
    assert cli("diff", str(pa), str(pb), "--isolated").code == 0  # no gate: report only
    for kind in ("params", "shapes", "layers", "findings", "any"):
        assert cli("diff", str(pa), str(pb), "--fail-on-change", kind, "--isolated").code == 1, kind
    assert cli("diff", str(pa), str(pa), "--fail-on-change", "any", "--isolated").code == 0
    # Fixing findings is not a findings change; new ones below --fail-on do not count.
    assert cli("diff", str(pb), str(pa), "--fail-on-change", "findings", "--isolated").code == 0
    code, _, err = cli("diff", str(pa), str(pb), "--fail-on-change", "weights")
    assert code == 2 and "unknown --fail-on-change kind" in err


def test_renamed_layers_match_by_alignment(models, cli):
    (pa, _), (pr, _) = models["base"], models["renamed"]
    d = diff_models(load(pa), load(pr))
    assert not d.added and not d.removed and not d.changed
    assert {p.how for p in d.pairs} == {"alignment"}
    assert {(p.a.name, p.b.name) for p in d.pairs if p.a.name != "image"} >= {("conv_b", "v2_conv_b"),
                                                                              ("head", "v2_head")}
    assert cli("diff", str(pa), str(pr), "--fail-on-change", "params,shapes,layers,macs", "--isolated").code == 0


def test_same_model_keras_and_h5(models, tmp_path):
    """The same Keras model in both Keras file formats: nothing changes."""
    import warnings

    path, model = models["base"]
    h5 = tmp_path / "base.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(h5)
    d = diff_models(load(path), load(h5))
    assert not d.cross_format and not d.added and not d.removed
    assert not [p for p in d.changed if any(c.what != "config" for c in p.changes)]
    assert d.kinds_changed() == ()


def test_keras_against_its_onnx_export(models, tmp_path):
    tf2onnx = pytest.importorskip("tf2onnx", reason="tf2onnx is part of the test extra")
    import tensorflow as tf

    _, model = models["base"]
    onnx_path = tmp_path / "base.onnx"
    spec = (tf.TensorSpec((None, 16, 16, 3), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(onnx_path))
    keras_path = models["base"][0]
    d = diff_models(load(keras_path), load(onnx_path))
    assert d.cross_format
    assert not d.added and not d.removed
    # Every weighted Keras layer found its ONNX node (the BatchNormalization folds into conv_a).
    weighted = {layer.name for layer in model.layers if layer.count_params()}
    paired = {p.a.name for p in d.pairs} | {n for p in d.pairs for n in p.folded}
    assert weighted <= paired
    assert "bn_a" in next(p for p in d.pairs if p.a.name == "conv_a").folded
    assert not {"params", "shapes"} & set(d.kinds_changed())
    macs = d.total("macs")
    assert macs.before == macs.after


def test_text_and_markdown_output(models, cli, tmp_path):
    (pa, _), (pb, _) = models["base"], models["changed"]
    code, out, _ = cli("diff", str(pa), str(pb), "--isolated")
    assert "  + drop (Dropout)" in out and "  - pool (MaxPooling2D)" in out and "~ conv_b" in out
    assert "Changed: params, shapes, layers, macs, findings" in out
    target = tmp_path / "diff.md"
    assert cli("diff", str(pa), str(pb), "--format", "markdown", "-o", str(target), "--isolated").code == 0
    md = target.read_text()
    assert md.startswith("## Model diff:") and "| Params |" in md and "`drop`" in md and "`INIT002`" in md


def test_unreadable_model_exit_2(models, tmp_path, cli):
    (pa, _) = models["base"]
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    code, _, err = cli("diff", str(pa), str(bad))
    assert code == 2 and "bad.keras" in err
