"""NUM: numerical stability — values a float cannot hold, and formulas that lose them.

Computers approximate real numbers with floating point: very large values
overflow to infinity, very small ones round to zero, and some formulas are only
stable when written the right way.  These rules find stored values that are
already broken and graph patterns known to break them.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..analysis.weights import TensorStats
from ..findings import Severity
from ..graphquery import activation_of, consumers, source_through
from ..ir import Layer, ModelGraph
from ..vocab import DROPOUT_LIKE
from .engine import Context, Hit, graphs_of
from .registry import rule

FILL_OPS = frozenset({"Where", "Max", "Min", "Clip", "Maximum", "Minimum", "ReduceMax", "ReduceMin"})
"""Operators for which an infinite constant is a fill value or a bound: ``Where(mask, x, -inf)``
(masked_fill), clamps and the initial value of a running maximum or minimum."""
MASK_SINKS = frozenset({"Softmax", "LogSoftmax", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "TopK",
                        "Max", "Min"})
"""Operators after which an additive ``-inf`` mask is exactly what is wanted (probability 0, never picked)."""
MASK_CARRIERS = DROPOUT_LIKE | {"Add", "Sub", "Where", "Expand", "Reshape", "Unsqueeze", "Squeeze", "Tile",
                                "Slice", "Transpose", "Concat", "Trilu", "Gather", "Mul", "Div", "CastLike"}
"""Operators a mask flows through on its way to the softmax (building, broadcasting, adding, scaling)."""
TEST_OPS = frozenset({"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "IsInf"})
"""Operators for which an infinite constant is what a value is tested against (``Equal(row_max, -inf)``: is
every score of the row masked?): the answer is a bool, never a NaN."""
TYPE_ONLY = DROPOUT_LIKE | {"CastLike"}
"""Operators that hand a constant on with another type only (``CastLike(-inf, scores)``, the ONNX ``Attention``
function's expansion): what their consumers do with it decides."""


@rule("NUM001", "non-finite-weights", Severity.ERROR, needs=("weights",))
def non_finite_weights(ctx: Context) -> Iterator[Hit]:
    """A stored tensor contains NaN or infinite values.

    ## What it does
    Reads every stored tensor once and counts NaN and ±Inf values.

    ## Why is this bad?
    A single NaN weight makes every output that depends on it NaN, and the
    NaN spreads through every later layer; an infinite weight does the same
    as soon as it is multiplied by zero or added to its opposite.  Such
    values usually come from a training run that diverged (learning rate
    too high, a log or division of zero, no epsilon) and was saved anyway.
    Restore an earlier checkpoint and fix the instability.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```python
    model.fit(x, y)          # loss: nan
    model.save("m.keras")    # NUM001: the weights are NaN too
    ```

    ## What it does not flag
    Infinite constants used on purpose, as a mask fill or a bound: every
    TorchScript transformer export has ``Where(mask, 0, -inf) → Add →
    Softmax`` (masked_fill), and models clamp with ``Max``/``Min``/``Clip``
    against ±inf or start a running maximum at ``-inf``.  A tensor that
    holds only 0 and ±inf is left alone when every node that holds it is
    such a fill or bound (``Where``, ``Max``, ``Min``, ``Clip``,
    ``ReduceMax`` …), tests values against it (``Equal(row_max, -inf)``:
    is the whole row masked?, as the ONNX ``Attention`` function's
    expansion does) or adds it to scores that reach a
    ``Softmax``/``ReduceMax``/``ArgMax``/``TopK`` (an additive mask);
    a ``Cast``/``CastLike`` in between hands it on to its consumers.
    A NaN is never deliberate and is always reported.
    """
    owners = _owners(ctx.model)
    for stats in sorted(ctx.weight_report.tensors.values(), key=lambda s: s.layer):
        if stats.numeric and not stats.finite and not _deliberate_inf(stats, owners.get(stats.key, [])):
            effect = ("every output depending on it is NaN" if stats.nan else
                      "outputs depending on it are infinite, and NaN once it meets a zero or its opposite")
            yield Hit(f"{stats.role} {stats.name!r} has {stats.nan} NaN and {stats.inf} infinite "
                      f"value(s) of {stats.size}: {effect}", layer=stats.layer or None)


def _owners(model: ModelGraph) -> dict[str, list[tuple[ModelGraph, Layer]]]:
    """Weight key → every (graph, layer) that holds the tensor, nested graphs included."""
    out: dict[str, list[tuple[ModelGraph, Layer]]] = {}
    for _, g in graphs_of(model):
        for lay in g.layers:
            for w in lay.weights:
                out.setdefault(w.key, []).append((g, lay))
    return out


def _deliberate_inf(stats: TensorStats, owners: list[tuple[ModelGraph, Layer]]) -> bool:
    """An infinite (never NaN) tensor that every holder uses as a fill value or a bound."""
    if stats.nan or not owners:
        return False
    if stats.zeros + stats.inf != stats.size:
        return False  # a fill, a bound or an additive mask holds only 0 and ±inf; finite values mean weights
    return all(_deliberate_use(g, lay) for g, lay in owners)


def _deliberate_use(graph: ModelGraph, layer: Layer, *, depth: int = 8) -> bool:
    """``layer``, which holds or receives an infinite constant, uses it as a fill, a bound, a test or an
    additive mask; a cast hands it on, so each of its consumers must (at most ``depth`` casts followed)."""
    if layer.type in FILL_OPS or layer.type in TEST_OPS or _reaches_mask_sink(graph, layer):
        return True
    if layer.type not in TYPE_ONLY or depth == 0:
        return False
    nxt = consumers(graph, layer)
    return bool(nxt) and all(_deliberate_use(graph, c, depth=depth - 1) for c in nxt)


def _reaches_mask_sink(graph: ModelGraph, start: Layer, *, max_steps: int = 64) -> bool:
    """``start`` adds or builds a mask whose every path, through mask-building operators,
    ends in a softmax, a max or an arg-max (at most ``max_steps`` nodes visited)."""
    if start.type not in MASK_CARRIERS:
        return False
    seen = {start.name}
    todo = [start]
    steps = 0
    while todo:
        lay = todo.pop()
        nxt = consumers(graph, lay)
        if not nxt:
            return False  # the mask itself is an output, or the graph ends here
        for c in nxt:
            steps += 1
            if steps > max_steps or c.type not in MASK_SINKS | MASK_CARRIERS:
                return False
            if c.type not in MASK_SINKS and c.name not in seen:
                seen.add(c.name)
                todo.append(c)
    return True


def _policy(layer: Layer) -> str:
    """The dtype policy name of a Keras layer (``mixed_float16``, ``float32`` …)."""
    if layer.dtype:
        return str(layer.dtype)
    d = (layer.config or {}).get("dtype")
    if isinstance(d, dict):
        cfg = d.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if isinstance(name, str):
            return name
    return d if isinstance(d, str) else ""


def _float16_context(graph: ModelGraph) -> dict[str, str]:
    """Layer paths that compute in float16, with the reason: a Keras ``float16`` or
    ``mixed_float16`` dtype policy, or an ONNX node whose output is float16 (its
    float32 constants are cast down)."""
    out: dict[str, str] = {}
    for path, lay in graph.walk():
        if graph.format == "onnx":
            if str(lay.dtype or "") == "float16":
                out[path] = "the node computes in float16"
            continue
        policy = _policy(lay).lower()
        if "float16" in policy and "bfloat16" not in policy:
            out[path] = f"its dtype policy is {policy}"
    return out


@rule("NUM002", "float16-overflow", Severity.ERROR, needs=("weights",))
def float16_overflow(ctx: Context) -> Iterator[Hit]:
    """Weights exceed the float16 range in a model that computes in float16.

    ## What it does
    In a Keras layer with a ``float16`` or ``mixed_float16`` dtype policy,
    or an ONNX node that computes in float16, flags float tensors holding
    values beyond ±65504, the largest finite float16.

    ## Why is this bad?
    Under mixed precision the float32 weights are cast to float16 for the
    computation: anything above 65504 becomes infinity, and infinities turn
    into NaN at the first subtraction or multiplication by zero.  Keep such
    layers in float32 (``dtype="float32"``) or rescale the weights.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```python
    keras.mixed_precision.set_global_policy("mixed_float16")
    layers.Dense(10)   # NUM002 if a kernel value is 1e5
    ```
    """
    fp16 = _float16_context(ctx.model)
    if not fp16:
        return
    for stats in sorted(ctx.weight_report.tensors.values(), key=lambda s: s.layer):
        if stats.f16_overflow and stats.layer in fp16:
            yield Hit(f"{stats.role} {stats.name!r} has {stats.f16_overflow} value(s) beyond ±65504 "
                      f"(max |x| {max(abs(stats.minimum), abs(stats.maximum)):.4g}) and {fp16[stats.layer]}: "
                      "they become inf in float16; keep this layer in float32", layer=stats.layer)


LOG_TYPES = frozenset({"Log", "log", "TFOpLambda"})


@rule("NUM003", "log-of-softmax", Severity.WARNING, types=LOG_TYPES)
def log_of_softmax(ctx: Context) -> Iterator[Hit]:
    """The model takes the logarithm of a softmax instead of using log-softmax.

    ## What it does
    Flags a ``log`` operation whose input is the output of a softmax.

    ## Why is this bad?
    Softmax rounds tiny probabilities to exactly 0 in floating point, and
    ``log(0)`` is ``-inf``: the loss becomes infinite and gradients NaN.
    ``log_softmax(x) = x - logsumexp(x)`` computes the same values without
    ever forming the small probabilities, so it stays finite.  Use
    ``keras.ops.log_softmax`` / ``tf.nn.log_softmax``, or pass logits to a
    loss with ``from_logits=True``.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```python
    y = keras.ops.log(layers.Softmax()(logits))   # NUM003
    y = keras.ops.log_softmax(logits)              # stable
    ```
    """
    lay = ctx.current
    if lay.type == "TFOpLambda" and not str((lay.config or {}).get("function", "")).endswith("log"):
        return
    src = source_through(ctx.graph, lay, DROPOUT_LIKE)
    if src is not None and activation_of(src) == "softmax":
        yield Hit(f"takes log of the softmax from {src.name!r}: probabilities that round to 0 give "
                  "-inf; use log_softmax or a from_logits=True loss")


# -- NUM004 --------------------------------------------------------------------------------

PROB_LOSSES = {
    "categoricalcrossentropy": "categorical_crossentropy",
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "binarycrossentropy": "binary_crossentropy",
    "binaryfocalcrossentropy": "binary_focal_crossentropy",
    "categoricalfocalcrossentropy": "categorical_focal_crossentropy",
}
PROB_ACTIVATIONS = frozenset({"softmax", "sigmoid"})
LOOK_BACK = DROPOUT_LIKE | {"Reshape", "Flatten", "Identity"}


def _loss_spec(loss: Any) -> tuple[str, bool] | None:
    """(canonical loss name, from_logits) of a serialized Keras loss, if it is one of
    the cross-entropies that care about logits vs probabilities."""
    if isinstance(loss, str):
        key = loss.replace("_", "").lower()
        return (PROB_LOSSES[key], False) if key in PROB_LOSSES else None
    if isinstance(loss, dict):
        cls = loss.get("class_name")
        raw_cfg = loss.get("config")
        cfg: dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
        if cls == "function" and isinstance(raw_cfg, str):
            return _loss_spec(raw_cfg)
        if isinstance(cls, str):
            key = cls.replace("_", "").lower()
            if key in PROB_LOSSES:
                return PROB_LOSSES[key], bool(cfg.get("from_logits", False))
    return None


def _losses_per_output(loss: Any, outputs: list[str]) -> Iterator[tuple[str, Any]]:
    if isinstance(loss, dict) and "class_name" not in loss:
        for name, spec in loss.items():
            if name in outputs:
                yield name, spec
    elif isinstance(loss, (list, tuple)):
        yield from zip(outputs, loss, strict=False)  # the file may list fewer or more losses than outputs
    elif loss is not None:
        for name in outputs:
            yield name, loss


@rule("NUM004", "loss-activation-mismatch", Severity.ERROR, formats=("keras",))
def loss_activation_mismatch(ctx: Context) -> Iterator[Hit]:
    """The compiled loss expects logits but gets probabilities, or the reverse.

    ## What it does
    Reads the loss the ``.keras`` file was compiled with and the
    activation of the output it applies to.  Flags a softmax/sigmoid
    output fed to a cross-entropy with ``from_logits=True``, and a linear
    output fed to a cross-entropy expecting probabilities
    (``from_logits=False``, the default).

    ## Why is this bad?
    With ``from_logits=True`` the loss applies softmax/sigmoid itself: on
    top of the model's own softmax, the probabilities are squashed twice,
    gradients shrink and training stalls.  With ``from_logits=False`` the
    loss takes the outputs as probabilities: raw logits get clipped into
    [1e-7, 1 - 1e-7] and training silently goes wrong.  Computing the loss
    from logits is also the numerically stable choice.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```python
    outputs = layers.Dense(10, activation="softmax")(x)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # NUM004
    ```
    """
    compile_cfg = ctx.model.metadata.get("compile_config") or {}
    if not isinstance(compile_cfg, dict):
        return
    graph = ctx.model
    out_names = [ref.layer for ref in graph.outputs]
    for name, loss in _losses_per_output(compile_cfg.get("loss"), out_names):
        spec = _loss_spec(loss)
        if spec is None or name not in graph:
            continue
        loss_name, from_logits = spec
        lay = graph.layer(name)
        if lay.type in LOOK_BACK or activation_of(lay) == "linear" and lay.type == "Activation":
            lay = source_through(graph, lay, LOOK_BACK | {"Activation"}) or lay
        act = activation_of(lay)
        if act is None:
            continue
        if from_logits and act in PROB_ACTIVATIONS:
            yield Hit(f"the output is already a {act}, but {loss_name} is compiled with "
                      "from_logits=True and applies it again; drop the activation or set "
                      "from_logits=False", layer=ctx.path_of(lay))
        elif not from_logits and act == "linear":
            yield Hit(f"the output is linear (logits), but {loss_name} expects probabilities "
                      "(from_logits=False); set from_logits=True", layer=ctx.path_of(lay))
