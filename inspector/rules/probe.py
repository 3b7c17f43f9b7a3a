"""Rules on measured activations: ACT003, ACT004 (activations) and NUM005 (numerics).

These rules belong to the ACT and NUM families of the catalog, but they live in
this module, named for their data source, because they read what the opt-in
activation probe measured (:mod:`inspector.analysis.probe`: ``inspector lint
--probe``, ``inspector probe``) rather than the file: the static ACT rules are
in :mod:`inspector.rules.activations`, the static NUM rules in
:mod:`inspector.rules.numerics`.  Without ``--probe`` they are skipped.

The measurements come from one forward pass over a batch (``--inputs`` or
synthetic data; see :mod:`inspector.analysis.probe_inputs`), so they describe
the model *on that batch*: give the probe representative inputs for a verdict
about real data.
"""

from __future__ import annotations

from functools import partial
from typing import Iterator

from ..analysis.probe import ActivationStats
from ..findings import Severity
from ..graphquery import walk_backward
from ..ir import Layer, ModelGraph
from ..vocab import GLOBAL_POOLING
from .activations import trunk_consumer
from .engine import Context, Hit, graphs_of
from .registry import rule


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.2g}%"


def _g(x: float) -> str:
    return f"{x:.3g}"


def _locate(ctx: Context) -> dict[str, tuple[ModelGraph, Layer]]:
    """Every layer path of the model with the graph that holds it."""
    def compute() -> dict[str, tuple[ModelGraph, Layer]]:
        out = {}
        for prefix, g in graphs_of(ctx.model):
            for lay in g.layers:
                out[prefix + lay.name] = (g, lay)
        return out

    return ctx.shared(("probe:locate", id(ctx.model)), compute)


def _region(s: ActivationStats) -> str:
    if s.region is None:
        return "the saturated region"
    lo, hi = s.region
    if abs(lo + hi) < 1e-9:
        return f"|x| {'≥' if s.activation == 'hard_sigmoid' else '>'} {_g(hi)}"
    return f"x outside ({_g(lo)}, {_g(hi)})"


@rule("ACT003", "measured-saturation", Severity.WARNING, needs=("probe",),
      options={"max-saturated-units": 0.5})
def measured_saturation(ctx: Context) -> Iterator[Hit]:
    """Most units of a hidden sigmoid/tanh/hard-sigmoid/softsign layer are saturated when the model runs.

    ## What it does
    Uses the activation probe's measurement: for each hidden saturating
    activation (as ACT001 defines hidden: its output feeds further weighted
    layers, it is not a gate and not the model's output), the share of
    units whose pre-activation lies in the saturated region — where the
    derivative is below 1 % of its maximum: ``|x| > 5.99`` for sigmoid,
    ``|x| > 2.99`` for tanh, ``|x| > 9`` for softsign, ``|x| ≥ 3`` for Keras's
    hard sigmoid — for more than half of the batch.  Reported when that share
    is above ``max-saturated-units`` (default 0.5: more than half of the
    layer's units).

    ## Why is this bad?
    A saturated unit passes almost no gradient back: its weights, and every
    weight before it, stop learning, and its output is stuck near 0 or 1.
    It happens when inputs are not standardized, when the initialization is
    too large for the fan-in, or in deep stacks without normalization.
    Standardize the inputs, use Glorot/He initialization, put
    BatchNormalization before the activation, or use ReLU-family hidden
    activations.

    Source: Glorot & Bengio (2010), "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS.

    ## Example
    ```python
    layers.Dense(256, activation="sigmoid",
                 kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))
    # on standardized inputs of 784 features: pre-activations with std ~28,
    # 80 % of them beyond ±5.99 -> ACT003
    ```
    """
    report = ctx.probe_report
    limit = float(ctx.option("max-saturated-units"))
    where = _locate(ctx)
    for s in report.layers:
        if s.family != "saturating" or s.saturated_units is None or not s.units:
            continue
        if not s.saturated_units > limit:
            continue
        found = where.get(s.layer)
        if found is not None:
            g, lay = found
            consumer = ctx.cached(f"probe:trunk:{s.layer}", partial(trunk_consumer, g, lay))
            if consumer is None:
                continue  # a gate or the model's output: saturation is confidence there
        share_values = "" if s.saturated is None else f" ({_pct(s.saturated)} of all values)"
        yield Hit(f"{s.saturated_count} of {s.units} units ({_pct(s.saturated_units)}) of this {s.activation} are "
                  f"saturated on the probe batch: most of their pre-activations have {_region(s)}, where the "
                  f"derivative is below 1% of its maximum{share_values}; pre-activation mean {_g(s.mean)}, std "
                  f"{_g(s.std)}. Their gradients vanish: standardize the inputs, scale the initialization "
                  "(Glorot/He), add BatchNormalization before the activation, or use a relu-family activation",
                  layer=s.layer)


@rule("ACT004", "dead-relu", Severity.WARNING, needs=("probe",),
      options={"min-dead-units": 0.5, "min-values": 8})
def dead_relu(ctx: Context) -> Iterator[Hit]:
    """Half or more of a ReLU layer's units never fire when the model runs.

    ## What it does
    Uses the activation probe's measurement: for each ReLU-family
    activation (relu, relu6, leaky and parametric ReLU, ELU, SELU, CELU,
    thresholded ReLU), the share of units (features, or channels of a
    convolution) whose pre-activation never rose above the firing threshold
    (0; ``theta`` for thresholded ReLU) anywhere in the batch.  Reported when
    that share is at least ``min-dead-units`` (default 0.5) and each unit was
    seen at least ``min-values`` times (8: with fewer samples a healthy unit
    can miss by chance).  With synthetic inputs, layers fed by a global
    pooling (squeeze-and-excitation branches, classifier heads) are not
    judged: a global average of random noise is nearly the same vector for
    every sample, so such a unit's sign is fixed by chance; pass real data
    with ``--inputs`` to judge them too.  A layer whose pre-activation is one
    constant for the whole batch is left to the rules about its cause: a
    constant or zero kernel (INIT001/INIT002) or a dead layer before it.

    ## Why is this bad?
    A ReLU unit that never fires outputs 0 whatever the input and gets a
    zero gradient, so it can never learn its way back: the layer is
    narrower than it looks.  Large negative biases, a learning rate that
    pushed the weights too far, or an initialization that does not fit the
    fan-in cause it.  Use He initialization and zero biases, lower the
    learning rate, put BatchNormalization before the activation, or use
    LeakyReLU/ELU, which keep a small gradient for negative inputs (for
    those, "never fired" means the unit only ever used that small slope).

    Sources: He et al. (2015), "Delving Deep into Rectifiers", ICCV;
    Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 6.3 (hidden units).

    ## Example
    ```python
    layers.Dense(128, activation="relu",
                 bias_initializer=keras.initializers.Constant(-10.0))
    # pre-activations below 0 for every input -> ACT004
    ```
    """
    report = ctx.probe_report
    limit = float(ctx.option("min-dead-units"))
    min_values = int(ctx.option("min-values"))
    for s in report.layers:
        if s.family != "rectifier" or s.dead_units is None or not s.units:
            continue
        if s.values // s.units < min_values or not s.dead_units >= limit:
            continue
        if s.std == 0:
            continue  # one constant for every input: a constant kernel (INIT001/INIT002) or a dead layer before
        if report.synthetic and _after_global_pooling(ctx, s.layer):
            continue  # an image-level summary of noise: nearly the same for every synthetic sample
        leaky = s.activation not in ("relu", "relu6", "thresholded_relu")
        effect = ("they only ever use the small negative-side slope" if leaky else
                  "a dead unit outputs 0 and gets no gradient, so it never recovers")
        yield Hit(f"{s.dead_count} of {s.units} units ({_pct(s.dead_units)}) of this {s.activation} never fired on "
                  f"the {report.samples}-sample probe batch (pre-activation mean {_g(s.mean)}, std {_g(s.std)}): "
                  f"{effect}. Check for large negative biases or a too high learning rate; use He initialization, "
                  "BatchNormalization before the activation, or LeakyReLU/ELU", layer=s.layer)


@rule("NUM005", "non-finite-activations", Severity.ERROR, needs=("probe",))
def non_finite_activations(ctx: Context) -> Iterator[Hit]:
    """Activations become NaN or infinite when the model runs.

    ## What it does
    Uses the activation probe's measurement of every activation's
    pre-activation (and of the model's outputs) and reports where NaN or
    infinite values *first* appear: the activations they reach further
    down the graph are counted in the message, not reported again.

    ## Why is this bad?
    Floating point is approximate and has limits: a value past the largest
    float (3.4e38 in float32, 65504 in float16) becomes ``inf``, and
    ``inf - inf``, ``0 * inf`` or ``log`` of a negative number become
    ``nan``, which then spreads through every later layer and into the loss
    and the gradients.  Causes: NaN/Inf weights (NUM001), activations that
    grow without bound (no normalization, a too large initialization),
    ``log``/``sqrt``/division without an epsilon, float16 overflow, or bad
    input values.  Add normalization, epsilons and gradient clipping, and
    check the weights and the inputs.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```python
    x = layers.Dense(512, kernel_initializer=RandomNormal(stddev=1e10))(x)
    x = layers.Activation("tanh")(x)   # pre-activation overflows to inf -> NUM005
    ```
    """
    report = ctx.probe_report
    bad = [s for s in report.layers if s.nonfinite]
    order = {s.layer: i for i, s in enumerate(report.layers)}

    def upstream(a: str, b: str) -> bool:
        ta, tb = a.split("/", 1)[0], b.split("/", 1)[0]
        if ta == tb:
            return order[a] < order[b]
        return ta in _ancestors(ctx, tb)

    for s in bad:
        if any(upstream(o.layer, s.layer) for o in bad if o is not s):
            continue
        later = sum(1 for o in bad if o is not s and upstream(s.layer, o.layer))
        spread = f"; {later} later activation(s) carry them too" if later else ""
        yield Hit(f"{s.nonfinite:,} of {s.values:,} pre-activation values ({_pct(s.nonfinite / s.values)}) of this "
                  f"{s.activation} are NaN/Inf on the probe batch{spread}: check the weights (NUM001), "
                  "unbounded activations, log/sqrt/division without an epsilon, float16 overflow and the inputs",
                  layer=s.layer)
    if bad:
        return
    for out in report.outputs:
        if out.nonfinite:
            yield Hit(f"{out.nonfinite:,} of {out.values:,} values of model output {out.name!r} are NaN/Inf on the "
                      "probe batch: check the weights (NUM001), log/sqrt/division without an epsilon, float16 "
                      "overflow and the inputs", layer=out.layer)


def _ancestors(ctx: Context, name: str) -> set[str]:
    def compute() -> set[str]:
        import networkx as nx

        g = ctx.model.nx
        if name not in g:
            return set()
        ancestors: set[str] = nx.ancestors(g, name)
        return ancestors

    return ctx.shared(("probe:ancestors", id(ctx.model), name), compute)


SPATIAL = frozenset({"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                     "SeparableConv2D", "Conv2DTranspose", "Conv3DTranspose", "Conv", "ConvTranspose",
                     "MaxPooling2D", "AveragePooling2D", "MaxPool", "AveragePool", "InputLayer"})


def _after_global_pooling(ctx: Context, path: str) -> bool:
    """Whether ``path``'s input is derived from a global pooling with no spatial
    layer in between (looking back at most 12 layers, within its graph)."""
    found = _locate(ctx).get(path)
    if found is None:
        return False
    g, lay = found

    def visit(p: Layer) -> str:
        if p.type in GLOBAL_POOLING or (p.type == "ReduceMean" and _spatial_mean(p)):
            return "yield"
        return "stop" if p.type in SPATIAL and not _pointwise_conv(p) else "go"

    return next(walk_backward(g, lay, visit, max_depth=12), None) is not None


def _pointwise_conv(layer: Layer) -> bool:
    """A 1x1 convolution (a Dense per position: it keeps no spatial context)."""
    cfg = layer.config or {}
    ks = cfg.get("kernel_size", cfg.get("kernel_shape"))
    if isinstance(ks, int):
        ks = [ks]
    if isinstance(ks, (list, tuple)) and ks:
        return all(k == 1 for k in ks)
    if layer.type == "Conv":
        w = next((w for w in layer.weights if len(w.shape) >= 3), None)
        return w is not None and all(d == 1 for d in w.shape[2:])
    return False


def _spatial_mean(layer: Layer) -> bool:
    axes = (layer.config or {}).get("axes")
    return isinstance(axes, list) and len(axes) >= 2
