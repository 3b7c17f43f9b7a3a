"""BN: batch normalization, its epsilon, its statistics and its place in the graph.

Batch normalization standardizes each channel with the mean and variance of
the mini-batch (adding a small epsilon to the variance so the division is safe),
then scales and shifts the result with learned γ and β so the next
non-linearity keeps its power.  During training it keeps moving averages of the
batch statistics; at inference it normalizes with those instead.  A BN layer
therefore stores four numbers per channel: γ and β (trained) and the moving
mean and variance (not trained by gradients, updated by running the layer in
training mode).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ..analysis.state import bn_at_init, bn_statistics
from ..analysis.weights import weight_kind
from ..findings import Severity
from ..graphquery import activation_of, consumers, is_weighted, nonlinear, producers, source_through, tensor_inputs
from ..ir import Layer, ModelGraph
from ..vocab import BATCHNORM, DROPOUT_LIKE
from .engine import Context, Hit, graphs_of
from .registry import rule


def _epsilon(ctx: Context) -> float | None:
    cfg = ctx.current.config or {}
    if "epsilon" in cfg:
        try:
            return float(cfg["epsilon"])
        except (TypeError, ValueError):
            return None
    return 1e-5 if ctx.graph.format == "onnx" else 1e-3


def _compute_dtype(ctx: Context) -> str:
    """BN's arithmetic dtype: Keras computes BatchNormalization in float32 even
    under a float16 policy; an ONNX node computes in its tensor type."""
    if ctx.graph.format == "onnx":
        return str(ctx.current.dtype or "float32")
    return "float32"


@rule("BN001", "batchnorm-epsilon", Severity.ERROR, types=BATCHNORM)
def batchnorm_epsilon(ctx: Context) -> Iterator[Hit]:
    """BatchNormalization's epsilon is zero, negative, or too small for its dtype.

    ## What it does
    Reads ``epsilon`` of every BatchNormalization layer (Keras default
    0.001, ONNX default 1e-5) and flags a value that is not a positive
    finite number (error), or one below the smallest normal number of the
    dtype BN computes in (warning: float16 flushes it to zero on much
    hardware).

    ## Why is this bad?
    BN divides by ``sqrt(variance + epsilon)``.  The epsilon is what keeps
    that division finite for a channel whose batch variance is zero (a
    dead ReLU channel, a constant input, a batch of one): with epsilon 0,
    such a channel becomes ``0/0 = NaN`` and the NaN spreads through the
    rest of the network.  Batch normalization is defined with this small
    constant added to the variance for exactly that reason (Ioffe & Szegedy
    2015, Algorithm 1).

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    layers.BatchNormalization(epsilon=0.0)   # BN001
    layers.BatchNormalization()              # epsilon=0.001
    ```
    """
    eps = _epsilon(ctx)
    if eps is None:
        return
    if not math.isfinite(eps) or eps <= 0:
        yield Hit(f"epsilon is {eps:g}: a channel with zero variance divides 0 by 0 and yields NaN; "
                  "use a small positive value such as 1e-3")
        return
    dtype = _compute_dtype(ctx)
    try:
        tiny = float(np.finfo(np.dtype(dtype)).tiny)
    except (TypeError, ValueError):
        return
    if eps < tiny:
        yield Hit(f"epsilon {eps:g} is below the smallest normal {dtype} ({tiny:g}) and may be "
                  "flushed to zero; use at least 1e-3", severity=Severity.WARNING)


@rule("BN002", "invalid-moving-variance", Severity.ERROR, types=BATCHNORM, needs=("weights",))
def invalid_moving_variance(ctx: Context) -> Iterator[Hit]:
    """A BatchNormalization moving variance is negative, zero, or not finite.

    ## What it does
    Reads the stored moving variance of every BatchNormalization layer and
    flags channels whose variance is NaN, infinite or negative (error),
    or exactly zero (warning).

    ## Why is this bad?
    At inference BN divides by ``sqrt(moving_variance + epsilon)``.  A
    negative variance is impossible for real data: the statistic is
    corrupt (a bad conversion, a broken checkpoint) and the square root
    yields NaN.  A NaN or infinite variance poisons every output.  A
    variance of exactly zero means the channel was constant throughout
    training (a dead or pruned filter); at inference it is scaled by
    ``1/sqrt(epsilon)``, which turns any small deviation into a large one.

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    bn.set_weights([gamma, beta, mean, -np.ones(c)])  # BN002
    ```
    """
    _, var = bn_statistics(ctx.current, ctx.weight_report)
    if var is None or not var.numeric or var.placeholder:
        return
    if not var.finite:
        yield Hit(f"moving variance has {var.nan} NaN and {var.inf} infinite value(s) of {var.size}: "
                  "every output of this layer becomes NaN")
    elif var.minimum < 0:
        yield Hit(f"moving variance is negative (min {var.minimum:.3g}): the statistics are corrupt "
                  "and sqrt(variance + epsilon) is NaN; recompute them")
    elif var.zeros:
        yield Hit(f"moving variance is exactly 0 in {var.zeros} of {var.size} channel(s): they were "
                  "constant in training and are scaled by 1/sqrt(epsilon) at inference",
                  severity=Severity.WARNING)


def _channel_axis(layer: Layer, rank: int | None) -> int | None:
    """Non-negative axis a producer's bias is added on."""
    cfg = layer.config or {}
    if layer.type in ("Conv", "ConvTranspose", "Gemm"):
        return 1
    if cfg.get("data_format") == "channels_first":
        return 1
    return None if rank is None else rank - 1


def _bn_axes(layer: Layer, rank: int | None) -> set[int] | None:
    cfg = layer.config or {}
    if layer.type == "BatchNormalization" and "axis" not in cfg:
        return {1}  # ONNX: the channel axis
    axis = cfg.get("axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    out = set()
    for a in axes:
        if not isinstance(a, int):
            return None
        if a < 0:
            if rank is None:
                return None
            a += rank
        out.add(a)
    return out


@rule("BN003", "bias-before-batchnorm", Severity.INFO)
def bias_before_batchnorm(ctx: Context) -> Iterator[Hit]:
    """A layer adds a bias that the BatchNormalization right after it removes again.

    ## What it does
    Flags Dense or convolution layers with a bias (and no activation)
    whose only consumer is a BatchNormalization layer normalizing the same
    channel axis.  All such layers of a model are reported as one finding
    (at the first of them), since they are one habit, not many problems.

    ## Why is this bad?
    BN subtracts the per-channel mean, so any constant added per channel
    before it cancels out exactly; BN's own β provides the shift.  The
    bias is wasted parameters and compute, and its gradient is always zero.
    Harmless, hence informational; build such layers with
    ``use_bias=False``.

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    x = layers.Conv2D(64, 3)(x)                  # BN003: use_bias=True by default
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(64, 3, use_bias=False)(x)  # fine
    ```
    """
    wasted: list[tuple[str, int, str]] = []  # (layer path, bias size, BN name)
    for prefix, graph in graphs_of(ctx.model):
        for bn in graph.layers:
            if bn.type in BATCHNORM:
                found = _wasted_bias(graph, bn)
                if found is not None:
                    wasted.append((prefix + found[0], found[1], bn.name))
    if not wasted:
        return
    first, size, bn_name = wasted[0]
    if len(wasted) == 1:
        yield Hit(f"its bias ({size} value{'' if size == 1 else 's'}) is cancelled by the mean subtraction of "
                  f"{bn_name!r} right after it; build it with use_bias=False", layer=first)
        return
    names = ", ".join(repr(path) for path, _, _ in wasted[:3]) + (", …" if len(wasted) > 3 else "")
    total = sum(n for _, n, _ in wasted)
    yield Hit(f"{len(wasted)} layers ({names}) add a bias that the BatchNormalization right after them "
              f"cancels: {total:,} wasted parameters; build them with use_bias=False", layer=first)


def _wasted_bias(graph: ModelGraph, bn: Layer) -> tuple[str, int] | None:
    """(name, bias size) of the layer whose bias ``bn`` cancels, if there is one."""
    prods = producers(graph, bn)
    if len(prods) != 1:
        return None
    src = prods[0]
    if not is_weighted(src) or nonlinear(src) or len(consumers(graph, src)) != 1:
        return None
    bias = next((w for w in src.weights if weight_kind(src, w) == "bias"), None)
    if bias is None:
        return None
    shapes = src.output_shapes
    rank = len(shapes[0]) if shapes and shapes[0] is not None else None
    axes, axis = _bn_axes(bn, rank), _channel_axis(src, rank)
    if axes is None or axis is None or axes != {axis}:
        return None
    return src.name, bias.size


@rule("BN004", "batchnorm-after-activation", Severity.INFO, types=BATCHNORM)
def batchnorm_after_activation(ctx: Context) -> Iterator[Hit]:
    """BatchNormalization normalizes the output of an activation instead of its input.

    ## What it does
    Flags a BatchNormalization layer whose input comes straight from a
    non-linearity (an activation layer, or a layer with a fused
    activation).

    ## Why is this bad?
    The original recipe puts BN between the weighted layer and its
    activation: BN standardizes the pre-activations so the non-linearity
    sees inputs in its useful range, and γ/β let the network choose how
    much of the non-linearity to use.  After a ReLU, BN sees a one-sided,
    skewed distribution.  Both orders are used in practice and neither is
    always better, so this is informational: check that the order is the
    one you meant.

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.BatchNormalization()(x)   # BN004
    # usual order: Conv2D(use_bias=False) -> BatchNormalization -> ReLU
    ```
    """
    src = source_through(ctx.graph, ctx.current, DROPOUT_LIKE)
    if src is None or not nonlinear(src):
        return
    yield Hit(f"normalizes the output of {activation_of(src)} from {src.name!r}; the usual order is "
              "weighted layer -> BatchNormalization -> activation")


@rule("BN005", "stale-moving-statistics", Severity.WARNING, types=BATCHNORM, needs=("weights",),
      states=("trained",))
def stale_moving_statistics(ctx: Context) -> Iterator[Hit]:
    """A trained model's BatchNormalization still holds its initial moving statistics.

    ## What it does
    In a model that shows signs of training (see ``MODEL001``), flags
    BatchNormalization layers whose moving mean is still exactly 0 and
    moving variance exactly 1 in every channel, the values they are
    created with.

    ## Why is this bad?
    BN normalizes with batch statistics while training and with the moving
    averages at inference.  Averages that never moved mean the layer never
    ran in training mode (frozen with ``trainable=False`` from the start,
    or always called with ``training=False``): at inference it will not
    normalize at all, and the model behaves differently from the one that
    was evaluated during training.

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    bn = layers.BatchNormalization(); bn.trainable = False   # before the first fit
    model.fit(...)                                            # BN005: stats stay 0/1
    ```
    """
    if bn_at_init(ctx.current, ctx.weight_report):
        yield Hit("moving mean is still 0 and moving variance 1 in a trained model: this layer never "
                  "ran in training mode, so at inference it does not normalize")


@rule("BN006", "batchnorm-training-mode", Severity.WARNING, types=BATCHNORM)
def batchnorm_training_mode(ctx: Context) -> Iterator[Hit]:
    """BatchNormalization is saved in training mode in a graph meant for inference.

    ## What it does
    Flags an ONNX BatchNormalization node with ``training_mode=1`` (or,
    before opset 7, ``is_test=0``), and a Keras BatchNormalization layer
    called with ``training=True`` in the saved graph.

    ## Why is this bad?
    In training mode BN normalizes every batch with that batch's own mean
    and variance instead of the stored moving averages, so a prediction
    depends on which other inputs share its batch, and a batch of one
    normalizes every channel to zero.  Export with the layer in inference
    mode (``model.eval()`` in PyTorch, ``training=False`` in Keras).

    Source: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML.

    ## Example
    ```python
    y = layers.BatchNormalization()(x, training=True)   # BN006: frozen into the graph
    ```
    """
    lay = ctx.current
    cfg = lay.config or {}
    if ctx.graph.format == "onnx":
        training = cfg.get("training_mode") in (1, True) or cfg.get("is_test") in (0, False)
    else:
        # Keras loaders record each call's keyword arguments as config["@call_kwargs"]
        # (one dict per call); ONNX nodes carry typed Layer.operands instead.
        kwargs = cfg.get("@call_kwargs") or []
        training = any(isinstance(k, dict) and k.get("training") is True for k in kwargs)
    if training:
        yield Hit("normalizes with the statistics of each batch instead of the moving averages; "
                  "predictions depend on batch composition; export in inference mode")


# -- BN007 --------------------------------------------------------------------------------

LAYER_NORMS = frozenset({"LayerNormalization", "RMSNormalization", "GroupNormalization", "InstanceNormalization",
                         "SimplifiedLayerNormalization", "SkipLayerNormalization",
                         "SkipSimplifiedLayerNormalization"})
"""Normalization layers other than BatchNormalization that divide by ``sqrt(variance + epsilon)``."""
KERAS_EPSILON = {"LayerNormalization": 1e-3, "GroupNormalization": 1e-3, "RMSNormalization": 1e-6}
"""Keras defaults of ``epsilon`` (ONNX operators default to 1e-5)."""
STASH_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
"""ONNX ``stash_type`` (the precision the statistics are computed in) by TensorProto code."""
MIN_EPSILON = {"float16": 1e-5}
"""Smallest epsilon that keeps the variance sum from underflowing, per compute dtype (else: the
dtype's smallest normal number)."""


def _norm_epsilon(ctx: Context, layer: Layer) -> float | None:
    """The epsilon of a named normalization layer (its config or the format's default)."""
    cfg = layer.config or {}
    if "epsilon" in cfg:
        try:
            return float(cfg["epsilon"])
        except (TypeError, ValueError):
            return None
    if ctx.graph.format == "onnx":
        return 1e-5
    return KERAS_EPSILON.get(layer.type)


def _norm_dtype(ctx: Context, layer: Layer) -> str:
    """The dtype the statistics are computed in: Keras 3 computes LayerNormalization,
    RMSNormalization and GroupNormalization in at least float32; an ONNX operator with a
    ``stash_type`` in that type (float32 by default), others in their tensor type."""
    if ctx.graph.format != "onnx":
        return "float32"
    if layer.type == "InstanceNormalization" or layer.type == "Add":
        return str(layer.dtype or "float32")
    stash = (layer.config or {}).get("stash_type", 1)
    return STASH_TYPES.get(stash, "float32") if isinstance(stash, int) else "float32"


def _decomposed_epsilon(ctx: Context, add: Layer) -> float | None:
    """The constant an ONNX ``Add`` adds in a decomposed RMS/LayerNorm
    (``Pow|Mul → ReduceMean → Add(eps) → Sqrt``), else ``None``."""
    if ctx.weights is None or tensor_inputs(add) != 1 or len(add.weights) != 1:
        return None
    prods = producers(ctx.graph, add)
    if len(prods) != 1 or prods[0].type != "ReduceMean":
        return None
    if not any(p.type in ("Pow", "Mul") for p in producers(ctx.graph, prods[0])):
        return None
    if not any(c.type == "Sqrt" for c in consumers(ctx.graph, add)):
        return None
    stats = ctx.weights.of(add.weights[0])
    if stats is None or stats.size != 1 or not stats.numeric:
        return None
    return stats.minimum


def _epsilon_and_name(ctx: Context, layer: Layer) -> tuple[float | None, str]:
    """The epsilon BN007 checks on ``layer`` and how its message names it."""
    if layer.type != "Add":
        return _norm_epsilon(ctx, layer), "epsilon"
    if ctx.graph.format != "onnx":
        return None, ""
    return _decomposed_epsilon(ctx, layer), "the epsilon of this decomposed normalization"


@rule("BN007", "normalization-epsilon", Severity.ERROR, types=LAYER_NORMS | {"Add"})
def normalization_epsilon(ctx: Context) -> Iterator[Hit]:
    """A LayerNorm, RMSNorm, GroupNorm or InstanceNorm epsilon is zero, negative, or too small for its dtype.

    ## What it does
    Extends BN001 to the normalization layers of transformers and
    generative models: Keras ``LayerNormalization``, ``RMSNormalization``
    and ``GroupNormalization``; ONNX ``LayerNormalization``,
    ``RMSNormalization``, ``GroupNormalization``, ``InstanceNormalization``
    and the onnxruntime ``(Skip)SimplifiedLayerNormalization``; and the
    decomposed form exporters write for RMSNorm and LayerNorm,
    ``Pow → ReduceMean → Add(eps) → Sqrt → Div``.  An epsilon that is not
    a positive finite number is an error; one too small for the dtype
    the statistics are computed in is a warning: below 1e-5 in float16
    (the variance sum underflows), below the smallest normal number in
    other types.  The code belongs to the BN family because it is BN001's
    check on the other normalization layers; NORM is about the model's
    input.

    Not flagged: Keras layers under a float16 policy (Keras computes
    these statistics in float32), ONNX operators whose ``stash_type``
    computes them in float32 (the default), and an ``Add`` that is not
    the epsilon of a decomposed normalization.

    ## Why is this bad?
    These layers divide by ``sqrt(mean(x²) + epsilon)`` or
    ``sqrt(variance + epsilon)``.  A token, group or channel whose values
    are all equal (padding, a dead feature) has zero variance; with
    epsilon 0 it becomes ``0/0 = NaN``, and the NaN spreads to every
    later position through attention.  In float16 a small epsilon
    (1e-6, the RMSNorm default of many LLMs) underflows together with the
    variance of small activations, with the same result.

    ## Example
    ```python
    layers.LayerNormalization(epsilon=0.0)    # BN007 (error)
    layers.LayerNormalization(epsilon=1e-6)   # fine: computed in float32
    # ONNX, float16: Pow -> ReduceMean -> Add(1e-6) -> Sqrt -> Div   # BN007 (warning)
    ```
    """
    layer = ctx.current
    eps, what = _epsilon_and_name(ctx, layer)
    if eps is None:
        return
    if not math.isfinite(eps) or eps <= 0:
        yield Hit(f"{what} is {eps:g}: a row with zero variance divides 0 by 0 and yields NaN; "
                  "use a small positive value such as 1e-5")
        return
    dtype = _norm_dtype(ctx, layer)
    try:
        floor = MIN_EPSILON.get(dtype, float(np.finfo(np.dtype(dtype)).tiny))
    except (TypeError, ValueError):
        return
    if eps < floor:
        yield Hit(f"{what} {eps:g} is too small for {dtype} statistics (at least {floor:g}): the variance "
                  "sum underflows and a flat row yields NaN or inf; use 1e-5 or more, or compute the "
                  "statistics in float32", severity=Severity.WARNING)
