"""Output shapes of standard Keras layers, computed from their configs alone.

A legacy ``.h5`` file written by Keras 2 records the input shape of a model and the
config of every layer, but not the shape of any tensor in between.  Keras itself
finds those shapes by *running* each layer on a symbolic tensor; ``inspector`` must
not run anything from a file, so this module re-derives them with the arithmetic
each Keras layer uses in its ``compute_output_shape`` (convolution lengths, pooling
windows, broadcasting of merge layers, ``Reshape`` with ``-1`` …).

Two entry points:

* :func:`infer` — the output shapes of one call of one layer, given its class name,
  its config dict (Keras 3 or Keras 2 style) and the shapes it was called on.
* :func:`fill_shapes` — walk a :class:`~inspector.ir.ModelGraph` in layer order and
  fill every output shape a loader could not read from the file, nested models
  included.

Shapes are tuples of ``int`` (a known size), ``None`` (unknown, e.g. the batch) or
``str`` (a symbolic size such as ``"N"``).  A dimension that is only copied keeps
its symbol; a dimension computed from a symbol becomes ``None``.  A rule that
cannot know the answer (an unknown input shape where it matters, a config it does
not understand) yields ``None`` rather than a guess: ``?`` in a table is honest,
a wrong number is not.

Rules follow Keras 3 (``keras/src``).  Keras 2 (``tf_keras``) agrees except where a
non-batch size is unknown (see :func:`infer`, argument ``keras_version``); the
places where Keras 2 configs use other keys (``batch_input_shape``, ``time_major``,
``dim_ordering``) are handled where they are read.  ``tests/test_keras_shapes.py``
checks every rule against both Keras versions as an oracle.
"""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from ..ir import Dim, Inbound, Layer, ModelGraph, Shape
from ..vocab import (
    BATCHNORM,
    BATCHNORM_LEGACY,
    INFERENCE_IDENTITY,
    KERAS_ACTIVATION_LAYERS,
    KERAS_AUGMENTATION,
    KERAS_CONV,
    KERAS_CONV_TRANSPOSE,
    KERAS_DECONVOLUTION,
    KERAS_DEPTHWISE,
    KERAS_GLOBAL_POOLING,
    KERAS_GLOBAL_POOLING_ALIASES,
    KERAS_IMAGE_ADJUST,
    KERAS_LOCALLY_CONNECTED,
    KERAS_NORMALIZATION,
    KERAS_POOLING,
    KERAS_SEPARABLE,
    RESIZING_AUGMENTATION,
    TF_BINARY_OPS,
    TF_UNARY_OPS,
)

__all__ = ["MAX_NESTING", "fill_shapes", "has_rule", "infer", "keras_major", "supported_layers"]

MAX_NESTING = 64
"""How deep nested models are followed; deeper ones get unknown shapes and a note."""

_Rule = Callable[[dict[str, Any], list["Shape | None"]], Any]
_RULES: dict[str, _Rule] = {}

_KERAS_MAJOR: contextvars.ContextVar[int] = contextvars.ContextVar("keras_major", default=3)
"""The Keras major version whose conventions the current :func:`infer` call follows."""


class _Unknown(Exception):
    """Raised inside a rule when the output shape cannot be known."""


def _rule(*names: str) -> Callable[[_Rule], _Rule]:
    """Register a shape rule under one or more Keras class names."""

    def register(fn: _Rule) -> _Rule:
        for name in names:
            _RULES[name] = fn
        return fn

    return register


# -- public API -------------------------------------------------------------------------


def has_rule(class_name: str) -> bool:
    """True when :func:`infer` knows the Keras layer class ``class_name``."""
    return isinstance(class_name, str) and class_name in _RULES


def supported_layers() -> list[str]:
    """Every Keras class name with a shape rule, sorted."""
    return sorted(_RULES)


def infer(
    class_name: str,
    config: dict[str, Any] | None,
    input_shapes: Sequence[Shape | None],
    *,
    keras_version: int | str | None = None,
) -> list[Shape] | None:
    """Output shapes (one tuple per output tensor) of one call of a Keras layer.

    ``class_name`` is the Keras class (``"Conv2D"``), ``config`` the layer's config
    dict as a Keras 3 ``config.json`` or a Keras 2 ``model_config`` stores it, and
    ``input_shapes`` the shapes of the tensors the call consumed, in argument order
    (``[query, value, key]`` for attention layers).  Returns ``None`` when no rule
    exists for the class or when the result cannot be known.  Never raises.

    ``keras_version`` (``2``, ``3`` or a version string such as ``"2.15.0"``; default
    3) picks the conventions of the Keras that wrote the file where the two differ.
    They differ only where a non-batch dimension is unknown, and in one Keras 3 bug:

    * Keras 2 gets shapes by running TensorFlow's shape inference, so merge layers
      broadcast an unknown size against a known one to the known one and
      ``Concatenate`` fills unknown non-axis sizes from the other inputs; Keras 3
      keeps them unknown.  Keras 2 ``UpSampling2D`` loses both spatial sizes when
      either is unknown.
    * Keras 3 ``EinsumDense`` with ``...`` on the left over two or more dimensions
      reports those dimensions in reverse order (what its ``summary()`` prints, so
      reproduced here); Keras 2 reports the true order.

    >>> infer("Conv2D", {"filters": 8, "kernel_size": [3, 3], "strides": [2, 2],
    ...                  "padding": "same"}, [(None, 32, 32, 3)])
    [(None, 16, 16, 8)]
    """
    rule = _RULES.get(class_name) if isinstance(class_name, str) else None
    if rule is None:
        return None
    cfg = config if isinstance(config, dict) else {}
    token = _KERAS_MAJOR.set(keras_major(keras_version))
    try:
        shapes = [_as_shape(s) for s in input_shapes]
        return _as_outputs(rule(cfg, shapes))
    except (_Unknown, ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError, RecursionError):
        # A config this module does not understand (or a hostile one): unknown, not a crash.
        return None
    finally:
        _KERAS_MAJOR.reset(token)


def keras_major(version: int | str | None) -> int:
    """The major version in ``2``, ``"2.15.0"``, ``"3.1.1"``; 3 when unknown."""
    if _is_int(version):
        return 2 if version < 3 else 3
    if isinstance(version, str):
        m = re.match(r"\s*(\d+)", version)
        if m:
            return 2 if int(m.group(1)) < 3 else 3
    return 3


def _keras2() -> bool:
    return _KERAS_MAJOR.get() == 2


# -- small helpers ----------------------------------------------------------------------


def _is_int(d: object) -> TypeGuard[int]:
    return isinstance(d, int) and not isinstance(d, bool)


def _as_dim(d: object) -> Dim:
    if d is None or isinstance(d, str):
        return d
    if _is_int(d):
        return int(d) if d >= 0 else None
    if isinstance(d, float) and d.is_integer() and d >= 0:
        return int(d)
    raise _Unknown(f"not a dimension: {d!r}")


def _as_shape(s: object) -> Shape | None:
    if s is None:
        return None
    if isinstance(s, (list, tuple)):
        return tuple(_as_dim(d) for d in s)
    raise _Unknown(f"not a shape: {s!r}")


def _as_outputs(result: object) -> list[Shape] | None:
    """Normalize what a rule returned: one shape or a (nested) list of shapes."""
    if result is None:
        return None
    if isinstance(result, tuple) and all(d is None or isinstance(d, (int, str)) for d in result):
        outs: list[Shape] = [result]
    else:
        outs = []
        stack = [result]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple) and all(d is None or isinstance(d, (int, str)) for d in item):
                outs.append(item)
            elif isinstance(item, (list, tuple)):
                stack.extend(reversed(item))
            else:
                return None
    for shape in outs:
        for d in shape:
            if _is_int(d) and d < 0:
                return None
    return outs or None


def _num(d: Dim) -> int | None:
    """``d`` when it is a known size, else ``None`` (symbols cannot take part in arithmetic)."""
    return d if _is_int(d) else None


def _first(ins: list[Shape | None]) -> Shape:
    if not ins or ins[0] is None:
        raise _Unknown("input shape unknown")
    return ins[0]


def _all(ins: list[Shape | None], *, at_least: int = 1) -> list[Shape]:
    if len(ins) < at_least or any(s is None for s in ins):
        raise _Unknown("an input shape is unknown")
    return ins  # type: ignore[return-value]


def _int(value: object) -> int:
    if _is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Unknown(f"not an integer: {value!r}")


def _ints(value: object, n: int) -> tuple[int, ...]:
    """An int or a list of ints as a tuple of ``n`` ints (Keras ``standardize_tuple``)."""
    if _is_int(value) or isinstance(value, float):
        return (_int(value),) * n
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise _Unknown("tuple of the wrong length")  # e.g. a Conv1D called on an image
        return tuple(_int(v) for v in value)
    raise _Unknown(f"not an int tuple: {value!r}")


def _pairs(value: object, n: int) -> tuple[tuple[int, int], ...]:
    """Padding/cropping amounts as ``n`` ``(before, after)`` pairs (int, per-axis or pairs)."""
    if _is_int(value):
        v = _int(value)
        return ((v, v),) * n
    if isinstance(value, (list, tuple)):
        if n == 1 and len(value) == 2 and all(_is_int(v) for v in value):
            return ((_int(value[0]), _int(value[1])),)
        if len(value) != n:
            raise _Unknown("padding of the wrong length")
        out = []
        for item in value:
            if _is_int(item):
                out.append((_int(item), _int(item)))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((_int(item[0]), _int(item[1])))
            else:
                raise _Unknown("bad padding")
        return tuple(out)
    raise _Unknown("bad padding")


def _channels_first(cfg: dict[str, Any]) -> bool:
    fmt = cfg.get("data_format")
    if fmt is None and cfg.get("dim_ordering") == "th":  # Keras 1 spelling
        return True
    return fmt == "channels_first"


def _split(shape: Shape, channels_first: bool) -> tuple[Dim, list[Dim], Dim]:
    """``(batch, spatial dims, channels)`` of an N-d image-like shape."""
    if len(shape) < 3:
        raise _Unknown("rank too small")
    if channels_first:
        return shape[0], list(shape[2:]), shape[1]
    return shape[0], list(shape[1:-1]), shape[-1]


def _join(batch: Dim, spatial: Sequence[Dim], channels: Dim, channels_first: bool) -> Shape:
    if channels_first:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def _nested(cfg: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    """``(class_name, config)`` of a layer serialized inside a config (wrappers)."""
    inner = cfg.get(key)
    if not isinstance(inner, dict) or not isinstance(inner.get("class_name"), str):
        raise _Unknown(f"no nested {key}")
    inner_cfg = inner.get("config")
    return inner["class_name"], inner_cfg if isinstance(inner_cfg, dict) else {}


def _infer_or_unknown(class_name: str, cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    rule = _RULES.get(class_name)
    if rule is None:
        raise _Unknown(f"no rule for {class_name}")
    out = _as_outputs(rule(cfg, ins))
    if out is None:
        raise _Unknown(f"{class_name}: unknown")
    return out


# -- input -------------------------------------------------------------------------------


@_rule("InputLayer")
def _input_layer(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    for key in ("batch_shape", "batch_input_shape"):
        shape = cfg.get(key)
        if isinstance(shape, (list, tuple)):
            return _as_shape(shape)  # type: ignore[return-value]
    shape = cfg.get("shape", cfg.get("input_shape"))
    if isinstance(shape, (list, tuple)):
        return (_as_dim(cfg.get("batch_size")), *_as_shape(shape))  # type: ignore[misc]
    return _first(ins)


# -- shape-preserving layers -------------------------------------------------------------


_SAME_SHAPE = sorted(
    KERAS_ACTIVATION_LAYERS | BATCHNORM | BATCHNORM_LEGACY | KERAS_NORMALIZATION | INFERENCE_IDENTITY
    | {"Masking", "Identity", "Rescaling", "Normalization"}
    | (KERAS_AUGMENTATION - RESIZING_AUGMENTATION) | KERAS_IMAGE_ADJUST
    # element-wise helpers of keras.applications (ConvNeXt)
    | {"LayerScale", "StochasticDepth"}
)
"""Layers whose output shape is their input shape (activations, normalization, regularization,
shape-keeping preprocessing)."""


@_rule(*_SAME_SHAPE)
def _same(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _first(ins)


@_rule("RandomHeight")  # Keras 2: a random height per batch
def _random_height(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = list(_first(ins))
    x[-3] = None
    return tuple(x)


@_rule("RandomWidth")  # Keras 2
def _random_width(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = list(_first(ins))
    x[-2] = None
    return tuple(x)


# -- dense ---------------------------------------------------------------------------------


@_rule("Dense")
def _dense(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    if not x:
        raise _Unknown("scalar input")
    return (*x[:-1], _int(cfg["units"]))


_EINSUM = re.compile(r"^([a-zA-Z]*|\.\.\.[a-zA-Z]*|[a-zA-Z]*\.\.\.),([a-zA-Z]+)"
                     r"->([a-zA-Z]*|\.\.\.[a-zA-Z]*|[a-zA-Z]*\.\.\.)$")


@_rule("EinsumDense")
def _einsum_dense(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    """Keras' ``_analyze_einsum_string``: batch + the partial ``output_shape`` (with
    the elided ``...`` dimensions put back); dimensions left ``None`` stay ``None``."""
    x = _first(ins)
    equation = str(cfg["equation"]).replace(" ", "")
    m = _EINSUM.match(equation)
    if not m:
        raise _Unknown("unsupported equation")
    in_spec, _, out_spec = m.groups()
    partial = cfg.get("output_shape")
    partial = [partial] if _is_int(partial) else list(partial or [])
    out: list[Dim] = [x[0], *(_as_dim(d) for d in partial)]
    left = in_spec.startswith("...")
    right = in_spec.endswith("...") and not left
    elided = len(x) - len(in_spec.replace("...", ""))
    if left and elided > 0:
        if _keras2():
            out[1:1] = x[1:elided]
        else:
            for i in range(1, elided):
                out.insert(1, x[i])  # Keras 3 reverses these dimensions (see infer)
    elif right and elided > 0:
        out.extend(x[len(x) - elided:])
    if "..." not in in_spec and len(in_spec) != len(x):
        raise _Unknown("equation rank does not match the input")
    if len(out) != len(out_spec.replace("...", "")) + (max(elided, 0) if (left or right) else 0):
        raise _Unknown("output_shape does not match the equation")
    return tuple(out)


@_rule("Embedding")
def _embedding(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    # Keras 2's ``input_length`` only shapes the implied Input of a Sequential
    # (``batch_input_shape``); a call on a tensor keeps the tensor's sizes.
    return (*_first(ins), _int(cfg["output_dim"]))


@_rule("Lambda")
def _lambda(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    """Only a literal ``output_shape`` list is used; the function is never looked at."""
    declared = cfg.get("output_shape")
    if not isinstance(declared, (list, tuple)) or not all(d is None or _is_int(d) for d in declared):
        raise _Unknown("Lambda without a literal output_shape")
    return (_first(ins)[0], *(_as_dim(d) for d in declared))


# -- convolution --------------------------------------------------------------------------


def _padding(cfg: dict[str, Any]) -> str:
    pad = str(cfg.get("padding", "valid")).lower()
    if pad not in ("valid", "same", "causal"):
        raise _Unknown(f"padding {pad!r}")
    return pad


def _conv_length(n: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> int | None:
    """Output length of a convolution or pooling window (Keras ``conv_output_length``)."""
    n = _num(n)
    if n is None:
        return None
    if stride <= 0 or kernel <= 0 or dilation <= 0:
        raise _Unknown("non-positive stride, kernel or dilation")
    if padding in ("same", "causal"):
        return (n - 1) // stride + 1
    out = (n - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        raise _Unknown("output would be empty")
    return out


def _deconv_length(n: Dim, kernel: int, stride: int, padding: str, output_padding: int | None,
                   dilation: int) -> int | None:
    """Output length of a transposed convolution (Keras ``deconv_output_length``)."""
    n = _num(n)
    if n is None:
        return None
    kernel = (kernel - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(kernel, stride) - kernel
        return (n - 1) * stride + kernel + output_padding
    if padding == "same":
        if output_padding is None:
            return n * stride
        return (n - 1) * stride + kernel % 2 + output_padding
    raise _Unknown(f"padding {padding!r}")


def _window(cfg: dict[str, Any], rank: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], str]:
    kernel = _ints(cfg["kernel_size"], rank)
    strides = _ints(cfg.get("strides", 1), rank)
    dilation = _ints(cfg.get("dilation_rate", 1), rank)
    return kernel, strides, dilation, _padding(cfg)


def _conv_like(cfg: dict[str, Any], x: Shape, out_channels: Dim) -> Shape:
    cf = _channels_first(cfg)
    batch, spatial, _ = _split(x, cf)
    kernel, strides, dilation, pad = _window(cfg, len(spatial))
    out = [_conv_length(n, kernel[i], strides[i], pad, dilation[i]) for i, n in enumerate(spatial)]
    return _join(batch, out, out_channels, cf)


@_rule(*sorted(KERAS_CONV | KERAS_SEPARABLE | KERAS_LOCALLY_CONNECTED))
def _conv(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _conv_like(cfg, _first(ins), _int(cfg["filters"]))


@_rule(*sorted(KERAS_DEPTHWISE))
def _depthwise(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    channels = _split(x, _channels_first(cfg))[2]
    c = _num(channels)
    if c is None:
        raise _Unknown("channels unknown")
    return _conv_like(cfg, x, c * _int(cfg.get("depth_multiplier", 1)))


@_rule(*sorted(KERAS_CONV_TRANSPOSE | KERAS_DECONVOLUTION))
def _conv_transpose(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    cf = _channels_first(cfg)
    batch, spatial, _ = _split(x, cf)
    rank = len(spatial)
    kernel, strides, dilation, pad = _window(cfg, rank)
    op = cfg.get("output_padding")
    output_padding: tuple[int | None, ...] = (None,) * rank if op is None else _ints(op, rank)
    out = [
        _deconv_length(n, kernel[i], strides[i], pad, output_padding[i], dilation[i])
        for i, n in enumerate(spatial)
    ]
    return _join(batch, out, _int(cfg["filters"]), cf)


# -- pooling ------------------------------------------------------------------------------


@_rule(*sorted(KERAS_POOLING))
def _pooling(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    cf = _channels_first(cfg)
    batch, spatial, channels = _split(x, cf)
    rank = len(spatial)
    pool = _ints(cfg.get("pool_size", 2), rank)
    strides = pool if cfg.get("strides") is None else _ints(cfg["strides"], rank)
    pad = _padding(cfg)
    if pad == "causal":
        raise _Unknown("causal pooling")
    out = [_conv_length(n, pool[i], strides[i], pad) for i, n in enumerate(spatial)]
    return _join(batch, out, channels, cf)


@_rule(*sorted(KERAS_GLOBAL_POOLING | KERAS_GLOBAL_POOLING_ALIASES))
def _global_pooling(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    cf = _channels_first(cfg)
    batch, spatial, channels = _split(x, cf)
    if cfg.get("keepdims"):
        return _join(batch, [1] * len(spatial), channels, cf)
    return (batch, channels)


@_rule("AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
       "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D")
def _adaptive_pooling(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    cf = _channels_first(cfg)
    batch, spatial, channels = _split(x, cf)
    return _join(batch, _ints(cfg["output_size"], len(spatial)), channels, cf)


# -- merging ------------------------------------------------------------------------------


def _broadcast_tail(a: Shape, b: Shape) -> Shape:
    """Keras ``Merge._compute_elemwise_op_output_shape`` (non-batch dims)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return a
    out = list(a[: len(a) - len(b)])
    tf_rules = _keras2()
    for i, j in zip(a[len(a) - len(b):], b, strict=True):  # the tail of a has len(b) dims
        if tf_rules and (i is None or j is None):
            # TensorFlow: an unknown size broadcast against k > 1 must be k.
            known = j if i is None else i
            out.append(None if known is None or known == 1 else known)
        elif i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1:
            out.append(i)
        elif i == j:
            out.append(i)
        elif isinstance(i, str) or isinstance(j, str):
            out.append(None)
        else:
            raise _Unknown("incompatible shapes")
    return tuple(out)


@_rule("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _elementwise(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    shapes = _all(ins)
    out = shapes[0][1:]
    for s in shapes[1:]:
        out = _broadcast_tail(out, s[1:])
    batches = {s[0] for s in shapes} - {None}
    return ((batches.pop() if len(batches) == 1 else None), *out)


@_rule("Concatenate")
def _concatenate(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    shapes = _all(ins)
    rank = len(shapes[0])
    axis = _int(cfg.get("axis", -1))
    if not -rank <= axis < rank or any(len(s) != rank for s in shapes):
        raise _Unknown("bad concatenation axis")
    out = list(shapes[0])
    if _keras2():  # TensorFlow merges the other sizes across inputs
        for s in shapes[1:]:
            # every shape has rank dims (checked above)
            out = [d if d is not None else e for d, e in zip(out, s, strict=True)]
    total: int | None = 0
    for s in shapes:
        n = _num(s[axis])
        total = None if n is None or total is None else total + n
    out[axis] = total
    return tuple(out)


@_rule("Dot")
def _dot(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    a, b = (list(s) for s in _all(ins, at_least=2)[:2])
    axes = cfg.get("axes", -1)
    if _is_int(axes):
        axes = [axes % len(a), axes % len(b)] if axes < 0 else [axes, axes]
    axes = _ints(axes, 2)
    a.pop(axes[0])
    b.pop(axes[1])
    b.pop(0)
    out = a + b
    if len(out) == 1:
        out.append(1)
    return tuple(out)


# -- attention ----------------------------------------------------------------------------


@_rule("Attention", "AdditiveAttention")
def _attention(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    query, value = _all(ins, at_least=2)[:2]
    return (*query[:-1], value[-1])


@_rule("MultiHeadAttention")
def _multi_head_attention(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    query = _first(ins)
    declared = cfg.get("output_shape")
    if declared is None or declared == []:
        return query
    tail = (declared,) if _is_int(declared) else tuple(declared)
    return (*query[:-1], *(_as_dim(d) for d in tail))


@_rule("GroupedQueryAttention", "GroupQueryAttention")
def _grouped_query_attention(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _first(ins)


# -- reshaping ----------------------------------------------------------------------------


@_rule("Flatten")
def _flatten(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    rest = [_num(d) for d in x[1:]]
    size = None if any(d is None for d in rest) else math.prod(rest)  # type: ignore[arg-type]
    return (x[0], size)


@_rule("Reshape")
def _reshape(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    target = [_int(d) if d is not None else None for d in cfg["target_shape"]]
    if sum(1 for d in target if d == -1) > 1 or any(d is not None and d < -1 for d in target):
        raise _Unknown("bad target_shape")
    rest = [_num(d) for d in x[1:]]
    if any(d is None for d in rest) or any(d is None for d in target):
        return (x[0], *(None if d == -1 else d for d in target))
    size = math.prod(rest)  # type: ignore[arg-type]
    if -1 in target:
        known = math.prod(d for d in target if d != -1)  # type: ignore[misc]
        if known == 0 or size % known:
            raise _Unknown("sizes do not divide")
        target = [size // known if d == -1 else d for d in target]
    elif math.prod(target) != size:  # type: ignore[arg-type]
        raise _Unknown("sizes differ")
    return (x[0], *target)


@_rule("Permute")
def _permute(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    dims = [_int(d) for d in cfg["dims"]]
    if sorted(dims) != list(range(1, len(x))):
        raise _Unknown("dims is not a permutation")
    return (x[0], *(x[d] for d in dims))


@_rule("RepeatVector")
def _repeat_vector(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    if len(x) != 2:
        raise _Unknown("RepeatVector needs a 2-d input")
    return (x[0], _int(cfg["n"]), x[1])


def _pad_or_crop(cfg: dict[str, Any], ins: list[Shape | None], key: str, sign: int, rank: int) -> Shape:
    x = _first(ins)
    if len(x) != rank + 2:
        raise _Unknown("wrong input rank")
    cf = _channels_first(cfg)
    batch, spatial, channels = _split(x, cf)
    amounts = _pairs(cfg.get(key, 1), rank)
    out: list[Dim] = []
    for n, (a, b) in zip(spatial, amounts, strict=True):  # _pairs gives one pair per spatial dim
        m = _num(n)
        if m is None:
            out.append(None)
            continue
        size = m + sign * (a + b)
        if size <= 0 and sign < 0:
            raise _Unknown("cropped to nothing")
        out.append(size)
    return _join(batch, out, channels, cf)


@_rule("ZeroPadding1D")
def _zero_padding1d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "padding", +1, 1)


@_rule("ZeroPadding2D")
def _zero_padding2d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "padding", +1, 2)


@_rule("ZeroPadding3D")
def _zero_padding3d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "padding", +1, 3)


@_rule("Cropping1D")
def _cropping1d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "cropping", -1, 1)


@_rule("Cropping2D")
def _cropping2d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "cropping", -1, 2)


@_rule("Cropping3D")
def _cropping3d(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _pad_or_crop(cfg, ins, "cropping", -1, 3)


@_rule("UpSampling1D", "UpSampling2D", "UpSampling3D")
def _up_sampling(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    cf = _channels_first(cfg)
    batch, spatial, channels = _split(x, cf)
    size = _ints(cfg.get("size", 2), len(spatial))
    out = [None if (m := _num(n)) is None else m * s for n, s in zip(spatial, size, strict=True)]
    if _keras2() and len(spatial) == 2 and None in out:
        out = [None, None]  # Keras 2 resizes with a dynamic size tensor
    return _join(batch, out, channels, cf)


# -- image preprocessing ------------------------------------------------------------------


@_rule("Resizing", "CenterCrop", "RandomCrop")
def _resize(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = list(_first(ins))
    if len(x) < 3:
        raise _Unknown("not an image")
    h, w = (-2, -1) if _channels_first(cfg) else (-3, -2)
    x[h] = _int(cfg["height"])
    x[w] = _int(cfg["width"])
    return tuple(x)


# -- categorical preprocessing ------------------------------------------------------------


@_rule("CategoryEncoding")
def _category_encoding(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    depth = _int(cfg["num_tokens"])
    if not x:
        return (depth,)
    if cfg.get("output_mode", "multi_hot") == "one_hot" and (x[-1] != 1 or len(x) == 1):
        return (*x, depth)
    return (*x[:-1], depth)


@_rule("Discretization")
def _discretization(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    mode = cfg.get("output_mode", "int")
    if mode == "int":
        return x
    boundaries = cfg.get("bin_boundaries")
    depth = len(boundaries) + 1 if isinstance(boundaries, list) else _int(cfg["num_bins"])
    if mode == "one_hot":
        if x and x[-1] == 1 and len(x) > 1:
            return (*x[:-1], depth)
        return (*x, depth)
    if len(x) >= 2:
        return (x[0], *x[2:], depth)
    return (depth,)


@_rule("Hashing")
def _hashing(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    if cfg.get("output_mode", "int") == "int":
        return x
    return (*x[:-1], _int(cfg["num_bins"]))


def _lookup_depth(cfg: dict[str, Any]) -> int:
    if cfg.get("pad_to_max_tokens") and cfg.get("max_tokens") is not None:
        return _int(cfg["max_tokens"])
    if cfg.get("vocabulary_size") is not None:
        return _int(cfg["vocabulary_size"])
    raise _Unknown("vocabulary size not in the config")


def _lookup_shape(cfg: dict[str, Any], x: Shape) -> Shape:
    mode = cfg.get("output_mode", "int")
    if mode == "int":
        return x
    depth = _lookup_depth(cfg)
    if mode == "one_hot":
        if len(x) > 1 and x[-1] == 1:
            return (*x[:-1], depth)
        return (*x, depth)
    return (*x[:-1], depth)


@_rule("StringLookup", "IntegerLookup")
def _lookup(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    return _lookup_shape(cfg, _first(ins))


@_rule("TextVectorization")
def _text_vectorization(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    x = _first(ins)
    if cfg.get("output_mode", "int") == "int":
        length = cfg.get("output_sequence_length")
        return (x[0], None if length is None else _int(length))
    if cfg.get("split", "whitespace") is None:
        if len(x) <= 1:
            x = (*x, 1)
    else:
        x = (*x, None)
    return _lookup_shape(cfg, x)


# -- recurrent ----------------------------------------------------------------------------

_CELL_STATES = {"SimpleRNNCell": 1, "GRUCell": 1, "LSTMCell": 2}
_RNN_CELLS = {"SimpleRNN": "SimpleRNNCell", "GRU": "GRUCell", "LSTM": "LSTMCell",
              "CuDNNGRU": "GRUCell", "CuDNNLSTM": "LSTMCell"}


def _cell_sizes(class_name: str, cfg: dict[str, Any]) -> tuple[int, list[int]]:
    """``(output size, state sizes)`` of a serialized RNN cell."""
    if class_name in _CELL_STATES:
        units = _int(cfg["units"])
        return units, [units] * _CELL_STATES[class_name]
    if class_name == "StackedRNNCells":
        cells = cfg.get("cells")
        if not isinstance(cells, list) or not cells:
            raise _Unknown("no cells")
        output, states = 0, []
        for cell in cells:
            name, inner = _nested({"cell": cell}, "cell")
            output, s = _cell_sizes(name, inner)
            states.extend(s)
        return output, states
    raise _Unknown(f"cell {class_name}")


def _rnn_outputs(cfg: dict[str, Any], x: Shape, units: int, states: list[int]) -> list[Shape]:
    if len(x) < 3:
        raise _Unknown("an RNN needs (batch, time, features)")
    if cfg.get("time_major"):  # Keras 2: (time, batch, features)
        steps, batch = x[0], x[1]
        out: Shape = (steps, batch, units) if cfg.get("return_sequences") else (batch, units)
    else:
        batch, steps = x[0], x[1]
        out = (batch, steps, units) if cfg.get("return_sequences") else (batch, units)
    if cfg.get("return_state"):
        return [out, *((batch, s) for s in states)]
    return [out]


def _make_rnn_rule(cell: str) -> _Rule:
    """SimpleRNN/GRU/LSTM: the layer config carries its cell's ``units``."""

    def rule(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
        units, states = _cell_sizes(cell, cfg)
        return _rnn_outputs(cfg, _first(ins), units, states)

    return rule


for _layer_name, _cell_name in _RNN_CELLS.items():
    _RULES[_layer_name] = _make_rnn_rule(_cell_name)


@_rule("RNN")
def _generic_rnn(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    cell = cfg.get("cell")
    if isinstance(cell, list):  # very old configs: a list of cells
        name, inner = "StackedRNNCells", {"cells": cell}
    else:
        name, inner = _nested(cfg, "cell")
    units, states = _cell_sizes(name, inner)
    return _rnn_outputs(cfg, _first(ins), units, states)


@_rule("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
def _conv_lstm(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    x = _first(ins)
    if len(x) < 4:
        raise _Unknown("ConvLSTM needs (batch, time, ..., channels)")
    step = _conv_like(cfg, (x[0], *x[2:]), _int(cfg["filters"]))
    out = (x[0], x[1], *step[1:]) if cfg.get("return_sequences") else step
    if cfg.get("return_state"):
        return [out, step, step]
    return [out]


@_rule("Bidirectional")
def _bidirectional(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    name, inner = _nested(cfg, "layer")
    forward = _infer_or_unknown(name, inner, ins[:1])
    output, states = forward[0], forward[1:] if inner.get("return_state") else []
    mode = cfg.get("merge_mode", "concat")
    if mode == "concat":
        last = _num(output[-1])
        outputs = [(*output[:-1], None if last is None else 2 * last)]
    elif mode in ("sum", "mul", "ave"):
        outputs = [output]
    elif mode is None:
        outputs = [output, output]
    else:
        raise _Unknown(f"merge_mode {mode!r}")
    return outputs + states + states


@_rule("TimeDistributed")
def _time_distributed(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    x = _first(ins)
    if len(x) < 3:
        raise _Unknown("TimeDistributed needs (batch, time, ...)")
    name, inner = _nested(cfg, "layer")
    child = _infer_or_unknown(name, inner, [(x[0], *x[2:])])
    return [(c[0], x[1], *c[1:]) for c in child]


@_rule("SpectralNormalization")
def _spectral_normalization(cfg: dict[str, Any], ins: list[Shape | None]) -> list[Shape]:
    name, inner = _nested(cfg, "layer")
    return _infer_or_unknown(name, inner, ins)


# -- Keras 2 TensorFlow-op layers ----------------------------------------------------------

def _tf_broadcast(a: Shape, b: Shape) -> Shape:
    """TensorFlow's static broadcasting of two whole shapes."""
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + tuple(b)
    out: list[Dim] = []
    for i, j in zip(a, b, strict=True):  # b padded to len(a)
        if i == j or j == 1:
            out.append(i)
        elif i == 1:
            out.append(j)
        elif i is None or j is None:
            known = j if i is None else i
            out.append(known if _is_int(known) else None)
        else:
            raise _Unknown("shapes do not broadcast")
    return tuple(out)


@_rule("TFOpLambda")
def _tf_op_lambda(cfg: dict[str, Any], ins: list[Shape | None]) -> Shape:
    """A TensorFlow function called on Keras 2 tensors (``tf.nn.relu(x)``, ``x + 3.0``).

    Element-wise functions only: unary ones keep the input shape; binary ones
    broadcast their tensor operands.  A binary op with a single tensor operand has a
    constant for the other (``x + 3.0`` stores ``{"y": 3.0}`` in the call, not the
    config), taken to broadcast into the tensor's shape as a scalar does.  Every
    other function depends on call arguments the config does not record.
    """
    function = cfg.get("function")
    if function in TF_UNARY_OPS and len(ins) == 1:
        return _first(ins)
    if function in TF_BINARY_OPS and ins:
        shapes = _all(ins)
        out = shapes[0]
        for other in shapes[1:]:
            out = _tf_broadcast(out, other)
        return out
    raise _Unknown("TF op with no known shape")


# -- whole graphs -------------------------------------------------------------------------


def _complete(shapes: list[Shape | None] | None) -> bool:
    return bool(shapes) and all(s is not None for s in shapes)  # type: ignore[union-attr]


def _merge(recorded: list[Shape | None] | None, computed: list[Shape] | None) -> list[Shape | None]:
    """Recorded shapes win; computed ones fill the gaps."""
    recorded = list(recorded or [])
    computed = list(computed or [])
    n = max(len(recorded), len(computed), 1)
    out: list[Shape | None] = []
    for j in range(n):
        r = recorded[j] if j < len(recorded) else None
        c = computed[j] if j < len(computed) else None
        out.append(r if r is not None else c)
    return out


def _note(layer: Layer, text: str) -> None:
    if text not in layer.notes:
        layer.notes.append(text)


def _declared_input(layer: Layer) -> Shape | None:
    """The ``batch_input_shape`` a Keras 2 Sequential's first layer may carry."""
    config = layer.config if isinstance(layer.config, dict) else {}
    for key in ("batch_input_shape", "batch_shape"):
        value = config.get(key)
        if isinstance(value, (list, tuple)):
            try:
                return _as_shape(value)
            except _Unknown:
                return None
    return None


class _Filler:
    """Fills one graph layer by layer; nested models are followed to a bounded depth."""

    def __init__(self, keras_version: int) -> None:
        self.version = keras_version
        self.done: set[int] = set()

    def fill(self, graph: ModelGraph, depth: int, feeds: dict[str, Shape] | None = None) -> None:
        """Write the shapes of ``graph``'s own layers into ``layer.node_shapes``.

        ``feeds`` gives the input shape of entry layers that have neither an inbound
        tensor nor a declared input shape (the first layer of a nested Sequential).
        """
        if id(graph) in self.done:
            return
        self.done.add(id(graph))
        feeds = feeds or {}
        for layer in graph.layers:
            for i in range(max(len(layer.inbound), len(layer.node_shapes), 1)):
                recorded = layer.node_shapes[i] if i < len(layer.node_shapes) else []
                if _complete(recorded) and not self.unfilled_model(layer, i):
                    continue
                try:
                    ins = self.inputs(graph, layer, i, feeds)
                    if ins is None:
                        continue  # never called and no declared input: Keras shows nothing either
                    computed = self.call(layer, ins, depth)
                except _MALFORMED:  # a graph a loader built from a malformed file
                    _note(layer, "output shape could not be computed: malformed layer entry")
                    computed = None
                while len(layer.node_shapes) <= i:
                    layer.node_shapes.append([])
                layer.node_shapes[i] = _merge(recorded, computed)

    def unfilled_model(self, layer: Layer, i: int) -> bool:
        """Whether ``layer`` is a nested model whose own layers are still to fill: a file that
        records the nested model's output shape (its row) leaves its inner layers' unknown."""
        sub = layer.subgraphs.get("model")
        return i == 0 and sub is not None and id(sub) not in self.done

    @staticmethod
    def inputs(graph: ModelGraph, layer: Layer, i: int, feeds: dict[str, Shape]) -> list[Shape | None] | None:
        """The input shapes of call ``i`` of ``layer``; ``None`` for a call that never happened."""
        if i < len(layer.inbound) and layer.inbound[i]:
            return graph.input_shapes(layer, i)
        if i == 0 and layer.name in feeds:
            return [feeds[layer.name]]
        declared = _declared_input(layer) if i == 0 else None
        if declared is not None:
            return [declared]
        if layer.type == "InputLayer" or (i < len(layer.node_shapes) and layer.node_shapes[i]):
            return []
        return None

    def call(self, layer: Layer, ins: list[Shape | None], depth: int) -> list[Shape] | None:
        """Output shapes of one call of ``layer`` on ``ins`` (notes explain a miss)."""
        sub = layer.subgraphs.get("model")
        if sub is not None:
            return self.nested(layer, sub, ins, depth + 1)
        if not has_rule(layer.type) or _is_custom(layer):
            _note(layer, f"no output-shape rule for {layer.type}")
            return None
        out = infer(layer.type, layer.config, ins, keras_version=self.version)
        if out is None and ins and all(s is not None for s in ins):
            if layer.type in _OPAQUE:
                _note(layer, f"no output-shape rule for {layer.type}")
            else:
                _note(layer, f"output shape of {layer.type} could not be computed from its config")
        return out

    def nested(self, layer: Layer, sub: ModelGraph, ins: list[Shape | None], depth: int) -> list[Shape] | None:
        """Output shapes of the nested model ``sub`` called on ``ins``.

        The nested model's own layers get the shapes of its own inputs (Keras shows
        those when a summary expands nested models); the outer shapes stand in only
        where the nested model declares none.  When the outer shapes differ from the
        nested model's own, they are propagated once more without writing.
        """
        if depth > MAX_NESTING:
            _note(layer, f"models nested deeper than {MAX_NESTING} levels: shapes not computed")
            return None
        entries = _entry_layers(sub)
        feeds: dict[str, Shape] = {}
        for entry, outer in zip(entries, ins, strict=False):
            if outer is None:
                continue
            if entry.type == "InputLayer":
                if _declared_shape(entry) is None and not (entry.node_shapes and _complete(entry.node_shapes[0])):
                    entry.node_shapes[:1] = [[outer]]
            elif not entry.inbound and _declared_input(entry) is None:
                feeds[entry.name] = outer
        self.fill(sub, depth, feeds)
        own = [_entry_input(e, feeds) for e in entries]
        outer_ins = list(ins[: len(entries)])
        if not entries or own == outer_ins:
            return _graph_outputs(sub)
        return self.rerun(sub, {e.name: s for e, s in zip(entries, outer_ins, strict=False)}, depth)

    def rerun(self, sub: ModelGraph, feeds: dict[str, Shape | None], depth: int) -> list[Shape] | None:
        """Propagate other input shapes through ``sub`` without touching its layers."""
        table: dict[tuple[str, int], list[Shape | None]] = {}

        def shape_of(ref: Inbound) -> Shape | None:
            shapes = table.get((ref.layer, ref.node_index))
            if shapes is None:
                return sub.shape_of(ref)
            return shapes[ref.tensor_index] if ref.tensor_index < len(shapes) else None

        for layer in sub.layers:
            for i in range(max(len(layer.inbound), 1)):
                if i == 0 and layer.name in feeds:
                    if layer.type == "InputLayer":
                        table[(layer.name, 0)] = [feeds[layer.name]]
                        continue
                    ins: list[Shape | None] = [feeds[layer.name]]
                elif i < len(layer.inbound) and layer.inbound[i]:
                    ins = [shape_of(ref) for ref in layer.inbound[i]]
                else:
                    continue
                inner = layer.subgraphs.get("model")
                out: list[Shape | None] | None
                if inner is not None:
                    out = self.nested(layer, inner, ins, depth + 1)  # type: ignore[assignment]
                elif _is_custom(layer):
                    out = None
                else:
                    out = infer(layer.type, layer.config, ins, keras_version=self.version)  # type: ignore[assignment]
                if out is None and i < len(layer.node_shapes) and ins == sub.input_shapes(layer, i):
                    out = layer.node_shapes[i]  # same inputs as recorded: the recorded outputs hold
                table[(layer.name, i)] = list(out) if out else [None]
        outs = [shape_of(ref) for ref in sub.outputs]
        return outs if outs and all(s is not None for s in outs) else None  # type: ignore[return-value]


_MALFORMED = (AttributeError, IndexError, KeyError, TypeError, ValueError)
"""What a graph with wrongly typed fields raises while being walked."""

_OPAQUE = frozenset({"Lambda", "TFOpLambda"})
"""Classes whose rule covers only some configs (the rest would need running code)."""

_KERAS_MODULES = frozenset({"keras", "tf_keras", "tensorflow"})


def _is_custom(layer: Layer) -> bool:
    """A class from a module outside Keras that merely shares a Keras class name."""
    return bool(layer.module) and str(layer.module).split(".")[0] not in _KERAS_MODULES


def _declared_shape(entry: Layer) -> Shape | None:
    out = infer("InputLayer", entry.config, [])
    return out[0] if out else None


def _entry_layers(sub: ModelGraph) -> list[Layer]:
    """The layers that receive a nested model's inputs, in input order."""
    entries: list[Layer] = []
    for ref in sub.inputs:
        if ref.layer in sub:
            entries.append(sub.layer(ref.layer))
    if not entries and sub.layers and not sub.layers[0].inbound:
        entries.append(sub.layers[0])  # a Sequential without an InputLayer
    return entries


def _entry_input(entry: Layer, feeds: dict[str, Shape]) -> Shape | None:
    """The input shape a nested model's entry layer was filled with."""
    if entry.type == "InputLayer":
        return entry.node_shapes[0][0] if entry.node_shapes and entry.node_shapes[0] else None
    return feeds.get(entry.name) or _declared_input(entry)


def _graph_outputs(sub: ModelGraph) -> list[Shape] | None:
    if sub.outputs:
        outs = [sub.shape_of(ref) for ref in sub.outputs]
    elif sub.layers:  # no declared outputs: a Sequential ends at its last layer
        outs = list(sub.layers[-1].node_shapes[-1]) if sub.layers[-1].node_shapes else []
    else:
        outs = []
    return outs if outs and all(s is not None for s in outs) else None  # type: ignore[return-value]


def fill_shapes(graph: ModelGraph, *, keras_version: int | str | None = None) -> None:
    """Fill every unknown output shape in ``graph`` (and its nested models) in place.

    Layers are visited in graph order, which for a Keras config is a topological
    order.  For each call of each layer whose shapes are missing or partly unknown,
    the shapes of the consumed tensors are looked up and :func:`infer` computes the
    output; shapes the file recorded are kept.  A nested model is filled from its
    own inputs (the outer shapes stand in where it declares none) and its row gets
    the nested model's output shapes for the outer input shapes.  A layer with no
    rule gets ``[None]`` and a note.  Never raises; no recursion over layers.

    ``keras_version`` (see :func:`infer`) defaults to ``graph.metadata["keras_version"]``,
    the version string Keras writes into ``.keras`` metadata and ``.h5`` attributes.
    """
    if keras_version is None:
        keras_version = graph.metadata.get("keras_version")
    try:
        _Filler(keras_major(keras_version)).fill(graph, 0)
    except RecursionError:  # pragma: no cover - depth is bounded by MAX_NESTING
        graph.notes.append("output shapes: nesting too deep, some shapes are unknown")
