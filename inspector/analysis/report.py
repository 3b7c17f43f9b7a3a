"""Collect → aggregate for the human reports (``inspector report``): one frozen
:class:`ReportData` that the HTML and Markdown reporters only format.

What is gathered, and why it is computed here rather than in a reporter:

* the model card (:func:`inspector.analysis.card.model_card`) and the
  :class:`~inspector.analysis.summary.Summary` (rows, totals, MACs);
* where parameters and compute go: the largest layers by parameters and by MACs
  (top ``top`` layers plus one "other" share, so a 177-layer model still draws
  a readable chart) and totals by layer type;
* weight-value histograms for the largest layers: each tensor is read on its
  own (``Weight.read()``), only if its declared size is at most
  ``max_tensor_bytes`` (an ONNX ``ConstantOfShape`` may declare gigabytes), not
  for generated placeholders, and on an evenly strided sample of at most
  ``sample`` values; a tensor that cannot be read is listed in
  ``skipped_weights`` with the reason, and the report goes on;
* lint findings and the documentation of every rule that fired (both handed in
  by the caller: analysis does not import the rules);
* optional views of the activation probe and of the training-history diagnosis
  (the per-layer shares, the curves and the epochs to mark), made from their
  analysers' results by :func:`probe_view` and :func:`history_view`.

Everything is sorted so that two runs on the same file give the same report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..ir import Layer, ModelGraph, Weight
from .card import ModelCard, model_card
from .summary import Summary, summarize

TOP_LAYERS = 15
"""Layers drawn by name in the by-layer charts; the rest is one "other" bar."""
HISTOGRAM_LAYERS = 6
MAX_TENSOR_BYTES = 256 * 1024 * 1024
HISTOGRAM_SAMPLE = 1 << 20
HISTOGRAM_BINS = 48


@dataclass(frozen=True, slots=True)
class LayerShare:
    """One layer's share of the model: parameters (trainable part) and MACs."""

    name: str
    type: str
    params: int
    trainable: int
    macs: int | None
    index: int
    """Position in graph order (of the summary rows)."""


@dataclass(frozen=True, slots=True)
class OtherShare:
    """Everything not drawn by name: ``layers`` layers together."""

    layers: int
    params: int
    trainable: int
    macs: int


@dataclass(frozen=True, slots=True)
class TypeShare:
    """All layers of one type together."""

    type: str
    count: int
    params: int
    trainable: int
    macs: int
    macs_unknown: int
    """Layers of this type whose MACs are unknown (not in ``macs``)."""


@dataclass(frozen=True, slots=True)
class WeightHistogram:
    """The value distribution of one stored tensor (the largest of a large layer)."""

    layer: str
    weight: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    sampled: int
    """Values the histogram was computed from (``size`` unless sampled)."""
    counts: tuple[int, ...]
    edges: tuple[float, ...]
    minimum: float
    maximum: float
    mean: float
    std: float
    zeros: int
    """Exact zeros among the sampled values."""
    nonfinite: int
    """NaN/Inf among the sampled values (not in the histogram)."""


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One activation as the probe measured it (shares are 0..1, ``None`` where
    they do not apply to the activation's family)."""

    layer: str
    activation: str
    units: int
    saturated: float | None
    """Saturating functions: share of pre-activation values in the saturated region."""
    saturated_units: float | None
    """Share of units saturated for most of their values (what ACT003 judges)."""
    dead: float | None
    """ReLU family: share of units that never fired over the batch (what ACT004 judges)."""
    mean: float | None = None
    std: float | None = None
    nonfinite: int | None = None


@dataclass(frozen=True)
class ProbeView:
    """What the report shows of an activation probe."""

    rows: tuple[ProbeRow, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryView:
    """What the report shows of a training log: the curves and the epochs the
    history diagnosis marks on them."""

    source: str | None
    epochs: tuple[int, ...]
    series: tuple[tuple[str, tuple[float | None, ...]], ...]
    onset: int | None
    """First epoch of overfitting (HIST001), if any."""
    best: int | None
    """The best validation epoch by the overfitting analysis (where to stop)."""
    spikes: tuple[int, ...]
    """Epochs of validation spikes or dips (HIST002)."""
    spike_metric: str | None = None


def probe_view(report: Any) -> ProbeView:
    """The per-layer shares of an :class:`inspector.analysis.probe.ProbeReport`."""
    rows = tuple(ProbeRow(layer=s.layer, activation=s.activation, units=s.units, saturated=s.saturated,
                          saturated_units=s.saturated_units, dead=s.dead_units, mean=s.mean, std=s.std,
                          nonfinite=s.nonfinite) for s in report.layers)
    inputs = ", ".join(f"{i.name} {tuple(i.shape)} ({i.source})" for i in report.inputs)
    notes = [f"{report.framework}: {report.samples} sample(s); inputs {inputs}; forward pass {report.seconds:.2f} s."]
    bad = [o for o in report.outputs if o.nonfinite]
    notes += [f"output {o.name}: {o.nonfinite:,} of {o.values:,} values are NaN or infinite" for o in bad]
    notes += [str(n) for n in report.notes]
    return ProbeView(rows, tuple(notes))


def _option_kwargs(fn: Any, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Rule options (kebab-case) that are keyword arguments of ``fn``."""
    import inspect

    if not options:
        return {}
    params = inspect.signature(fn).parameters
    out = {}
    for key, value in options.items():
        name = str(key).replace("-", "_")
        if name in params and params[name].kind == inspect.Parameter.KEYWORD_ONLY:
            out[name] = value
    return out


def history_view(history: Any, *, options: Mapping[str, Mapping[str, Any]] | None = None) -> HistoryView:
    """The curves of an :class:`inspector.analysis.history_logs.History` and the epochs
    HIST001 (overfitting onset, best epoch) and HIST002 (spikes) point at, computed
    with the same thresholds the rules use (``options``: per-rule options by code)."""
    from .curves import find_instability, find_overfitting

    options = options or {}
    over = find_overfitting(history, **_option_kwargs(find_overfitting, options.get("HIST001")))
    unstable = find_instability(history, **_option_kwargs(find_instability, options.get("HIST002")))
    series = tuple((name, tuple(values)) for name, values in history.metrics.items()
                   if name.lower() not in ("epoch", "lr", "learning_rate", "time", "epoch_time", "step",
                                           "wall_time"))
    return HistoryView(source=Path(history.path).name if getattr(history, "path", None) else None,
                       epochs=tuple(history.epochs), series=series,
                       onset=over.start_epoch if over else None, best=over.best_epoch if over else None,
                       spikes=tuple(unstable.epochs) if unstable else (),
                       spike_metric=unstable.metric if unstable else None)


@dataclass(frozen=True)
class ReportData:
    """Everything a human report shows, computed once."""

    card: ModelCard
    summary: Summary
    file_name: str
    """The model file's name (no folder: reports must not leak or depend on paths)."""
    top_params: tuple[LayerShare, ...]
    other_params: OtherShare | None
    top_macs: tuple[LayerShare, ...]
    other_macs: OtherShare | None
    by_type: tuple[TypeShare, ...]
    """Sorted by parameters, then MACs, then type name (all descending but the name)."""
    histograms: tuple[WeightHistogram, ...]
    skipped_weights: tuple[tuple[str, str], ...]
    """(weight name, why no histogram) for tensors chosen but not read."""
    findings: tuple[Any, ...] = ()
    """``inspector.rules.Finding`` objects, sorted by graph order then code."""
    rules: tuple[Any, ...] = ()
    """The ``inspector.rules.Rule`` of every code in ``findings``, sorted by code."""
    lint_error: str | None = None
    """Why lint could not run (the rest of the report is still valid)."""
    lint_ran: bool = False
    probe: ProbeView | None = None
    history: HistoryView | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            out[str(f.severity)] = out.get(str(f.severity), 0) + 1
        return out


def _shares(summary: Summary) -> list[LayerShare]:
    return [LayerShare(r.name, r.type, r.params.params, r.params.trainable, r.macs, i)
            for i, r in enumerate(summary.rows)]


def top_layers(shares: Sequence[LayerShare], *, key: str, top: int) -> tuple[tuple[LayerShare, ...],
                                                                              OtherShare | None]:
    """The ``top`` layers with the largest non-zero ``key`` (``params``/``macs``), in
    descending order (ties: graph order), and the rest summed."""
    def value(s: LayerShare) -> int:
        v = getattr(s, key)
        return int(v or 0)

    ranked = sorted((s for s in shares if value(s) > 0), key=lambda s: (-value(s), s.index))
    head, tail = ranked[:top], ranked[top:]
    if not tail:
        return tuple(head), None
    return tuple(head), OtherShare(len(tail), sum(s.params for s in tail), sum(s.trainable for s in tail),
                                   sum(int(s.macs or 0) for s in tail))


def by_type(summary: Summary) -> tuple[TypeShare, ...]:
    acc: dict[str, list[int]] = {}
    for r in summary.rows:
        e = acc.setdefault(r.type, [0, 0, 0, 0, 0])
        e[0] += 1
        e[1] += r.params.params
        e[2] += r.params.trainable
        if r.macs is None:
            e[4] += 1
        else:
            e[3] += r.macs
    rows = [TypeShare(t, *v) for t, v in acc.items()]
    return tuple(sorted(rows, key=lambda t: (-t.params, -t.macs, t.type)))


def _readable(w: Weight, max_bytes: int) -> str | None:
    """Why ``w`` gets no histogram, or ``None`` if it may be read."""
    from .weights import is_placeholder

    if w.quantization:
        return "quantization scale or zero point"
    if w.reader is None:
        return "values not stored in the file"
    if is_placeholder(w):
        return "placeholder the graph fills with one constant (no stored values)"
    if w.dtype in ("string", "bool") or w.dtype.startswith("complex"):
        return f"{w.dtype} values have no histogram"
    if w.nbytes > max_bytes:
        return f"declares {w.nbytes:,} bytes, above the {max_bytes:,}-byte limit for charts"
    return None


def _histogram(path: str, w: Weight, values: Any, *, sample: int, bins: int) -> WeightHistogram | None:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.names is not None:  # an HDF5 compound type: records, not numbers
        return None
    if arr.dtype.kind == "V" and str(arr.dtype).startswith(("bfloat16", "float8", "float4")):  # ml_dtypes floats
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiu":  # opaque bytes, strings, objects
        return None
    flat = arr.reshape(-1)
    if flat.size > sample:
        step = math.ceil(flat.size / sample)
        flat = flat[::step]
    flat = flat.astype(np.float64)
    finite = np.isfinite(flat)
    nonfinite = int(flat.size - int(finite.sum()))
    vals = flat[finite]
    if vals.size == 0:
        counts, edges = np.zeros(1, dtype=np.int64), np.array([0.0, 1.0])
        lo = hi = mean = std = math.nan
    else:
        lo, hi = float(vals.min()), float(vals.max())
        if lo == hi:  # a constant tensor: one bar around its value
            pad = abs(lo) * 0.05 or 0.5
            counts, edges = np.histogram(vals, bins=1, range=(lo - pad, hi + pad))
        else:
            counts, edges = np.histogram(vals, bins=bins, range=(lo, hi))
        mean, std = float(vals.mean()), float(vals.std())
    return WeightHistogram(
        layer=path, weight=w.name, role=w.role, shape=tuple(int(d) for d in w.shape), dtype=w.dtype,
        size=w.size, sampled=int(flat.size), counts=tuple(int(c) for c in counts),
        edges=tuple(float(e) for e in edges), minimum=lo, maximum=hi, mean=mean, std=std,
        zeros=int((vals == 0).sum()), nonfinite=nonfinite)


def _main_weight(layer: Layer) -> Weight | None:
    """The tensor that best shows a layer's values: its largest non-quantization weight
    (a kernel over a bias), nested models included."""
    best: Weight | None = None
    for w in layer.iter_weights():
        if w.quantization:
            continue
        if best is None or w.size > best.size:
            best = w
    return best


def weight_histograms(graph: ModelGraph, summary: Summary, *, layers: int = HISTOGRAM_LAYERS,
                      max_tensor_bytes: int = MAX_TENSOR_BYTES, sample: int = HISTOGRAM_SAMPLE,
                      bins: int = HISTOGRAM_BINS) -> tuple[tuple[WeightHistogram, ...],
                                                           tuple[tuple[str, str], ...]]:
    """Histograms of the main tensor of the ``layers`` largest layers (by parameters),
    one tensor read at a time; plus the tensors skipped and why."""
    from ..errors import InspectorError

    # Normalization layers hold scales and statistics, constant by design at
    # initialization: their histograms say little, so they come last.
    ranked = sorted((r for r in summary.rows if r.params.params > 0),
                    key=lambda r: ("Normalization" in r.type, -r.params.params, r.name))
    out: list[WeightHistogram] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for row in ranked:
        if len(out) >= layers:
            break
        if row.name not in graph:
            continue
        w = _main_weight(graph.layer(row.name))
        if w is None or w.key in seen:
            continue
        seen.add(w.key)
        why = _readable(w, max_tensor_bytes)
        if why is not None:
            skipped.append((w.name, why))
            continue
        try:
            values = w.read()
        except InspectorError as exc:
            skipped.append((w.name, str(exc)))
            continue
        except (OSError, ValueError, KeyError, TypeError, MemoryError) as exc:
            skipped.append((w.name, f"{type(exc).__name__}: {exc}"))
            continue
        hist = _histogram(row.name, w, values, sample=sample, bins=bins)
        del values
        if hist is None:
            skipped.append((w.name, "values are not numbers"))
        else:
            out.append(hist)
    return tuple(out), tuple(skipped)


def collect(graph: ModelGraph, *, file_size: int | None = None, file_name: str | None = None,
            findings: Sequence[Any] | None = None, rules: Sequence[Any] = (), lint_error: str | None = None,
            probe: ProbeView | None = None, history: HistoryView | None = None, top: int = TOP_LAYERS,
            histogram_layers: int = HISTOGRAM_LAYERS,
            max_tensor_bytes: int = MAX_TENSOR_BYTES) -> ReportData:
    """Gather a :class:`ReportData` for ``graph``.

    ``findings`` are lint results computed by the caller (``None``: lint did not
    run; then ``lint_error`` may say why) and ``rules`` the rules of their codes,
    sorted by code (the caller looks them up: analysis does not import the
    rules).  ``probe``/``history`` are the views of the probe's and the history
    diagnosis' results (:func:`probe_view`, :func:`history_view`).
    """
    from .macs import count_macs
    from .params import count_params

    summary = summarize(graph, macs=True)
    card = model_card(graph, count_params(graph), macs=count_macs(graph), file_size=file_size, kind=summary.kind)
    shares = _shares(summary)
    top_p, other_p = top_layers(shares, key="params", top=top)
    top_m, other_m = top_layers(shares, key="macs", top=top)
    hists, skipped = weight_histograms(graph, summary, layers=histogram_layers,
                                       max_tensor_bytes=max_tensor_bytes)
    if file_name is None:
        file_name = Path(graph.path).name if graph.path else graph.name
    return ReportData(
        card=card, summary=summary, file_name=file_name, top_params=top_p, other_params=other_p,
        top_macs=top_m, other_macs=other_m, by_type=by_type(summary), histograms=hists,
        skipped_weights=skipped, findings=tuple(findings or ()), rules=tuple(rules),
        lint_error=lint_error, lint_ran=findings is not None, probe=probe, history=history,
        notes=summary.notes)
