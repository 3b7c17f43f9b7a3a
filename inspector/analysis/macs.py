"""Multiply-accumulate operations (MACs) per layer, for Keras and ONNX graphs.

One MAC is one ``a * b + c``.  The figure is the cost of **one inference on one
sample**: a batch dimension that is unknown (``None`` or symbolic, e.g. ``N``) is
taken as 1.  Every other dimension must be known; where it is not (a symbolic
sequence length, a shape inference could not derive) the layer's MACs are
*unknown* (``None``) — never a guessed number.

What "the batch dimension" is: in Keras, the leading ``None`` of a layer's shapes.
In ONNX, a leading dim only when it is the graph inputs' leading dim: the same
symbol (``batch``, ``N``), or the fresh symbol shape inference gave it in the
output of an op that keeps it in front (``Conv``, element-wise ops, a ``Transpose``
keeping axis 0, a ``Reshape``/``Flatten`` keeping every other element, a 2-D
product that contracts a whole flattened sample); see ``_batch_dims``.  Any other
unknown leading dim is not taken as 1 (an ONNX ``LSTM``/``GRU``/``RNN`` batch axis,
which the op's specification names, excepted): a ``Reshape`` of ``[batch, seq, 768]``
to ``[-1, 768]`` yields a symbol that stands for batch × seq, so a ``Gemm`` on it is
unknown and the total a lower bound.

Symbolic dims: a formula
------------------------
The model's *symbols* are the names its graph inputs' dims use (``batch``, ``seq``).
:func:`count_macs` also computes the cost of matrix products and convolutions whose dims
are symbols, or sums and products of them (``batch*seq``), as a polynomial
(:class:`~.symbolic.Poly`); such a layer is still unknown as a number, and
``MacsReport.formula`` is the total: the known layers plus these, per sample like every
figure (the batch dim counts 1, as above).  Dims without a name, onnx's ``unk__N`` and the
names an exporter gives intermediate tensors (``MatMul555_dim_0``) are anonymous: such a
layer stays unknown and the formula a lower bound (``formula_complete``).  Binding symbols
to numbers (``--dim``, :mod:`inspector.loaders.bind`) happens before shapes are inferred,
so bound models have numbers only.  A Keras token model saved whole without wiring (a keras_hub
``Backbone``) is costed from its weights with the sequence length as the symbol ``seq``
(:func:`~.macs_keras.backbone_macs`).

What is counted
---------------
* Convolutions (Keras ``Conv1D/2D/3D``, ``Depthwise``/``Separable`` and
  transposed variants, ``LocallyConnected``; ONNX ``Conv``, ``ConvTranspose``,
  ``ConvInteger``, ``QLinearConv``, ``DeformConv``): one MAC per kernel weight
  per output position (``groups`` and depthwise convolutions included, because
  the kernel holds only ``C_in / groups`` input channels).  A transposed
  convolution costs one MAC per kernel weight per *input* position.
* Matrix products (Keras ``Dense``, ``EinsumDense``, ``Dot``, attention; ONNX
  ``Gemm``, ``MatMul`` (batched), ``MatMulInteger``, ``QLinearMatMul``,
  two-operand ``Einsum``): output elements × contracted length.  An ``Einsum``
  with three or more operands is unknown (its cost depends on contraction
  order); a one-operand ``Einsum`` (transpose/trace/sum) is 0.
* Recurrent layers (Keras ``SimpleRNN``/``LSTM``/``GRU``, ``Bidirectional``,
  ``ConvLSTM``; ONNX ``RNN``/``LSTM``/``GRU``): the input and recurrent matrix
  products of one step × the number of steps; unknown when the number of
  steps is.  ``Keras MultiHeadAttention``: the four projections plus the two
  attention products; ONNX ``Attention`` (opset 23) the two attention products.
* Nested graphs: a Keras model used as a layer costs the sum of its layers
  (unknown if any of them is), per call; an ONNX ``Loop`` costs its body × the
  trip count when that is a constant (else unknown), ``Scan`` its body × the
  scanned length, ``If`` the costlier branch (an upper bound) unless its
  condition is a constant, and a model-local function call its body.

What is 0 by convention
-----------------------
Element-wise arithmetic and activations (``Add``, ``Mul``, ``Relu``, ``Softmax`` …),
normalization (``BatchNormalization`` folds into the preceding layer at inference;
``LayerNormalization`` and friends are element-wise), pooling (max and average
pooling are comparisons and additions), reductions, embeddings (a lookup),
reshapes, copies, padding, resizing, quantize/dequantize and casts.  Bias
additions are not counted either.

With these conventions Keras's ResNet-50 (v1: stride 2 on the first 1x1
convolution of a stage) costs 3,857,973,248 MACs — convolutions 3.856 G plus the
final ``Dense`` 2.05 M — the figure usually published as "3.8–3.9 GFLOPs"; its
tf2onnx export gives the same number.  ResNet-50 v1.5 (stride on the 3x3
convolution: torchvision's, and the caffe2 model in the onnx package's test
data) costs 4,089,184,256, torchvision's published "4.09 GFLOPS".

Layer types that are not listed here (custom layers, ``Lambda``, unknown ONNX
ops and contrib ops) are unknown.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Sequence

from ..ir import Layer, ModelGraph, Shape, Weight
from ..vocab import (
    BATCHNORM,
    CUDNN_RNN,
    INFERENCE_IDENTITY,
    KERAS_ACTIVATION_LAYERS,
    KERAS_AUGMENTATION,
    KERAS_CONV,
    KERAS_CONV_RNN,
    KERAS_CONV_TRANSPOSE,
    KERAS_CROPPING,
    KERAS_DECONVOLUTION,
    KERAS_DEPTHWISE,
    KERAS_GLOBAL_POOLING,
    KERAS_GLOBAL_POOLING_ALIASES,
    KERAS_IMAGE_ADJUST,
    KERAS_MERGE,
    KERAS_NORMALIZATION,
    KERAS_PADDING,
    KERAS_POOLING,
    KERAS_RNN,
    KERAS_RNN_LEGACY,
    KERAS_SEPARABLE,
    KERAS_STATEFUL_PREPROCESSING,
    KERAS_UPSAMPLING,
    RNN_WRAPPERS,
    TF_BINARY_OPS,
    TF_UNARY_OPS,
)
from .macs_keras import backbone_macs, composite_macs
from .symbolic import Poly, Value, parse_dim

__all__ = ["MacsReport", "count_macs", "layer_macs"]

MAX_DEPTH = 128
"""Deepest nesting of sub-graphs followed (loaders bound it well below this)."""

_Shapes = Sequence[Shape | None]
"""The input (or output) shapes of one call of a layer."""

_BATCH: ContextVar[frozenset[Any] | None] = ContextVar("_BATCH", default=None)
"""The unknown dims that stand for the batch while an ONNX graph is counted
(``None`` = Keras: any unknown dim at the batch position)."""

_SYMBOLS: ContextVar[frozenset[str]] = ContextVar("_SYMBOLS", default=frozenset())
"""While :func:`count_macs` runs: the model's symbols (the names the graph inputs' symbolic dims
use).  A dim of a matrix product or convolution that is a product or sum of them becomes a
polynomial (:mod:`.symbolic`) instead of making the layer unknown; any other named dim (an
exporter's own ``MatMul555_dim_0``, onnx's ``unk__3``) stays anonymous."""

_BATCH_KEEPING = frozenset({
    "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "Gemm", "Cast", "Identity",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Softmax", "Add", "Sub", "Mul", "Div", "Clip", "QuantizeLinear", "DequantizeLinear",
})
"""ONNX ops whose output keeps operand 0's leading (batch) dim in front."""


@dataclass(frozen=True, slots=True)
class MacsReport:
    """MACs per layer (graph order; ``None`` = unknown), their known total, and the
    layers whose cost is unknown."""

    layers: tuple[tuple[str, int | None], ...]
    total: int
    """Sum of the known per-layer figures."""
    unknown: tuple[str, ...]
    """Names of the layers whose MACs are unknown (in graph order)."""
    formula: Poly | None = None
    """The total as a polynomial in the model's symbolic dims (per sample: batch dims count 1):
    the known layers plus the layers whose cost is a formula; ``None`` when no layer's cost
    depends on a symbol (then ``total`` says it all)."""
    symbolic: tuple[str, ...] = ()
    """Names of the layers whose MACs are a formula in symbolic dims (a subset of ``unknown``)."""
    layer_formulas: tuple[tuple[str, Poly], ...] = ()
    """The formula of each layer named in ``symbolic``, in graph order."""

    @property
    def formula_complete(self) -> bool:
        """True when every layer's cost is known or a formula, so ``formula`` is the model's cost."""
        return len(self.symbolic) == len(self.unknown)

    @property
    def complete(self) -> bool:
        """True when every layer's MACs are known, so ``total`` is the model's cost."""
        return not self.unknown

    def layer_formula(self, name: str) -> Poly | None:
        """The MACs of layer ``name`` as a formula, when they are one (else ``None``)."""
        return dict(self.layer_formulas).get(name)

    def layer(self, name: str) -> int | None:
        for lname, macs in self.layers:
            if lname == name:
                return macs
        raise KeyError(name)


class _Unknown(Exception):
    """The cost of a layer cannot be known from what the graph records."""


def count_macs(graph: ModelGraph) -> MacsReport:
    """MACs of every layer of ``graph`` (nested graphs roll up into their layer); where symbolic
    dims leave layers unknown, also the total as a formula in them (``MacsReport.formula``)."""
    memo: dict[int, Value | None] = {}
    token = _BATCH.set(_batch_dims(graph))
    symbolic = _SYMBOLS.set(_input_symbols(graph))
    try:
        values = backbone_macs(graph) or [(lay.name, _layer(graph, lay, memo, 0)) for lay in graph.layers]
    finally:
        _SYMBOLS.reset(symbolic)
        _BATCH.reset(token)
    rows = tuple((name, _number(m)) for name, m in values)
    total = sum(m for _, m in rows if m is not None)
    unknown = tuple(name for name, m in rows if m is None)
    by_name = {name: m for name, m in values if isinstance(m, Poly) and not m.is_constant}
    formulas = tuple(by_name)
    formula = None
    if formulas:
        formula = Poly.of(total)
        for name in formulas:
            formula = formula + by_name[name]
    return MacsReport(rows, total, unknown, formula, formulas, tuple(by_name.items()))


def _input_symbols(graph: ModelGraph) -> frozenset[str]:
    """The names the symbolic dims of ``graph``'s inputs use (ONNX ``dim_param``s; none for Keras)."""
    names: set[str] = set()
    for ref in graph.inputs:
        for d in graph.shape_of(ref) or ():
            poly = parse_dim(d)
            if poly is not None:
                names.update(poly.symbols)
    return frozenset(names)


def _symbolic(dim: Any) -> Poly | None:
    """``dim`` as a polynomial in the model's symbols (see ``_SYMBOLS``), else ``None``."""
    allowed = _SYMBOLS.get()
    poly = parse_dim(dim) if allowed else None
    return poly if poly is not None and set(poly.symbols) <= allowed else None


def _number(value: Value | None) -> int | None:
    """A layer's MACs as a number: ``None`` for a formula that still has symbols."""
    if isinstance(value, Poly):
        return value.constant() if value.is_constant else None
    return value


def layer_macs(graph: ModelGraph, layer: Layer) -> int | None:
    """MACs of one layer of ``graph`` (all its calls), ``None`` when unknown."""
    token = _BATCH.set(_batch_dims(graph))
    try:
        return _number(_layer(graph, layer, {}, 0))
    finally:
        _BATCH.reset(token)


def _batch_dims(graph: ModelGraph) -> frozenset[Any] | None:
    """The unknown dims that stand for the batch (counted as 1) in ``graph``; ``None`` for Keras.

    The graph inputs' unknown leading dims, followed forward in graph order: shape
    inference gives an output a fresh symbol where it cannot copy the input's, so the
    output's unknown leading dim is the batch too when the op keeps operand 0's leading
    dim (``Conv``, element-wise ops, a ``Transpose`` that keeps axis 0) or is a
    ``Reshape``/``Flatten`` that keeps every other element (``[b, 12, 12, 2] -> [?, 288]``)."""
    if not (graph.format == "onnx" or graph.kind == "onnx"):
        return None
    dims: set[Any] = set()
    for ref in graph.inputs:
        shape = graph.shape_of(ref)
        if shape and not isinstance(shape[0], int):
            dims.add(shape[0])
    flat: dict[str, int] = {}  # reshaped tensors of unknown shape: elements per sample
    for lay in graph.layers:
        op = lay.operand(0)
        x = op.shape if op is not None else None
        out = lay.output_shapes[0] if lay.output_shapes else None
        if op is not None and op.tensor in flat and out and len(out) == 2 and not isinstance(out[0], int):
            if _contracts(lay, flat[op.tensor]):  # [?, ?] holds b * K: [?, K] x [K, N] = [b, N]
                dims.add(out[0])
            continue
        if not x or isinstance(x[0], int) or x[0] not in dims:
            continue
        if lay.type in ("Reshape", "Flatten") and _same_rest(x, x) and not (out and _same_rest(out, out)):
            outputs = lay.config.get("@outputs")
            if isinstance(outputs, list) and outputs and isinstance(outputs[0], str):
                flat[outputs[0]] = _prod(x[1:])  # type: ignore[arg-type]  # ints (checked)
        elif out and not isinstance(out[0], int) and _keeps_batch(lay, x, out):
            dims.add(out[0])
    return frozenset(dims)


def _contracts(layer: Layer, per_sample: int) -> bool:
    """Whether a 2-D ``MatMul``/``Gemm`` contracts all ``per_sample`` elements of a sample."""
    w = _operand_shape(layer, 1)
    if layer.type not in ("MatMul", "Gemm") or w is None or len(w) != 2 or layer.config.get("transA"):
        return False
    return bool(w[1 if layer.config.get("transB") else 0] == per_sample)


def _keeps_batch(layer: Layer, x: Shape, out: Shape) -> bool:
    """Whether ``layer``'s output leading dim is its operand 0's leading dim."""
    if len(x) != len(out):
        return layer.type in ("Reshape", "Flatten") and _same_rest(x, out)
    if layer.type in _BATCH_KEEPING:
        return not (layer.type == "Gemm" and layer.config.get("transA"))
    if layer.type == "Transpose":
        perm = layer.config.get("perm")
        return isinstance(perm, list) and bool(perm) and int(perm[0]) == 0
    return layer.type in ("Reshape", "Flatten") and _same_rest(x, out)


def _same_rest(x: Shape, out: Shape) -> bool:
    """Whether all dims after the leading one are known and hold as many elements in both shapes."""
    rest_in = [d for d in x[1:] if isinstance(d, int)]
    rest_out = [d for d in out[1:] if isinstance(d, int)]
    return len(rest_in) == len(x) - 1 and len(rest_out) == len(out) - 1 and _prod(rest_in) == _prod(rest_out)


def _is_batch(dim: Any) -> bool:
    """Whether the unknown ``dim`` at a batch position stands for the batch (counted as 1)."""
    allowed = _BATCH.get()
    return allowed is None or dim in allowed


# -- dispatch ------------------------------------------------------------------------------
def _graph_total(graph: ModelGraph, memo: dict[int, Value | None], depth: int) -> Value | None:
    key = id(graph)
    if key in memo:
        return memo[key]
    if depth > MAX_DEPTH:
        return None
    memo[key] = None  # a (malformed) cycle stays unknown instead of recursing forever
    total: Value = 0
    for lay in graph.layers:
        m = _layer(graph, lay, memo, depth + 1)
        if m is None:
            return None  # memo[key] stays None
        total += m
    memo[key] = total
    return total


def _layer(graph: ModelGraph, layer: Layer, memo: dict[int, Value | None], depth: int) -> Value | None:
    try:
        if graph.format == "onnx" or graph.kind == "onnx":
            return _onnx(graph, layer, memo, depth)
        return _keras(graph, layer, memo, depth)
    except _Unknown:
        return None
    except (ArithmeticError, TypeError, ValueError, IndexError, KeyError, AttributeError):
        # A config or shape we do not understand: unknown, not a crash.
        return None


# -- shape helpers ---------------------------------------------------------------------------
def _resolve(shape: Sequence[Any] | None, *, batch_axis: int | None = 0, op_batch: bool = False) -> list[int]:
    """Integer dims; an unknown or symbolic dim at ``batch_axis`` counts as 1 when it is
    the batch (see the module docstring), or always when ``op_batch`` (the op's own
    specification names that axis the batch, as ONNX ``LSTM`` does)."""
    if shape is None:
        raise _Unknown
    out = []
    for i, d in enumerate(shape):
        if isinstance(d, bool):
            raise _Unknown
        if isinstance(d, int) and d >= 0:
            out.append(d)
        elif i == batch_axis and (op_batch or _is_batch(d)):
            out.append(1)
        else:
            raise _Unknown
    return out


def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


def _symbolic_dims(shape: Sequence[Any] | None, *, batch_axis: int | None = 0) -> list[Value]:
    """Like :func:`_resolve`, but while :func:`count_macs` runs a symbolic dim (``seq``,
    ``batch*seq``) becomes a polynomial instead of making the layer unknown.  A batch dim
    (see the module docstring) still counts 1, also inside a product (per sample)."""
    if shape is None:
        raise _Unknown
    out: list[Value] = []
    for i, d in enumerate(shape):
        if isinstance(d, bool):
            raise _Unknown
        if isinstance(d, int) and d >= 0:
            out.append(d)
        elif i == batch_axis and _is_batch(d):
            out.append(1)
        else:
            poly = _symbolic(d)
            if poly is None:
                raise _Unknown
            if i == batch_axis:
                batch = _BATCH.get() or frozenset()
                poly = poly.substitute({name: 1 for name in poly.symbols if name in batch})
            out.append(poly.constant() if poly.is_constant else poly)
    return out


def _dim(value: Any) -> Value | None:
    """One known or symbolic dim (contracted lengths), ``None`` when anonymous or unknown."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    poly = _symbolic(value)
    return poly if poly is not None and not poly.is_constant else None


def _product(values: Sequence[Value]) -> Value:
    out: Value = 1
    for v in values:
        out = out * v
    return out


def _weights(layer: Layer, *roles: str) -> list[Weight]:
    return [w for w in layer.weights if w.role in roles and not w.quantization]


def _weight(layer: Layer, *roles: str) -> Weight:
    ws = _weights(layer, *roles)
    if not ws:
        raise _Unknown
    return ws[0]


# -- Keras -------------------------------------------------------------------------------------
_KERAS_ZERO = (KERAS_ACTIVATION_LAYERS | KERAS_MERGE | INFERENCE_IDENTITY | KERAS_PADDING | KERAS_CROPPING
               | KERAS_UPSAMPLING | KERAS_POOLING | KERAS_GLOBAL_POOLING | KERAS_GLOBAL_POOLING_ALIASES
               | BATCHNORM | KERAS_NORMALIZATION | KERAS_AUGMENTATION | KERAS_IMAGE_ADJUST
               | KERAS_STATEFUL_PREPROCESSING | {
    "InputLayer", "Flatten", "Reshape", "Permute", "RepeatVector", "Identity", "Masking", "SpectralNormalization",
    "Embedding", "Rescaling", "Resizing", "CenterCrop", "Pipeline", "MelSpectrogram", "STFTSpectrogram",
})
"""Keras layers that cost no multiply-accumulates (element-wise, layout, lookup, preprocessing)."""
_TF_ELEMENTWISE = TF_UNARY_OPS | TF_BINARY_OPS
"""Element-wise TensorFlow functions a Keras 2 ``TFOpLambda`` calls: no multiply-accumulate."""
_KERAS_CONV = KERAS_CONV | KERAS_DEPTHWISE
_KERAS_CONV_T = KERAS_CONV_TRANSPOSE | KERAS_DECONVOLUTION
_KERAS_RNN = KERAS_RNN | KERAS_RNN_LEGACY | CUDNN_RNN | RNN_WRAPPERS


def _keras(graph: ModelGraph, layer: Layer, memo: dict[int, Value | None], depth: int) -> Value | None:
    sub = layer.subgraphs.get("model")
    if sub is not None:
        inner = _graph_total(sub, memo, depth + 1)
        if inner is None:
            return None
        return inner * max(1, len(layer.inbound))
    calls = max(1, len(layer.inbound))
    total = 0
    for call in range(calls):
        ins = graph.input_shapes(layer, call) if call < len(layer.inbound) else []
        outs = layer.node_shapes[call] if call < len(layer.node_shapes) else []
        total += _keras_call(layer.type, layer.config, layer, ins, outs)
    return total


def _channels_first(config: dict[str, Any]) -> bool:
    return str(config.get("data_format") or "channels_last") == "channels_first"


def _spatial(shape: Sequence[Any] | None, config: dict[str, Any]) -> list[int]:
    dims = _resolve(shape)
    return dims[2:] if _channels_first(config) else dims[1:-1]


def _first(shapes: Sequence[Any]) -> Any:
    if not shapes:
        raise _Unknown
    return shapes[0]


def _keras_call(cls: str, config: dict[str, Any], layer: Layer, ins: _Shapes, outs: _Shapes) -> int:
    if cls in _KERAS_ZERO or (cls == "TFOpLambda" and config.get("function") in _TF_ELEMENTWISE):
        return 0
    if cls in ("Dense", "QuantizedDense"):
        kernel = _weight(layer, "kernel", "quantized_kernel")
        units = int(config.get("units") or kernel.shape[-1])
        if outs and outs[0] is not None:
            rows = _prod(_resolve(outs[0])[:-1])
        else:
            rows = _prod(_resolve(_first(ins))[:-1])
        n_in = _prod(_resolve(_first(ins))[-1:]) if ins and ins[0] is not None else kernel.shape[0]
        return rows * n_in * units
    if cls in _KERAS_CONV:
        kernel = _weight(layer, "kernel", "depthwise_kernel")
        out = _spatial(_first(outs), config)
        return _prod(out) * _prod(kernel.shape)
    if cls in _KERAS_CONV_T:
        kernel = _weight(layer, "kernel")
        spatial_in = _spatial(_first(ins), config)
        return _prod(spatial_in) * _prod(kernel.shape)
    if cls in KERAS_SEPARABLE:
        dw = _weight(layer, "depthwise_kernel")
        pw = _weight(layer, "pointwise_kernel")
        out = _spatial(_first(outs), config)
        return _prod(out) * (_prod(dw.shape) + _prod(pw.shape))
    if cls in ("LocallyConnected1D", "LocallyConnected2D"):
        return _prod(_weight(layer, "kernel").shape)
    if cls in _KERAS_RNN:
        return _keras_rnn(config, layer, ins)
    if cls in KERAS_CONV_RNN:
        return _keras_conv_rnn(config, layer, ins, outs)
    if cls == "TimeDistributed":
        return _keras_time_distributed(config, layer, ins, outs)
    if cls == "MultiHeadAttention":
        return _keras_mha(layer, ins)
    if cls in ("Attention", "AdditiveAttention"):
        q = _resolve(_first(ins))
        v = _resolve(ins[1]) if len(ins) > 1 else q
        k = _resolve(ins[2]) if len(ins) > 2 else v
        tq, tv = _prod(q[1:-1]), _prod(k[1:-1])
        return tq * tv * q[-1] + tq * tv * v[-1]
    if cls == "EinsumDense":
        kernel = _weight(layer, "kernel")
        return _einsum_cost(str(config["equation"]), [_first(ins), list(kernel.shape)])
    if cls == "Dot":
        return _keras_dot(config, ins, outs)
    return _keras_composite(cls, layer, ins, outs)


def _keras_composite(cls: str, layer: Layer, ins: _Shapes, outs: _Shapes) -> int:
    """keras_hub layers and other layers built of sublayers (:mod:`.macs_keras`)."""
    composite = composite_macs(cls, layer, ins, outs)
    if composite is None:
        raise _Unknown
    return composite


def _keras_rnn(config: dict[str, Any], layer: Layer, ins: _Shapes) -> int:
    x = _first(ins)
    time_major = bool(config.get("time_major"))
    if x is None or len(x) < 3:
        raise _Unknown
    steps = x[0] if time_major else x[1]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise _Unknown
    per_step = 0
    kernels = _weights(layer, "kernel")
    recurrent = _weights(layer, "recurrent_kernel")
    if not kernels:
        raise _Unknown
    for w in kernels + recurrent:
        per_step += _prod(w.shape)
    return steps * per_step


def _keras_conv_rnn(config: dict[str, Any], layer: Layer, ins: _Shapes, outs: _Shapes) -> int:
    x = _resolve(_first(ins))
    steps = x[1]
    kernel = _weight(layer, "kernel")
    recurrent = _weight(layer, "recurrent_kernel")
    n = len(kernel.shape) - 2
    out = _resolve(_first(outs))
    spatial = out[-n - 1:-1] if not _channels_first(config) else out[-n:]
    return steps * _prod(spatial) * (_prod(kernel.shape) + _prod(recurrent.shape))


def _keras_time_distributed(config: dict[str, Any], layer: Layer, ins: _Shapes, outs: _Shapes) -> int:
    inner = config.get("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("class_name"), str):
        raise _Unknown
    x = _first(ins)
    if x is None or len(x) < 2:
        raise _Unknown
    steps = x[1]
    if not isinstance(steps, int) or steps < 0:
        raise _Unknown
    inner_in = [(s[0],) + tuple(s[2:]) if s is not None else None for s in ins]
    inner_out = [(s[0],) + tuple(s[2:]) if s is not None else None for s in outs]
    inner_cfg = inner.get("config")
    if not isinstance(inner_cfg, dict):
        inner_cfg = {}
    return steps * _keras_call(inner["class_name"], inner_cfg, layer, inner_in, inner_out)


def _keras_mha(layer: Layer, ins: _Shapes) -> int:
    q = _resolve(_first(ins))
    v = _resolve(ins[1]) if len(ins) > 1 and ins[1] is not None else q
    k = _resolve(ins[2]) if len(ins) > 2 and ins[2] is not None else v
    kernels = _weights(layer, "kernel")
    if len(kernels) != 4:
        raise _Unknown

    def pick(*words: str) -> Weight | None:
        for w in kernels:
            lname = w.name.lower()
            if any(word in lname for word in words):
                return w
        return None

    picked = [pick("query"), pick("key"), pick("value"), pick("output")]
    named = [w for w in picked if w is not None]
    if len(named) != 4 or len({id(w) for w in named}) != 4:
        named = kernels  # Keras creates them in this order
    wq, wk, wv, wo = named
    tq, tk, tv = _prod(q[1:-1]), _prod(k[1:-1]), _prod(v[1:-1])
    if len(wq.shape) != 3 or len(wv.shape) != 3:
        raise _Unknown
    heads, key_dim, value_dim = wq.shape[1], wq.shape[2], wv.shape[2]
    projections = tq * _prod(wq.shape) + tk * _prod(wk.shape) + tv * _prod(wv.shape) + tq * _prod(wo.shape)
    attention = tq * tk * heads * key_dim + tq * tv * heads * value_dim
    return projections + attention


def _keras_dot(config: dict[str, Any], ins: _Shapes, outs: _Shapes) -> int:
    if len(ins) != 2:
        raise _Unknown
    x = _resolve(ins[0])
    axes = config.get("axes", -1)
    axis = axes[0] if isinstance(axes, (list, tuple)) else axes
    axis = int(axis) % len(x)
    out = _resolve(_first(outs))
    return _prod(out[1:]) * x[axis]


# -- einsum --------------------------------------------------------------------------------
def _einsum_cost(equation: str, shapes: Sequence[Sequence[Any] | None]) -> int:
    """MACs of a two-operand einsum: the product of every index's size (batch
    ellipsis dims included); 0 for one operand; unknown for three or more.

    A symbolic or unknown size is allowed only for the batch index: the first
    index of the first operand (it counts as 1)."""
    eq = equation.replace(" ", "")
    lhs, _, _rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise _Unknown
    if len(terms) == 1:
        return 0
    if len(terms) > 2 or any(s is None for s in shapes):
        raise _Unknown
    batch_letter = terms[0][0] if terms[0] and terms[0][0].isalpha() else None
    sizes: dict[str, int] = {}
    ellipsis_dims: list[int] = []
    for n, (term, shape) in enumerate(zip(terms, shapes, strict=True)):  # lengths checked above
        letters = term.replace("...", "*")
        shape = list(shape)  # type: ignore[arg-type]  # no shape is None (checked above)
        if "*" in letters:
            letters, named, ell_ints = _split_ellipsis(letters, shape, first=n == 0)
            if len(ell_ints) > len(ellipsis_dims):
                ellipsis_dims = [1] * (len(ell_ints) - len(ellipsis_dims)) + ellipsis_dims
            for i, d in enumerate(reversed(ell_ints)):
                j = len(ellipsis_dims) - 1 - i
                ellipsis_dims[j] = max(ellipsis_dims[j], d)
        else:
            named = shape
        if len(letters) != len(named):
            raise _Unknown
        for letter, d in zip(letters, named, strict=True):  # lengths checked above
            if not isinstance(d, int) or isinstance(d, bool):
                if letter != batch_letter or not _is_batch(d):
                    raise _Unknown
                continue
            if letter in sizes and sizes[letter] != d and 1 not in (sizes[letter], d):
                raise _Unknown
            sizes[letter] = max(sizes.get(letter, d), d)
    return _prod(list(sizes.values())) * _prod(ellipsis_dims)


def _split_ellipsis(letters: str, shape: list[Any], *, first: bool) -> tuple[str, list[Any], list[int]]:
    """An operand whose term has an ellipsis (``*`` in ``letters``): ``(letters without
    it, the dims the letters name, the ellipsis dims)``.  An unknown ellipsis dim is
    allowed only as the leading (batch) dim of the first operand, counting 1."""
    pos = letters.index("*")
    n_ell = len(shape) - (len(letters) - 1)
    if n_ell < 0:
        raise _Unknown
    ell = shape[pos:pos + n_ell]
    named = shape[:pos] + shape[pos + n_ell:]
    ell_ints = []
    for i, d in enumerate(ell):
        if isinstance(d, int) and not isinstance(d, bool):
            ell_ints.append(d)
        elif first and pos == 0 and i == 0 and _is_batch(d):
            ell_ints.append(1)  # a leading batch dim
        else:
            raise _Unknown
    return letters.replace("*", ""), named, ell_ints


# -- ONNX --------------------------------------------------------------------------------------
_ONNX_ZERO = frozenset({
    "InputLayer", "Constant", "ConstantOfShape", "Identity", "Cast", "CastLike", "Shape", "Size",
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
    "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND", "Pad", "Tile", "Expand",
    "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "OneHot", "NonZero", "Compress",
    "ReverseSequence", "Trilu", "EyeLike", "Unique", "Range", "Where", "Dropout", "CenterCropPad",
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Sum", "Mean",
    "Max", "Min", "Mod", "Sign", "Floor", "Ceil", "Round", "Erf", "Sin", "Cos", "Tan", "Asin", "Acos",
    "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", "BitwiseNot", "And", "Or", "Xor", "Not", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid",
    "HardSigmoid", "HardSwish", "Tanh", "Softmax", "LogSoftmax", "Hardmax", "Softplus", "Softsign",
    "ThresholdedRelu", "Gelu", "Mish", "Swish", "Clip", "Shrink",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "LpNormalization", "LRN", "MeanVarianceNormalization", "RMSNormalization",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool",
    "MaxRoiPool", "RoiAlign", "MaxUnpool",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "TopK", "CumSum",
    "NonMaxSuppression", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "SequenceConstruct", "SequenceEmpty", "SequenceAt", "SequenceInsert", "SequenceErase",
    "SequenceLength", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement",
    "OptionalHasElement", "StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch",
    "Col2Im", "ImageDecoder", "GridSample", "AffineGrid", "Det", "Binarizer", "LabelEncoder",
    "RotaryEmbedding", "TensorScatter",
    # com.microsoft element-wise and layout ops
    "com.microsoft.Gelu", "com.microsoft.FastGelu", "com.microsoft.BiasGelu", "com.microsoft.QuickGelu",
    "com.microsoft.SkipLayerNormalization", "com.microsoft.SimplifiedLayerNormalization",
    "com.microsoft.SkipSimplifiedLayerNormalization", "com.microsoft.BiasAdd", "com.microsoft.BiasSoftmax",
    "com.microsoft.QLinearAdd", "com.microsoft.QLinearMul", "com.microsoft.QLinearSigmoid",
    "com.microsoft.QLinearLeakyRelu", "com.microsoft.QLinearSoftmax", "com.microsoft.QLinearAveragePool",
    "com.microsoft.QLinearGlobalAveragePool", "com.microsoft.QLinearConcat", "com.microsoft.QuantizeLinear",
    "com.microsoft.DequantizeLinear", "com.microsoft.DynamicQuantizeLinear", "com.microsoft.NhwcMaxPool",
    "com.microsoft.RotaryEmbedding",
})
_ONNX_CONV = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3), "DeformConv": (0, 1),
              "com.microsoft.FusedConv": (0, 1), "com.microsoft.NhwcConv": (0, 1),
              "com.microsoft.QLinearConv": (0, 3), "com.microsoft.NhwcFusedConv": (0, 1)}
_ONNX_MATMUL = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3),
                "com.microsoft.FusedMatMul": (0, 1), "com.microsoft.DynamicQuantizeMatMul": (0, 1),
                "com.microsoft.MatMulIntegerToFloat": (0, 1), "com.microsoft.MatMulInteger16": (0, 1)}
_ONNX_GEMM = {"Gemm": (0, 1), "com.microsoft.QGemm": (0, 3)}


def _operand_shape(layer: Layer, index: int) -> list[Any] | None:
    op = layer.operand(index)
    return list(op.shape) if op is not None and op.shape is not None else None


def _operand_value(layer: Layer, index: int) -> Any:
    op = layer.operand(index)
    return op.value if op is not None else None


def _present(layer: Layer, index: int) -> bool:
    op = layer.operand(index)
    return op is not None and op.present


def _onnx(graph: ModelGraph, layer: Layer, memo: dict[int, Value | None], depth: int) -> Value | None:
    op = layer.type
    own: Value
    if op in _ONNX_ZERO:
        own = 0
    elif op in _ONNX_CONV:
        own = _onnx_conv(layer, *_ONNX_CONV[op])
    elif op == "ConvTranspose":
        x = _symbolic_dims(_operand_shape(layer, 0))
        w = _resolve(_operand_shape(layer, 1), batch_axis=None)
        own = _product(x) * _prod(w[1:])
    elif op in _ONNX_MATMUL:
        own = _onnx_matmul(layer, *_ONNX_MATMUL[op])
    elif op in _ONNX_GEMM:
        own = _onnx_gemm(layer, *_ONNX_GEMM[op])
    elif op == "com.microsoft.MatMulNBits":
        k, n = int(layer.config["K"]), int(layer.config["N"])
        a = _symbolic_dims(_operand_shape(layer, 0))
        own = _product(a[:-1]) * k * n
    elif op == "Einsum":
        shapes = [_operand_shape(layer, i) for i in range(len(layer.operands))]
        own = _einsum_cost(str(layer.config["equation"]), shapes)
    elif op in ("LSTM", "GRU", "RNN"):
        own = _onnx_rnn(layer)
    elif op == "Attention":
        own = _onnx_attention(layer)
    elif op in ("If", "Loop", "Scan"):
        return _onnx_control(graph, layer, memo, depth)
    elif "function" in layer.subgraphs:
        return _graph_total(layer.subgraphs["function"], memo, depth + 1)
    else:
        raise _Unknown
    return own


def _onnx_conv(layer: Layer, xi: int, wi: int) -> Value:
    out = layer.output_shapes[0] if layer.output_shapes else None
    out_dims = _product(_symbolic_dims(out))
    w = _operand_shape(layer, wi)
    if w is not None:
        return out_dims * _prod(_resolve(w, batch_axis=None)[1:])
    kernel = layer.config.get("kernel_shape")
    x = _operand_shape(layer, xi)
    if not kernel or x is None:
        raise _Unknown
    cin = _resolve(x)[1]
    group = int(layer.config.get("group", 1) or 1)
    return out_dims * (cin // group) * _prod(kernel)


def _onnx_matmul(layer: Layer, ai: int, bi: int) -> Value:
    out = layer.output_shapes[0] if layer.output_shapes else None
    a = _operand_shape(layer, ai)
    b = _operand_shape(layer, bi)
    k: Value | None = None
    if a is not None and len(a) >= 1 and isinstance(a[-1], int):
        k = a[-1]
    elif b is not None and len(b) >= 1:
        kd = b[-2] if len(b) >= 2 else b[0]
        if isinstance(kd, int):
            k = kd
    if k is None and a is not None and len(a) >= 1:
        k = _dim(a[-1])  # a symbolic contracted length: attention's scores x values (seq)
    if k is None:
        raise _Unknown
    if out is not None:
        try:
            return _product(_symbolic_dims(out)) * k
        except _Unknown:
            pass  # an exporter's own names in a declared output type (MatMul652_dim_0): from the operands
    # Output type not inferred (e.g. a declared output type that conflicts), or anonymous:
    # [..., M, K] x [K, N] -> [..., M, N] when B is a plain matrix.
    if a is None or b is None or len(b) != 2 or len(a) < 1:
        raise _Unknown
    return _product(_symbolic_dims(a[:-1])) * k * _resolve(b, batch_axis=None)[1]


def _onnx_gemm(layer: Layer, ai: int, bi: int) -> Value:
    out = layer.output_shapes[0] if layer.output_shapes else None
    a = _operand_shape(layer, ai)
    b = _operand_shape(layer, bi)
    k: Value | None = None
    if a is not None and len(a) == 2:
        kd = a[0] if layer.config.get("transA") else a[1]
        if isinstance(kd, int):
            k = kd
    if k is None and b is not None and len(b) == 2:
        kd = b[1] if layer.config.get("transB") else b[0]
        if isinstance(kd, int):
            k = kd
    if k is None or out is None:
        raise _Unknown
    return _product(_symbolic_dims(out)) * k


def _onnx_rnn(layer: Layer) -> int:
    x = _operand_shape(layer, 0)
    w = _operand_shape(layer, 1)
    r = _operand_shape(layer, 2)
    if x is None or w is None or r is None or len(x) != 3:
        raise _Unknown
    layout = int(layer.config.get("layout", 0) or 0)
    seq_axis, batch_axis = (1, 0) if layout else (0, 1)
    dims = _resolve(x, batch_axis=batch_axis, op_batch=True)
    return dims[seq_axis] * dims[batch_axis] * (_prod(_resolve(w, batch_axis=None))
                                                 + _prod(_resolve(r, batch_axis=None)))


def _onnx_attention(layer: Layer) -> int:
    q, k, v = (_operand_shape(layer, i) for i in range(3))
    if q is None or k is None or v is None:
        raise _Unknown
    if len(q) == 4:
        qd, kd, vd = _resolve(q), _resolve(k), _resolve(v)
        batch, heads, tq, hd = qd
        tk, hv = kd[2], vd[3]
    elif len(q) == 3:
        qd, kd, vd = _resolve(q), _resolve(k), _resolve(v)
        heads = int(layer.config["q_num_heads"])
        kv_heads = int(layer.config["kv_num_heads"])
        batch, tq = qd[0], qd[1]
        hd, tk, hv = qd[2] // heads, kd[1], vd[2] // kv_heads
    else:
        raise _Unknown
    if _present(layer, 4):
        past = _operand_shape(layer, 4)
        if past is None or len(past) != 4:
            raise _Unknown
        tk += _resolve(past)[2]
    return batch * heads * tq * tk * (hd + hv)


def _onnx_control(graph: ModelGraph, layer: Layer, memo: dict[int, Value | None],
                  depth: int) -> Value | None:
    op = layer.type
    if op == "If":
        branches = {}
        for key in ("then_branch", "else_branch"):
            if key not in layer.subgraphs:
                return None
            branches[key] = _graph_total(layer.subgraphs[key], memo, depth + 1)
        cond = _operand_value(layer, 0)
        if cond is not None and not isinstance(cond, list):
            chosen = branches["then_branch" if cond else "else_branch"]
            return chosen
        known = [m for m in branches.values() if isinstance(m, int)]
        if len(known) != len(branches):
            return None  # a branch unknown, or a formula: no upper bound to take
        return max(known)
    body = layer.subgraphs.get("body")
    if body is None:
        return None
    inner = _graph_total(body, memo, depth + 1)
    if inner is None:
        return None
    if op == "Loop":
        trips = _operand_value(layer, 0)
        if isinstance(trips, list):
            trips = trips[0] if len(trips) == 1 else None
        if not isinstance(trips, int) or trips < 0:
            return None if inner else 0
        return inner * trips
    # Scan (opset >= 9): the last num_scan_inputs operands are scanned along their axis.
    ops = layer.operands
    if ops and ops[0].name == "sequence_lens":
        return None if inner else 0
    n_scan = int(layer.config.get("num_scan_inputs", 0) or 0)
    if n_scan <= 0 or n_scan > len(ops):
        return None
    axes = layer.config.get("scan_input_axes") or [0] * n_scan
    first = ops[len(ops) - n_scan]
    shape = first.shape
    if shape is None:
        return None if inner else 0
    axis = int(axes[0]) % len(shape)
    steps = shape[axis]
    if not isinstance(steps, int):
        return None if inner else 0
    return inner * steps
