"""NORM: getting the input into a range the network can learn from.

*Normalization* rescales data to a common range (e.g. 0–1, MinMaxScaler)
without distorting the differences between values; *standardization* shifts
and scales it to mean 0 and variance 1 (z-scores, StandardScaler).  Without
either, features with large or unbalanced ranges dominate the first layer,
training is slow or fails.  Keras models often do this inside the model
(``Rescaling``, ``Normalization``), which these rules can check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Iterator

from ..analysis.weights import TensorStats
from ..findings import Severity
from ..graphquery import consumers, is_weighted, producers, tensor_inputs, walk_forward
from ..ir import Dim, Layer, ModelGraph, Shape
from ..vocab import (
    KERAS_CONV,
    KERAS_CONV_TRANSPOSE,
    KERAS_DEPTHWISE,
    KERAS_KERNEL_LAYERS,
    KERAS_SEPARABLE,
    NORMALIZERS,
    ONNX_CONV,
    ONNX_CONV_TRANSPOSE,
    ONNX_KERNEL_OPS,
)
from .engine import Context, Hit
from .registry import rule

PREPROCESSING = frozenset({"Rescaling", "Normalization", "Lambda", "TFOpLambda"}) | NORMALIZERS
ARITHMETIC = frozenset({"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Sub", "Div", "Mul"})


def _dims(shape: Shape | None) -> list[Dim]:
    return list(shape) if shape is not None else []


def _spatial_ok(d: Dim) -> bool:
    """An image side: unknown, symbolic, or at least 8 pixels."""
    return d is None or isinstance(d, str) or (isinstance(d, int) and d >= 8)


def image_like(shape: Shape | None, fmt: str) -> bool:
    """A batch of images: rank 4 with 1, 3 or 4 channels on the channel axis."""
    dims = _dims(shape)
    if len(dims) != 4:
        return False
    if fmt == "onnx":
        return dims[1] in (1, 3) and _spatial_ok(dims[2]) and _spatial_ok(dims[3])
    return dims[3] in (1, 3, 4) and _spatial_ok(dims[1]) and _spatial_ok(dims[2])


CONVOLUTIONS = KERAS_CONV | KERAS_CONV_TRANSPOSE | KERAS_DEPTHWISE | KERAS_SEPARABLE | ONNX_CONV | ONNX_CONV_TRANSPOSE
_NOT_IMAGE_WORDS = re.compile(r"mask|attention|causal|position|token|cache|hidden|embed|(?:^|[^a-z])(?:attn|ids|"
                              r"pos|past|bias|state|key|value|kv)(?:[^a-z]|$)")
_IMAGE_WORDS = re.compile(r"image|img|pixel|photo|picture|frame|video|rgb|bgr|(?:^|[^a-z])im(?:[^a-z]|$)")


def image_evidence(graph: ModelGraph, lay: Layer, first: Layer) -> str | None:
    """Why the image-shaped input ``lay`` (see :func:`image_like`), whose data first reaches
    ``first``, is an image — or ``None``.  Rank alone is no evidence: a decoder's float
    ``causal_mask`` of shape (batch, 1, seq, seq) is rank 4 with one "channel".  Evidence is
    a name (``pixel_values``, ``image``), dtype uint8, three channels, a convolution as the
    first weighted layer, or a Keras channels-last axis of 1, 3 or 4; a mask/ids/position/
    cache name rules it out."""
    name = str((lay.config or {}).get("name") or lay.name).lower()
    if _NOT_IMAGE_WORDS.search(name):
        return None
    if _IMAGE_WORDS.search(name):
        return f"its name {name!r}"
    if str(lay.dtype or "") == "uint8":
        return "its dtype uint8"
    dims = _dims(lay.output_shapes[0] if lay.output_shapes else None)
    if graph.format != "onnx":
        return "its channels-last shape"  # Keras: a trailing axis of 1, 3 or 4 is declared channels
    if len(dims) == 4 and dims[1] == 3:
        return "its 3 channels"
    if first.type in CONVOLUTIONS:
        return f"the convolution {first.name!r} it feeds"
    return None


def _preprocesses(lay: Layer) -> bool:
    """Rescaling, Normalization, BN/LN, a Lambda, or arithmetic with a constant."""
    if lay.type in PREPROCESSING:
        return True
    return lay.type in ARITHMETIC and tensor_inputs(lay) <= 1


RAW_INTEGER_DTYPES = frozenset({"uint8"})
"""Input dtypes that hold raw pixel or byte values (0-255), never standardized data."""
KERNEL_LAYERS = (KERAS_KERNEL_LAYERS | ONNX_KERNEL_OPS) - {"QLinearConv", "ConvInteger", "QLinearMatMul",
                                                            "MatMulInteger"}
"""Layers that multiply their input by a float kernel (quantized operators take integers by design)."""


def _raw_integer_input(ctx: Context, lay: Layer) -> Hit | None:
    """A warning when the uint8 input ``lay`` reaches a Dense/Conv kernel with no rescaling or
    normalization on the way (casts are looked through; an Embedding or a lookup is fine)."""
    def visit(n: Layer) -> str:
        if _preprocesses(n):
            return "stop"
        return "yield" if is_weighted(n) else "go"

    first = next(walk_forward(ctx.model, lay, visit), None)
    if first is None or first.type not in KERNEL_LAYERS:
        return None
    return Hit(f"{lay.dtype} input reaches the {first.type} kernel of {first.name!r} with no Rescaling or "
               "Normalization: raw 0-255 integers make the first layer's outputs hundreds of times too "
               "large; add Rescaling(1/255) or an adapted Normalization",
               layer=ctx.path_of(lay), severity=Severity.WARNING)


@rule("NORM001", "missing-input-normalization", Severity.INFO)
def missing_input_normalization(ctx: Context) -> Iterator[Hit]:
    """An image input reaches the first weighted layer without rescaling or normalization.

    ## What it does
    For every model input that is an image batch (rank 4 with 1, 3 or 4
    channels, and evidence beyond the rank: an image-like name, dtype
    uint8, 3 channels, a convolution as the first weighted layer, or a
    Keras channels-last axis), follows the data to the first weighted layer and reports the input
    when no ``Rescaling``, ``Normalization``, normalization layer, or
    arithmetic with a constant lies on the way.  Informational: the
    scaling often happens outside the model, in the data pipeline.

    A ``uint8`` input of any rank (a flattened 28x28 MLP input as much as
    an image batch) that reaches a Dense or convolution kernel that way is
    a **warning**: the model itself receives raw 0-255 integers, so no
    pipeline scales them.

    Not flagged: a ``uint8`` input that goes into an ``Embedding`` or a
    lookup (token or category ids), into quantized operators
    (``QLinearConv``, ``ConvInteger``, ``MatMulInteger``) that take
    integers by design, or through any rescaling on the way.

    ## Why is this bad?
    Raw pixels are in 0–255.  Fed to a network initialized for inputs of
    unit scale, they make the first layer's outputs hundreds of times too
    large, saturate activations and slow or break training.  Normalize
    (e.g. divide by 255 to get 0–1) or standardize (subtract the mean,
    divide by the standard deviation); doing it inside the model with
    ``layers.Rescaling(1/255)`` or an adapted ``layers.Normalization``
    guarantees training and serving do the same.

    Source: LeCun et al. (1998), "Efficient BackProp", in *Neural Networks:
    Tricks of the Trade*.

    ## Example
    ```python
    inputs = keras.Input((224, 224, 3))
    x = layers.Conv2D(32, 3)(inputs)          # NORM001 (info)
    pixels = keras.Input((784,), dtype="uint8")
    x = layers.Dense(128)(pixels)             # NORM001 (warning): raw integers
    x = layers.Rescaling(1 / 255)(inputs)     # scaled inside the model
    ```

    ## What it does not flag
    Rank-4 float inputs with no evidence of being images, and inputs whose
    name says they are something else (``causal_mask``,
    ``attention_mask``, ``position_ids``, ``past_key_values`` …): a
    decoder's (batch, 1, seq, seq) mask is not a picture to rescale.
    """
    graph = ctx.model
    for lay in graph.layers:
        if lay.type != "InputLayer" or not lay.output_shapes:
            continue
        if lay.dtype in RAW_INTEGER_DTYPES:  # raw integers: a definite mistake, whatever the rank
            hit = _raw_integer_input(ctx, lay)
            if hit is not None:
                yield hit
            continue
        if not image_like(lay.output_shapes[0], graph.format):
            continue

        def visit(n: Layer) -> str:
            if _preprocesses(n):
                return "stop"
            return "yield" if is_weighted(n) else "go"

        first = next(walk_forward(graph, lay, visit), None)
        if first is not None and image_evidence(graph, lay, first) is not None:
            yield Hit(f"image input reaches {first.name!r} with no rescaling or normalization in the "
                      "model; make sure the pipeline scales pixels (e.g. Rescaling(1/255))",
                      layer=ctx.path_of(lay))


def _stats_role(ctx: Context, layer: Layer, names: tuple[str, ...]) -> TensorStats | None:
    for w in layer.weights:
        leaf = w.name.rsplit("/", 1)[-1].split(":")[0]
        if w.role in names or leaf in names:
            return ctx.weights.of(w) if ctx.weights is not None else None
    return None


@rule("NORM002", "unadapted-normalization", Severity.WARNING, types={"Normalization"}, formats=("keras",),
      needs=("weights",))
def unadapted_normalization(ctx: Context) -> Iterator[Hit]:
    """A ``Normalization`` layer was never adapted to the data.

    ## What it does
    Flags a Keras ``Normalization`` layer built without ``mean`` and
    ``variance`` whose stored statistics are still the defaults (mean 0,
    variance 1, sample count 0), i.e. ``adapt()`` was never called.  In a
    model that was never trained this is informational (adapt before
    fitting); in any other model it is a warning.

    ## Why is this bad?
    ``Normalization`` standardizes its input with statistics it learns in
    ``layer.adapt(data)``, not in ``fit()``.  Never adapted, it computes
    ``(x - 0) / sqrt(1)``: nothing.  The model trains on unstandardized
    inputs although its author meant to standardize them.

    Source: LeCun et al. (1998), "Efficient BackProp", in *Neural Networks:
    Tricks of the Trade*.

    ## Example
    ```python
    norm = layers.Normalization()
    norm.adapt(x_train)            # without this line: NORM002
    ```
    """
    lay = ctx.current
    cfg = lay.config or {}
    if cfg.get("mean") is not None and cfg.get("variance") is not None:
        return
    mean = _stats_role(ctx, lay, ("mean", "adapt_mean"))
    var = _stats_role(ctx, lay, ("variance", "adapt_variance"))
    count = _stats_role(ctx, lay, ("count",))
    if mean is None or var is None or mean.placeholder:
        return
    defaults = mean.all_zero and var.is_constant_value(1.0)
    if count is not None and count.numeric:
        defaults = defaults and count.all_zero
    if not defaults:
        return
    untrained = ctx.model_state == "untrained"
    yield Hit("never adapted: mean 0 and variance 1 make it an identity, so inputs are not "
              "standardized; call layer.adapt(training_data)" + (" before training" if untrained else ""),
              severity=Severity.INFO if untrained else None)


def _scale(layer: Layer) -> float | None:
    """Mean magnitude of a Rescaling layer's scale (per-channel lists allowed)."""
    s = (layer.config or {}).get("scale")
    vals: list[Any] = s if isinstance(s, list) else [s]
    try:
        mags = [abs(float(v)) for v in vals]
    except (TypeError, ValueError):
        return None
    return sum(mags) / len(mags) if mags else None


def _norm_divisor(ctx: Context, layer: Layer) -> float:
    """sqrt of the mean variance a Normalization layer divides by (1 if unknown)."""
    var = (layer.config or {}).get("variance")
    vals = var if isinstance(var, list) else [var] if var is not None else []
    try:
        vals = [float(v) for v in vals]
    except (TypeError, ValueError):
        vals = []
    if not vals:
        stats = _stats_role(ctx, layer, ("variance", "adapt_variance"))
        if stats is not None and stats.numeric and stats.finite and stats.mean > 0:
            return math.sqrt(stats.mean)
        return 1.0
    mean = sum(vals) / len(vals)
    return math.sqrt(mean) if mean > 0 else 1.0


def _chain(graph: ModelGraph, layer: Layer) -> list[Layer]:
    """The run of single-input preprocessing layers around ``layer`` (upstream and
    downstream), in order."""
    def run(step: Callable[[ModelGraph, Layer], list[Layer]]) -> list[Layer]:
        found: list[Layer] = []
        cur = layer
        while True:
            nxt = step(graph, cur)
            if len(nxt) != 1 or not _preprocesses(nxt[0]) and nxt[0].type not in ("Resizing", "CenterCrop"):
                return found
            cur = nxt[0]
            found.append(cur)

    return run(producers)[::-1] + [layer] + run(consumers)


@rule("NORM003", "suspicious-rescaling", Severity.WARNING, types={"Rescaling"},
      options={"max-scale": 100.0, "min-scale": 0.001})
def suspicious_rescaling(ctx: Context) -> Iterator[Hit]:
    """A ``Rescaling`` factor that cannot be right, such as 255 instead of 1/255.

    ## What it does
    Multiplies the factors of a run of consecutive ``Rescaling`` layers
    (divided by the standard deviation of any ``Normalization`` in the
    same run) and flags a scale of 0, a net factor above ``max-scale``
    (default 100: e.g. ``Rescaling(255)``) or below ``min-scale``
    (default 0.001: e.g. dividing by 255 twice).  Reported once, at the
    last ``Rescaling`` of the run.

    ## Why is this bad?
    Pixel scaling is meant to bring 0–255 into 0–1 (or -1–1).  A factor
    of 255 multiplies instead of dividing and sends values into the tens
    of thousands; dividing twice squeezes every image into 0–0.00002 so
    the network sees nearly constant input.  Either way training starts
    badly or not at all.

    Source: LeCun et al. (1998), "Efficient BackProp", in *Neural Networks:
    Tricks of the Trade*.

    ## Example
    ```python
    layers.Rescaling(255)          # NORM003: meant 1/255
    layers.Rescaling(1.0 / 255)    # fine
    ```
    """
    lay = ctx.current
    chain = _chain(ctx.graph, lay)
    last = [n for n in chain if n.type == "Rescaling"][-1]
    if last is not lay:
        return
    net = 1.0
    for n in chain:
        if n.type == "Rescaling":
            s = _scale(n)
            if s is None:
                return
            if s == 0 or not math.isfinite(s):
                yield Hit(f"{n.name!r} scales by {s:g}: every input becomes "
                          f"{'0' if s == 0 else 'non-finite'}", layer=ctx.path_of(n))
                return
            net *= s
        elif n.type == "Normalization":
            net /= _norm_divisor(ctx, n)
    hi, lo = float(ctx.option("max-scale")), float(ctx.option("min-scale"))
    rescalings = [n for n in chain if n.type == "Rescaling"]
    what = ("this Rescaling multiplies" if len(rescalings) == 1
            else f"{len(rescalings)} Rescaling layers in a row multiply")
    if net > hi:
        yield Hit(f"{what} inputs by {net:.4g}; to bring pixels into 0-1 the factor is 1/255, "
                  "not 255")
    elif net < lo:
        yield Hit(f"{what} inputs by {net:.3g} in total: the input is scaled down more than "
                  "once (e.g. 1/255 twice)")
