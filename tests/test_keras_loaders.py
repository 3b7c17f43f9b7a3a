"""The static Keras loaders (.keras, legacy .h5, SavedModel) against Keras itself.

Every model here is built with Keras at test time (``keras_models``), saved, and
read back by inspector without Keras; the oracle is the live Keras model: per
layer its name, class, output shapes per call and ``count_params()``, and the
model's total / trainable / non-trainable counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import inspector
from helpers import keras_models as km
from inspector.analysis.params import count_params
from inspector.errors import LimitExceeded, ModelLoadError
from inspector.limits import DEFAULTS
from inspector.loaders import h5index

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def assert_matches_keras(graph, facts):
    got = km.graph_facts(graph)
    assert [lay.name for lay in got.layers] == [lay.name for lay in facts.layers]
    for mine, theirs in zip(got.layers, facts.layers, strict=True):
        assert mine == theirs, f"layer {theirs.name}"
    assert (got.total, got.trainable, got.non_trainable) == (facts.total, facts.trainable, facts.non_trainable)


# -- keras.applications ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt", km.FORMATS)
@pytest.mark.parametrize("name", km.APPLICATIONS)
def test_application_matches_keras(name, fmt):
    graph = inspector.load(km.saved_app(name, fmt))
    assert graph.format == ("keras" if fmt == "keras" else "keras-h5")
    assert graph.kind == "functional"
    assert_matches_keras(graph, km.keras_facts(km.app_model(name)))
    assert graph.security == []
    assert graph.metadata["keras_version"] == __import__("keras").__version__


@pytest.mark.slow
@pytest.mark.parametrize("fmt", km.FORMATS)
def test_weights_are_read_lazily_and_exactly(fmt):
    model = km.app_model("ResNet50")
    graph = inspector.load(km.saved_app("ResNet50", fmt))
    for layer_name in ("conv1_conv", "conv1_bn", "conv5_block3_3_bn", "predictions"):
        keras_layer = model.get_layer(layer_name)
        expected = {w.path.rsplit("/", 1)[-1]: w.numpy() for w in keras_layer.weights}
        mine = {w.role: w for w in graph.layer(layer_name).weights}
        assert set(mine) == set(expected)
        for role, weight in mine.items():
            assert weight.shape == expected[role].shape and weight.dtype == str(expected[role].dtype)
            np.testing.assert_array_equal(weight.read(), expected[role])


@pytest.mark.slow
def test_summary_reads_no_tensor_bytes(monkeypatch):
    """Loading a .keras file reads HDF5 metadata only: a sliver of the weights member."""
    path = km.saved_app("ResNet50", "keras")
    read = []
    original = h5index.ZipMemberFile.readinto

    def counting(self, buf):
        n = original(self, buf)
        read.append(n)
        return n

    monkeypatch.setattr(h5index.ZipMemberFile, "readinto", counting)
    graph = inspector.load(path)
    count_params(graph)
    member = zipfile.ZipFile(path).getinfo("model.weights.h5").file_size
    assert sum(read) < member / 50, f"read {sum(read):,} of {member:,} bytes"


# -- small models: nesting, sharing, training state, layer kinds -------------------------

@pytest.mark.parametrize("fmt", km.FORMATS)
@pytest.mark.parametrize("key", sorted(km.BUILDERS))
def test_small_model_matches_keras(key, fmt):
    graph = inspector.load(km.saved_model(key, fmt))
    assert_matches_keras(graph, km.keras_facts(km.keras_model(key)))


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_frozen_nested_submodel(fmt):
    graph = inspector.load(km.saved_model("nested_frozen", fmt))
    row = graph.layer("frozen_block")
    sub = row.subgraph
    assert sub is not None and sub.kind == "sequential"
    assert [lay.name for lay in sub.layers[1:]] == ["inner_dense", "inner_bn", "inner_out"]
    frozen = list(row.iter_weights())
    assert frozen and not any(w.trainable for w in frozen)
    bn_roles = {w.role for w in sub.layer("inner_bn").weights}
    assert bn_roles == {"gamma", "beta", "moving_mean", "moving_variance"}
    assert all(w.trainable for w in graph.layer("head").weights)
    inner = km.keras_model("nested_frozen").get_layer("frozen_block")
    report = count_params(graph)
    assert report.layer("frozen_block").params == inner.count_params()
    assert report.layer("frozen_block").trainable == 0


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_layer_shared_twice(fmt):
    graph = inspector.load(km.saved_model("shared_twice", fmt))
    dense = graph.layer("shared_dense")
    assert [[str(r) for r in node] for node in dense.inbound] == [["left[0][0]"], ["right[0][0]"]]
    assert graph.layer("concat").inbound == [[
        inspector.Inbound("shared_dense", 0, 0), inspector.Inbound("shared_dense", 1, 0)]]
    conv = graph.layer("shared_conv")
    assert conv.node_shapes == [[(None, 6, 6, 4)], [(None, 14, 14, 4)]] and conv.has_multiple_shapes
    keys = [w.key for w in dense.weights]
    assert len(keys) == len(set(keys)) == 2  # one kernel and one bias, whatever the calls


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_optimizer_state_is_reported_apart(fmt):
    model = km.keras_model("compiled_fitted")
    graph = inspector.load(km.saved_model("compiled_fitted", fmt))
    report = count_params(graph)
    assert report.totals.params == model.count_params()
    optimizer_size = sum(int(np.prod(v.shape)) for v in model.optimizer.variables)
    assert report.optimizer.params == optimizer_size > 0
    assert all(not w.trainable and w.role == "optimizer_state" for w in graph.optimizer_weights)
    compile_config = graph.metadata["compile_config"]
    assert compile_config["loss"] == "mse"
    assert "adam" in json.dumps(compile_config["optimizer"]).lower()


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_weight_roles_of_many_layer_kinds(fmt):
    graph = inspector.load(km.saved_model("layer_zoo", fmt))
    model = km.keras_model("layer_zoo")

    def roles(name):
        return sorted(w.role for w in graph.layer(name).iter_weights())

    def keras_roles(name):
        return sorted(w.path.rsplit("/", 1)[-1] for w in model.get_layer(name).weights)

    for name in ("norm", "sep", "dw", "deconv", "ln", "prelu", "bn_nocenter", "td", "mha", "srnn", "bilstm",
                 "gru", "out"):
        assert roles(name) == keras_roles(name), name
    trainable = {w.role: w.trainable for w in graph.layer("bn_nocenter").weights}
    assert trainable == {"gamma": True, "moving_mean": False, "moving_variance": False}
    assert not any(w.trainable for w in graph.layer("norm").weights)
    assert sorted(w.name for w in graph.layer("mha").weights) == sorted(
        w.path.split("/", 1)[1] for w in model.get_layer("mha").weights)


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_lambda_is_recorded_and_never_run(fmt, tmp_path):
    import keras
    from keras import layers

    marker = tmp_path / "lambda-ran"
    fn = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t * 2.0)[1]")  # our test code, not a model's
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(2, name="d")(layers.Lambda(fn, name="touch")(x)))
    path = tmp_path / f"lambda{km.SUFFIX[fmt]}"
    model.save(path)
    marker.unlink()  # building the model ran the lambda once; loading must not
    graph = inspector.load(path)
    assert not marker.exists()
    facts = [f for f in graph.security if f.code == "SEC001"]
    assert [f.layer for f in facts] == ["touch"]
    assert graph.layer("touch").output_shapes == [(None, 4)]  # recorded by its consumer
    assert_matches_keras(graph, km.keras_facts(model))


@pytest.mark.parametrize("fmt", km.FORMATS)
def test_custom_layer_is_a_security_fact(fmt, tmp_path):
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="ThirdParty")
    class Scale(layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), name="w")

        def call(self, x):
            return x * self.w

    x = keras.Input((3,), name="x")
    model = keras.Model(x, Scale(name="scale")(x))
    path = tmp_path / f"custom{km.SUFFIX[fmt]}"
    model.save(path)
    graph = inspector.load(path)
    assert [(f.code, f.layer) for f in graph.security] == [("SEC002", "scale")]
    assert "Scale" in graph.security[0].message
    assert graph.layer("scale").type == "Scale"
    assert count_params(graph).totals.params == model.count_params()


# -- Keras 2 (tf_keras) ---------------------------------------------------------------------

@pytest.mark.parametrize("fmt", km.FORMATS)
@pytest.mark.parametrize("key", sorted(km.KERAS2_BUILDERS))
def test_keras2_file_matches_tf_keras(key, fmt):
    graph = inspector.load(km.saved_keras2_model(key, fmt))
    assert graph.metadata["config_style"] == "keras2"
    assert graph.metadata["keras_version"].startswith("2.")
    assert_matches_keras(graph, km.keras_facts(km.keras2_model(key)))


def test_keras2_nested_model_node_indices_start_at_zero():
    graph = inspector.load(km.saved_keras2_model("keras2_mixed", "h5"))
    # Keras 2 calls the nested model's first use node 1; the graph numbers nodes from 0.
    assert [str(r) for r in graph.layer("k2_reshape").inbound[0]] == ["k2_inner[0][0]"]
    assert graph.layer("k2_inner").node_shapes == [[(None, 6)]]
    assert [str(r) for r in graph.layer("k2_mha").inbound[0]] == ["k2_reshape[0][0]", "k2_reshape[0][0]"]


def test_keras2_optimizer_weights():
    graph = inspector.load(km.saved_keras2_model("keras2_fitted", "h5"))
    model = km.keras2_model("keras2_fitted")
    assert count_params(graph).optimizer.params == sum(int(np.prod(v.shape)) for v in model.optimizer.variables())
    assert graph.metadata["compile_config"]["loss"] == "mse"


# -- SavedModel -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory):
    import tensorflow as tf

    out = tmp_path_factory.mktemp("savedmodels")
    k2 = km.keras2_model("keras2_mixed")
    k2.save(out / "keras2", save_format="tf")
    km.keras2_model("keras2_slash_names").save(out / "slash_names", save_format="tf")
    km.keras2_model("keras2_fitted").save(out / "fitted", save_format="tf")
    km.keras2_model("keras2_nested_slash_names").save(out / "nested_slash_names", save_format="tf")
    k3 = km.keras_model("nested_frozen")
    k3.export(out / "export", verbose=False)

    class Affine(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones((3, 2)), name="w")
            self.b = tf.Variable(tf.zeros((2,)), name="b", trainable=False)

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w) + self.b

    tf.saved_model.save(Affine(), str(out / "module"))
    return out


def test_savedmodel_with_keras_metadata_matches_tf_keras(savedmodels):
    graph = inspector.load(savedmodels / "keras2")
    assert graph.format == "savedmodel"
    assert_matches_keras(graph, km.keras_facts(km.keras2_model("keras2_mixed")))
    kernel = graph.layer("k2_out").weights[0]
    np.testing.assert_array_equal(kernel.read(), km.keras2_model("keras2_mixed").get_layer("k2_out").kernel.numpy())
    assert [f for f in graph.security if f.code == "SEC005"] == []


def test_savedmodel_layer_names_with_slashes(savedmodels):
    """tf_keras's DenseNet121 saved as a SavedModel lost 9,408 parameters: the variable
    ``conv1/conv/kernel:0`` matched no layer (``conv1/conv`` was looked up one part at a time)
    and ``conv1/bn/gamma:0`` went to the last layer, named ``bn``."""
    graph = inspector.load(savedmodels / "slash_names")
    assert_matches_keras(graph, km.keras_facts(km.keras2_model("keras2_slash_names")))
    assert [w.name for w in graph.layer("conv1/bn").weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert not graph.notes
    # a nested layer's variable, named without its model, is not the outer layer of the same last part
    nested = inspector.load(savedmodels / "nested_slash_names")
    assert_matches_keras(nested, km.keras_facts(km.keras2_model("keras2_nested_slash_names")))
    assert [w.name for w in nested.layer("bn").weights] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_savedmodel_of_a_compiled_model_has_no_security_facts(savedmodels):
    """A compiled tf_keras model's SavedModel lists its metrics (the ``Mean`` named ``loss``) in
    the Keras metadata beside the layers; they were scanned as layers, and every compiled model
    got SEC002 "class 'Mean', which is not part of Keras" (an error: lint exit 1)."""
    graph = inspector.load(savedmodels / "fitted")
    assert graph.security == []
    assert count_params(graph).totals.params == km.keras2_model("keras2_fitted").count_params()


def test_savedmodel_optimizer_step_counter_says_trained(savedmodels):
    """tf_keras's optimizer keeps its step counter as ``_iterations`` (``optimizer/_iterations`` in a
    SavedModel), which the model-state check did not know: a trained SavedModel whose
    BatchNormalization kept 0/1 statistics "looked untrained" and BN005 stayed silent."""
    from helpers.lint import hits, lint_path

    [state] = hits(lint_path(savedmodels / "fitted"), "MODEL001")
    assert state.message.startswith("model looks trained: the stored optimizer state has taken 1 step(s)")


def test_h5_layer_group_inside_another_layers_group():
    """tf_keras's MobileNetV3 in ``.h5``: the group of layer ``Conv/BatchNorm`` lies inside the
    group of layer ``Conv``, whose weights were every dataset below its group (the
    BatchNormalization's too: 32 parameters counted twice, non-trainable on a Conv2D)."""
    graph = inspector.load(km.saved_keras2_model("keras2_slash_names", "h5"))
    assert [w.name for w in graph.layer("conv1/conv").weights] == ["kernel", "bias"]
    assert [w.name for w in graph.layer("conv1/conv/BatchNorm").weights] == [
        "gamma", "beta", "moving_mean", "moving_variance"]


def test_savedmodel_export_and_module(savedmodels):
    model = km.keras_model("nested_frozen")
    graph = inspector.load(savedmodels / "export")
    report = count_params(graph)
    assert (report.totals.params, report.totals.trainable) == (
        model.count_params(), sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    assert graph.layers[0].type == "InputLayer" and graph.layers[0].output_shapes == [(None, 10)]

    graph = inspector.load(savedmodels / "module")
    report = count_params(graph)
    assert (report.totals.params, report.totals.trainable, report.totals.non_trainable) == (8, 6, 2)
    assert [f for f in graph.security if f.code == "SEC005"] == []


def test_savedmodel_py_function_is_sec005(tmp_path):
    import tensorflow as tf

    class Hook(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None,), tf.float32)])
        def __call__(self, x):
            return tf.py_function(lambda t: t, [x], tf.float32)

    tf.saved_model.save(Hook(), str(tmp_path / "hook"))
    graph = inspector.load(tmp_path / "hook")
    assert any(f.code == "SEC005" and "EagerPyFunc" in f.message for f in graph.security)


def test_savedmodel_without_tensorflow_names_the_extra(savedmodels):
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # as if the extra were not installed\n"
        "import inspector\n"
        "from inspector.errors import MissingDependency\n"
        "try:\n"
        "    inspector.load(sys.argv[1])\n"
        "except MissingDependency as exc:\n"
        "    print(exc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(inspector.__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code, str(savedmodels / "module")], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "pip install 'dl-inspector[tensorflow]'" in out


# -- broken and hostile files ----------------------------------------------------------------

def _zip(path: Path, members: dict[str, bytes | str], *, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def broken_files(tmp: Path) -> dict[str, Path]:
    good_keras = km.saved_model("embedding_seq", "keras").read_bytes()
    good_h5 = km.saved_model("embedding_seq", "h5").read_bytes()
    config = zipfile.ZipFile(km.saved_model("embedding_seq", "keras")).read("config.json")
    rng = np.random.default_rng(0)
    files = {
        "empty.keras": b"",
        "empty.h5": b"",
        "random.keras": rng.bytes(4096),
        "random.h5": rng.bytes(4096),
        "truncated.keras": good_keras[: len(good_keras) // 2],
        "truncated.h5": good_h5[: len(good_h5) // 2],
        "header_only.h5": good_h5[:1024],
    }
    out = {}
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        out[name] = tmp / name
    out["no_config.keras"] = _zip(tmp / "no_config.keras", {"metadata.json": "{}"})
    out["json_not_a_model.keras"] = _zip(tmp / "json_not_a_model.keras", {"config.json": '{"hello": [1, 2]}'})
    out["json_list.keras"] = _zip(tmp / "json_list.keras", {"config.json": "[1, 2, 3]"})
    out["bad_json.keras"] = _zip(tmp / "bad_json.keras", {"config.json": '{"class_name": '})
    out["not_utf8.keras"] = _zip(tmp / "not_utf8.keras", {"config.json": b"\xff\xfe\x00garbage"})
    out["layers_not_entries.keras"] = _zip(
        tmp / "layers_not_entries.keras", {"config.json": json.dumps({"class_name": "Functional",
                                                                       "config": {"layers": [1, 2]}})})
    out["garbage_weights.keras"] = _zip(tmp / "garbage_weights.keras",
                                        {"config.json": config, "model.weights.h5": rng.bytes(2048)})
    return out


BROKEN = ["empty.keras", "empty.h5", "random.keras", "random.h5", "truncated.keras", "truncated.h5",
          "header_only.h5", "no_config.keras", "json_not_a_model.keras", "json_list.keras", "bad_json.keras",
          "not_utf8.keras", "layers_not_entries.keras", "garbage_weights.keras"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return broken_files(tmp_path_factory.mktemp("broken"))


@pytest.mark.parametrize("name", BROKEN)
def test_broken_file_is_one_clear_error(broken, name):
    with pytest.raises(ModelLoadError) as err:
        inspector.load(broken[name])
    message = str(err.value)
    assert message and "\n" not in message and "Traceback" not in message
    assert len(message) < 300


def test_error_messages_say_what_is_wrong(broken):
    def msg(name):
        with pytest.raises(ModelLoadError) as err:
            inspector.load(broken[name])
        return str(err.value)

    assert "config.json" in msg("no_config.keras")
    assert "not a Keras model" in msg("json_not_a_model.keras")
    assert "not valid JSON" in msg("bad_json.keras")
    assert "truncated" in msg("truncated.h5")
    assert "model.weights.h5" in msg("garbage_weights.keras")


def test_weights_only_h5_is_explained(tmp_path):
    import keras

    model = km.keras_model("embedding_seq")
    model.save_weights(tmp_path / "w.weights.h5")
    k2 = km.keras2_model("keras2_seed_cnn")
    k2.save_weights(tmp_path / "k2_weights.h5")
    for path in (tmp_path / "w.weights.h5", tmp_path / "k2_weights.h5"):
        with pytest.raises(ModelLoadError, match="weights only, no model config"):
            inspector.load(path)
    assert keras  # the Keras 3 writer was used


def test_deeply_nested_json_is_a_limit_not_a_recursion_error(tmp_path):
    deep = _zip(tmp_path / "deep.keras", {"config.json": "[" * 200_000 + "]" * 200_000})
    with pytest.raises(LimitExceeded):
        inspector.load(deep)
    nested = '{"class_name": "Functional", "config": {"layers": [], "x": ' + "[" * 900 + "]" * 900 + "}}"
    with pytest.raises(LimitExceeded, match="nested"):
        inspector.load(_zip(tmp_path / "deep2.keras", {"config.json": nested}))


def test_zip_bomb_config_is_refused(tmp_path):
    bomb = _zip(tmp_path / "bomb.keras", {"config.json": b" " * (DEFAULTS.json_bytes + 1)},
                compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(LimitExceeded):
        inspector.load(bomb)


def test_hostile_config_references_do_not_crash(tmp_path):
    config = {"class_name": "Functional", "config": {
        "name": "odd",
        "layers": [
            {"class_name": "InputLayer", "name": "in", "config": {"batch_shape": [None, 3]}, "inbound_nodes": []},
            {"class_name": "Dense", "name": "d", "config": {"units": 2},
             "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                          "config": {"shape": [None, 3], "keras_history": ["in", 0, 10**9]}}]},
                               [["ghost", 10**9, 5, {}]]]},
        ],
        "input_layers": [["in", 0, 0]], "output_layers": [["d", 7, 0]]}}
    graph = inspector.load(_zip(tmp_path / "odd.keras", {"config.json": json.dumps(config)}))
    assert [lay.name for lay in graph.layers] == ["in", "d"]
    assert any("ghost" in note for note in graph.notes)


def test_recompressed_keras_archive_loads_and_reads(tmp_path):
    source = km.saved_model("nested_frozen", "keras")
    target = tmp_path / "deflated.keras"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    graph = inspector.load(target)
    assert_matches_keras(graph, km.keras_facts(km.keras_model("nested_frozen")))
    weight = graph.layer("head").weights[0]
    np.testing.assert_array_equal(weight.read(), km.keras_model("nested_frozen").get_layer("head").kernel.numpy())


def test_hdf5_links_are_recorded_not_followed(tmp_path):
    import h5py

    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(4)
    path = tmp_path / "linked.h5"
    shutil.copy(km.saved_model("embedding_seq", "h5"), path)
    with h5py.File(path, "a") as f:
        group = f["model_weights"]
        group["ext"] = h5py.ExternalLink(str(outside), "/secret")
        group["soft"] = h5py.SoftLink("/model_weights")
        layout = h5py.VirtualLayout(shape=(4,), dtype="i8")
        layout[:] = h5py.VirtualSource(str(outside), "secret", shape=(4,))
        group.create_virtual_dataset("virtual", layout)
    outside.unlink()  # following any of them would now fail loudly
    graph = inspector.load(path)
    sec004 = [f.message for f in graph.security if f.code == "SEC004"]
    assert len(sec004) == 3
    assert any("external link" in m for m in sec004) and any("virtual" in m for m in sec004)
    assert count_params(graph).totals.params == km.keras_model("embedding_seq").count_params()


def test_loading_imports_neither_tensorflow_nor_keras():
    paths = [str(km.saved_app("ResNet50", fmt)) for fmt in km.FORMATS]
    code = (
        "import sys, inspector\n"
        "from inspector.analysis.params import count_params\n"
        "for p in sys.argv[1:]:\n"
        "    count_params(inspector.load(p))\n"
        "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'networkx', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(inspector.__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", code, *paths], check=True, env=env)


def test_keras2_custom_layer_in_sequential_is_a_security_fact(tmp_path):
    k = km.tf_keras_module()

    class Twice(k.layers.Layer):
        def call(self, x):
            return x * 2.0

    model = k.Sequential([k.layers.Dense(3, input_shape=(4,), name="d"), Twice(name="twice")], name="k2_custom")
    model.save(tmp_path / "custom.h5")
    graph = inspector.load(tmp_path / "custom.h5")
    assert [(f.code, f.layer) for f in graph.security] == [("SEC002", "twice")]
    assert graph.layer("twice").type == "Twice"
    assert count_params(graph).totals.params == model.count_params()


def test_weights_without_name_attributes(tmp_path):
    """Keras files older than the ``vars`` name attribute (and tf_keras ones) are
    matched by replaying Keras's class-name counters."""
    import h5py

    for key in ("nested_functional", "layer_zoo", "with_ops"):
        source = km.saved_model(key, "keras")
        with zipfile.ZipFile(source) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        weights = tmp_path / f"{key}.weights.h5"
        weights.write_bytes(members["model.weights.h5"])
        with h5py.File(weights, "a") as f:
            groups = [f] + [obj for _, obj in _walk_groups(f)]
            stripped = sum(1 for g in groups if "name" in g.attrs)
            for g in groups:
                if "name" in g.attrs:
                    del g.attrs["name"]
        assert stripped > 3
        members["model.weights.h5"] = weights.read_bytes()
        target = _zip(tmp_path / f"{key}.keras", members)
        assert_matches_keras(inspector.load(target), km.keras_facts(km.keras_model(key)))


def _walk_groups(f):
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Group) else None)
    return found


def _triple(t):
    return t * 3.0


def test_function_references_in_keras3_configs(tmp_path):
    """Keras 3 writes any plain function as ``{"module": "builtins", "class_name":
    "function", "config": name}``: a Keras activation is harmless, a user function is
    custom code (SEC002), neither is bytecode (SEC001)."""
    import keras

    x = keras.Input((3,), name="x")
    harmless = keras.Model(x, keras.layers.Lambda(keras.activations.relu, name="relu_fn")(x))
    custom = keras.Model(x, keras.layers.Dense(2, activation=_triple, name="dense_custom_act")(x))
    harmless.save(tmp_path / "harmless.keras")
    custom.save(tmp_path / "custom.keras")
    assert inspector.load(tmp_path / "harmless.keras").security == []
    facts = inspector.load(tmp_path / "custom.keras").security
    assert [(f.code, f.layer) for f in facts] == [("SEC002", "dense_custom_act")]
    assert "_triple" in facts[0].message


def _entry(cls, name, inbound, *, module="keras.layers", **config):
    node = {"args": [{"class_name": "__keras_tensor__",
                      "config": {"shape": [None, 4], "keras_history": [inbound, 0, 0]}}], "kwargs": {}}
    return {"module": module, "class_name": cls, "registered_name": None, "name": name,
            "config": {"name": name, **config}, "inbound_nodes": [node]}


CRAFTED = {
    "torch": (_entry("TorchModuleWrapper", "wrapped", "x", module="keras.layers",
                     module_bytes="gASV..."), ("SEC001", "wrapped")),
    "tfsm": (_entry("TFSMLayer", "tfsm", "x", filepath="/elsewhere/model"), ("SEC001", "tfsm")),
    "gadget": (_entry("Dense", "fetch", "x", units=2,
                      activation={"module": "keras.utils", "class_name": "function", "config": "get_file",
                                  "registered_name": "function"}), ("SEC002", "fetch")),
    "module": (_entry("Evil", "evil", "x", module="os.path"), ("SEC002", "evil")),
    "vocabulary": (_entry("StringLookup", "lookup", "x", vocabulary="/etc/passwd"), ("SEC002", "lookup")),
    "lambda_anywhere": (_entry("Dense", "sneaky", "x", units=2,
                               kernel_initializer={"class_name": "Custom", "config": {
                                   "fn": "4wEAAAAA", "fn_function_type": "lambda"}}), ("SEC001", "sneaky")),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_configs_record_security_facts(case, tmp_path):
    layer, expected = CRAFTED[case]
    config = {"module": "keras.src.models.functional", "class_name": "Functional", "config": {
        "name": "crafted",
        "layers": [{"module": "keras.layers", "class_name": "InputLayer", "name": "x",
                    "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []}, layer],
        "input_layers": ["x", 0, 0], "output_layers": [layer["name"], 0, 0]}}
    graph = inspector.load(_zip(tmp_path / f"{case}.keras", {"config.json": json.dumps(config)}))
    assert [(f.code, f.layer) for f in graph.security] == [expected]
    assert [lay.name for lay in graph.layers] == ["x", layer["name"]]
