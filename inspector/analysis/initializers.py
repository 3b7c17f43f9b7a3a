"""Keras initializer configs: what they are and what spread they draw.

A saved Keras layer names its initializers (``kernel_initializer`` …) either as
a string (``"glorot_uniform"``) or as a serialized object
(``{"class_name": "RandomNormal", "config": {"stddev": 1.0}}``, with a
``module`` key in Keras 3).  :func:`parse` turns both into an
:class:`Initializer`; :func:`expected_std` says which standard deviation it
draws for a given weight shape, using Keras's own fan computation, so the lint
can tell a freshly initialized tensor from a trained one and judge the scale an
initializer chooses against the variance-scaling rules (Glorot, He, LeCun).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

_TRUNC = 0.87962566103423978
"""Standard deviation of a unit normal truncated at ±2 standard deviations."""

_ALIASES = {
    "glorotuniform": "GlorotUniform", "glorotnormal": "GlorotNormal", "heuniform": "HeUniform",
    "henormal": "HeNormal", "lecununiform": "LecunUniform", "lecunnormal": "LecunNormal",
    "variancescaling": "VarianceScaling", "randomnormal": "RandomNormal",
    "randomuniform": "RandomUniform", "truncatednormal": "TruncatedNormal", "zeros": "Zeros",
    "zero": "Zeros", "ones": "Ones", "one": "Ones", "constant": "Constant",
    "identity": "Identity", "orthogonal": "Orthogonal", "normal": "RandomNormal",
    "uniform": "RandomUniform", "xavieruniform": "GlorotUniform", "xaviernormal": "GlorotNormal",
}


@dataclass(frozen=True)
class Initializer:
    """A parsed initializer: its canonical Keras class name and its config."""

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    custom: bool = False
    """Not a Keras built-in: nothing is assumed about what it draws."""

    @property
    def symmetric_value(self) -> float | None:
        """The single value a symmetric initializer fills with (``Zeros``, ``Ones``,
        ``Constant``), else ``None``."""
        if self.name == "Zeros":
            return 0.0
        if self.name == "Ones":
            return 1.0
        if self.name == "Constant":
            value = self.config.get("value", 0.0)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, list) and value and all(v == value[0] for v in value) \
                    and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
                return float(value[0])
        return None


def parse(value: Any) -> Initializer | None:
    """Parse a serialized initializer (string or dict); ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        key = re.sub(r"[^a-z]", "", value.lower())
        name = _ALIASES.get(key)
        return Initializer(name) if name else Initializer(value, custom=True)
    if isinstance(value, Mapping):
        cls = value.get("class_name")
        cfg = value.get("config") or {}
        if not isinstance(cfg, Mapping):
            cfg = {}
        if not isinstance(cls, str):
            return None
        module = value.get("module")
        key = re.sub(r"[^a-z]", "", cls.lower())
        name = _ALIASES.get(key)
        foreign = isinstance(module, str) and not module.startswith(("keras", "tensorflow", "tf_keras"))
        custom = name is None or foreign
        return Initializer(name or cls, dict(cfg), custom=custom)
    return None


def config_key(layer_type: str, role: str) -> str | None:
    """The Keras config key of the initializer that drew the weight with ``role``."""
    if role == "kernel" and layer_type in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return "depthwise_initializer"
    return {"kernel": "kernel_initializer", "pointwise_kernel": "pointwise_initializer",
            "depthwise_kernel": "depthwise_initializer", "bias": "bias_initializer",
            "recurrent_kernel": "recurrent_initializer", "embeddings": "embeddings_initializer",
            "gamma": "gamma_initializer", "beta": "beta_initializer"}.get(role)


def keras_fans(shape: tuple[int, ...], input_axes: Sequence[int] | None = None,
               output_axes: Sequence[int] | None = None) -> tuple[int, int]:
    """Keras's ``compute_fans``: the fans its variance-scaling initializers use.

    With both ``input_axes`` and ``output_axes`` (Keras 3.15 and later: given in the
    initializer's config, or filled in by ``EinsumDense`` from its equation) the fans
    are the products of those axes; else a tensor of rank 3 or more is taken for a
    convolution kernel, as every Keras version does.
    """
    if input_axes is not None and output_axes is not None:
        return math.prod(int(shape[a]) for a in input_axes), math.prod(int(shape[a]) for a in output_axes)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    rf = 1
    for d in shape[:-2]:
        rf *= int(d)
    return int(shape[-2]) * rf, int(shape[-1]) * rf


def _num(cfg: Mapping[str, Any], key: str, default: float) -> float:
    v = cfg.get(key, default)
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _axes(value: Any, rank: int) -> tuple[int, ...] | None:
    """Axes an initializer config names, checked against the tensor's rank (else ``None``)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool)
                                                       for a in value):
        return None
    return tuple(value) if all(-rank <= a < rank for a in value) else None


def fan_axes(init: Initializer, shape: tuple[int, ...],
             layer_axes: tuple[tuple[int, ...], tuple[int, ...]] | None) -> tuple[tuple[int, ...] | None, ...]:
    """The ``(input_axes, output_axes)`` a variance-scaling ``init`` computes its fans over.

    The config's own axes win.  Left unset, they are the layer's (``layer_axes``, see
    :func:`einsum_kernel_axes`) only when the initializer knows axes at all: Keras
    3.15 added them, and its ``EinsumDense`` fills them in from the equation, so a
    config that serializes ``input_axes`` came from a Keras that did; older Keras and
    tf_keras always took a rank-3 kernel for a convolution's.
    """
    cfg = init.config
    rank = len(shape)
    axes = (_axes(cfg.get("input_axes"), rank), _axes(cfg.get("output_axes"), rank))
    if None in axes and layer_axes is not None and "input_axes" in cfg:
        return layer_axes
    return axes


def expected_std(init: Initializer | None, shape: tuple[int, ...], *,
                 layer_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None) -> float | None:
    """The standard deviation ``init`` draws for a tensor of ``shape`` (Keras
    semantics), or ``None`` when it cannot be known (custom, identity …).

    ``layer_axes`` are the input and output axes the layer itself gives a
    variance-scaling initializer (``EinsumDense`` and the attention layers built of
    it, :func:`einsum_kernel_axes`)."""
    if init is None or init.custom:
        return None
    cfg = init.config
    shape = tuple(int(d) for d in shape)
    fan_in, fan_out = keras_fans(shape, *fan_axes(init, shape, layer_axes))
    name = init.name
    presets = {"GlorotUniform": (1.0, "fan_avg"), "GlorotNormal": (1.0, "fan_avg"),
               "HeUniform": (2.0, "fan_in"), "HeNormal": (2.0, "fan_in"),
               "LecunUniform": (1.0, "fan_in"), "LecunNormal": (1.0, "fan_in")}
    if name in presets or name == "VarianceScaling":
        scale, mode = presets.get(name, (None, "fan_avg"))  # VarianceScaling: both read below
        if name == "VarianceScaling":
            scale = _num(cfg, "scale", 1.0)
            mode = str(cfg.get("mode", "fan_in")).lower()
        n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2.0)
        if scale is None or scale < 0 or n <= 0:
            return None
        return math.sqrt(scale / max(1.0, n))
    if name == "RandomNormal":
        return abs(_num(cfg, "stddev", 0.05))
    if name == "TruncatedNormal":
        return abs(_num(cfg, "stddev", 0.05)) * _TRUNC
    if name == "RandomUniform":
        return abs(_num(cfg, "maxval", 0.05) - _num(cfg, "minval", -0.05)) / math.sqrt(12.0)
    if name in ("Zeros", "Ones", "Constant"):
        return 0.0
    if name == "Orthogonal":
        rows = 1
        for d in shape[:-1]:
            rows *= int(d)
        cols = int(shape[-1]) if shape else 1
        return abs(_num(cfg, "gain", 1.0)) / math.sqrt(max(rows, cols, 1))
    return None


def expected_mean(init: Initializer | None) -> float | None:
    """The mean ``init`` draws around (0 for the variance-scaling family)."""
    if init is None or init.custom:
        return None
    if init.name in ("RandomNormal", "TruncatedNormal"):
        return _num(init.config, "mean", 0.0)
    if init.name == "RandomUniform":
        return (_num(init.config, "maxval", 0.05) + _num(init.config, "minval", -0.05)) / 2.0
    if init.symmetric_value is not None:
        return init.symmetric_value
    return 0.0 if init.name in ("GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
                                "LecunUniform", "LecunNormal", "VarianceScaling", "Orthogonal") else None


_ATTENTION = frozenset({"MultiHeadAttention", "GroupedQueryAttention"})
"""Keras attention layers whose projections are ``EinsumDense`` sublayers."""


def einsum_kernel_axes(layer_type: str, config: Mapping[str, Any], weight_name: str,
                       shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The ``(input_axes, output_axes)`` of an ``EinsumDense`` kernel, as Keras 3.15's
    ``EinsumDense.build`` derives them, or ``None`` for any other weight.

    A kernel axis named in the equation's output is an output axis, else an input
    axis.  The attention layers' projections are ``EinsumDense`` sublayers with fixed
    layouts: query, key and value kernels are ``(features, heads, head_dim)`` (one
    input axis), the output kernel ``(heads, head_dim, *out)`` (two input axes).
    """
    rank = len(shape)
    if layer_type == "EinsumDense":
        equation = config.get("equation")
        if not isinstance(equation, str):
            return None
        match = re.fullmatch(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)", equation.replace(" ", ""))
        if match is None or len(match.group(2)) != rank:
            return None
        out = match.group(3)
        kernel = match.group(2)
        return (tuple(i for i, d in enumerate(kernel) if d not in out),
                tuple(i for i, d in enumerate(kernel) if d in out))
    if layer_type in _ATTENTION and rank >= 3:
        inputs = 2 if weight_name.split("/")[-2:-1] == ["attention_output"] else 1
        return tuple(range(inputs)), tuple(range(inputs, rank))
    return None
