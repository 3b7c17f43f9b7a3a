"""The security scan of Keras configs: what would run or import code if Keras loaded the file.

Nothing in a config is ever executed or imported here.  Anything that *would* run
code if Keras loaded the file (a ``Lambda`` layer's marshalled bytecode, a custom
class from some module, a function that fetches or runs code) is recorded as a
:class:`~inspector.ir.SecurityFact` by :func:`scan_config`: the facts the SEC001
and SEC002 rules report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..ir import SecurityFact
from ..vocab import KERAS_LOOKUP
from .keras_config import MODEL_CLASSES, is_model_entry

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
    "plot_model", "model_to_dot", "load_data", "image_dataset_from_directory", "text_dataset_from_directory",
    "audio_dataset_from_directory", "set_backend",
})
"""Function names that have no business in a model config (SEC002 "gadgets"): they fetch,
load, write or run code or files (``keras.utils.plot_model`` writes an image file and runs
Graphviz, ``keras.datasets.*.load_data`` downloads, ``image_dataset_from_directory`` lists
and reads a folder) or change Keras itself (``keras.config.set_backend``)."""

TF_INITIALIZERS = frozenset({
    "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal", "TruncatedNormal", "VarianceScaling",
    "Orthogonal", "Identity", "GlorotUniform", "GlorotNormal",
})
"""TensorFlow's initializer classes (``tf.constant_initializer`` …, module
``tensorflow.python.ops.init_ops_v2``), which tf_keras models use and serialize with their
module (EfficientNetV2's head): values to draw, no code of the file's.  Any other class
from a TensorFlow module is still reported."""

TF_INITIALIZER_MODULES = frozenset({"tensorflow.python.ops.init_ops_v2", "tensorflow.python.ops.init_ops"})

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


def _module_root(module: str) -> str:
    return module.split(".", 1)[0]


def _trusted_package(package: str) -> bool:
    return package.split(".")[0] in TRUSTED_MODULE_ROOTS


_LAYER_ENTRY_KEYS = frozenset({"layers", "layer", "backward_layer", "forward_layer", "cell", "cells"})
"""Config keys whose values are layer entries (model layers, wrapped layers, RNN cells)."""

_COMPILE_KEYS = frozenset({"compile_config", "training_config", "optimizer_config", "optimizer"})
"""Config keys whose values are compile settings (an optimizer, losses, metrics)."""

_NOT_LAYERS = frozenset({"__keras_tensor__", "DTypePolicy", "Policy", "QuantizedDTypePolicy"})
"""Classes with a named config that are never layer entries."""

VOCABULARY_KEYS = ("vocabulary", "idf_weights", "merges", "proto", "vocabulary_file", "vocab_file", "spm_file")
"""Config keys of lookup layers and tokenizers that Keras reads as a file when they hold a string."""

_RISKY_TF_FUNCTIONS = ("io.", "py_function", "numpy_function", "py_func", "print", "gfile", "write_file",
                       "read_file", "load_library", "load_op_library", "debugging", "saved_model.", "summary.",
                       "matching_files")
"""Parts of a TensorFlow function name (``TFOpLambda``) that reach outside the model;
``raw_ops.<Op>`` is also risky when ``<Op>`` is one of the SavedModel loader's risky ops
(:data:`inspector.loaders.savedmodel.RISKY_OPS`: ``WriteFile``, ``PyFunc`` …)."""


def risky_tf_function(name: str) -> bool:
    """Whether a TensorFlow function a ``TFOpLambda`` calls (``io.write_file``,
    ``raw_ops.EagerPyFunc``, ``saved_model.load``) reaches outside the model."""
    from .savedmodel import RISKY_OPS  # the module imports TensorFlow only when it reads a SavedModel

    if any(r in name for r in _RISKY_TF_FUNCTIONS):
        return True
    head, _, op = name.rpartition(".")
    return head.endswith("raw_ops") and op in RISKY_OPS

_Visit = tuple[Any, str, str | None, bool, bool, bool, str, str | None]
"""One value the walk of :func:`scan_config` still has to scan: (value, how messages name
the innermost layer entry, graph path of the innermost graph layer, inside compile
settings, is a layer entry, is a graph layer, path prefix of graph layers, prefix for
the "layers" of this model config)."""

_Add = Callable[..., None]
"""Records one fact: ``add(code, message, layer, detail=None, kind="")``."""


@dataclass(frozen=True, slots=True)
class _Object:
    """One ``{"class_name": ...}`` object met by the walk, and where it sits."""

    obj: dict[str, Any]
    cls: str
    conf: Any
    module: Any
    where: str
    """How messages name it (``layer 'lam' (inside 'outer')``, ``the compile config``)."""
    layer: str | None
    """The path of the graph layer its facts belong to."""


def scan_config(cfg: Any, *, context: str | None = None, compile_object: bool = False) -> list[SecurityFact]:
    """Everything in a (model or compile) config that would run or import code if
    Keras loaded it.  Walks the JSON without recursion; never interprets it.

    Each fact's ``layer`` is the path of the graph layer it belongs to
    (``outer/inner/lam`` for a layer of a nested model, as
    :meth:`~inspector.ir.ModelGraph.walk` names it); a problem inside a wrapped
    layer or an RNN cell belongs to the wrapper.  Facts about the model itself (a
    custom model class, the compile settings) have no layer.  ``context`` names the
    layer when ``cfg`` is one layer's config.  ``compile_object``: ``cfg`` belongs to the
    compile settings, not the architecture (a metric a SavedModel's Keras metadata lists, such
    as the ``Mean`` that tracks the loss), so its class is not looked up among Keras's layers."""
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
    start_where = f"layer {context!r}" if context else "the config"
    stack: list[_Visit] = [(cfg, start_where, context, compile_object, True, not root_is_model and context is None,
                            "", None)]
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
        child_prefix: str | None = None
        if type(cls) is str:
            model_root = is_root and root_is_model
            is_layer, where, gpath = _locate(obj, cls, entry=entry, node=node, model_root=model_root,
                                             where=where, gpath=gpath, prefix=prefix)
            _scan_class(_Object(obj, cls, obj.get("config"), obj.get("module"), where, gpath),
                        in_compile=in_compile, layer_entry=is_layer and entry, add=add)
            child_prefix = _child_prefix(obj, model_root=model_root, node=node, gpath=gpath)
        _push_children(stack, obj, where=where, gpath=gpath, in_compile=in_compile, child_prefix=child_prefix,
                       conf_prefix=conf_prefix, add=add)
    return facts


def _locate(obj: dict[str, Any], cls: str, *, entry: bool, node: bool, model_root: bool, where: str,
            gpath: str | None, prefix: str) -> tuple[bool, str, str | None]:
    """Whether ``obj`` is a layer entry, and how messages (``where``) and graph paths
    (``gpath``) name what it holds: unchanged when it is not a layer."""
    conf = obj.get("config")
    if type(conf) is not dict or type(conf.get("name")) is not str or cls in _NOT_LAYERS:
        return False, where, gpath
    is_layer = entry or "inbound_nodes" in obj or "build_config" in obj or cls in KERAS_LAYER_CLASSES \
        or isinstance(obj.get("module"), str) and "layers" in obj.get("module", "")
    if not is_layer:
        return False, where, gpath
    here = str(conf["name"])
    if model_root:
        return True, f"model {here!r}", gpath
    if node:
        return True, f"layer {here!r}", prefix + here
    return True, f"layer {here!r}" + (f" (inside {gpath!r})" if gpath else ""), gpath


def _child_prefix(obj: dict[str, Any], *, model_root: bool, node: bool, gpath: str | None) -> str | None:
    """The graph-path prefix of the layers of ``obj`` when it is a model whose layers
    are graph layers (the root model, or a nested model that is a graph layer)."""
    conf = obj.get("config")
    if not (type(conf) is list or type(conf) is dict and type(conf.get("layers")) is list) \
            or not is_model_entry(obj):
        return None
    if model_root:
        return ""
    if node and gpath:
        return f"{gpath}/"
    return None


def _push_children(stack: list[_Visit], obj: dict[str, Any], *, where: str, gpath: str | None, in_compile: bool,
                   child_prefix: str | None, conf_prefix: str | None, add: _Add) -> None:
    """Queue the values of ``obj`` for the walk, each with where it sits; scan its
    plain values for a ``*_type: "lambda"`` marker on the way."""
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


def _scan_class(o: _Object, *, in_compile: bool, layer_entry: bool, add: _Add) -> None:
    """Every fact about one object, most specific first (the first fact per rule and
    layer is the one kept): code it carries, code it names, files it reads."""
    _scan_code(o, add)
    _scan_names(o, in_compile=in_compile, layer_entry=layer_entry, add=add)
    _scan_reads(o, add)


def _scan_code(o: _Object, add: _Add) -> None:
    """SEC001 (and a Keras 2 Lambda's module): Python code the object carries or runs."""
    cls, conf, where, layer = o.cls, o.conf, o.where, o.layer
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


def _scan_names(o: _Object, *, in_compile: bool, layer_entry: bool, add: _Add) -> None:
    """SEC002: functions, modules, registered objects and classes from outside Keras."""
    obj, cls, conf, module, where, layer = o.obj, o.cls, o.conf, o.module, o.where, o.layer
    short = cls.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
    if short in GADGET_FUNCTIONS:
        add("SEC002", f"{where} names {cls!r} ({module or 'no module'}), a function that fetches, loads, "
                      "writes or runs code or files and has no place in a model", layer, cls, kind="gadget")
    if cls == "function" and module == "builtins":
        # Keras 3 writes every plain function this way and resolves it by name at load
        # time: a Keras activation is fine, anything else must be supplied as custom code.
        fname = conf if isinstance(conf, str) else "?"
        if fname not in KERAS_FUNCTIONS and fname.rsplit(".", 1)[-1] not in GADGET_FUNCTIONS:
            add("SEC002", f"{where} refers to the Python function {fname!r}, which is not part of Keras",
                layer, fname, kind="custom-function")
    elif isinstance(module, str) and module and _module_root(module) not in TRUSTED_MODULE_ROOTS \
            and not (module in TF_INITIALIZER_MODULES and cls in TF_INITIALIZERS):
        add("SEC002", f"{where} names {cls!r} from module {module!r}, outside Keras", layer, module,
            kind="custom-module")
    registered = obj.get("registered_name")
    for name in (registered, cls):
        if isinstance(name, str) and ">" in name:
            package, _, rname = name.partition(">")
            if not _trusted_package(package) and not (package == "Custom" and rname in TRUSTED_OPTIMIZERS):
                add("SEC002", f"{where} uses the registered custom object {name!r}", layer, name,
                    kind="registered-object")
    if cls == "function" or registered == "function":
        gadget = conf if isinstance(conf, str) else None
        if gadget and gadget.rsplit(".", 1)[-1] in GADGET_FUNCTIONS:
            add("SEC002", f"{where} refers to the function {gadget!r} ({module or '?'}), a function that "
                          "fetches, loads, writes or runs code or files and has no place in a model", layer, gadget,
                kind="gadget")
    if module is None and not in_compile and (layer_entry or "inbound_nodes" in obj) \
            and cls not in KERAS_LAYER_CLASSES and cls not in MODEL_CLASSES and ">" not in cls:
        add("SEC002", f"{where} is of class {cls!r}, which is not part of Keras: loading it needs custom code",
            layer, cls, kind="custom-class")


def _scan_reads(o: _Object, add: _Add) -> None:
    """SEC002: files a lookup layer or tokenizer reads, TensorFlow functions that reach out."""
    cls, conf, where, layer = o.cls, o.conf, o.where, o.layer
    short = cls.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
    if (cls in KERAS_LOOKUP or short.endswith("Tokenizer")) and isinstance(conf, dict):
        for key in VOCABULARY_KEYS:
            value = conf.get(key)
            if isinstance(value, str) and value.strip():
                add("SEC002", f"{short} {where} reads its {key} from the file path {value!r} when it is loaded",
                    layer, value, kind="vocabulary-path")
                break
    if cls in ("TFOpLambda", "SlicingOpLambda") and isinstance(conf, dict):
        fn = str(conf.get("function", ""))
        if risky_tf_function(fn):
            add("SEC002", f"{where} calls the TensorFlow function {fn!r}, which reaches outside the model",
                layer, fn, kind="tf-function")

