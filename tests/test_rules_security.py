"""SEC rules: code-carrying layers, references outside Keras, ONNX external data,
HDF5 links and bombs, SavedModel file-system ops.  Each rule fires on a crafted or
Keras-written file and stays silent on its near misses; the guarantees (nothing
runs, nothing outside the folder is opened, limits) are in ``test_security.py``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import hostile as H
from helpers.lint import hits, lint_path

COVERED = {
    "SEC001": ("test_sec001_code_carrying_layers", "test_sec001_keras_written_lambda",
               "test_sec001_near_misses"),
    "SEC002": ("test_sec002_references_outside_keras", "test_sec002_keras_written_custom_code",
               "test_sec002_near_misses"),
    "SEC003": ("test_sec003_external_data_outside_the_folder", "test_sec003_near_misses"),
    "SEC004": ("test_sec004_hdf5_references", "test_sec004_near_misses"),
    "SEC005": ("test_sec005_unsafe_ops", "test_sec005_tensorflow_written_read_file", "test_sec005_near_misses"),
    "SEC006": ("test_sec006_polyglot_files", "test_sec006_savedmodel_folder_with_keras_files",
               "test_sec006_near_misses"),
}

E = H.layer_entry


def _lint(path: Path, code: str):
    return hits(lint_path(path), code)


def _one(path: Path, code: str):
    found = _lint(path, code)
    assert len(found) == 1, [f.message for f in found]
    return found[0]


# -- SEC001 -------------------------------------------------------------------------------------

LAMBDA3 = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None, "closure": None}}

SEC001_CASES = {
    # name: (layers after the input, expected finding layer, words the message must contain)
    "keras3_lambda": ([E("Lambda", "lam", "x", function=LAMBDA3)], "lam", ["Lambda", "'lam'", "bytecode"]),
    "output_shape_lambda": ([E("Lambda", "lam", "x", function={"class_name": "function", "module": "builtins",
                                                               "config": "relu"},
                               output_shape=LAMBDA3)], "lam", ["'lam'", "bytecode"]),
    "lambda_in_initializer": ([E("Dense", "dense", "x", units=2, kernel_initializer={
        "class_name": "MyInit", "config": {"fn": "4wEAAAAA", "fn_type": "lambda"}})], "dense",
        ["'dense'", "fn_type"]),
    "torch": ([E("TorchModuleWrapper", "torch", "x", module="gASVAAAA")], "torch",
              ["TorchModuleWrapper", "pickled PyTorch"]),
    "tfsm": ([E("TFSMLayer", "tfsm", "x", filepath="/elsewhere/model")], "tfsm", ["TFSMLayer", "SavedModel"]),
    "wrapped_lambda": ([E("TimeDistributed", "td", "x", layer={
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "inner_lam", "function": LAMBDA3}})], "td", ["'inner_lam'", "inside 'td'"]),
}


def _check_case(tmp_path: Path, code: str, cases: dict, case: str) -> None:
    """The crafted model ``cases[case]`` gives one ``code`` error on its layer, saying its words."""
    layers, layer, words = cases[case]
    f = _one(H.keras_archive(tmp_path / f"{case}.keras", H.functional_config(*layers)), code)
    assert f.layer == layer and f.severity.value == "error"
    assert all(w in f.message for w in words), f.message


@pytest.mark.parametrize("case", sorted(SEC001_CASES))
def test_sec001_code_carrying_layers(case, tmp_path):
    _check_case(tmp_path, "SEC001", SEC001_CASES, case)


def test_sec001_nested_and_keras2(tmp_path):
    """Lambdas nested in sub-models are reported on their path; Keras 2 spells the
    bytecode as a list with ``function_type: lambda`` (legacy .h5)."""
    inner = H.functional_config(E("Lambda", "lam", "x", function=LAMBDA3), name="inner")
    inner.update(name="inner", inbound_nodes=[{"args": [H.tensor_ref("x")], "kwargs": {}}])
    outer = H.functional_config(inner, E("Dense", "d", "inner", units=2))
    f = _one(H.keras_archive(tmp_path / "nested.keras", outer), "SEC001")
    assert f.layer == "inner/lam"
    keras2 = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 4]}},
        {"class_name": "Lambda", "config": {"name": "k2_lambda", "function": ["4wEAAAAA", None, None],
                                            "function_type": "lambda", "output_shape": None,
                                            "output_shape_type": "raw", "arguments": {}}}]}}
    f = _one(H.keras2_h5(tmp_path / "keras2.h5", keras2), "SEC001")
    assert f.layer == "k2_lambda" and "bytecode" in f.message


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_sec001_keras_written_lambda(fmt, tmp_path):
    """The oracle: Keras itself writes these files."""
    import keras
    from keras import layers

    x = keras.Input((4,), name="x")
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Lambda(lambda t: t * 2.0, name="double")(inner_in), name="inner")
    model = keras.Model(x, layers.Dense(2, name="d")(inner(x)))
    path = tmp_path / f"m.{fmt}"
    model.save(path)
    f = _one(path, "SEC001")
    assert f.layer == "inner/double" and "'double'" in f.message


def test_sec001_near_misses(tmp_path):
    import keras
    from keras import layers

    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Lambda(keras.activations.relu, name="relu_fn")(x))  # a reference, not bytecode
    model.save(tmp_path / "ref.keras")
    assert _lint(tmp_path / "ref.keras", "SEC001") == []
    crafted = H.functional_config(
        E("Dense", "d", "x", units=2, activation="relu"),
        E("Lambda", "named", "d", function="relu", function_type="function", module="keras.activations"))
    assert _lint(H.keras_archive(tmp_path / "crafted.keras", crafted), "SEC001") == []
    assert _lint(H.SEED_KERAS, "SEC001") == [] and _lint(H.SEED_H5, "SEC001") == []


def test_sec001_one_finding_per_layer(tmp_path):
    """A Lambda whose function and output shape are both bytecode is one problem."""
    layer = E("Lambda", "lam", "x", function=LAMBDA3, output_shape=LAMBDA3, output_shape_type="lambda")
    assert len(_lint(H.keras_archive(tmp_path / "twice.keras", H.functional_config(layer)), "SEC001")) == 1


# -- SEC002 -------------------------------------------------------------------------------------

SEC002_CASES = {
    "module": ([E("Evil", "evil", "x", module="os.path")], "evil", ["'os.path'", "outside Keras"]),
    "gadget_function": ([E("Dense", "fetch", "x", units=2, activation={
        "module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"})],
        "fetch", ["get_file"]),
    "gadget_class": ([E("Dense", "unsafe", "x", units=2, kernel_initializer={
        "module": "keras.config", "class_name": "enable_unsafe_deserialization", "config": {}})],
        "unsafe", ["enable_unsafe_deserialization"]),
    "registered": ([E("Scale", "scale", "x", module="my_project.layers", registered_name="MyProject>Scale")],
                   "scale", ["my_project.layers"]),
    "user_function": ([E("Dense", "act", "x", units=2, activation={
        "module": "builtins", "class_name": "function", "config": "my_activation", "registered_name": "function"})],
        "act", ["my_activation"]),
    "vocabulary": ([E("StringLookup", "lookup", "x", vocabulary="/home/me/.ssh/id_rsa")], "lookup",
                   ["vocabulary", "/home/me/.ssh/id_rsa"]),
    "tokenizer": ([E("WordPieceTokenizer", "tok", "x", module="keras_hub.src.tokenizers",
                     vocabulary="../../etc/passwd")], "tok", ["vocabulary", "passwd"]),
    "tensorflow_module": ([E("Dense", "tfinit", "x", units=2, bias_initializer={
        "module": "tensorflow.python.ops.init_ops_v2", "class_name": "Evil", "config": {}})],
        "tfinit", ["tensorflow.python.ops.init_ops_v2", "'Evil'"]),
}


def _tfop(name: str, function: str) -> dict:
    return E("TFOpLambda", name, "x", module="keras.src.legacy", function=function)


def _function_ref(name: str, module: str, function: str) -> dict:
    return E("Dense", name, "x", units=2, activation={"module": module, "class_name": "function",
                                                       "config": function, "registered_name": "function"})


SEC002_CASES.update({  # issue 13: TensorFlow ops reaching out through TFOpLambda, Keras functions as gadgets
    **{f"tfop_{op.lower()}": ([_tfop("op", f"raw_ops.{op}")], "op", [f"raw_ops.{op}", "reaches outside"])
       for op in ("WriteFile", "ReadFile", "PyFunc", "EagerPyFunc", "MatchingFiles")},
    "tfop_saved_model_load": ([_tfop("op", "saved_model.load")], "op", ["saved_model.load"]),
    "tfop_summary_writer": ([_tfop("op", "summary.create_file_writer")], "op", ["create_file_writer"]),
    "plot_model": ([_function_ref("f", "keras.utils", "plot_model")], "f", ["plot_model"]),
    "load_data": ([_function_ref("f", "keras.datasets.mnist", "load_data")], "f", ["load_data"]),
    "dataset_from_directory": ([_function_ref("f", "keras.utils", "image_dataset_from_directory")], "f",
                               ["image_dataset_from_directory"]),
    "set_backend": ([_function_ref("f", "keras.config", "set_backend")], "f", ["set_backend"]),
})


@pytest.mark.parametrize("case", sorted(SEC002_CASES))
def test_sec002_references_outside_keras(case, tmp_path):
    _check_case(tmp_path, "SEC002", SEC002_CASES, case)


def test_sec002_model_level_and_keras2(tmp_path):
    """A custom loss in the compile config is a model finding; a Keras 2 config names
    a custom class without a module."""
    cfg = H.functional_config(E("Dense", "d", "x", units=2))
    cfg["compile_config"] = {"loss": {"module": "my_losses", "class_name": "function", "config": "focal",
                                      "registered_name": "function"}, "optimizer": "adam"}
    f = _one(H.keras_archive(tmp_path / "loss.keras", cfg), "SEC002")
    assert f.layer is None and "compile config" in f.message and "my_losses" in f.message
    keras2 = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 4]}},
        {"class_name": "Twice", "config": {"name": "twice"}}]}}
    f = _one(H.keras2_h5(tmp_path / "keras2.h5", keras2), "SEC002")
    assert f.layer == "twice" and "'Twice'" in f.message


def test_sec002_keras_written_custom_code(tmp_path):
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="ThirdParty")
    class Scale(layers.Layer):
        def call(self, x):
            return x * 2.0

    x = keras.Input((3,), name="x")
    keras.Model(x, Scale(name="scale")(x)).save(tmp_path / "custom.keras")
    f = _one(tmp_path / "custom.keras", "SEC002")
    assert f.layer == "scale" and "Scale" in f.message


def test_sec002_near_misses(tmp_path):
    import keras
    from keras import layers

    x = keras.Input((4,), name="x")
    y = layers.Dense(3, activation="gelu", name="d")(x)
    y = keras.ops.add(y, 1.0)  # an operation node, module keras.src.ops
    model = keras.Model(x, layers.Dense(2, name="out")(y))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.save(tmp_path / "plain.keras")
    assert _lint(tmp_path / "plain.keras", "SEC002") == []
    crafted = H.functional_config(
        E("StringLookup", "lookup", "x", vocabulary=["a", "b"]),
        E("Backbone", "hub", "lookup", module="keras_hub.src.models.backbone", registered_name="keras_hub>Backbone"))
    crafted["compile_config"] = {"optimizer": {"class_name": "Custom>Adam", "config": {"name": "Adam"}}}
    assert _lint(H.keras_archive(tmp_path / "crafted.keras", crafted), "SEC002") == []
    # TensorFlow ops that stay inside the computation; Keras functions that are activations
    near = H.functional_config(_tfop("mm", "raw_ops.MatMul"), _tfop("sum", "math.reduce_sum"),
                               _tfop("files", "raw_ops.WriteFileLike"),
                               _function_ref("act", "keras.activations", "relu"))
    assert _lint(H.keras_archive(tmp_path / "near.keras", near), "SEC002") == []
    # tf_keras's EfficientNetV2 head: bias_initializer=tf.constant_initializer(0), saved with TF's module
    tf_init = H.functional_config(E("Dense", "predictions", "x", units=2, bias_initializer={
        "module": "tensorflow.python.ops.init_ops_v2", "class_name": "Constant", "config": {"value": 0},
        "registered_name": None}))
    assert _lint(H.keras_archive(tmp_path / "tf_init.keras", tf_init), "SEC002") == []


# -- SEC003 -------------------------------------------------------------------------------------

@pytest.fixture
def onnx_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret").write_bytes(b"s" * 64)
    return folder


def test_sec003_external_data_outside_the_folder(onnx_folder):
    secret = onnx_folder.parent / "secret"
    os.symlink("../secret", onnx_folder / "link.bin")
    H.make_fifo(onnx_folder / "fifo.bin")
    (onnx_folder / "short.bin").write_bytes(b"\0" * 8)  # the tensor needs 32 bytes
    cases = {"../secret": "'..'", str(secret): "absolute", "link.bin": "symbolic link",
             "fifo.bin": "not a regular file", "short.bin": "overruns"}
    for i, (location, words) in enumerate(cases.items()):
        f = _one(H.onnx_with_external(onnx_folder / f"m{i}.onnx", location), "SEC003")
        assert f.layer == "matmul" and f.severity.value == "error"
        assert location in f.message and words in f.message, f.message


def test_sec003_near_misses(onnx_folder):
    (onnx_folder / "w.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    (onnx_folder / "sub").mkdir()
    (onnx_folder / "sub" / "w.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    for i, location in enumerate(["w.bin", "sub/w.bin", "./w.bin"]):
        assert _lint(H.onnx_with_external(onnx_folder / f"ok{i}.onnx", location), "SEC003") == []
    assert _lint(H.SEED_ONNX, "SEC003") == []


# -- SEC004 -------------------------------------------------------------------------------------

def test_sec004_hdf5_references(tmp_path):
    target = str(tmp_path / "elsewhere.h5")
    cases = {
        "external_link": (H.h5_with_external_link(tmp_path / "a.h5", target), "error", "external link"),
        "virtual": (H.h5_with_virtual_kernel(tmp_path / "b.h5", target), "error", "virtual dataset"),
        "external_storage": (H.h5_with_external_storage(tmp_path / "c.h5", target), "error", "external file"),
        "declared_size": (H.h5_with_huge_kernel(tmp_path / "d.h5"), "warning", "declares 4,398,046,511,104 bytes"),
        "soft_link": (H.h5_with_soft_link(tmp_path / "e.h5"), "warning", "soft link"),
        "group_cycle": (H.h5_with_group_cycle(tmp_path / "f.h5"), "warning", "second hard link"),
    }
    kernel_owner = H.seed_kernel().split("/")[1]
    for case, (path, severity, words) in cases.items():
        f = _one(path, "SEC004")
        assert f.severity.value == severity and words in f.message, (case, f)
        if case in ("external_link", "virtual", "external_storage", "declared_size"):
            assert f.layer == kernel_owner  # the layer whose weights the object replaces


def test_sec004_in_keras_archive(tmp_path):
    """The weights member of a .keras archive is checked the same way."""
    import h5py

    with zipfile.ZipFile(H.SEED_KERAS) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "a") as f:
        found: list[str] = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        first = sorted(found)[0]
        del f[first]
        f[first] = h5py.ExternalLink("/etc/passwd", "/x")
    members["model.weights.h5"] = weights.read_bytes()
    path = tmp_path / "linked.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    f = _one(path, "SEC004")
    assert f.layer is not None and "/etc/passwd" in f.message


def test_sec004_near_misses(tmp_path):
    import h5py

    assert _lint(H.SEED_H5, "SEC004") == [] and _lint(H.SEED_KERAS, "SEC004") == []
    path = H.copy_seed_h5(tmp_path / "ok.h5")
    with h5py.File(path, "a") as f:
        kernel = H.seed_kernel()
        f["model_weights/extra_alias"] = f[kernel]  # a dataset linked twice: shared storage, fine
        f.create_dataset("model_weights/zeros", data=np.zeros(1 << 20, np.float32), compression="gzip")
    assert _lint(path, "SEC004") == []


# -- SEC005 -------------------------------------------------------------------------------------

def test_sec005_unsafe_ops(tmp_path):
    cases = {
        "main_read_file": (dict(main=[("ReadFile", "read")]), "ReadFile"),
        "pyfunc_in_function": (dict(functions={"__inference_call_7": [("EagerPyFunc", "callback")]}), "EagerPyFunc"),
        "hidden_in_saver_name": (dict(functions={"__inference__traced_save_9": [("SaveV2", "save"),
                                                                                ("WriteFile", "plant")]}),
                                 "WriteFile"),
        "checkpoint_op_outside_saver": (dict(main=[("RestoreV2", "loader/RestoreV2")],
                                             restore_op="save/restore_all"), "RestoreV2"),
        "print_to_file": (dict(main=[("PrintV2", "p")], attrs={"p": {"output_stream": b"file:///tmp/x"}}),
                          "PrintV2"),
        "second_meta_graph": (dict(main=[("Identity", "i")], extra_meta_graphs=[[("MatchingFiles", "glob")]]),
                              "MatchingFiles"),
        # a function named like the saver but called by the serving signature is serving code
        "saver_named_serving": (dict(main=[("StatefulPartitionedCall", "serve")], calls={"serve": "__inference_sig_1"},
                                     signatures={"serving_default": "serve:0"},
                                     functions={"__inference_sig_1": [("PartitionedCall", "c")],
                                                "__inference__traced_save_2": [("SaveV2", "save")]},
                                     attrs={}), "SaveV2"),
        "merge_delete_old_dirs": (dict(main=[("StatefulPartitionedCall", "serve")], calls={
            "serve": "__inference__traced_save_3"}, signatures={"serving_default": "serve:0"},
            functions={"__inference__traced_save_3": [("MergeV2Checkpoints", "merge")]},
            attrs={"merge": {"delete_old_dirs": True}}), "delete_old_dirs"),
    }
    for case, (spec, op) in cases.items():
        if case == "saver_named_serving":  # the signature's function calls the saver-named one
            spec = dict(spec, calls={"serve": "__inference_sig_1", "c": "__inference__traced_save_2"})
        f = _one(H.savedmodel_proto(tmp_path / case, **spec), "SEC005")
        assert op in f.message and f.severity.value == "error", (case, f.message)
    assert "called by a signature" in f.message


def test_sec005_tensorflow_written_read_file(tmp_path):
    import tensorflow as tf

    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def __call__(self, path):
            return tf.strings.length(tf.io.read_file(path))

    tf.saved_model.save(Reader(), str(tmp_path / "reader"))
    f = _one(tmp_path / "reader", "SEC005")
    assert "ReadFile" in f.message


def test_sec005_near_misses(tmp_path):
    tf1_saver = H.savedmodel_proto(tmp_path / "tf1", main=[("SaveV2", "save/SaveV2"), ("RestoreV2", "save/RestoreV2"),
                                                          ("MatMul", "dense/MatMul")], restore_op="save/restore_all")
    tf2_saver = H.savedmodel_proto(tmp_path / "tf2", functions={
        "__inference__traced_save_5": [("SaveV2", "SaveV2"), ("MergeV2Checkpoints", "merge")],
        "__inference__traced_restore_6": [("RestoreV2", "RestoreV2")]})
    printing = H.savedmodel_proto(tmp_path / "print", main=[("PrintV2", "p")],
                                  attrs={"p": {"output_stream": b"stderr"}})
    # the real saver is called from the main graph, but not by a signature
    tf2_wired = H.savedmodel_proto(
        tmp_path / "tf2_wired", main=[("StatefulPartitionedCall", "serve"), ("StatefulPartitionedCall", "saver")],
        calls={"serve": "__inference_sig_1", "saver": "__inference__traced_save_2"},
        signatures={"serving_default": "serve:0"},
        functions={"__inference_sig_1": [("MatMul", "mm")], "__inference__traced_save_2": [
            ("SaveV2", "SaveV2"), ("MergeV2Checkpoints", "merge")]}, attrs={"merge": {"delete_old_dirs": True}})
    for path in (tf1_saver, tf2_saver, printing, tf2_wired):
        assert _lint(path, "SEC005") == [], path.name


# -- SEC006 -------------------------------------------------------------------------------------

KERAS2_LAMBDA = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 4]}},
    {"class_name": "Lambda", "config": {"name": "k2_lambda", "function": ["4wEAAAAA", None, None],
                                        "function_type": "lambda", "output_shape": None,
                                        "output_shape_type": "raw", "arguments": {}}}]}}
KERAS2_CLEAN = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 4]}}]}}
LAMBDA_CONFIG = H.functional_config(E("Lambda", "lam", "x", function=LAMBDA3))
CLEAN_CONFIG = H.functional_config(E("Dense", "d", "x", units=2))


@pytest.mark.parametrize("case", ["h5_then_zip", "zip_then_h5", "zip_then_big_h5", "onnx_holding_h5",
                                  "onnx_holding_h5_far"])
def test_sec006_polyglot_files(case, tmp_path):
    """Each part is scanned: the Lambda in the part inspector does not read first is
    reported (SEC001, naming the part), and the ambiguity itself (SEC006); probe refuses."""
    from inspector.api import load
    from inspector.errors import UnsafeModel
    from inspector.trust import require_trust

    path = {
        "h5_then_zip": lambda: H.h5_then_zip(tmp_path / "a.h5", H.SEED_H5, LAMBDA_CONFIG),
        # a zip in the user block: read as the zip (its first bytes), the HDF5 part holds the Lambda
        "zip_then_h5": lambda: H.zip_then_h5(tmp_path / "b.h5", KERAS2_LAMBDA, CLEAN_CONFIG),
        # past 64 KiB of HDF5 data no zip reader finds the archive: read as HDF5
        "zip_then_big_h5": lambda: H.zip_then_h5(tmp_path / "c.keras", KERAS2_CLEAN, LAMBDA_CONFIG, pad=200_000),
        # an ONNX initializer holding an HDF5 model where HDF5 finds it: read as HDF5 (first MiB) or ONNX
        "onnx_holding_h5": lambda: H.onnx_with_hdf5_inside(
            tmp_path / "d.onnx", H.keras2_h5(tmp_path / "l.h5", KERAS2_LAMBDA), offset=1024),
        "onnx_holding_h5_far": lambda: H.onnx_with_hdf5_inside(
            tmp_path / "e.onnx", H.keras2_h5(tmp_path / "l.h5", KERAS2_LAMBDA), offset=2 << 20),
    }[case]()
    f = _one(path, "SEC006")
    assert f.severity.value == "error" and f.layer is None, f
    other = "ONNX" if case.startswith("onnx") else "zip archive"
    assert "HDF5 file" in f.message and other in f.message and "both were scanned" in f.message
    [lam] = _lint(path, "SEC001")
    assert "bytecode" in lam.message and ("'lam'" in lam.message or "'k2_lambda'" in lam.message)
    with pytest.raises(UnsafeModel, match="SEC006"):
        require_trust(load(path), trust=False)


def test_sec006_savedmodel_folder_with_keras_files(tmp_path):
    import json

    with_config = H.savedmodel_proto(tmp_path / "config", main=[("Identity", "i")])
    (with_config / "config.json").write_text(json.dumps(LAMBDA_CONFIG))
    f = _one(with_config, "SEC006")
    assert "config.json" in f.message and f.severity.value == "error"
    [lam] = _lint(with_config, "SEC001")
    assert "'lam'" in lam.message and "config.json" in lam.message
    with_h5 = H.savedmodel_proto(tmp_path / "h5", main=[("Identity", "i")])
    H.keras2_h5(with_h5 / "model.weights.h5", KERAS2_LAMBDA)
    f = _one(with_h5, "SEC006")
    assert "model.weights.h5" in f.message
    assert len(_lint(with_h5, "SEC001")) == 1


def test_sec006_near_misses(tmp_path):
    """Keras-written files, an HDF5 file with data after it that is no archive, a zip
    member holding an HDF5 weights file, a SavedModel with weights only next to it."""
    assert _lint(H.SEED_KERAS, "SEC006") == [] and _lint(H.SEED_H5, "SEC006") == []
    trailing = tmp_path / "trailing.h5"
    trailing.write_bytes(H.SEED_H5.read_bytes() + b"PK\x05\x06" + bytes(18))  # an end record without directory
    assert _lint(trailing, "SEC006") == []
    weights_only = tmp_path / "w.h5"
    import h5py

    with h5py.File(weights_only, "w") as fh:
        fh["layers/dense/vars/0"] = np.zeros((4, 2), "float32")
    # a .keras whose weights member starts where HDF5 looks (byte 2048): still one model
    from inspector.loaders.containers import hdf5_offsets
    from inspector.loaders.h5index import stored_member_span

    def aligned(pad: int) -> Path:
        path = H.keras_archive(tmp_path / "aligned.keras", CLEAN_CONFIG,
                               extra={"assets/pad": b"." * pad, "model.weights.h5": weights_only.read_bytes()})
        with zipfile.ZipFile(path) as zf:
            return path if stored_member_span(path, zf.getinfo("model.weights.h5"))[0] == 2048 else aligned(
                pad + 2048 - stored_member_span(path, zf.getinfo("model.weights.h5"))[0])

    archive = aligned(0)
    assert hdf5_offsets(archive) == [2048]
    assert _lint(archive, "SEC006") == []
    folder = H.savedmodel_proto(tmp_path / "sm", main=[("Identity", "i")])
    (folder / "model.weights.h5").write_bytes(weights_only.read_bytes())
    assert _lint(folder, "SEC006") == []
    plain_zip_after = tmp_path / "zip_after.h5"
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as zf:
        zf.writestr("notes.txt", "no model here")
    plain_zip_after.write_bytes(H.SEED_H5.read_bytes() + (tmp_path / "data.zip").read_bytes())
    assert _lint(plain_zip_after, "SEC006") == []
