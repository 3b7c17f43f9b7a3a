"""ACT: activation functions — where non-linearities help and where they hurt.

The non-linearity between two weighted layers is what makes a deep network
more than one big matrix.  The choice matters: sigmoid and tanh flatten out
for large |x|, their derivatives go to 0 there, and a stack of them multiplies
those small derivatives together until the early layers stop learning: the
vanishing gradient (Glorot & Bengio 2010, "Understanding the difficulty of
training deep feedforward neural networks").
"""

from __future__ import annotations

from typing import Iterator

from ..findings import Severity
from ..graphquery import (
    activation_of,
    consumers,
    input_width,
    is_activation_layer,
    is_gate,
    is_output,
    is_weighted,
    nonlinear,
    producers,
    source_through,
    tensor_inputs,
    topological,
    units_of,
    walk_forward,
)
from ..ir import Layer, ModelGraph
from ..vocab import (
    ACTIVATION_TYPES,
    BATCHNORM,
    DROPOUT_LIKE,
    KERAS_ACTIVATION_LAYERS,
    KERAS_DEPTHWISE,
    KERAS_KERNEL_LAYERS,
    NORMALIZERS,
    ONNX_MATMUL,
    SATURATING,
)
from .engine import Context, Hit
from .registry import rule

ACTIVATION_LAYERS = KERAS_ACTIVATION_LAYERS | {"TFOpLambda", "Clip"} | set(ACTIVATION_TYPES)
"""Layers the activation rules look at as stand-alone non-linearities."""
FUSED_ACTIVATION_LAYERS = KERAS_KERNEL_LAYERS | KERAS_DEPTHWISE
"""Keras weighted layers with a fused ``activation`` argument."""
DEFAULT_STACK_DEPTH = 3


def trunk_consumer(graph: ModelGraph, layer: Layer) -> Layer | None:
    """The first weighted layer ``layer``'s output reaches without passing through a
    gate (an element-wise product with another computed tensor), or ``None`` when
    the output only gates something or only leaves the model."""
    def visit(lay: Layer) -> str:
        if is_gate(lay):
            return "stop"
        return "yield" if is_weighted(lay) else "go"

    return next(walk_forward(graph, layer, visit), None)


def saturating_trunk(ctx: Context, layer: Layer) -> Layer | None:
    """If ``layer`` applies a saturating activation in the trunk, the weighted layer it feeds."""
    act = activation_of(layer)
    if act not in SATURATING:
        return None
    return ctx.cached(f"trunk:{layer.name}", lambda: trunk_consumer(ctx.graph, layer))


def _stack_depth(ctx: Context) -> int:
    value = ctx.selection.options.get("ACT002", {}).get("min-depth", DEFAULT_STACK_DEPTH)
    return max(int(value), 2)


def saturating_stacks(ctx: Context) -> list[list[Layer]]:
    """Maximal chains of saturating trunk activations along one path with no
    normalization layer between them, at least ``min-depth`` long (first to last)."""
    depth = _stack_depth(ctx)

    def compute() -> list[list[Layer]]:
        run: dict[str, int] = {}
        last: dict[str, Layer | None] = {}
        prev: dict[str, Layer | None] = {}
        extended: set[str] = set()
        sats: list[Layer] = []
        for lay in topological(ctx.graph):
            best, best_last = 0, None
            for p in producers(ctx.graph, lay):
                if run.get(p.name, 0) > best:
                    best, best_last = run[p.name], last.get(p.name)
            if lay.type in NORMALIZERS:
                run[lay.name], last[lay.name] = 0, None
            elif saturating_trunk(ctx, lay) is not None:
                run[lay.name], last[lay.name] = best + 1, lay
                prev[lay.name] = best_last
                if best_last is not None:
                    extended.add(best_last.name)
                sats.append(lay)
            else:
                run[lay.name], last[lay.name] = best, best_last
        stacks = []
        for lay in sats:
            if run[lay.name] >= depth and lay.name not in extended:
                chain = [lay]
                step = prev.get(lay.name)
                while step is not None:
                    chain.append(step)
                    step = prev.get(step.name)
                stacks.append(chain[::-1])
        return stacks

    return ctx.cached(f"stacks:{depth}", compute)


@rule("ACT001", "saturating-activation", Severity.WARNING,
      types=ACTIVATION_LAYERS | FUSED_ACTIVATION_LAYERS)
def saturating_activation(ctx: Context) -> Iterator[Hit]:
    """A sigmoid, tanh, hard-sigmoid or softsign is used as a hidden-layer non-linearity.

    ## What it does
    Finds saturating activations (``sigmoid``, ``tanh``, ``hard_sigmoid``,
    ``softsign``), as activation layers or fused into a layer, whose output
    feeds further weighted layers.  Not flagged: a sigmoid used as a
    *gate* (multiplied element-wise with another tensor: squeeze-and-
    excitation, GLU and attention gates, swish/SiLU ``x * sigmoid(x)``),
    the activations inside recurrent cells (LSTM/GRU gates), and a
    sigmoid or tanh on the model's output.

    ## Why is this bad?
    These functions flatten out for large |x|: the derivative of sigmoid
    is at most 0.25 and practically 0 beyond |x| > 5, tanh's beyond
    |x| > 3.  Backpropagation multiplies the gradient by that derivative at
    every such layer, so the gradient reaching the early layers vanishes
    and they stop learning; sigmoid's outputs are also all positive, which
    slows the next layer down.  As hidden non-linearities, ReLU and its
    relatives (GELU, SiLU) keep a derivative of 1 where they are active.

    Source: Glorot & Bengio (2010), "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS.

    ## Example
    ```python
    layers.Dense(256, activation="sigmoid")  # ACT001 in a hidden layer
    layers.Dense(256, activation="relu")     # fine
    layers.Dense(1, activation="sigmoid")    # fine: the output
    ```
    """
    layer = ctx.current
    nxt = saturating_trunk(ctx, layer)
    if nxt is None:
        return
    if ctx.enabled("ACT002") and any(layer in chain for chain in saturating_stacks(ctx)):
        return  # reported once, as a stack
    act = activation_of(layer)
    yield Hit(f"{act} is a hidden non-linearity here (its output feeds {nxt.name!r}); its derivative "
              f"vanishes for large inputs; use relu/gelu/silu in hidden layers, keep {act} for gates "
              "and outputs")


@rule("ACT002", "saturating-stack", Severity.WARNING,
      types=ACTIVATION_LAYERS | FUSED_ACTIVATION_LAYERS,
      options={"min-depth": DEFAULT_STACK_DEPTH})
def saturating_stack(ctx: Context) -> Iterator[Hit]:
    """Several saturating activations follow each other with no normalization between them.

    ## What it does
    Follows each path through the model and counts hidden sigmoid, tanh,
    hard-sigmoid and softsign activations (as ACT001 defines them) that
    come one after another without a normalization layer
    (BatchNormalization, LayerNormalization …) in between.  A chain of at
    least ``min-depth`` (default 3) is reported once, at its last layer.

    ## Why is this bad?
    Each saturating layer multiplies the backpropagated gradient by its
    derivative, at most 0.25 for sigmoid: after three sigmoid layers the
    gradient is at most 1/64 of what it was, after ten, a millionth.  This
    is the vanishing-gradient problem that made deep sigmoid networks so
    hard to train.  Use ReLU-family activations, or put a normalization
    layer before each activation so its inputs stay in the region where
    the derivative is large.

    Sources: Glorot & Bengio (2010), "Understanding the difficulty of training
    deep feedforward neural networks", AISTATS; Ioffe & Szegedy (2015), "Batch
    Normalization: Accelerating Deep Network Training by Reducing Internal
    Covariate Shift", ICML.

    ## Example
    ```python
    for _ in range(5):
        x = layers.Dense(128, activation="sigmoid")(x)   # ACT002
    # fix: activation="relu", or Dense -> BatchNormalization -> Activation
    ```
    """
    layer = ctx.current
    for chain in saturating_stacks(ctx):
        if chain[-1] is layer:
            names = ", ".join(repr(lay.name) for lay in chain[:3]) + (", …" if len(chain) > 3 else "")
            acts = sorted({activation_of(lay) or "" for lay in chain})
            yield Hit(f"{len(chain)} saturating activations ({'/'.join(acts)}) follow each other with no "
                      f"normalization between them ({names}); gradients shrink at every one of them; "
                      "use relu-family activations or normalize before each activation")


# -- ACT005 -------------------------------------------------------------------------------

DENSE_LIKE = ONNX_MATMUL | {"Dense", "Gemm", "Conv1D", "Conv2D", "Conv3D", "Conv"}
"""Layer types that are a Dense applied per position when their kernel is 1x1 (or a plain matrix)."""
CONVOLUTIONS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Conv"})
"""The convolutions ACT005 looks at (grouped and depthwise ones excluded by :func:`_kernel`)."""


def _kernel(layer: Layer) -> tuple[int, ...] | None:
    """The spatial kernel size of a full convolution (no groups), ``None`` for a grouped or
    depthwise convolution or when the size is not known."""
    cfg = layer.config or {}
    if layer.type in ("Conv1D", "Conv2D", "Conv3D"):
        if int(cfg.get("groups", 1) or 1) != 1:
            return None
        ks = cfg.get("kernel_size")
        ks = [ks] if isinstance(ks, int) else ks
        if isinstance(ks, (list, tuple)) and all(isinstance(k, int) for k in ks):
            return tuple(int(k) for k in ks)
        return None
    if layer.type == "Conv" and int(cfg.get("group", 1) or 1) == 1:
        w = next((w for w in layer.weights if len(w.shape) >= 3), None)
        if w is not None and all(isinstance(d, int) for d in w.shape[2:]):
            return tuple(int(d) for d in w.shape[2:])
    return None


def _pointwise(layer: Layer) -> bool:
    """A dense-like layer: Dense, Gemm/MatMul with weights, or a 1x1 convolution
    without groups (a Dense applied at every position)."""
    if layer.type not in DENSE_LIKE or not is_weighted(layer):
        return False
    if layer.type in CONVOLUTIONS:
        ks = _kernel(layer)
        return ks is not None and all(k == 1 for k in ks)
    return True


def _spatial(layer: Layer) -> bool:
    """A full k x k convolution: no groups and every kernel side above 1 (a 1 x k or
    k x 1 kernel is half of a spatial factorization, not a full convolution)."""
    if layer.type not in CONVOLUTIONS or not is_weighted(layer):
        return False
    ks = _kernel(layer)
    return bool(ks) and all(k > 1 for k in ks or ())


def _is_linear(layer: Layer) -> bool:
    act = activation_of(layer)
    return act == "linear" or (act is None and layer.type in DENSE_LIKE)


def _affine(layer: Layer) -> bool:
    """Looks through: dropout-like no-ops, BatchNormalization (affine at inference),
    and ONNX Add/Sub/Mul/Div of a constant (a bias or a scale)."""
    if layer.type in DROPOUT_LIKE or layer.type in BATCHNORM:
        return True
    return layer.type in ("Add", "Sub", "Mul", "Div") and bool(layer.weights) and tensor_inputs(layer) <= 1


def _linear_successor(graph: ModelGraph, layer: Layer) -> tuple[Layer, bool] | None:
    """The one layer ``layer``'s output reaches through affine no-ops (dropout, a bias,
    BatchNormalization), and whether a BatchNormalization lay between; ``None`` when the
    output fans out (a residual, several heads) or leaves the model."""
    cur, normalized = layer, False
    for _ in range(len(graph.layers)):
        if is_output(graph, cur):
            return None
        nxt = consumers(graph, cur)
        if len(nxt) != 1:
            return None
        cur = nxt[0]
        if not _affine(cur):
            return cur, normalized
        normalized = normalized or cur.type in BATCHNORM
    return None


def _collapse_message(layer: Layer, cur: Layer, mid: int, fan_in: int, out: int) -> str:
    """ACT005's message for two full k x k convolutions in a row."""
    first, second = ("x".join(map(str, _kernel(lay) or ())) for lay in (layer, cur))
    return (f"linear {first} convolution ({mid} filters) feeds the {second} convolution {cur.name!r} with no "
            f"non-linearity between them: the two collapse into one larger convolution ({fan_in}->{out} "
            "channels); add an activation (e.g. activation='relu')")


@rule("ACT005", "missing-nonlinearity", Severity.WARNING, types=DENSE_LIKE)
def missing_nonlinearity(ctx: Context) -> Iterator[Hit]:
    """Two linear layers follow each other with no non-linearity between them.

    ## What it does
    Flags a Dense-like layer (Dense, Gemm, MatMul, 1x1 convolution) with a
    linear activation whose output goes, only through dropout, a bias or
    BatchNormalization, into another Dense-like layer; and a full k x k
    convolution (every kernel side above 1, no groups) with a linear
    activation whose output goes, only through dropout or a bias (no
    normalization, no skip), into another full k x k convolution: the two
    collapse into one larger convolution.

    Not flagged, because these factorizations are deliberate: *linear
    bottlenecks*, where the middle is narrower than both ends (low-rank
    factorizations, linear autoencoders) or, with a BatchNormalization
    between them, no wider than either end (the 1x1 projections that end
    MobileNetV2/V3 blocks); a depthwise or grouped convolution followed by
    a pointwise one (separable convolutions); spatial factorizations (a
    1 x k convolution then a k x 1 one); a 1x1 convolution feeding a k x k
    one or the other way round; and outputs that also feed a residual
    connection.

    ## Why is this bad?
    The product of two matrices is one matrix, and two convolutions in a
    row are one convolution: without a non-linearity between them, two
    layers represent exactly what one layer of the combined shape could,
    and the network is shallower than it looks.  Usually an activation was
    forgotten (``Dense(64)`` and ``Conv2D(64, 3)`` default to
    ``activation=None``).

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 6 (deep feedforward networks).

    ## Example
    ```python
    x = layers.Dense(256)(x)                       # ACT005: no activation
    x = layers.Dense(10, activation="softmax")(x)
    x = layers.Dense(256, activation="relu")(x)    # fixed
    x = layers.Conv2D(64, 3)(x)                    # ACT005: 3x3 then 3x3 = one 5x5
    x = layers.Conv2D(64, 3, activation="relu")(x)
    ```
    """
    layer = ctx.current
    pointwise, spatial = _pointwise(layer), _spatial(layer)
    if not (pointwise or spatial) or not _is_linear(layer):
        return
    found = _linear_successor(ctx.graph, layer)
    if found is None:
        return
    cur, normalized = found
    if tensor_inputs(cur) != 1 or not (_pointwise(cur) if pointwise else _spatial(cur) and not normalized):
        return
    mid, fan_in, out = units_of(layer), input_width(ctx.graph, layer), units_of(cur)
    if mid is None or fan_in is None or out is None:
        return
    if mid < min(fan_in, out) or (normalized and mid <= min(fan_in, out)):
        return  # a linear bottleneck (low rank by design; with BN between, a block boundary)
    yield Hit(_collapse_message(layer, cur, mid, fan_in, out) if spatial else
              f"linear output ({mid} units) feeds {cur.name!r} with no non-linearity between them: "
              f"the two collapse into one {fan_in}x{out} linear map; add an activation "
              "(e.g. activation='relu')")


# -- ACT006 -------------------------------------------------------------------------------


@rule("ACT006", "double-activation", Severity.WARNING, types=ACTIVATION_LAYERS)
def double_activation(ctx: Context) -> Iterator[Hit]:
    """An activation is applied to the output of another activation.

    ## What it does
    Flags an activation layer whose input comes straight (through dropout
    or reshaping at most) from a layer that already applied a
    non-linearity, e.g. ``Dense(…, activation="relu")`` followed by
    ``Activation("relu")`` or a softmax after a softmax.  Compositions that
    build one activation out of two, like Mish's ``x * tanh(softplus(x))``,
    are not flagged (the second activation feeds a gate).

    ## Why is this bad?
    Usually a copy-paste slip: ``relu(relu(x))`` only costs time, but a
    softmax over probabilities squashes them towards uniform, a ReLU
    before a softmax throws away every negative logit, and a sigmoid after
    a softmax breaks the loss that expects either.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 6.3 (hidden units).

    ## Example
    ```python
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Activation("relu")(x)   # ACT006: relu twice
    ```
    """
    layer = ctx.current
    if not is_activation_layer(layer):
        return
    src = source_through(ctx.graph, layer, DROPOUT_LIKE | {"Reshape", "Flatten"})
    if src is None or not nonlinear(src):
        return
    if any(is_gate(c) for c in consumers(ctx.graph, layer)):
        return  # part of a composite activation (mish, swish variants)
    yield Hit(f"{activation_of(layer)} is applied on top of {activation_of(src)} from {src.name!r}; "
              "remove one of them")
