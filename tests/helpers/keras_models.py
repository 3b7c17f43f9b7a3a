"""Keras models for tests, built with Keras at test time and saved once per session.

Any test module may use this; nothing here runs at import time (Keras is imported
by the functions that need it).

    from helpers.keras_models import saved_app, saved_model, keras_model, keras_facts, graph_facts

    path = saved_app("ResNet50", "keras")      # keras.applications model, weights=None
    path = saved_model("shared_twice", "h5")   # one of the small models in BUILDERS
    facts = keras_facts(keras_model("shared_twice"))   # the oracle
    assert graph_facts(inspector.load(path)) == facts

Files live in one temporary folder for the whole session (deleted at exit); each
model is built once and saved once per format, however many tests ask.
``tf_keras`` (Keras 2) is part of the test extra: :func:`saved_keras2_model` fails
loudly when it is missing instead of skipping.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

APPLICATIONS = ("ResNet50", "MobileNetV2", "DenseNet121", "EfficientNetB0", "InceptionV3")
FORMATS = ("keras", "h5")
SUFFIX = {"keras": ".keras", "h5": ".h5"}

_DIR: Path | None = None
_MODELS: dict[str, Any] = {}
_FILES: dict[tuple[str, str], Path] = {}


def model_dir() -> Path:
    """The session's folder of saved models."""
    global _DIR
    if _DIR is None:
        _DIR = Path(tempfile.mkdtemp(prefix="inspector-test-models-"))
        atexit.register(shutil.rmtree, _DIR, True)
    return _DIR


def _save(model: Any, key: str, fmt: str) -> Path:
    import warnings

    path = model_dir() / f"{key}{SUFFIX[fmt]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is a legacy format"
        model.save(path)
    return path


def keras_file(key: str, build: Callable[[], Any], *, fmt: str = "keras") -> Path:
    """Save the model ``build()`` returns (random seed 0) as ``lint_<key>.keras`` (or ``.h5``), once."""
    if (f"lint:{key}", fmt) not in _FILES:
        import keras

        keras.utils.set_random_seed(0)
        _FILES[(f"lint:{key}", fmt)] = _save(build(), f"lint_{key}", fmt)
    return _FILES[(f"lint:{key}", fmt)]


# -- keras.applications ---------------------------------------------------------------------

def app_model(name: str) -> Any:
    """``keras.applications.<name>(weights=None)``, built once."""
    key = f"app:{name}"
    if key not in _MODELS:
        import keras

        _MODELS[key] = getattr(keras.applications, name)(weights=None)
    return _MODELS[key]


def saved_app(name: str, fmt: str) -> Path:
    """Path of ``keras.applications.<name>(weights=None)`` saved as ``fmt`` (``keras``/``h5``)."""
    if (name, fmt) not in _FILES:
        _FILES[(name, fmt)] = _save(app_model(name), name, fmt)
    return _FILES[(name, fmt)]


# -- small models ------------------------------------------------------------------------

def _nested_frozen() -> Any:
    """A functional model calling a frozen Sequential (with BatchNormalization)."""
    import keras
    from keras import layers

    inner = keras.Sequential(
        [keras.Input((12,)), layers.Dense(8, name="inner_dense"), layers.BatchNormalization(name="inner_bn"),
         layers.Dense(4, name="inner_out")], name="frozen_block")
    inner.trainable = False
    x = keras.Input((10,), name="features")
    h = layers.Dense(12, activation="relu", name="pre")(x)
    h = inner(h)
    y = layers.Dense(3, name="head")(h)
    return keras.Model(x, y, name="with_frozen_submodel")


def _nested_functional() -> Any:
    """Functional inside functional inside functional, one inner level frozen."""
    import keras
    from keras import layers

    a_in = keras.Input((6,), name="a_in")
    a = keras.Model(a_in, layers.Dense(5, name="a_dense")(a_in), name="level_a")
    b_in = keras.Input((6,), name="b_in")
    b_h = a(b_in)
    b_h = layers.BatchNormalization(name="b_bn")(b_h)
    b = keras.Model(b_in, layers.Dense(4, name="b_dense")(b_h), name="level_b")
    b.get_layer("level_a").trainable = False
    x = keras.Input((6,), name="x")
    return keras.Model(x, layers.Dense(2, name="top")(b(x)), name="three_levels")


def _shared_twice() -> Any:
    """One Dense layer called on two different inputs (two nodes, one set of weights),
    and a Conv2D called on two image sizes (different shapes per node)."""
    import keras
    from keras import layers

    left = keras.Input((16,), name="left")
    right = keras.Input((16,), name="right")
    shared = layers.Dense(16, activation="relu", name="shared_dense")
    merged = layers.Concatenate(name="concat")([shared(left), shared(right)])
    small = keras.Input((8, 8, 3), name="small_img")
    big = keras.Input((16, 16, 3), name="big_img")
    conv = layers.Conv2D(4, 3, name="shared_conv")
    pooled = [layers.GlobalAveragePooling2D(name=f"gap_{i}")(conv(t)) for i, t in enumerate((small, big))]
    out = layers.Concatenate(name="all")([merged, *pooled])
    return keras.Model([left, right, small, big], layers.Dense(1, name="score")(out), name="shared_twice")


def _layer_in_two_submodels() -> Any:
    """One Dense layer inside two nested models: saved once (.keras) or twice (.h5),
    counted once by Keras."""
    import keras
    from keras import layers

    shared = layers.Dense(4, name="shared_between")
    a_in = keras.Input((4,), name="a_in")
    first = keras.Model(a_in, shared(a_in), name="first")
    b_in = keras.Input((4,), name="b_in")
    second = keras.Model(b_in, layers.Dense(2, name="after")(shared(b_in)), name="second")
    x = keras.Input((4,), name="x")
    return keras.Model(x, second(first(x)), name="layer_in_two_submodels")


def _compiled_fitted() -> Any:
    """A compiled model trained for one step: the file then holds Adam's state."""
    import keras
    import numpy as np
    from keras import layers

    model = keras.Sequential([keras.Input((5,)), layers.Dense(7, activation="relu"), layers.BatchNormalization(),
                              layers.Dense(2)], name="fitted")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 5)), rng.normal(size=(16, 2)), epochs=1, verbose=0)
    return model


def _layer_zoo() -> Any:
    """Many layer kinds with weights: roles, sub-objects and non-trainable state."""
    import keras
    import numpy as np
    from keras import layers

    x = keras.Input((16, 16, 3), name="img")
    norm = layers.Normalization(name="norm")
    norm.adapt(np.random.default_rng(0).normal(size=(8, 16, 16, 3)))
    y = norm(x)
    y = layers.SeparableConv2D(4, 3, name="sep")(y)
    y = layers.DepthwiseConv2D(3, name="dw")(y)
    y = layers.Conv2DTranspose(2, 3, name="deconv")(y)
    y = layers.LayerNormalization(name="ln")(y)
    y = layers.PReLU(name="prelu")(y)
    y = layers.BatchNormalization(center=False, name="bn_nocenter")(y)
    y = layers.Reshape((-1, 2), name="to_seq")(y)
    y = layers.TimeDistributed(layers.Dense(3), name="td")(y)
    y = layers.MultiHeadAttention(2, 4, name="mha")(y, y)
    y = layers.SimpleRNN(3, return_sequences=True, name="srnn")(y)
    y = layers.Bidirectional(layers.LSTM(2, return_sequences=True), name="bilstm")(y)
    y = layers.GRU(3, name="gru")(y)
    y = layers.Dense(1, use_bias=False, name="out")(y)
    return keras.Model(x, y, name="layer_zoo")


def _embedding_seq() -> Any:
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((10,), dtype="int32"), layers.Embedding(50, 8),
                             layers.Conv1D(6, 3, padding="same"), layers.GlobalMaxPooling1D(),
                             layers.Dropout(0.2), layers.Dense(2, activation="softmax")], name="embed_seq")


def _with_lambda() -> Any:
    """A Lambda layer: its config carries marshalled bytecode; must load, never run."""
    import keras
    from keras import layers

    x = keras.Input((4,), name="x")
    y = layers.Lambda(lambda t: t * 2.0, name="double")(x)
    return keras.Model(x, layers.Dense(2, name="d")(y), name="with_lambda")


def _with_ops() -> Any:
    """Keras 3 functional model calling ``keras.ops`` directly: operations are graph
    nodes and summary rows, but not layers and never own weights."""
    import keras
    from keras import layers

    x = keras.Input((4,), name="x")
    y = layers.Dense(3, name="d1")(x)
    z = keras.ops.add(y, 1.0)
    return keras.Model(x, layers.Dense(2, name="d2")(z), name="with_ops")


BUILDERS: dict[str, Callable[[], Any]] = {
    "nested_frozen": _nested_frozen,
    "nested_functional": _nested_functional,
    "shared_twice": _shared_twice,
    "layer_in_two_submodels": _layer_in_two_submodels,
    "compiled_fitted": _compiled_fitted,
    "layer_zoo": _layer_zoo,
    "embedding_seq": _embedding_seq,
    "with_lambda": _with_lambda,
    "with_ops": _with_ops,
}


def keras_model(key: str) -> Any:
    """The Keras model ``BUILDERS[key]`` builds, built once."""
    if key not in _MODELS:
        _MODELS[key] = BUILDERS[key]()
    return _MODELS[key]


def saved_model(key: str, fmt: str) -> Path:
    """Path of ``keras_model(key)`` saved as ``fmt``."""
    if (key, fmt) not in _FILES:
        _FILES[(key, fmt)] = _save(keras_model(key), key, fmt)
    return _FILES[(key, fmt)]


# -- Keras 2 (tf_keras) -----------------------------------------------------------------

def tf_keras_module() -> Any:
    """``tf_keras`` (Keras 2).  It is in the test extra: fail loudly if it is missing."""
    try:
        import tf_keras
    except ImportError as exc:  # pragma: no cover - environment problem, not a skip
        raise AssertionError(
            "tf_keras is required for the Keras 2 tests: pip install 'dl-inspector[test]'") from exc
    return tf_keras


def _keras2_mixed() -> Any:
    """Keras 2 functional model: nested frozen Sequential, shared layer, MHA with kwargs."""
    k = tf_keras_module()
    L = k.layers
    inner = k.Sequential([L.Dense(6, input_shape=(8,), name="k2_inner_dense"),
                          L.BatchNormalization(name="k2_inner_bn")], name="k2_inner")
    inner.trainable = False
    x = k.Input((8,), name="k2_in")
    shared = L.Dense(8, activation="relu", name="k2_shared")
    h = shared(shared(x))
    h = inner(h)
    seq = L.Reshape((3, 2), name="k2_reshape")(h)
    att = L.MultiHeadAttention(2, 3, name="k2_mha")(seq, seq)
    rnn = L.Bidirectional(L.LSTM(3), name="k2_bilstm")(att)
    out = L.Dense(2, name="k2_out")(L.Concatenate(name="k2_cat")([rnn, h]))
    return k.Model(x, out, name="keras2_mixed")


def _keras2_seed_cnn() -> Any:
    k = tf_keras_module()
    L = k.layers
    return k.Sequential([L.Conv2D(1, 3, input_shape=(32, 32, 3)), L.BatchNormalization(), L.ReLU(),
                         L.Conv2D(2, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(10)],
                        name="k2_seed_cnn")


def _keras2_fitted() -> Any:
    import numpy as np

    k = tf_keras_module()
    L = k.layers
    model = k.Sequential([L.Dense(4, input_shape=(3,)), L.Dense(1)], name="k2_fitted")
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0)
    return model


def _keras2_slash_names() -> Any:
    """Keras 2 layer names with ``/`` (DenseNet's ``conv1/conv``, ``conv1/bn``) beside layers
    named like their last part (``conv``, ``bn``): weights ``conv1/bn/gamma:0`` belong to ``conv1/bn``;
    and a layer named inside another's name (MobileNetV3's ``Conv`` and ``Conv/BatchNorm``), whose
    ``.h5`` group nests in the other's."""
    k = tf_keras_module()
    L = k.layers
    x = k.Input((4,), name="slash_in")
    h = L.Dense(6, name="conv1/conv")(x)
    h = L.BatchNormalization(name="conv1/conv/BatchNorm")(h)
    h = L.BatchNormalization(name="conv1/bn")(h)
    h = L.Activation("relu", name="conv1/relu")(h)
    h = L.Dense(5, name="conv")(h)
    h = L.BatchNormalization(name="bn")(h)
    return k.Model(x, L.Dense(2, name="out/logits")(h), name="slash_names")


def _keras2_nested_slash_names() -> Any:
    """A nested model whose layer ``blk/bn`` ends like the outer layer ``bn``: a SavedModel names the
    variable ``blk/bn/gamma:0`` without the nested model's name."""
    k = tf_keras_module()
    L = k.layers
    inner_in = k.Input((6,), name="blk_in")
    inner = k.Model(inner_in, L.BatchNormalization(name="blk/bn")(L.Dense(6, name="blk/dense")(inner_in)),
                    name="backbone")
    x = k.Input((6,), name="x")
    h = L.BatchNormalization(name="bn")(inner(x))
    return k.Model(x, L.Dense(2, name="dense")(h), name="nested_slash_names")


KERAS2_BUILDERS: dict[str, Callable[[], Any]] = {
    "keras2_mixed": _keras2_mixed,
    "keras2_nested_slash_names": _keras2_nested_slash_names,
    "keras2_slash_names": _keras2_slash_names,
    "keras2_seed_cnn": _keras2_seed_cnn,
    "keras2_fitted": _keras2_fitted,
}


def keras2_model(key: str) -> Any:
    if f"k2:{key}" not in _MODELS:
        _MODELS[f"k2:{key}"] = KERAS2_BUILDERS[key]()
    return _MODELS[f"k2:{key}"]


def saved_keras2_model(key: str, fmt: str) -> Path:
    """A model built and saved by tf_keras (Keras 2): ``.h5`` or tf_keras's ``.keras``."""
    if (f"k2:{key}", fmt) not in _FILES:
        _FILES[(f"k2:{key}", fmt)] = _save(keras2_model(key), key, fmt)
    return _FILES[(f"k2:{key}", fmt)]


# -- facts to compare ---------------------------------------------------------------------

@dataclass(frozen=True)
class LayerFacts:
    name: str
    class_name: str
    output_shapes: tuple[tuple[tuple[Any, ...], ...], ...]
    """Per call (node), the shape of each output."""
    params: int


@dataclass(frozen=True)
class ModelFacts:
    layers: tuple[LayerFacts, ...]
    total: int
    trainable: int
    non_trainable: int


def _shape(s: Any) -> tuple[Any, ...]:
    return tuple(None if d is None else int(d) for d in s)


def _node_outputs(node: Any) -> tuple[tuple[Any, ...], ...]:
    outs = getattr(node, "output_tensors", None)
    if outs is None:  # Keras 2
        outs = node.outputs
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return tuple(_shape(t.shape) for t in outs)


def _model_nodes(model: Any) -> set[int] | None:
    nodes = getattr(model, "_nodes", None) or getattr(model, "_network_nodes", None)
    return nodes


def keras_facts(model: Any) -> ModelFacts:
    """What Keras itself says: per layer (``model.layers`` order) name, class, output
    shapes per call and ``count_params()``, plus the three totals."""
    import numpy as np

    rows = []
    # Keras 3 summaries list a functional model's operations (keras.ops calls too).
    operations = getattr(model, "operations", None)
    members = operations if operations is not None and type(model).__name__ != "Sequential" else model.layers
    for layer in members:
        nodes = list(layer._inbound_nodes)
        if hasattr(model, "_nodes"):  # Keras 3: keep the calls that belong to this model
            nodes = [n for n in nodes if n in model._nodes] or nodes
        elif hasattr(model, "_network_nodes"):  # Keras 2
            kept = [n for i, n in enumerate(nodes) if f"{layer.name}_ib-{i}" in model._network_nodes]
            nodes = kept or nodes
        shapes = tuple(_node_outputs(n) for n in nodes)
        params = int(layer.count_params()) if hasattr(layer, "count_params") else 0
        rows.append(LayerFacts(layer.name, type(layer).__name__, shapes, params))
    trainable = int(sum(np.prod(w.shape) for w in _unique(model.trainable_weights)))
    non_trainable = int(sum(np.prod(w.shape) for w in _unique(model.non_trainable_weights)))
    return ModelFacts(tuple(rows), int(model.count_params()), trainable, non_trainable)


def _unique(weights: list[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def graph_facts(graph: Any) -> ModelFacts:
    """The same facts as :func:`keras_facts`, from an inspector graph (a Sequential's
    input layer is not in Keras's ``model.layers`` and is left out)."""
    from inspector.analysis.params import count_params, layer_params

    layers = graph.layers[1:] if graph.kind == "sequential" else graph.layers
    rows = tuple(
        LayerFacts(lay.name, lay.type, tuple(tuple(s) for s in lay.node_shapes), layer_params(lay).params)
        for lay in layers
    )
    totals = count_params(graph).totals
    return ModelFacts(rows, totals.params, totals.trainable, totals.non_trainable)
