"""Keras model configs → :class:`~inspector.ir.ModelGraph`, shared by both Keras loaders.

A Keras model file carries two things: a JSON *config* (the architecture: layers,
their settings and how they are wired) and the *weights*.  This module reads the
config; ``keras_v3`` (the ``.keras`` zip) and ``keras_h5`` (legacy HDF5) attach the
weights they find to the layers built here, then call :func:`finish`.

Nothing in a config is ever executed or imported: class names, module names and
function references are data.  Anything that *would* run code if Keras loaded the
file (a ``Lambda`` layer's marshalled bytecode, a custom class from some module)
is recorded as a :class:`~inspector.ir.SecurityFact` by :func:`scan_config`.

Two config dialects exist and both are read:

* **Keras 3** (``.keras`` from Keras 3, and ``.h5`` written by Keras 3): every layer
  entry has ``module``/``registered_name``; a call (an *inbound node*) is
  ``{"args": [...], "kwargs": {...}}`` where tensors are
  ``{"class_name": "__keras_tensor__", "config": {"shape": ..., "keras_history":
  [layer, node, tensor]}}`` — so the shape of every consumed tensor is recorded.
* **Keras 2** (tf.keras 2.x / ``tf_keras``): a call is ``[["layer", node, tensor,
  {kwargs}], ...]``; tensors inside kwargs are ``["layer", node, tensor]`` lists,
  and no shapes are recorded.  A nested model built from an ``Input`` owns a
  hidden first node, so Keras 2 refers to its calls from 1: those indices are
  renumbered from 0 here, as Keras 3 does.

Weight *roles* (``kernel``, ``gamma`` …) follow each class's variable creation
order (:func:`ordered_roles`), because a ``.keras`` weights file stores a layer's
variables as ``vars/0``, ``vars/1`` … without names.  Trainability follows Keras's
``trainable_weights``: :func:`role_trainable` plus every enclosing ``trainable:
false``.  ``Layer.trainable`` is that *effective* flag (a layer inside a frozen
nested model is not trainable, whatever its own config says).

What the Keras loaders put in ``ModelGraph.metadata``: ``config_style``
(``keras3``/``keras2``), ``keras_version``, ``backend``, ``date_saved`` (``.keras``),
``compile_config`` (Keras 3's ``compile_config``, or the legacy ``training_config``
with ``optimizer_config`` renamed ``optimizer``), ``weights_format`` (``h5``/``npz``),
``assets`` (``.keras`` members under ``assets/``); SavedModels add
``tensorflow_version``, ``signatures`` and ``saved_model_schema_version``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import LimitExceeded, ModelLoadError
from ..ir import Inbound, Layer, ModelGraph, SecurityFact, Shape
from ..limits import DEFAULTS, current, hint

# -- limits ------------------------------------------------------------------------------
# The limits in force come from :func:`inspector.limits.current` (documented defaults,
# overridable with INSPECTOR_MAX_* variables); these names are the defaults, kept for
# readers and tests.

MAX_CONFIG_BYTES = DEFAULTS.json_bytes
"""Default largest model config read (config.json or the ``model_config`` attribute)."""

MAX_JSON_DEPTH = DEFAULTS.json_depth
"""Default deepest JSON nesting accepted in a config (a real one stays under ~60)."""

MAX_MODEL_NESTING = DEFAULTS.model_nesting
"""Default deepest chain of models used as layers inside models."""

MAX_LAYERS = DEFAULTS.layers
"""Default most layer entries in one config, nested models included."""

MAX_LAYER_OUTPUTS = 10_000
"""Highest output index a config may refer to (a layer with more outputs is hostile)."""

MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})

TRUSTED_MODULE_ROOTS = frozenset({"keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp"})
"""``module`` roots a config may name without a SEC002 fact."""

CODE_CARRYING_CLASSES = {
    "TorchModuleWrapper": "wraps a pickled PyTorch module",
    "TFSMLayer": "loads and runs a TensorFlow SavedModel from a path",
    "JaxLayer": "calls a Python (JAX) function",
    "FlaxLayer": "calls a Flax module",
}
"""Layer classes that run code from outside the config when loaded (SEC001)."""

GADGET_FUNCTIONS = frozenset({
    "get_file", "load_model", "load_weights", "save_model", "enable_unsafe_deserialization",
    "deserialize_keras_object", "register_keras_serializable", "get_custom_objects",
    "load_img", "save_img", "set_random_seed", "custom_object_scope", "CustomObjectScope",
    "exec", "eval", "system", "popen", "open", "__import__", "compile",
})
"""Function names that have no business in a model config (SEC002 "gadgets")."""

TRUSTED_OPTIMIZERS = frozenset({
    "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl",
    "Lion", "Lamb", "Adafactor", "Muon", "LossScaleOptimizer",
})
"""tf_keras registers its own optimizers as ``Custom>Adam`` … : not custom code."""

KERAS_FUNCTIONS = frozenset("""
celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh leaky_relu linear
log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink softmax softplus softsign
sparse_plus sparse_sigmoid sparsemax squareplus swish tanh tanh_shrink threshold
""".split())
"""Keras activations: what a Keras 3 function reference (``{"module": "builtins",
"class_name": "function", "config": "relu"}``) may name without custom code."""

LOOKUP_CLASSES = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})

KERAS_LAYER_CLASSES = frozenset("""
AbstractRNNCell Activation ActivityRegularization AdaptiveAveragePooling1D AdaptiveAveragePooling2D
AdaptiveAveragePooling3D AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add
AdditiveAttention AlphaDropout Attention AugMix AutoContrast Average AveragePooling1D
AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization
BatchNormalizationV1 BatchNormalizationV2 Bidirectional CategoryEncoding CenterCrop Concatenate
ContrastLimitedAdaptiveHistogramEqualization Conv1D Conv1DTranspose Conv2D Conv2DTranspose Conv3D
Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D Convolution1DTranspose Convolution2D
Convolution2DTranspose Convolution3D Convolution3DTranspose Cropping1D Cropping2D Cropping3D
CuDNNGRU CuDNNLSTM CutMix Dense DenseFeatures DepthwiseConv1D DepthwiseConv2D Discretization Dot
Dropout ELU EinsumDense Embedding Equalization Flatten Functional GRU GRUCell GRUV1 GRUV2
GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D
GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization GroupQueryAttention
HashedCrossing Hashing Identity InputLayer IntegerLookup LSTM LSTMCell LSTMV1 LSTMV2 Lambda Layer
LayerNormalization LeakyReLU LocallyConnected1D LocallyConnected2D Masking MaxNumBoundingBoxes
MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D MaxPooling3D Maximum MelSpectrogram Minimum
MixUp Model MultiHeadAttention Multiply Normalization PReLU Permute Pipeline PreprocessingLayer
RMSNormalization RNN RandAugment RandomBrightness RandomColorDegeneration RandomColorJitter
RandomContrast RandomCrop RandomElasticTransform RandomErasing RandomFlip RandomGaussianBlur
RandomGrayscale RandomHeight RandomHue RandomInvert RandomPerspective RandomPosterization
RandomRotation RandomSaturation RandomSharpness RandomShear RandomTranslation RandomWidth RandomZoom
ReLU RepeatVector Rescaling Reshape Resizing ReversibleEmbedding STFTSpectrogram SeparableConv1D
SeparableConv2D SeparableConvolution1D SeparableConvolution2D Sequential SimpleRNN SimpleRNNCell
SlicingOpLambda Softmax Solarization SpatialDropout1D SpatialDropout2D SpatialDropout3D
SpectralNormalization StackedRNNCells StringLookup Subtract SyncBatchNormalization TFOpLambda
TFSMLayer TensorFlowOpLayer TextVectorization ThresholdedReLU TimeDistributed TorchModuleWrapper
UnitNormalization UpSampling1D UpSampling2D UpSampling3D Wrapper ZeroPadding1D ZeroPadding2D
ZeroPadding3D JaxLayer FlaxLayer RandomFourierFeatures
""".split())
"""Class names Keras itself provides: a module-less (Keras 2) entry naming anything
else needs custom code to load (SEC002)."""


# -- JSON --------------------------------------------------------------------------------

def parse_json(raw: bytes | str, *, what: str) -> Any:
    """Parse a config with size and depth limits; errors become :class:`ModelLoadError`."""
    lim = current()
    if len(raw) > lim.json_bytes:
        raise LimitExceeded(
            f"{what} is {len(raw):,} bytes, more than the {lim.json_bytes:,}-byte limit for a model config "
            f"({hint('json_bytes')})"
        )
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise LimitExceeded(f"{what} is nested too deeply to be a model config (JSON depth limit)") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{what} is not UTF-8 text: the file is corrupt or not a Keras model") from None
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        line = getattr(exc, "lineno", None)
        where = f" at line {line}" if line else ""
        raise ModelLoadError(f"{what} is not valid JSON ({msg}{where}): the file is corrupt or truncated") from None
    depth = json_depth(obj, stop=lim.json_depth + 1)
    if depth > lim.json_depth:
        raise LimitExceeded(
            f"{what} is nested more than {lim.json_depth} levels deep, past the limit ({hint('json_depth')})"
        )
    return obj


def json_depth(obj: Any, *, stop: int | None = None) -> int:
    """Nesting depth of a parsed JSON value (``[]`` is 1), level by level without
    recursion; stops counting at ``stop``."""
    depth = 0
    level = [obj] if type(obj) in (dict, list) else []
    while level and (stop is None or depth < stop):
        depth += 1
        nxt: list[Any] = []
        for value in level:
            items = value.values() if type(value) is dict else value
            nxt += [v for v in items if type(v) is dict or type(v) is list]
        level = nxt
    return depth


# -- small helpers -----------------------------------------------------------------------

def snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (names weight groups in ``.keras`` files)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def policy_name(dtype: Any) -> str | None:
    """The dtype policy's name: ``"float32"``, ``"mixed_float16"``, ``"int8_from_float32"``."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict):
        conf = dtype.get("config")
        if isinstance(conf, dict) and isinstance(conf.get("name"), str):
            return conf["name"]
        if isinstance(conf, dict) and isinstance(conf.get("mode"), str):
            # Keras 3 QuantizedDTypePolicy: {"mode": "int8", "source_name": "float32"}
            source = conf.get("source_name")
            return f"{conf['mode']}_from_{source}" if isinstance(source, str) else conf["mode"]
        if isinstance(conf, str):
            return conf
    return None


def quantization_mode(config: dict[str, Any]) -> str | None:
    """``int8``, ``int4``, ``float8``, ``gptq`` … for a quantized layer, else None."""
    name = policy_name(config.get("dtype")) or ""
    if "_from_" in name:
        return name.split("_from_", 1)[0]
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        inner = qc.get("config")
        mode = qc.get("mode") or (inner.get("mode") if isinstance(inner, dict) else None)
        if isinstance(mode, str):
            return mode
    return None


def to_shape(value: Any) -> Shape | None:
    """A recorded shape (list of int/None) → tuple; anything else → None."""
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        value = (value.get("config") or {}).get("value")
    if not isinstance(value, (list, tuple)):
        return None
    dims: list[Any] = []
    for d in value:
        if d is None or (isinstance(d, int) and not isinstance(d, bool)):
            dims.append(d if d is None or d >= 0 else None)
        elif isinstance(d, str):
            dims.append(d)
        else:
            return None
    return tuple(dims)


def _single_shape(value: Any) -> Shape | None:
    """A ``build_config.input_shape``: one shape, or a list holding exactly one."""
    shape = to_shape(value)
    if shape is not None:
        return shape
    if isinstance(value, list) and len(value) == 1:
        return to_shape(value[0])
    return None


def input_layer_shape(config: dict[str, Any]) -> Shape | None:
    """The batch shape an InputLayer config declares (Keras 3 or Keras 2 keys)."""
    for key in ("batch_shape", "batch_input_shape"):
        shape = to_shape(config.get(key))
        if shape is not None:
            return shape
    shape = to_shape(config.get("shape") or config.get("input_shape"))
    if shape is not None:
        return (None, *shape)
    return None


def _is_ref(x: Any) -> bool:
    return (isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str)
            and isinstance(x[1], int) and not isinstance(x[1], bool)
            and isinstance(x[2], int) and not isinstance(x[2], bool))


def flat_refs(value: Any) -> list[Inbound]:
    """Every ``[layer, node, tensor]`` triple in ``input_layers``/``output_layers``."""
    out: list[Inbound] = []
    stack = [value]
    while stack:
        x = stack.pop()
        if _is_ref(x):
            out.append(Inbound(x[0], max(0, x[1]), max(0, x[2])))
        elif isinstance(x, list):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    return out


_KWARG_FIRST = ("inputs", "x", "query", "value", "key")


def _kwarg_order(kwargs: dict[str, Any]) -> list[str]:
    """Call-signature order for tensors passed by keyword (attention layers take
    ``query, value, key``), then the rest sorted like Keras's tree.flatten."""
    first = [k for k in _KWARG_FIRST if k in kwargs]
    return first + sorted((k for k in kwargs if k not in _KWARG_FIRST), key=str)


# -- inbound nodes -----------------------------------------------------------------------

def keras3_node(node: dict[str, Any]) -> list[tuple[Inbound, Shape | None]]:
    """Tensors of one Keras 3 call, in argument order, with their recorded shapes."""
    out: list[tuple[Inbound, Shape | None]] = []
    kwargs = node.get("kwargs")
    roots: list[Any] = [node.get("args", [])]
    if isinstance(kwargs, dict):
        roots.extend(kwargs[k] for k in _kwarg_order(kwargs))
    stack = list(reversed(roots))
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("class_name") == "__keras_tensor__":
                conf = x.get("config")
                hist = conf.get("keras_history") if isinstance(conf, dict) else None
                if _is_ref(hist):
                    out.append((Inbound(hist[0], max(0, hist[1]), max(0, hist[2])), to_shape(conf.get("shape"))))
                continue
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
        elif isinstance(x, list):
            stack.extend(reversed(x))
    return out


def keras2_node(node: Any, names: set[str]) -> list[Inbound]:
    """Tensors of one Keras 2 call: first-argument entries, then tensors in kwargs."""
    out: list[Inbound] = []
    kwargs: dict[str, Any] | None = None
    stack = [node]
    while stack:
        x = stack.pop()
        if _is_ref(x):
            if x[0] != "_CONSTANT_VALUE" and x[1] >= 0:
                out.append(Inbound(x[0], x[1], x[2]))
            if kwargs is None and len(x) > 3 and isinstance(x[3], dict):
                kwargs = x[3]
        elif isinstance(x, list):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    if kwargs:
        stack = [kwargs[k] for k in reversed(_kwarg_order(kwargs))]
        while stack:
            x = stack.pop()
            if _is_ref(x) and len(x) == 3 and x[0] in names:
                out.append(Inbound(x[0], x[1], x[2]))
            elif isinstance(x, list):
                stack.extend(reversed(x))
            elif isinstance(x, dict):
                stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    return out


# -- config → graph ----------------------------------------------------------------------

@dataclass(slots=True)
class _Build:
    fmt: str
    layer_count: int = 0
    style: str | None = None


def is_model_entry(entry: Any) -> bool:
    """True for a layer entry that is itself a Functional/Sequential model."""
    if not isinstance(entry, dict):
        return False
    conf = entry.get("config")
    if isinstance(conf, list):  # Keras 2.0-era Sequential: config is the layer list
        return entry.get("class_name") in MODEL_CLASSES
    if not isinstance(conf, dict) or not isinstance(conf.get("layers"), list):
        return False
    if entry.get("class_name") in MODEL_CLASSES or "input_layers" in conf:
        return True
    layers = conf["layers"]
    return bool(layers) and all(isinstance(e, dict) and isinstance(e.get("class_name"), str) for e in layers)


def graph_from_config(cfg: Any, *, fmt: str) -> ModelGraph:
    """Build the graph skeleton of a whole model config (no weights yet).

    Raises :class:`ModelLoadError` when ``cfg`` is not a Keras model config.
    """
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str) or "config" not in cfg:
        raise ModelLoadError(
            "its config is not a Keras model (no class_name/config at the top): "
            "the file was not written by Keras model.save()"
        )
    if not isinstance(cfg.get("config"), (dict, list)):
        raise ModelLoadError("its model config has no layer list: the file is not a Keras model")
    state = _Build(fmt)
    graph = _build_model(cfg, state, parent_trainable=True, depth=0)
    graph.metadata["config_style"] = state.style or _guess_style(cfg)
    graph.security.extend(scan_config(cfg))
    return graph


def _guess_style(cfg: dict[str, Any]) -> str:
    """``keras3`` or ``keras2`` for a config without inbound nodes (a Sequential):
    Keras 3 writes ``batch_shape`` and dtype-policy objects, Keras 2 ``batch_input_shape``
    and plain dtype strings."""
    conf = cfg.get("config")
    entries = conf.get("layers") if isinstance(conf, dict) else conf
    for e in entries if isinstance(entries, list) else []:
        c = e.get("config") if isinstance(e, dict) else None
        if not isinstance(c, dict):
            continue
        if "batch_shape" in c or (isinstance(c.get("dtype"), dict)
                                  and c["dtype"].get("class_name") in ("DTypePolicy", "QuantizedDTypePolicy")):
            return "keras3"
        if "batch_input_shape" in c or isinstance(c.get("dtype"), str) and c.get("class_name") != "InputLayer":
            return "keras2"
    module = cfg.get("module")
    return "keras3" if isinstance(module, str) and module.startswith("keras") else "keras2"


def _layer_name(entry: dict[str, Any], index: int) -> str:
    conf = entry.get("config")
    name = entry.get("name")
    if not isinstance(name, str) and isinstance(conf, dict):
        name = conf.get("name")
    if not isinstance(name, str) or not name:
        name = f"{snake_case(str(entry.get('class_name', 'layer')))}_{index}"
    return name


def _build_model(entry: dict[str, Any], state: _Build, *, parent_trainable: bool, depth: int) -> ModelGraph:
    lim = current()
    if depth > lim.model_nesting:
        raise LimitExceeded(f"models are nested more than {lim.model_nesting} levels deep in the config "
                            f"({hint('model_nesting')})")
    class_name = entry.get("class_name")
    conf = entry.get("config")
    if isinstance(conf, list):
        conf = {"layers": conf}
    if not isinstance(conf, dict):
        conf = {}
    name = conf.get("name") if isinstance(conf.get("name"), str) else entry.get("name")
    trainable = parent_trainable and conf.get("trainable", True) is not False
    graph = ModelGraph(name=str(name or snake_case(str(class_name))), format=state.fmt, trainable=trainable)
    entries = conf.get("layers")
    if not isinstance(entries, list):
        graph.kind = "subclassed"
        graph.notes.append(
            f"{class_name} is a subclassed model: its config does not list its layers, "
            "so the table shows the weights the file stores, without wiring or shapes"
        )
        return graph
    state.layer_count += len(entries)
    if state.layer_count > lim.layers:
        raise LimitExceeded(f"the config lists more than {lim.layers:,} layers ({hint('layers')})")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("class_name"), str):
            raise ModelLoadError(
                f"layer #{i} of model {graph.name!r} is not a Keras layer entry: the config is damaged"
            )
    functional = ("input_layers" in conf or "output_layers" in conf
                  or any("inbound_nodes" in e for e in entries))
    if functional:
        _build_functional(graph, conf, entries, state, trainable=trainable, depth=depth)
    else:
        _build_sequential(graph, conf, entries, state, trainable=trainable, depth=depth)
    return graph


def _make_layer(entry: dict[str, Any], index: int, state: _Build, *, parent_trainable: bool, depth: int) -> Layer:
    cls = entry["class_name"]
    if ">" in cls:  # a registered custom class named "package>Class" (legacy h5 configs)
        cls = cls.rsplit(">", 1)[-1] or cls
    conf = entry.get("config")
    if not isinstance(conf, dict):
        conf = {"layers": conf} if isinstance(conf, list) else {}
    module = entry.get("module")
    lay = Layer(
        name=_layer_name(entry, index),
        type=cls,
        config=conf,
        trainable=parent_trainable and conf.get("trainable", True) is not False,
        module=module if isinstance(module, str) else None,
        dtype=policy_name(conf.get("dtype")),
    )
    if is_model_entry(entry):
        lay.subgraphs["model"] = _build_model(entry, state, parent_trainable=lay.trainable, depth=depth + 1)
    return lay


def _set_shape(producer: Layer, ref: Inbound, shape: Shape | None, *, overwrite: bool = True) -> None:
    if ref.node_index >= len(producer.node_shapes) or ref.tensor_index >= MAX_LAYER_OUTPUTS:
        return
    outs = producer.node_shapes[ref.node_index]
    while len(outs) <= ref.tensor_index:
        outs.append(None)
    if shape is not None and (overwrite or outs[ref.tensor_index] is None):
        outs[ref.tensor_index] = shape


def _build_functional(graph: ModelGraph, conf: dict[str, Any], entries: list[dict[str, Any]],
                      state: _Build, *, trainable: bool, depth: int) -> None:
    graph.kind = "functional"
    layers = [_make_layer(e, i, state, parent_trainable=trainable, depth=depth) for i, e in enumerate(entries)]
    by_name = {lay.name: lay for lay in layers}
    names = set(by_name)
    recorded: list[tuple[Inbound, Shape | None]] = []
    keras2 = False
    for lay, e in zip(layers, entries):
        nodes = e.get("inbound_nodes")
        if not isinstance(nodes, list):
            nodes = []
        if lay.type == "InputLayer" and not nodes:
            lay.inbound = [[]]
            lay.node_shapes = [[input_layer_shape(lay.config)]]
            continue
        for node in nodes:
            if isinstance(node, dict):
                state.style = state.style or "keras3"
                pairs = keras3_node(node)
                lay.inbound.append([ref for ref, _ in pairs])
                recorded.extend(pairs)
            else:
                state.style = state.style or "keras2"
                keras2 = True
                lay.inbound.append(keras2_node(node, names))
            lay.node_shapes.append([None])
    graph.layers = layers
    graph.inputs = flat_refs(conf.get("input_layers"))
    graph.outputs = flat_refs(conf.get("output_layers"))
    if keras2:
        _renumber_keras2_model_nodes(graph, entries)
    for ref, _ in recorded:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, None)
    for ref in graph.outputs:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, None)
    for lay in layers:
        for node in lay.inbound:
            for ref in node:
                if ref.layer in by_name:
                    _set_shape(by_name[ref.layer], ref, None)
    for ref, shape in recorded:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, shape)
    missing = sorted({ref.layer for lay in layers for ref in lay.inbound_flat() if ref.layer not in names})
    if missing:
        graph.notes.append(f"the config refers to layers it does not define: {', '.join(missing[:5])}")
    graph.invalidate()


def _renumber_keras2_model_nodes(graph: ModelGraph, entries: list[dict[str, Any]]) -> None:
    """Keras 2 numbers the calls of a nested model built from an ``Input`` from 1 (its
    node 0 is the model's own construction, which the config omits): shift to 0."""
    shift: dict[str, int] = {}
    all_refs = [ref for lay in graph.layers for ref in lay.inbound_flat()] + graph.outputs
    for lay, e in zip(graph.layers, entries):
        sub = lay.subgraph
        if sub is None:
            continue
        sub_entries = e.get("config", {}).get("layers") if isinstance(e.get("config"), dict) else e.get("config")
        first_is_input = (isinstance(sub_entries, list) and sub_entries
                          and isinstance(sub_entries[0], dict) and sub_entries[0].get("class_name") == "InputLayer")
        refs = [r for r in all_refs if r.layer == lay.name]
        if first_is_input and refs and all(r.node_index >= 1 for r in refs):
            shift[lay.name] = 1
        elif refs and max(r.node_index for r in refs) >= len(lay.inbound) and min(r.node_index for r in refs) >= 1:
            shift[lay.name] = 1
    if not shift:
        return

    def fix(ref: Inbound) -> Inbound:
        n = shift.get(ref.layer, 0)
        return Inbound(ref.layer, ref.node_index - n, ref.tensor_index) if n else ref

    for lay in graph.layers:
        lay.inbound = [[fix(r) for r in node] for node in lay.inbound]
    graph.outputs = [fix(r) for r in graph.outputs]


def _build_sequential(graph: ModelGraph, conf: dict[str, Any], entries: list[dict[str, Any]],
                      state: _Build, *, trainable: bool, depth: int) -> None:
    graph.kind = "sequential"
    body = list(entries)
    input_entry = None
    if body and body[0].get("class_name") == "InputLayer":
        input_entry = body.pop(0)
    layers = [_make_layer(e, i, state, parent_trainable=trainable, depth=depth) for i, e in enumerate(body, 1)]
    if input_entry is not None:
        inp = _make_layer(input_entry, 0, state, parent_trainable=trainable, depth=depth)
        shape = input_layer_shape(inp.config)
    else:
        first = layers[0] if layers else None
        shape = None
        if first is not None:
            shape = input_layer_shape(first.config)
            build = body[0].get("build_config")
            if shape is None and isinstance(build, dict):
                shape = _single_shape(build.get("input_shape"))
        if shape is None:
            shape = _single_shape(conf.get("build_input_shape"))
        name = f"{first.name}_input" if first is not None and shape is not None else "input_layer"
        inp = Layer(name=name, type="InputLayer", trainable=trainable,
                    config={"name": name, "batch_shape": list(shape) if shape is not None else None},
                    notes=["synthesized: the Sequential config has no InputLayer entry"])
    inp.inbound = [[]]
    inp.node_shapes = [[shape]]
    prev = inp
    for lay, e in zip(layers, body):
        lay.inbound = [[Inbound(prev.name, 0, 0)]]
        lay.node_shapes = [[None]]
        build = e.get("build_config")
        if isinstance(build, dict) and prev.node_shapes[0][0] is None:
            prev.node_shapes[0][0] = _single_shape(build.get("input_shape"))
        prev = lay
    graph.layers = [inp, *layers]
    graph.inputs = [Inbound(inp.name)]
    graph.outputs = [Inbound(prev.name)]
    graph.invalidate()


def is_operation(layer: Layer) -> bool:
    """A Keras 3 functional-API operation (``keras.ops.add(x, y)``): a node of the
    graph and a row of the summary, but not a layer and never saved with weights."""
    return bool(layer.module) and (layer.module.startswith("keras.src.ops") or layer.module.startswith("keras.ops"))


def container_layers(graph: ModelGraph) -> list[Layer]:
    """The layers Keras keeps in ``model.layers``, whose order names their weight
    groups (a Sequential's input is not one, nor is a functional operation)."""
    layers = graph.layers[1:] if graph.kind == "sequential" else graph.layers
    return [lay for lay in layers if not is_operation(lay)]


# -- weight roles and trainability -------------------------------------------------------

_CONV = frozenset({
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose",
    "Convolution2DTranspose", "Convolution3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
    "LocallyConnected1D", "LocallyConnected2D",
})
_SEPARABLE = frozenset({"SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D"})
_BATCH_NORM = frozenset({"BatchNormalization", "SyncBatchNormalization", "BatchNormalizationV1",
                         "BatchNormalizationV2"})
_RNN_CELLS = frozenset({"SimpleRNNCell", "LSTMCell", "GRUCell", "ConvLSTMCell", "ConvLSTM1DCell",
                        "ConvLSTM2DCell", "ConvLSTM3DCell", "PeepholeLSTMCell"})
RNN_CELL_OF = {
    "SimpleRNN": "SimpleRNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell", "LSTMV1": "LSTMCell",
    "LSTMV2": "LSTMCell", "GRUV1": "GRUCell", "GRUV2": "GRUCell", "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell",
}
STATEFUL_CLASSES = frozenset({
    "Normalization", "Discretization", "StringLookup", "IntegerLookup", "TextVectorization",
    "Hashing", "CategoryEncoding", "HashedCrossing",
})
"""Preprocessing layers: whatever state they store is never trained."""

NON_TRAINABLE_ROLES = frozenset({
    "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev",
    "renorm_mean_weight", "renorm_stddev_weight", "num_batches_tracked",
})

QUANTIZATION_ROLES = frozenset({
    "kernel_scale", "kernel_zero", "embeddings_scale", "embeddings_zero", "g_idx",
    "inputs_scale", "inputs_amax_history", "kernel_amax_history", "outputs_grad_scale",
    "outputs_grad_amax_history", "scale_inv",
})
"""Quantization scales and bookkeeping: reported apart from parameters."""

_QUANT_SPECS = {
    "dense": {
        "int8": ["kernel", "bias", "kernel_scale"],
        "int4": ["kernel", "bias", "kernel_scale", "kernel_zero", "g_idx"],
        "float8": ["kernel", "bias", "inputs_scale", "inputs_amax_history", "kernel_scale",
                   "kernel_amax_history", "outputs_grad_scale", "outputs_grad_amax_history"],
        "gptq": ["bias", "quantized_kernel", "kernel_scale", "kernel_zero", "g_idx"],
    },
    "embedding": {
        "int8": ["embeddings", "embeddings_scale"],
        "int4": ["embeddings", "embeddings_scale", "embeddings_zero", "g_idx"],
    },
}
_OPTIONAL_QUANT = ("g_idx", "kernel_zero", "embeddings_zero", "bias")


def _fit(candidates: list[str], n: int, *, optional: tuple[str, ...] = ()) -> list[str] | None:
    roles = list(candidates)
    for opt in optional:
        if len(roles) <= n:
            break
        if opt in roles:
            roles.remove(opt)
    return roles if len(roles) == n else None


def ordered_roles(cls: str, config: dict[str, Any], n: int) -> list[str] | None:
    """Roles of a layer's own variables in the order Keras saves them (trainable ones
    first, each group in creation order), or None when the class is not known or the
    count does not match what the config implies."""
    if n == 0:
        return []
    cfg = config if isinstance(config, dict) else {}
    use_bias = cfg.get("use_bias", True) is not False
    mode = quantization_mode(cfg)
    if cls in ("Dense", "EinsumDense"):
        if mode in _QUANT_SPECS["dense"]:
            return _fit(_QUANT_SPECS["dense"][mode], n, optional=_OPTIONAL_QUANT)
        return _fit(["kernel", "bias"], n, optional=("bias",))
    if cls in ("Embedding", "ReversibleEmbedding"):
        if mode in _QUANT_SPECS["embedding"]:
            return _fit(_QUANT_SPECS["embedding"][mode], n, optional=_OPTIONAL_QUANT)
        if cls == "ReversibleEmbedding":
            return _fit(["embeddings", "reverse_embeddings"], n, optional=("reverse_embeddings",))
        return _fit(["embeddings"], n)
    if cls in _CONV:
        return _fit(["kernel", "bias"] if use_bias else ["kernel"], n, optional=("bias",))
    if cls in _SEPARABLE:
        return _fit(["depthwise_kernel", "pointwise_kernel", "bias"], n, optional=("bias",))
    if cls in _BATCH_NORM:
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        roles += ["moving_mean", "moving_variance"]
        if cfg.get("renorm"):
            roles += ["renorm_mean", "renorm_stddev"]
        return _fit(roles, n)
    if cls == "LayerNormalization":
        if cfg.get("rms_scaling"):
            return _fit(["gamma"], n)
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        return _fit(roles, n)
    if cls == "GroupNormalization":
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        return _fit(roles, n)
    if cls == "RMSNormalization":
        return _fit(["scale"], n)
    if cls == "PReLU":
        return _fit(["alpha"], n)
    if cls == "Normalization":
        return _fit(["mean", "variance", "count"], n)
    if cls in _RNN_CELLS:
        return _fit(["kernel", "recurrent_kernel", "bias"], n, optional=("bias",))
    if cls == "Attention":
        roles = (["scale"] if cfg.get("use_scale") else []) \
            + (["concat_score_weight"] if cfg.get("score_mode") == "concat" else [])
        return _fit(roles, n)
    if cls == "AdditiveAttention":
        return _fit(["scale"], n)
    if cls == "SpectralNormalization":
        return _fit(["vector_u"], n)
    return None


def normalize_role(cls: str, role: str) -> str:
    """Role names differ between Keras versions for the same tensor; use Keras 3's."""
    if cls in ("DepthwiseConv1D", "DepthwiseConv2D") and role == "depthwise_kernel":
        return "kernel"
    return role


_QUANTIZED_STORAGE_MODES = frozenset({"int8", "int4", "gptq", "awq"})


def role_trainable(cls: str, role: str, config: dict[str, Any] | None = None) -> bool:
    """Whether Keras creates the variable with this role as trainable."""
    if cls in STATEFUL_CLASSES:
        return False
    if role in ("kernel", "embeddings", "quantized_kernel") and isinstance(config, dict) \
            and quantization_mode(config) in _QUANTIZED_STORAGE_MODES:
        return False  # integer storage of a quantized layer is frozen
    if role in NON_TRAINABLE_ROLES or role in QUANTIZATION_ROLES:
        return False
    if cls == "SpectralNormalization" and role == "vector_u":
        return False
    return True


def subobject(cls: str, config: dict[str, Any], child: str) -> tuple[str, dict[str, Any]] | None:
    """(class, config) of a sub-object a layer saves under the attribute ``child``
    (an RNN's ``cell``, a wrapper's ``layer``, Bidirectional's ``forward_layer`` …)."""
    cfg = config if isinstance(config, dict) else {}

    def entry(value: Any) -> tuple[str, dict[str, Any]] | None:
        if isinstance(value, dict) and isinstance(value.get("class_name"), str):
            conf = value.get("config")
            return value["class_name"], conf if isinstance(conf, dict) else {}
        return None

    if child == "cell":
        if cls in RNN_CELL_OF:
            return RNN_CELL_OF[cls], cfg
        cell = cfg.get("cell")
        if isinstance(cell, list):
            return "StackedRNNCells", {"cells": cell}
        return entry(cell)
    if cls == "Bidirectional" and child in ("forward_layer", "backward_layer"):
        if child == "backward_layer" and isinstance(cfg.get("backward_layer"), dict):
            return entry(cfg["backward_layer"])
        return entry(cfg.get("layer"))
    if child == "layer" and "layer" in cfg:
        return entry(cfg.get("layer"))
    if child.endswith("_dense") or child in ("query", "key", "value", "attention_output"):
        return "EinsumDense", {}
    return None


def container_item(config: dict[str, Any], child: str, position: int) -> tuple[str, dict[str, Any]] | None:
    """The entry of a list-valued config (StackedRNNCells ``cells``) for the
    ``position``-th saved item of a container."""
    for key in ("cells", "layers"):
        items = config.get(key) if isinstance(config, dict) else None
        if isinstance(items, list) and position < len(items):
            item = items[position]
            if isinstance(item, dict) and isinstance(item.get("class_name"), str):
                conf = item.get("config")
                return item["class_name"], conf if isinstance(conf, dict) else {}
    return None


# -- security facts ----------------------------------------------------------------------

def _module_root(module: str) -> str:
    return module.split(".", 1)[0]


def scan_config(cfg: Any, *, context: str | None = None) -> list[SecurityFact]:
    """Everything in a (model or compile) config that would run or import code if
    Keras loaded it.  Walks the JSON without recursion; never interprets it.

    Each fact's ``layer`` is the path of the graph layer it belongs to
    (``outer/inner/lam`` for a layer of a nested model, as
    :meth:`~inspector.ir.ModelGraph.walk` names it); a problem inside a wrapped
    layer or an RNN cell belongs to the wrapper.  Facts about the model itself (a
    custom model class, the compile settings) have no layer.  ``context`` names the
    layer when ``cfg`` is one layer's config."""
    facts: list[SecurityFact] = []
    seen: set[tuple[str, str | None, str]] = set()

    def add(code: str, message: str, layer: str | None, detail: str | None = None, kind: str = "") -> None:
        # One fact per rule and graph layer (the first, most specific reason);
        # model-wide facts are kept per message.
        key = (code, layer, "") if layer is not None else (code, None, message)
        if key not in seen:
            seen.add(key)
            facts.append(SecurityFact(code, message, layer=layer, detail=detail, kind=kind))

    root_is_model = is_model_entry(cfg)
    # (value, how messages name the innermost layer entry, graph path of the innermost
    #  graph layer, inside compile settings, is a layer entry, is a graph layer,
    #  path prefix of graph layers, prefix for the "layers" of this model config)
    start_where = f"layer {context!r}" if context else "the config"
    stack: list[tuple[Any, str, str | None, bool, bool, bool, str, str | None]] = [
        (cfg, start_where, context, False, True, not root_is_model and context is None, "", None)]
    first = True
    while stack:
        obj, where, gpath, in_compile, entry, node, prefix, conf_prefix = stack.pop()
        is_root, first = first, False
        if type(obj) is list:
            stack.extend((v, where, gpath, in_compile, entry, node, prefix, conf_prefix)
                         for v in reversed(obj) if type(v) is dict or type(v) is list)
            continue
        if type(obj) is not dict:
            continue
        cls = obj.get("class_name")
        conf = obj.get("config")
        child_prefix: str | None = None
        if type(cls) is str:
            is_layer = False
            if type(conf) is dict and type(conf.get("name")) is str \
                    and cls not in ("__keras_tensor__", "DTypePolicy", "Policy", "QuantizedDTypePolicy"):
                is_layer = entry or "inbound_nodes" in obj or "build_config" in obj or cls in KERAS_LAYER_CLASSES \
                    or isinstance(obj.get("module"), str) and "layers" in obj.get("module", "")
                if is_layer:
                    here = str(conf["name"])
                    if is_root and root_is_model:
                        where = f"model {here!r}"
                    elif node:
                        gpath = prefix + here
                        where = f"layer {here!r}"
                    else:
                        where = f"layer {here!r}" + (f" (inside {gpath!r})" if gpath else "")
            _scan_class(obj, cls, conf, obj.get("module"), where, gpath, in_compile, is_layer and entry, add)
            if (type(conf) is list or type(conf) is dict and type(conf.get("layers")) is list) \
                    and is_model_entry(obj):
                if is_root and root_is_model:
                    child_prefix = ""
                elif node and gpath:
                    child_prefix = f"{gpath}/"
        for key, value in obj.items():
            tv = type(value)
            if tv is not dict and tv is not list:
                if value == "lambda" and type(key) is str and key.endswith("_type"):
                    add("SEC001", f"{where} holds serialized Python bytecode ({key}: lambda) that Keras would run "
                                  "on load", gpath, key, kind="lambda")
                continue
            if not in_compile and key in _COMPILE_KEYS:
                stack.append((value, "the compile config", None, True, False, False, "", None))
            elif key == "config" and child_prefix is not None:
                # A model's config: its "layers" (or, in Keras 2.0, the list itself) are graph layers.
                listed = tv is list
                stack.append((value, where, gpath, in_compile, listed, listed, child_prefix,
                              None if listed else child_prefix))
            elif key == "layers" and conf_prefix is not None:
                stack.append((value, where, gpath, in_compile, True, True, conf_prefix, None))
            else:
                stack.append((value, where, gpath, in_compile, key in _LAYER_ENTRY_KEYS and not in_compile,
                              False, "", None))
    return facts


_LAYER_ENTRY_KEYS = frozenset({"layers", "layer", "backward_layer", "forward_layer", "cell", "cells"})
_COMPILE_KEYS = frozenset({"compile_config", "training_config", "optimizer_config", "optimizer"})
"""Config keys whose values are layer entries (model layers, wrapped layers, RNN cells)."""

VOCABULARY_KEYS = ("vocabulary", "idf_weights", "merges", "proto", "vocabulary_file", "vocab_file", "spm_file")
"""Config keys of lookup layers and tokenizers that Keras reads as a file when they hold a string."""


def _trusted_package(package: str) -> bool:
    return package.split(".")[0] in TRUSTED_MODULE_ROOTS


def _scan_class(obj: dict[str, Any], cls: str, conf: Any, module: Any, where: str, layer: str | None,
                in_compile: bool, layer_entry: bool, add: Any) -> None:
    if cls == "Lambda":
        fn = conf.get("function") if isinstance(conf, dict) else None
        bytecode = (isinstance(fn, dict) and fn.get("class_name") == "__lambda__") \
            or (isinstance(conf, dict) and conf.get("function_type") == "lambda") \
            or isinstance(fn, list) or (isinstance(fn, str) and isinstance(conf, dict)
                                        and conf.get("function_type") not in ("function", "raw"))
        if bytecode:
            add("SEC001", f"Lambda {where} carries serialized Python bytecode that Keras would run on load",
                layer, "Lambda", kind="lambda")
        elif isinstance(conf, dict) and isinstance(conf.get("module"), str) \
                and _module_root(conf["module"]) not in TRUSTED_MODULE_ROOTS:
            # Keras 2 spells a named function as function=<name>, module=<module>.
            add("SEC002", f"Lambda {where} calls {fn!r} from module {conf['module']!r}, outside Keras",
                layer, conf["module"], kind="custom-module")
    if cls == "__lambda__":
        add("SEC001", f"{where} holds serialized Python bytecode (a lambda) that Keras would run on load",
            layer, "__lambda__", kind="lambda")
    if cls in CODE_CARRYING_CLASSES:
        add("SEC001", f"{cls} {where} {CODE_CARRYING_CLASSES[cls]}", layer, cls, kind="code-carrying-class")
    short = cls.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
    if short in GADGET_FUNCTIONS:
        add("SEC002", f"{where} names {cls!r} ({module or 'no module'}), a function that fetches, loads or runs "
                      "code and has no place in a model", layer, cls, kind="gadget")
    if cls == "function" and module == "builtins":
        # Keras 3 writes every plain function this way and resolves it by name at load
        # time: a Keras activation is fine, anything else must be supplied as custom code.
        fname = conf if isinstance(conf, str) else "?"
        if fname not in KERAS_FUNCTIONS and fname.rsplit(".", 1)[-1] not in GADGET_FUNCTIONS:
            add("SEC002", f"{where} refers to the Python function {fname!r}, which is not part of Keras",
                layer, fname, kind="custom-function")
    elif isinstance(module, str) and module and _module_root(module) not in TRUSTED_MODULE_ROOTS:
        add("SEC002", f"{where} names {cls!r} from module {module!r}, outside Keras", layer, module,
            kind="custom-module")
    registered = obj.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        package, _, rname = registered.partition(">")
        if not _trusted_package(package) and not (package == "Custom" and rname in TRUSTED_OPTIMIZERS):
            add("SEC002", f"{where} uses the registered custom object {registered!r}", layer, registered,
                kind="registered-object")
    if ">" in cls:
        package, _, rname = cls.partition(">")
        if not _trusted_package(package) and not (package == "Custom" and rname in TRUSTED_OPTIMIZERS):
            add("SEC002", f"{where} uses the registered custom object {cls!r}", layer, cls, kind="registered-object")
    if cls == "function" or registered == "function":
        fname = conf if isinstance(conf, str) else None
        if fname and fname.rsplit(".", 1)[-1] in GADGET_FUNCTIONS:
            add("SEC002", f"{where} refers to the function {fname!r} ({module or '?'}), a function that "
                          "fetches, loads or runs code and has no place in a model", layer, fname, kind="gadget")
    if module is None and not in_compile and (layer_entry or "inbound_nodes" in obj) \
            and cls not in KERAS_LAYER_CLASSES and cls not in MODEL_CLASSES and ">" not in cls:
        add("SEC002", f"{where} is of class {cls!r}, which is not part of Keras: loading it needs custom code",
            layer, cls, kind="custom-class")
    if (cls in LOOKUP_CLASSES or short.endswith("Tokenizer")) and isinstance(conf, dict):
        for key in VOCABULARY_KEYS:
            value = conf.get(key)
            if isinstance(value, str) and value.strip():
                add("SEC002", f"{short} {where} reads its {key} from the file path {value!r} when it is loaded",
                    layer, value, kind="vocabulary-path")
                break
    if cls in ("TFOpLambda", "SlicingOpLambda") and isinstance(conf, dict):
        fn = str(conf.get("function", ""))
        risky = ("io.", "py_function", "numpy_function", "py_func", "print", "gfile", "write_file",
                 "read_file", "load_library", "load_op_library", "debugging")
        if any(r in fn for r in risky):
            add("SEC002", f"{where} calls the TensorFlow function {fn!r}, which reaches outside the model",
                layer, fn, kind="tf-function")


# -- finishing ---------------------------------------------------------------------------

def iter_graphs(graph: ModelGraph) -> Iterator[ModelGraph]:
    """``graph`` and every nested model graph, outermost first (no recursion)."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for lay in reversed(g.layers):
            sub = lay.subgraph
            if sub is not None:
                stack.append(sub)


def finish(graph: ModelGraph) -> ModelGraph:
    """Compute the shapes the file does not record, then drop cached views."""
    from . import keras_shapes

    try:
        keras_shapes.fill_shapes(graph)
    except Exception as exc:  # pragma: no cover - fill_shapes promises not to raise
        graph.notes.append(f"output shapes could not all be computed ({type(exc).__name__})")
    for g in iter_graphs(graph):
        g.invalidate()
    return graph


def compile_config_from_training_config(training: Any) -> dict[str, Any] | None:
    """Keras 2/3 ``training_config`` (legacy h5) in the shape of Keras 3's ``compile_config``."""
    if not isinstance(training, dict):
        return None
    out = dict(training)
    if "optimizer_config" in out and "optimizer" not in out:
        out["optimizer"] = out.pop("optimizer_config")
    return out
