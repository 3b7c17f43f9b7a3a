"""INIT: initialization and the symmetry it must break.

If every unit of a layer starts with the same incoming weights, every unit
computes the same output, receives the same gradient and takes the same step:
the units stay copies of one another and the layer is as good as one unit wide.
Initializers draw weights at random to break that symmetry, within a range
scaled to the layer's fan-in and fan-out so signals neither explode nor die.
"""

from __future__ import annotations

import math
from typing import Iterator

from ..analysis import initializers as inits
from ..analysis.weights import KernelLayout, TensorStats, kernel_layout, weight_kind
from ..findings import Severity
from ..graphquery import first_consumers_through, is_weighted, residual_joins, walk_forward
from ..ir import Layer, Weight
from ..vocab import KERAS_DEPTHWISE, KERAS_KERNEL_LAYERS, NORMALIZERS, ONNX_KERNEL_OPS, PASSTHROUGH
from .engine import Context, Hit
from .registry import rule

KERNEL_LAYERS = KERAS_KERNEL_LAYERS | ONNX_KERNEL_OPS | KERAS_DEPTHWISE
"""Layers with a kernel matrix whose values the INIT rules examine."""
def init_key(layer: Layer, role: str) -> str | None:
    """The config key naming the initializer of the kernel with ``role``."""
    return inits.config_key(layer.type, role)


def feeds_weighted(ctx: Context, layer: Layer) -> bool:
    """True if ``layer``'s output reaches another weighted layer, i.e. its units are
    hidden units (an output layer's units each get their own error signal)."""
    def visit(lay: Layer) -> str:
        return "yield" if is_weighted(lay) else "go"

    return ctx.cached(f"feeds:{layer.name}",
                      lambda: next(walk_forward(ctx.graph, layer, visit), None) is not None)


def kernels(ctx: Context, layer: Layer) -> Iterator[tuple[Weight, KernelLayout | None, TensorStats | None]]:
    """The weight matrices of ``layer`` with their layout and statistics."""
    for w in layer.weights:
        if w.quantization or weight_kind(layer, w) != "kernel":
            continue
        layout = kernel_layout(layer, w)
        stats = ctx.weights.of(w) if ctx.weights is not None else None
        yield w, layout, stats


def _units(layer: Layer, w: Weight, layout: KernelLayout | None) -> int:
    if layout is not None:
        return layout.units
    return int(w.shape[-1]) if w.shape else 1


def symmetric_config(layer: Layer, role: str) -> inits.Initializer | None:
    """The Zeros/Ones/Constant initializer the config names for this kernel role."""
    key = init_key(layer, role)
    init = inits.parse((layer.config or {}).get(key)) if key else None
    return init if init is not None and init.symmetric_value is not None else None


def _describe(init: inits.Initializer) -> str:
    if init.name == "Constant":
        return f"Constant({init.symmetric_value:g})"
    return init.name


@rule("INIT001", "symmetric-initializer", Severity.WARNING, types=KERAS_KERNEL_LAYERS,
      formats=("keras",))
def symmetric_initializer(ctx: Context) -> Iterator[Hit]:
    """The layer's config initializes its kernel with one value for every weight.

    ## What it does
    Looks at the ``kernel_initializer`` (and ``pointwise_initializer``) a
    Keras layer was built with, and flags ``Zeros``, ``Ones`` and
    ``Constant`` initializers on a layer with more than one output unit
    whose output feeds further weighted layers (hidden units).

    ## Why is this bad?
    Training must *break the symmetry* between units.  If all weights
    start at the same value, every unit of the layer computes the same
    output, receives the same gradient, and is updated identically: the
    units remain copies and the layer behaves as if it had a single unit.
    With zeros and a ReLU after the layer, nothing flows at all.  Draw
    weights at random instead, from a zero-mean distribution whose spread
    matches the fan-in (Glorot/He/LeCun, Keras's defaults).

    An output layer is exempt: each of its units receives its own error
    signal, so a zero-initialized classifier head (a common trick) trains.

    Sources: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 8.4 (parameter initialization: breaking
    symmetry); Glorot & Bengio (2010), "Understanding the difficulty of
    training deep feedforward neural networks", AISTATS.

    ## Example
    ```python
    layers.Dense(128, activation="relu", kernel_initializer="zeros")  # INIT001
    layers.Dense(128, activation="relu")  # glorot_uniform: random, scaled
    ```
    """
    layer = ctx.current
    for w, layout, stats in kernels(ctx, layer):
        init = symmetric_config(layer, w.role)
        if init is None or (layout is not None and layout.depthwise):
            continue
        if _units(layer, w, layout) <= 1 or not feeds_weighted(ctx, layer):
            continue
        what = f"{init_key(layer, w.role)} is {_describe(init)}"
        if stats is not None and stats.numeric and stats.constant and ctx.enabled("INIT002"):
            continue  # the saved kernel is still constant: INIT002 reports it, as an error
        if stats is not None and stats.numeric and not stats.constant and stats.size > 1:
            yield Hit(f"{what}: every unit starts with the same weights; the saved weights have "
                      "moved away from it, but retraining from this config starts symmetric",
                      severity=Severity.INFO)
        else:
            yield Hit(f"{what}: all {_units(layer, w, layout)} units start identical, get identical "
                      "gradients and stay identical; use a random initializer such as glorot_uniform")


@rule("INIT002", "constant-kernel", Severity.ERROR, types=KERNEL_LAYERS, needs=("weights",))
def constant_kernel(ctx: Context) -> Iterator[Hit]:
    """A saved kernel holds the same value everywhere (all zeros, or one constant).

    ## What it does
    Reads every kernel (weight matrix) of Dense-like and convolution layers
    and flags a kernel whose values are all identical, in a layer with more
    than one output unit that feeds further weighted layers.  Biases,
    BatchNormalization γ/β and moving statistics are not kernels: they
    start constant by design.

    ## Why is this bad?
    A constant kernel means every unit of the layer computes the same
    function of its input; gradients cannot tell the units apart, so they
    never become different (the symmetry problem).  An all-zero kernel is
    worse: the layer outputs only its bias, and with a ReLU after it, no
    gradient flows back at all.  In a trained model a constant kernel means
    the layer never learned.  Re-initialize with a random initializer.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 8.4 (parameter initialization: breaking
    symmetry).

    ## Example
    ```python
    model.layers[1].set_weights([np.zeros((784, 128)), np.zeros(128)])  # INIT002
    ```

    ## What it does not flag
    An all-zero kernel whose output only feeds the sum of a residual
    connection (a path around the layer joins it there, possibly through
    a gate or a scale) is a branch that starts as the identity on purpose:
    zero-init residual (timm zero-initialises the last BatchNorm γ of each
    ResNet block, and exporters fold it into an all-zero convolution),
    ReZero, LoRA's B matrix, adaLN-zero.  It is reported as info only.  A
    zero kernel on the trunk (no skip around it) stays an error.
    """
    layer = ctx.current
    for w, layout, stats in kernels(ctx, layer):
        if stats is None or not stats.numeric or stats.placeholder or not stats.constant:
            continue
        if layout is not None and layout.depthwise and stats.minimum != 0:
            continue  # a constant depthwise filter is a box filter, not a symmetry
        if _units(layer, w, layout) <= 1 or not feeds_weighted(ctx, layer):
            continue
        init = symmetric_config(layer, w.role) if ctx.graph.format in ("keras", "keras-h5") else None
        cause = f" (its {init_key(layer, w.role)} is {_describe(init)})" if init is not None else ""
        value = "0" if stats.minimum == 0 else f"{stats.minimum:g}"
        joins = residual_joins(ctx.graph, layer) if stats.minimum == 0 else []
        if joins:
            yield Hit(f"the kernel is all zeros and its output only feeds the residual sum {joins[0].name!r}: "
                      "a zero-initialized residual branch (the block starts as the identity), by design",
                      severity=Severity.INFO)
            continue
        yield Hit(f"the kernel is constant: all {stats.size} values are {value}{cause}, so its "
                  f"{_units(layer, w, layout)} units are identical and stay identical; initialize it randomly")


@rule("INIT003", "duplicate-units", Severity.WARNING, types=KERNEL_LAYERS, needs=("weights",))
def duplicate_units(ctx: Context) -> Iterator[Hit]:
    """Several output units (neurons, filters) have identical weights and bias.

    ## What it does
    Compares the incoming weights and the bias of every output unit of a
    Dense-like or convolution layer (within its group, for grouped
    convolutions) and reports how many units are exact copies of another.
    Depthwise filters are exempt (each sees its own channel), and so are
    all-zero units (pruned or dead, not copies).

    ## Why is this bad?
    Two units with the same weights and bias compute the same output and
    receive the same gradient: they are one unit counted twice, and
    training cannot separate them.  Copies come from symmetric
    initialization, from weights tiled or copied by hand, or from a bug in
    a conversion script.  Re-initialize the layer randomly.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 8.4 (parameter initialization: breaking
    symmetry).

    ## Example
    ```python
    k = np.random.randn(64, 32); k[:, 1] = k[:, 0]       # units 0 and 1 are copies
    dense.set_weights([k, np.zeros(32)])                 # INIT003
    ```
    """
    layer = ctx.current
    if ctx.weights is None:
        return
    stats = ctx.weights.layer(ctx.path_of(layer))
    if stats is None or not stats.duplicate_groups:
        return
    for _, layout, ks in kernels(ctx, layer):
        if ks is None or layout is None or ks.constant:
            continue
        if ks.dtype.startswith(("int", "uint")) and layout.fan_in < 8:
            return  # few coarse values per unit: equal by chance
        break
    else:
        return
    if not feeds_weighted(ctx, layer):
        return
    groups = stats.duplicate_groups
    copies = sum(len(g) - 1 for g in groups)
    example = ", ".join(str(i) for i in groups[0][:4])
    yield Hit(f"{copies} output unit(s) duplicate another unit (identical weights and bias) in "
              f"{len(groups)} group(s), e.g. units {example}; copies receive identical gradients "
              "and never diverge")


def _band(layout: KernelLayout) -> tuple[float, float]:
    """(lowest, highest) standard deviation the variance-scaling rules accept."""
    fi, fo = max(layout.fan_in, 1), max(layout.fan_out, 1)
    return math.sqrt(1.0 / max(fi, fo)), math.sqrt(2.0 / min(fi, fo))


def normalized_after(ctx: Context, layer: Layer) -> bool:
    """The layer's output is re-standardized (BatchNormalization etc.) before use."""
    nxt = first_consumers_through(ctx.graph, layer, PASSTHROUGH)
    return bool(nxt) and all(n.type in NORMALIZERS for n in nxt)


@rule("INIT004", "initial-scale", Severity.WARNING, types=KERNEL_LAYERS,
      options={"max-ratio": 4.0})
def initial_scale(ctx: Context) -> Iterator[Hit]:
    """The initial spread of a kernel is far from what its fan-in and fan-out call for.

    ## What it does
    Computes the standard deviation the layer's configured initializer
    draws (Keras), or, in a model that is still untrained, measures it on
    the saved kernel, and compares it with the variance-scaling range:
    from LeCun/Glorot ``sqrt(1 / max(fan_in, fan_out))`` to He
    ``sqrt(2 / min(fan_in, fan_out))``.  A spread more than ``max-ratio``
    (default 4) times above that range is flagged, and so is one that far
    below it in a hidden layer.  Layers followed directly by a
    normalization layer are exempt: it re-standardizes whatever scale the
    kernel has.

    ## Why is this bad?
    Random initialization breaks the symmetry, but the *range* matters
    too.  Each layer multiplies the spread of the signal by about
    ``std * sqrt(fan_in)``: drawing from a standard normal (std 1) for a
    layer with 1024 inputs multiplies it by 32, so sigmoid and tanh units
    saturate and gradients vanish or explode within a few layers; a spread
    that is too small makes the signal die out instead.  Glorot (Xavier)
    and He initializers pick the zero-mean distribution whose spread keeps
    the signal's variance constant from layer to layer.

    Sources: Glorot & Bengio (2010), "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS; He et al. (2015), "Delving
    Deep into Rectifiers", ICCV.

    ## Example
    ```python
    layers.Dense(256, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))  # INIT004 on 1024 inputs
    layers.Dense(256, kernel_initializer="he_normal")                                  # std sqrt(2/1024)
    ```
    """
    layer = ctx.current
    ratio = float(ctx.option("max-ratio"))
    for w, layout, stats in kernels(ctx, layer):
        if layout is None or layout.recurrent or not w.shape:
            continue
        spread = _initial_spread(ctx, layer, w, stats)
        if spread is None:
            continue
        hit = _scale_hit(ctx, layer, layout, spread, ratio)
        if hit is not None:
            yield hit


def _initial_spread(ctx: Context, layer: Layer, w: Weight, stats: TensorStats | None) -> tuple[float, str] | None:
    """(std, where it comes from) of kernel ``w`` at initialization: what the Keras
    initializer draws, else what an untrained saved kernel measures.  ``None`` when
    unknown or zero, and for a symmetric initializer (INIT001's business)."""
    if ctx.graph.format in ("keras", "keras-h5"):
        init = inits.parse((layer.config or {}).get(init_key(layer, w.role) or ""))
        if init is not None and init.symmetric_value is not None:
            return None  # INIT001's business
        shape = tuple(w.shape)
        std = inits.expected_std(init, shape, layer_axes=inits.einsum_kernel_axes(
            layer.type, layer.config or {}, w.name, shape))
        if init is not None and std is not None:  # expected_std knows nothing without an initializer
            return (std, f"its initializer ({init.name}) draws std {std:.3g}") if std != 0 else None
    if stats is not None and ctx.model_state == "untrained" and stats.numeric \
            and not stats.placeholder and stats.finite and stats.size >= 64:
        return (stats.std, f"its untrained kernel has std {stats.std:.3g}") if stats.std != 0 else None
    return None


def _scale_hit(ctx: Context, layer: Layer, layout: KernelLayout, spread: tuple[float, str],
               ratio: float) -> Hit | None:
    """The finding for an initial ``spread`` more than ``ratio`` times outside the variance-scaling band."""
    std, source = spread
    lo, hi = _band(layout)
    fans = f"fan-in {layout.fan_in}, fan-out {layout.fan_out}"
    if std > hi * ratio:
        if normalized_after(ctx, layer):
            return None
        return Hit(f"{source}, {std / hi:.1f}x the largest variance-scaling spread "
                   f"(He: {hi:.3g} for {fans}); activations grow about {std * math.sqrt(layout.fan_in):.3g}x "
                   "per layer; use glorot_uniform or he_normal")
    if std < lo / ratio and feeds_weighted(ctx, layer):
        if normalized_after(ctx, layer):
            return None
        return Hit(f"{source}, {lo / std:.1f}x below the smallest variance-scaling spread "
                   f"(Glorot/LeCun: {lo:.3g} for {fans}); the signal shrinks layer after layer; "
                   "use glorot_uniform or he_normal")
    return None
