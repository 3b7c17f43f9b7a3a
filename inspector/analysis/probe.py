"""Dynamic activation statistics: run the model on one batch and measure its activations.

Static rules see the file; some training problems only show when data flows:
sigmoid/tanh units stuck where their derivative is practically 0, ReLU units
that never fire, values that turn into NaN or Inf.  :func:`probe` runs a model
once on a batch (given, or drawn to match its inputs) and measures, for every
activation — an activation layer (``Activation``, ``ReLU``, ``LeakyReLU`` …, ONNX
``Relu``/``Sigmoid``/``Tanh`` … nodes) or a layer with a fused ``activation``
(``Dense(…, activation="sigmoid")``) — its *pre-activation* ``x``:

* ``saturated``: the share of values in the saturated region of sigmoid, tanh,
  hard-sigmoid and softsign, where the derivative is below 1 % of its maximum;
  ``saturated_units``: the share of units saturated for most of their values;
* ``dead_units``: the share of ReLU-family units (relu, relu6, leaky/parametric
  ReLU, ELU, SELU, CELU, thresholded ReLU) that never fire (``x`` never above
  the threshold, 0 for all but thresholded ReLU) over the whole batch;
* ``mean``/``std`` of the finite values, and ``nonfinite``: how many are NaN/Inf.

A *unit* is one feature or channel: the last axis for Keras (channels_last;
``data_format="channels_first"`` layers use axis 1), axis 1 for ONNX tensors a
convolution produced (NCHW), the last axis for ONNX features from
``MatMul``/``Gemm``.

The saturated regions (derivative below 1 % of its maximum), exactly:

============  =======================  ==========================================
function      derivative               saturated when
============  =======================  ==========================================
sigmoid       σ(x)(1-σ(x)), max 1/4    ``|x| > ln((1+√0.99)/(1-√0.99)) ≈ 5.9865``
tanh          1 - tanh²(x), max 1      ``|x| > atanh(√0.99) ≈ 2.9932``
softsign      1/(1+|x|)², max 1        ``|x| > 9``
hard_sigmoid  1/6 on (-3, 3), else 0   ``|x| ≥ 3`` (Keras 3: ``relu6(x+3)/6``);
                                       ONNX ``HardSigmoid(α, β)``: ``x ≤ -β/α``
                                       or ``x ≥ (1-β)/α`` (defaults ±2.5)
============  =======================  ==========================================

How it runs, in one forward pass and without copying activations out
----------------------------------------------------------------------
* **Keras** (the ``tensorflow`` extra): the model is loaded with
  ``keras.saving.load_model(path, safe_mode=True, compile=False)`` — only after
  the static safety scan (:func:`inspector.trust.require_trust`) found nothing,
  or with ``trust=True``.  Each probed activation layer's ``call`` and each
  fused layer's ``activation`` function is wrapped by a *tap* that hands its
  input — the pre-activation, already computed by the layer — to in-graph
  reductions, and the model is traced once as a ``tf.function``.  A fused
  ``Dense``/``Conv`` layer's linear output is therefore measured exactly, with no
  second matmul and no clone: the tap sits between the layer's linear part and
  its activation.  The reductions (per-unit maximum or saturated count, moments,
  a non-finite count computed only when the moments are not finite) run inside
  the same graph, so only a few numbers per layer leave TensorFlow.
* **ONNX** (the ``runtime`` extra): an in-memory copy of the model (external
  data is resolved inside the model's folder only) gets the same reductions as
  extra nodes on each activation node's input and their results as extra graph
  outputs, and runs once in onnxruntime.

Inputs: see :mod:`inspector.analysis.probe_inputs` (``--inputs FILE.npy|.npz``
or synthetic data: standard normal, or 0..255 pixel values for inputs the model
rescales itself).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ..errors import UnsupportedFormat, UsageError
from ..ir import Layer, ModelGraph
from ..vocab import SATURATING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .probe_inputs import InputBatch

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: what a command shows while the probe works."""

SATURATION_DERIVATIVE = 0.01
"""A unit is in the saturated region where the derivative is below this share of its maximum."""

_ROOT = math.sqrt(1 - SATURATION_DERIVATIVE)  # √0.99
SIGMOID_LIMIT = math.log((1 + _ROOT) / (1 - _ROOT))
"""σ'(x) = σ(1-σ) < 0.01 · 1/4  ⇔  σ(x) ∉ [(1-√0.99)/2, (1+√0.99)/2]  ⇔  |x| > ln((1+√0.99)/(1-√0.99)) ≈ 5.9865."""
TANH_LIMIT = math.atanh(_ROOT)
"""tanh'(x) = 1 - tanh² < 0.01  ⇔  |x| > atanh(√0.99) ≈ 2.9932."""
SOFTSIGN_LIMIT = 1 / math.sqrt(SATURATION_DERIVATIVE) - 1
"""softsign'(x) = 1/(1+|x|)² < 0.01  ⇔  |x| > 9."""
HARD_SIGMOID_LIMIT = 3.0
"""Keras 3 ``hard_sigmoid(x) = relu6(x + 3) / 6``: flat (derivative 0) for |x| ≥ 3."""

RECTIFIERS = frozenset({"relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "thresholded_relu"})
"""ReLU-family activations: a unit *fires* when its pre-activation is above the threshold."""
OTHER = frozenset({"softmax", "log_softmax", "gelu", "silu", "hard_silu", "mish", "softplus", "exponential",
                   "clip", "relu_n", "swish", "sparsemax", "squareplus", "glu", "log_sigmoid", "sparse_plus",
                   "tanh_shrink", "hard_tanh", "soft_shrink", "hard_shrink"})
"""Other activations: measured for mean/std and non-finite values only."""

FAMILY_SATURATING, FAMILY_RECTIFIER, FAMILY_OTHER = "saturating", "rectifier", "other"


@dataclass(frozen=True)
class Target:
    """One tensor the probe measures: the pre-activation of one activation."""

    path: str
    """The layer's path in the graph (``outer/inner/dense``), as findings name it."""
    type: str
    activation: str
    family: str
    lo: float | None = None
    hi: float | None = None
    """Saturating functions: saturated where ``x < lo`` or ``x > hi``."""
    inclusive: bool = False
    """``x <= lo`` / ``x >= hi`` instead (hard sigmoid: flat from the kink on)."""
    fire_above: float = 0.0
    """ReLU family: a unit fires when ``x > fire_above``."""
    unit_axis: int = -1
    """Axis of the units (-1: last, 1: channels-first)."""
    fused: bool = False
    """True for a layer with a fused ``activation`` (the tap sits inside it)."""


@dataclass(frozen=True)
class ActivationStats:
    """What the probe measured at one activation (all calls of the layer, whole batch)."""

    layer: str
    type: str
    activation: str
    family: str
    units: int
    values: int
    """Pre-activation values measured (batch × positions × units, over every call)."""
    calls: int
    mean: float
    std: float
    """Mean and standard deviation of the finite pre-activation values."""
    nonfinite: int
    saturated: float | None = None
    """Saturating functions: share of values in the saturated region."""
    saturated_units: float | None = None
    """Share of units in the saturated region for more than half of their values."""
    dead_units: float | None = None
    """ReLU family: share of units that never fired over the batch."""
    region: tuple[float, float] | None = None
    """Saturating functions: the saturated region is outside ``(lo, hi)``."""

    @property
    def saturated_count(self) -> int | None:
        return None if self.saturated_units is None else round(self.saturated_units * self.units)

    @property
    def dead_count(self) -> int | None:
        return None if self.dead_units is None else round(self.dead_units * self.units)


@dataclass(frozen=True)
class OutputStats:
    """Non-finite values in one model output."""

    name: str
    layer: str | None
    values: int
    nonfinite: int


@dataclass(frozen=True)
class InputInfo:
    """One model input as the probe fed it."""

    name: str
    shape: tuple[int, ...]
    """The whole batch's shape."""
    dtype: str
    source: str
    """``normal`` (standard normal), ``pixels`` (0..255), ``integers`` (0..N-1), or ``file``."""


@dataclass(frozen=True)
class ProbeReport:
    """The result of :func:`probe`: per-activation statistics in execution order."""

    model: str
    path: str
    format: str
    framework: str
    samples: int
    inputs: tuple[InputInfo, ...]
    layers: tuple[ActivationStats, ...]
    outputs: tuple[OutputStats, ...] = ()
    seconds: float = 0.0
    """Time of the forward pass(es), tracing included, loading excluded."""
    notes: tuple[str, ...] = ()
    _index: dict[str, ActivationStats] = field(default_factory=dict, repr=False, compare=False)

    @property
    def synthetic(self) -> bool:
        """True when some input was drawn by the probe rather than read from a file."""
        return any(i.source != "file" for i in self.inputs)

    def layer(self, path: str) -> ActivationStats | None:
        if not self._index:
            self._index.update((s.layer, s) for s in self.layers)
        return self._index.get(path)


# -- targets -------------------------------------------------------------------------------


def family_of(activation: str | None) -> str | None:
    if activation in SATURATING:
        return FAMILY_SATURATING
    if activation in RECTIFIERS:
        return FAMILY_RECTIFIER
    if activation in OTHER:
        return FAMILY_OTHER
    return None


def saturation_region(activation: str, config: dict[str, Any] | None = None, *,
                      onnx: bool = False) -> tuple[float, float, bool]:
    """``(lo, hi, inclusive)``: the saturated region of ``activation`` is
    ``x < lo or x > hi`` (``<=``/``>=`` when inclusive)."""
    if activation == "sigmoid":
        return -SIGMOID_LIMIT, SIGMOID_LIMIT, False
    if activation == "tanh":
        return -TANH_LIMIT, TANH_LIMIT, False
    if activation == "softsign":
        return -SOFTSIGN_LIMIT, SOFTSIGN_LIMIT, False
    if activation == "hard_sigmoid":
        if onnx:
            cfg = config or {}
            alpha = _num(cfg.get("alpha"), 0.2)
            beta = _num(cfg.get("beta"), 0.5)
            if alpha > 0:
                return -beta / alpha, (1 - beta) / alpha, True
        return -HARD_SIGMOID_LIMIT, HARD_SIGMOID_LIMIT, True
    raise ValueError(f"{activation} does not saturate")


def _num(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def fire_threshold(layer: Layer, activation: str) -> float:
    """Pre-activation value above which a ReLU-family unit is active."""
    cfg = layer.config or {}
    if activation == "thresholded_relu":
        return _num(cfg.get("theta", cfg.get("alpha")), 1.0)
    if layer.type == "ReLU":
        return _num(cfg.get("threshold"), 0.0)
    return 0.0


def make_target(path: str, layer: Layer, activation: str, *, onnx: bool = False, unit_axis: int = -1,
                fused: bool = False) -> Target | None:
    fam = family_of(activation)
    if fam is None:
        return None
    kwargs: dict[str, Any] = {}
    if fam == FAMILY_SATURATING:
        lo, hi, inclusive = saturation_region(activation, layer.config, onnx=onnx)
        kwargs = {"lo": lo, "hi": hi, "inclusive": inclusive}
    elif fam == FAMILY_RECTIFIER:
        kwargs = {"fire_above": fire_threshold(layer, activation)}
    return Target(path=path, type=layer.type, activation=activation, family=fam, unit_axis=unit_axis,
                  fused=fused, **kwargs)


# -- raw measurements and their aggregation ------------------------------------------------------


@dataclass
class RawStats:
    """One call of one tap on one chunk, as a runner returns it (numpy values)."""

    size: int
    nonfinite: int
    mean: float
    m2: float
    """Sum of squared deviations from ``mean`` over the finite values."""
    unit_max: np.ndarray | None = None
    unit_saturated: np.ndarray | None = None
    units: int | None = None
    """Units (size of the unit axis), when no per-unit array gives it."""


@dataclass
class _Acc:
    target: Target
    calls: int = 0
    size: int = 0
    finite: int = 0
    nonfinite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    unit_max: Any = None
    unit_saturated: Any = None
    units: int = 0
    unit_values: int = 0
    """Values each unit saw (batch × positions, over every call)."""
    units_mismatch: bool = False

    def add(self, raw: RawStats, *, call_index: int) -> None:
        import numpy as np

        self.calls = max(self.calls, call_index + 1)
        n_b = raw.size - raw.nonfinite
        if n_b > 0 and math.isfinite(raw.mean):
            n_a = self.finite
            delta = raw.mean - self.mean
            n = n_a + n_b
            self.mean += delta * n_b / n
            self.m2 += raw.m2 + delta * delta * n_a * n_b / n
            self.finite = n
        self.size += raw.size
        self.nonfinite += raw.nonfinite
        for name in ("unit_max", "unit_saturated"):
            value = getattr(raw, name)
            if value is None:
                continue
            value = np.asarray(value).reshape(-1)
            current = getattr(self, name)
            if current is None:
                setattr(self, name, value.astype(np.float64))
            elif current.shape != value.shape:
                self.units_mismatch = True
            elif name == "unit_max":
                setattr(self, name, np.fmax(current, value))
            else:
                setattr(self, name, current + value)
        units = raw.units
        for value in (raw.unit_max, raw.unit_saturated):
            if value is not None:
                units = int(np.asarray(value).size)
        if units:
            self.units = self.units or units
            self.unit_values += raw.size // units

    def result(self) -> ActivationStats:
        import numpy as np

        t = self.target
        units = self.units
        sat = sat_units = dead = None
        if self.unit_max is not None and not self.units_mismatch:
            units = int(self.unit_max.size)
            fired = self.unit_max > t.fire_above  # NaN never fires
            dead = float(np.count_nonzero(~fired)) / units if units else None
        if self.unit_saturated is not None and not self.units_mismatch:
            units = int(self.unit_saturated.size)
            per_unit = self.unit_values  # values each unit saw
            total = float(self.unit_saturated.sum())
            sat = total / self.size if self.size else None
            if per_unit:
                sat_units = float(np.count_nonzero(self.unit_saturated > per_unit / 2)) / units
        std = math.sqrt(self.m2 / self.finite) if self.finite else float("nan")
        mean = self.mean if self.finite else float("nan")
        region = (t.lo, t.hi) if t.lo is not None and t.hi is not None else None
        return ActivationStats(layer=t.path, type=t.type, activation=t.activation, family=t.family,
                               units=units, values=self.size, calls=self.calls, mean=mean, std=std,
                               nonfinite=self.nonfinite, saturated=sat, saturated_units=sat_units,
                               dead_units=dead, region=region)


class Aggregator:
    """Combines the runners' per-chunk measurements (Chan's parallel moments,
    per-unit maxima and counts) into :class:`ActivationStats`."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self._acc = {t.path: _Acc(t) for t in targets}
        self._order: list[str] = []
        self._outputs: dict[int, list[int]] = {}

    def add(self, path: str, calls: Iterable[RawStats]) -> None:
        acc = self._acc[path]
        if path not in self._order:
            self._order.append(path)
        for i, raw in enumerate(calls):
            acc.add(raw, call_index=i)

    def add_output(self, index: int, size: int, nonfinite: int) -> None:
        cur = self._outputs.setdefault(index, [0, 0])
        cur[0] += size
        cur[1] += nonfinite

    def layers(self) -> tuple[ActivationStats, ...]:
        """Measured layers, in the order they ran (then the rest, unmeasured ones left out)."""
        return tuple(self._acc[p].result() for p in self._order if self._acc[p].size)

    def outputs(self, names: Sequence[str], layers: Sequence[str | None]) -> tuple[OutputStats, ...]:
        out = []
        for i, (size, bad) in sorted(self._outputs.items()):
            name = names[i] if i < len(names) else f"output_{i}"
            layer = layers[i] if i < len(layers) else None
            out.append(OutputStats(name=name, layer=layer, values=size, nonfinite=bad))
        return tuple(out)


# -- the entry point ---------------------------------------------------------------------------------


def probe(graph: ModelGraph, *, inputs: str | Path | None = None, batch_size: int = 8, seed: int = 0,
          trust: bool = False, progress: Progress | None = None) -> ProbeReport:
    """Run the model behind ``graph`` (loaded from ``graph.path``) on one batch and
    measure its activations.

    ``inputs``: a ``.npy`` (one input) or ``.npz`` (one array per input, by input
    name or positional ``arr_0``…) file; without it, ``batch_size`` synthetic
    samples drawn with ``seed``.  Raises :class:`~inspector.errors.UnsafeModel`
    when the static scan found a security problem (unless ``trust``),
    :class:`~inspector.errors.MissingDependency` without the framework.
    """
    from ..trust import require_trust

    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not graph.path:
        raise UsageError("the probe needs the model's file (graph.path is not set)")
    require_trust(graph, trust=trust, action="run the model to probe its activations")
    fmt = graph.format
    if fmt in ("keras", "keras-h5"):
        from . import probe_keras as runner
    elif fmt == "onnx":
        from . import probe_onnx as runner  # type: ignore[no-redef]
    elif fmt == "savedmodel":
        raise UnsupportedFormat("the probe runs .keras, .h5 and .onnx models; a SavedModel has no layer "
                                "structure to tap: export the model as .keras (model.save) or ONNX (tf2onnx)")
    else:
        raise UnsupportedFormat(f"the probe cannot run {fmt} models")
    return runner.run(graph, inputs=inputs, batch_size=batch_size, seed=seed, progress=progress)


def finish(graph: ModelGraph, *, framework: str, batch: InputBatch, agg: Aggregator, seconds: float,
           output_names: Sequence[str], output_layers: Sequence[str | None],
           notes: Iterable[str] = ()) -> ProbeReport:
    """Assemble the report (shared by the runners)."""
    return ProbeReport(model=graph.name, path=str(graph.path), format=graph.format, framework=framework,
                       samples=batch.samples, inputs=tuple(batch.infos), layers=agg.layers(),
                       outputs=agg.outputs(output_names, output_layers), seconds=seconds,
                       notes=tuple(list(batch.notes) + list(notes)))


def timer() -> Callable[[], float]:
    start = time.perf_counter()
    return lambda: time.perf_counter() - start


def output_layers(graph: ModelGraph) -> list[str | None]:
    """The layer producing each model output, in output order."""
    return [ref.layer if ref.layer in graph else None for ref in graph.outputs]
