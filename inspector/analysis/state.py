"""Does a saved model look trained, untrained, or can we not tell?

Some mistakes only exist in one of the two worlds.  BatchNormalization moving
statistics that still read mean 0 / variance 1 are exactly right in a model that
was just built, and a bug in a model that was trained (BN005).  An initial
scale far from the Glorot/He expectation (INIT004) can only be measured on
weights that are still as the initializer drew them.  So the lint first decides
what the weights say about the model's history:

* **trained** — some evidence that an optimizer ran: moving statistics that moved
  away from 0/1, a Keras bias that is no longer the exact value its initializer
  fills in, a step counter above zero in stored optimizer state, or kernels whose
  spread no longer matches what their configured initializer draws.
* **untrained** — no such evidence, and some evidence of a fresh build:
  statistics at exactly 0/1, biases exactly at their initial value, kernel spread
  matching the initializer.
* **unknown** — neither (e.g. an ONNX file without BatchNormalization and with
  random biases, as PyTorch initializes them).

Exact equality is the point: training moves every statistic by a little, and
nothing but an initializer produces exact zeros and ones across whole layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir import Layer, ModelGraph, Weight
from ..vocab import BATCHNORM
from . import initializers as inits
from .weights import TensorStats, WeightReport

BN_MEAN_ROLES = ("moving_mean", "input_mean", "mean", "running_mean")
BN_VAR_ROLES = ("moving_variance", "input_var", "var", "variance", "running_var")
KERNEL_MATCH_MIN_SIZE = 1024
"""Only tensors at least this large are compared with their initializer's spread
(a sample standard deviation of fewer values is too noisy)."""
KERNEL_MATCH_TOLERANCE = 0.1
"""Relative difference between measured and expected spread still called a match."""

TRAINED, UNTRAINED, UNKNOWN = "trained", "untrained", "unknown"


@dataclass(frozen=True, slots=True)
class StateReport:
    """The verdict and the evidence behind it."""

    state: str
    """``trained``, ``untrained`` or ``unknown``."""
    reasons: tuple[str, ...] = ()
    """Human-readable evidence, strongest first."""
    bn_at_init: tuple[str, ...] = ()
    """BatchNormalization layers whose moving statistics are still exactly 0/1."""
    bn_updated: int = 0
    placeholders: int = 0
    """Tensors the file does not store but generates from a fill value."""

    @property
    def trained(self) -> bool:
        return self.state == TRAINED


def _role(layer: Layer, roles: tuple[str, ...]) -> Weight | None:
    for w in layer.weights:
        if w.role in roles:
            return w
    return None


def bn_statistics(layer: Layer, report: WeightReport) -> tuple[TensorStats | None, TensorStats | None]:
    """(moving mean, moving variance) statistics of a BatchNormalization layer."""
    mean_w, var_w = _role(layer, BN_MEAN_ROLES), _role(layer, BN_VAR_ROLES)
    return (report.of(mean_w) if mean_w else None, report.of(var_w) if var_w else None)


def _bn_init_values(layer: Layer) -> tuple[float, float]:
    cfg = layer.config or {}
    m = inits.parse(cfg.get("moving_mean_initializer"))
    v = inits.parse(cfg.get("moving_variance_initializer"))
    mean0 = m.symmetric_value if m is not None and m.symmetric_value is not None else 0.0
    var0 = v.symmetric_value if v is not None and v.symmetric_value is not None else 1.0
    return mean0, var0


def bn_at_init(layer: Layer, report: WeightReport) -> bool | None:
    """True if the layer's moving statistics are exactly their initial values,
    False if they moved, None if they are not stored."""
    mean, var = bn_statistics(layer, report)
    if mean is None or var is None or mean.placeholder or var.placeholder:
        return None
    m0, v0 = _bn_init_values(layer)
    return mean.is_constant_value(m0) and var.is_constant_value(v0)


def _iterations(graph: ModelGraph) -> int | None:
    for w in graph.optimizer_weights:
        # tf_keras's optimizer keeps its counter as ``_iterations`` (so its SavedModel path is
        # ``optimizer/_iterations``); its ``.h5`` and older optimizers say ``iter``/``iterations``.
        leaf = w.name.rsplit("/", 1)[-1].split(":")[0].lstrip("_")
        keras3_counter = w.name.endswith("optimizer/vars/0") and w.dtype.startswith("int")
        if (leaf in ("iterations", "iter") or keras3_counter) and w.size == 1 and w.reader is not None:
            try:
                return int(w.read().reshape(-1)[0])
            except Exception:  # noqa: BLE001 - unreadable counter: no evidence
                return None
    return None


@dataclass
class _Evidence:
    """What the weights say, counted over the whole graph."""

    bn_init: list[str] = field(default_factory=list)
    """Paths of BatchNormalization layers still at their initial moving statistics."""
    bn_moved: int = 0
    bias_init: int = 0
    bias_moved: int = 0
    kern_match: int = 0
    kern_miss: int = 0


def infer_state(graph: ModelGraph, report: WeightReport | None) -> StateReport:
    """Decide whether ``graph`` looks trained (see the module docstring)."""
    if report is None:
        return StateReport(UNKNOWN, ("weights were not read",))
    ev = _collect(graph, report)
    placeholders = sum(1 for s in report.tensors.values() if s.placeholder)
    trained, untrained = _reasons(ev, _iterations(graph))
    if placeholders:
        note = (f"{placeholders} tensor(s) are placeholders the graph fills with a constant "
                "(the file stores no values for them)")
    else:
        note = ""
    if trained:
        state, reasons = TRAINED, tuple(trained)
    elif untrained:
        state, reasons = UNTRAINED, tuple(untrained)
    else:
        state, reasons = UNKNOWN, ("no BatchNormalization statistics, optimizer state or initializer config to go by",)
    return StateReport(state, reasons + ((note,) if note else ()), tuple(ev.bn_init), ev.bn_moved, placeholders)


def _collect(graph: ModelGraph, report: WeightReport) -> _Evidence:
    """BatchNormalization statistics of every model; biases and kernels against their
    initializer config in Keras models (ONNX keeps no initializer config)."""
    ev = _Evidence()
    keras = graph.format in ("keras", "keras-h5")
    for path, lay in graph.walk():
        if lay.type in BATCHNORM:
            at = bn_at_init(lay, report)
            if at is True:
                ev.bn_init.append(path)
            elif at is False:
                ev.bn_moved += 1
        if not keras:
            continue
        cfg = lay.config or {}
        for w in lay.weights:
            stats = report.of(w)
            if stats is None or not stats.numeric or stats.placeholder or stats.size == 0:
                continue
            if w.role == "bias" and "bias_initializer" in cfg:
                _bias_evidence(ev, cfg, stats)
            elif w.role in ("kernel", "depthwise_kernel", "pointwise_kernel") and stats.size >= KERNEL_MATCH_MIN_SIZE:
                _kernel_evidence(ev, lay, cfg, w, stats)
    return ev


def _bias_evidence(ev: _Evidence, cfg: dict[str, Any], stats: TensorStats) -> None:
    """Is the bias still the constant its initializer fills in?"""
    init = inits.parse(cfg.get("bias_initializer"))
    value = init.symmetric_value if init is not None else None
    if value is None:
        return
    if stats.is_constant_value(value) or (stats.size == 1 and stats.minimum == value):
        ev.bias_init += 1
    else:
        ev.bias_moved += 1


def _kernel_evidence(ev: _Evidence, lay: Layer, cfg: dict[str, Any], w: Weight, stats: TensorStats) -> None:
    """Does the kernel still have the mean and spread its initializer draws?"""
    key = inits.config_key(lay.type, w.role)
    init = inits.parse(cfg.get(key) if key is not None else None)
    std = inits.expected_std(init, stats.shape,
                             layer_axes=inits.einsum_kernel_axes(lay.type, cfg, w.name, stats.shape))
    mu = inits.expected_mean(init)
    if not std or mu is None or not stats.finite:
        return
    close = (abs(stats.std / std - 1.0) <= KERNEL_MATCH_TOLERANCE
             and abs(stats.mean - mu) <= 0.1 * std + 1e-12)
    if close:
        ev.kern_match += 1
    else:
        ev.kern_miss += 1


def _reasons(ev: _Evidence, steps: int | None) -> tuple[list[str], list[str]]:
    """The evidence as sentences: ``(for trained, for untrained)``."""
    trained: list[str] = []
    untrained: list[str] = []
    if steps:
        trained.append(f"the stored optimizer state has taken {steps} step(s)")
    if ev.bn_moved:
        trained.append(f"{ev.bn_moved} BatchNormalization layer(s) have updated moving statistics")
    if ev.bias_moved:
        trained.append(f"{ev.bias_moved} bias(es) differ from the value their initializer fills in")
    if ev.kern_miss and ev.kern_miss >= ev.kern_match:
        trained.append(f"{ev.kern_miss} kernel(s) no longer have the spread their initializer draws")
    if steps == 0:
        untrained.append("the stored optimizer state has taken no step")
    if ev.bn_init:
        untrained.append(f"{len(ev.bn_init)} BatchNormalization layer(s) still hold their initial "
                         "moving statistics (mean 0, variance 1)")
    if ev.bias_init:
        untrained.append(f"{ev.bias_init} bias(es) are exactly their initial value")
    if ev.kern_match and ev.kern_match > ev.kern_miss:
        untrained.append(f"{ev.kern_match} kernel(s) have exactly the spread their initializer draws")
    return trained, untrained
