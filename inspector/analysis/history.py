"""Training histories: read Keras training logs and find what went wrong in the curves.

A model file shows how a network is built; its *training log* shows how it
learned.  This module reads the three logs Keras users have at hand and turns
each into one :class:`History` (epoch numbers plus one value per epoch for every
metric), then answers the questions the ``HIST`` rules ask of it:

* Keras ``CSVLogger`` files (``epoch,accuracy,loss,val_accuracy,val_loss``;
  ``NA`` or an empty cell is a missing value, ``nan``/``inf`` are values);
* ``History.history`` saved as JSON: a dict of lists (``{"loss": [...],
  "val_loss": [...]}``), the same dict under a ``"history"`` key, or a list of
  per-epoch dicts (``[{"epoch": 0, "loss": ...}, ...]``);
* TensorBoard event files written by ``keras.callbacks.TensorBoard`` (a log
  folder with ``train/`` and ``validation/`` runs, or one event file).  They are
  read with the ``tensorboard`` package's ``EventAccumulator`` when it is
  installed, else with TensorFlow's ``summary_iterator``; with neither, a
  one-line :class:`~inspector.errors.MissingDependency` error.

Epochs are numbered as the log numbers them: Keras counts from 0 (the CSV
``epoch`` column, TensorBoard steps), so "epoch 12" is the row ``12,...`` of a
CSV log and the 13th ``Epoch 13/50`` line of ``fit``'s progress output.  A
History JSON has no epoch numbers; its list positions are used (from 0, as
``CSVLogger`` would have written them).

Every diagnosis is robust to single-epoch noise: curves are smoothed with a
3-epoch running median before minima are taken, a change must exceed both a
relative margin and a multiple of the curve's own noise (estimated robustly from
second differences), and a problem must persist over a window of epochs.
Accuracy-like metrics (higher is better, values in 0..1 or 0..100) are turned
into error rates (``1 - accuracy``) so one "lower is better" logic serves all.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import InspectorError, LimitExceeded, MissingDependency, ModelLoadError, UsageError

VAL_PREFIXES = ("val_", "validation_")
"""Prefixes Keras (and common loggers) give validation metrics."""

IGNORED = frozenset({"epoch", "lr", "learning_rate", "time", "epoch_time", "step", "wall_time"})
"""Columns that are not training metrics."""

_LOWER_BETTER = re.compile(r"loss|error|mse|mae|mape|msle|rmse|crossentropy|hinge|perplexity|logcosh|"
                           r"kld|kl_divergence|poisson|huber|cosine_proximity|distance", re.I)
_HIGHER_BETTER = re.compile(r"acc|accuracy|auc|precision|recall|f1|fbeta|iou|top_k|r2|dice|"
                            r"specificity|sensitivity|psnr|ssim|map\b|bleu|rouge", re.I)

MISSING_TOKENS = frozenset({"", "na", "n/a", "none", "null"})
MAX_EVENT_FILES = 1000


@dataclass(frozen=True)
class History:
    """One training run: epoch numbers and one value per epoch for every metric.

    ``metrics`` maps a metric name (``loss``, ``val_loss``, ``accuracy`` …) to a
    tuple aligned with ``epochs``; ``None`` marks an epoch the log has no value
    for (e.g. validation every few epochs), ``nan``/``inf`` are logged values.
    """

    path: str
    format: str
    """``csv``, ``json`` or ``tensorboard``."""
    epochs: tuple[int, ...]
    metrics: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return list(self.metrics)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of metric ``name`` without its missing epochs."""
        values = self.metrics.get(name, ())
        pairs = [(e, v) for e, v in zip(self.epochs, values) if v is not None]
        return [e for e, _ in pairs], [v for _, v in pairs]

    def pairs(self) -> list[tuple[str, str]]:
        """``(training metric, validation metric)`` pairs present in the log,
        ``loss``/``val_loss`` first, then in column order."""
        out = []
        for name in self.metrics:
            if is_validation(name) or name.lower() in IGNORED:
                continue
            for prefix in VAL_PREFIXES:
                if prefix + name in self.metrics:
                    out.append((name, prefix + name))
                    break
        out.sort(key=lambda p: (p[0] != "loss", direction(p[0]) != "min"))
        return out


def is_validation(name: str) -> bool:
    return name.lower().startswith(VAL_PREFIXES)


def base_name(name: str) -> str:
    low = name
    for prefix in VAL_PREFIXES:
        if low.lower().startswith(prefix):
            return low[len(prefix):]
    return low


def direction(name: str) -> str | None:
    """``"min"`` for loss-like metrics, ``"max"`` for accuracy-like ones, ``None``
    when the name does not say (such metrics are left alone)."""
    base = base_name(name)
    if _LOWER_BETTER.search(base):
        return "min"
    if _HIGHER_BETTER.search(base):
        return "max"
    return None


# -- reading --------------------------------------------------------------------------------


def read_history(path: str | os.PathLike[str]) -> History:
    """Read a training log (CSV, History JSON or TensorBoard events), picking the
    reader by content: a folder or a file whose name holds ``tfevents`` is
    TensorBoard, text starting with ``{`` or ``[`` is JSON, other text is CSV."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file or folder")
    if p.is_dir() or "tfevents" in p.name:
        return _read_tensorboard(p)
    data = _read_bytes(p)
    text = _decode(data, p)
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return _from_json(text, p)
    if not head:
        raise ModelLoadError("the training log is empty")
    return _from_csv(text, p)


def _read_bytes(p: Path) -> bytes:
    from ..limits import Limits, current

    limit = current().json_bytes
    try:
        size = p.stat().st_size
        if size > limit:
            raise LimitExceeded(f"the training log is {size:,} bytes, more than the limit of {limit:,} "
                                f"(raise it with {Limits.env_name('json_bytes')})")
        with p.open("rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the training log ({exc.strerror or exc})") from None


def _decode(data: bytes, p: Path) -> str:
    if b"\x00" in data[:4096]:
        raise ModelLoadError("not a training log: the file is binary (expected a Keras CSVLogger file, "
                             "History JSON, or TensorBoard events)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelLoadError("not a training log: the file is not UTF-8 text") from None


def _number(raw: Any, *, where: str) -> float | None:
    """A logged value: ``None`` for a missing one, ``float`` (``nan``/``inf`` kept)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        s = raw.strip()
        if s.lower() in MISSING_TOKENS:
            return None
        try:
            return float(s)
        except ValueError:
            raise ModelLoadError(f"not a training log: {where} holds {raw[:40]!r}, not a number") from None
    if isinstance(raw, list) and len(raw) == 1:
        return _number(raw[0], where=where)
    raise ModelLoadError(f"not a training log: {where} holds a {type(raw).__name__}, not a number")


def _from_csv(text: str, p: Path) -> History:
    first = text.splitlines()[0] if text else ""
    delimiter = max((",", ";", "\t", "|"), key=first.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    if len(header) < 2 or len(set(header)) != len(header) or any(not h for h in header):
        raise ModelLoadError("not a training log: the first line is not a header of metric names "
                             "(expected a Keras CSVLogger file such as 'epoch,loss,val_loss')")
    if all(_is_number(h) for h in header):
        raise ModelLoadError("not a training log: the CSV has no header line of metric names")
    columns: dict[str, list[float | None]] = {h: [] for h in header}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ModelLoadError(f"not a training log: line {i} has {len(row)} fields, the header {len(header)}")
        for h, cell in zip(header, row):
            columns[h].append(_number(cell, where=f"line {i}, column {h!r}"))
    return _build(p, "csv", columns)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _from_json(text: str, p: Path) -> History:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelLoadError(f"not a training log: invalid JSON ({str(exc)[:80]})") from None
    if isinstance(doc, dict) and isinstance(doc.get("history"), (dict, list)):
        doc = doc["history"]
    columns: dict[str, list[float | None]] = {}
    if isinstance(doc, dict):
        lists = {str(k): v for k, v in doc.items() if isinstance(v, list)}
        if not lists or len(lists) != len(doc):
            raise ModelLoadError("not a training log: expected History.history as JSON, a dict of "
                                 "lists such as {\"loss\": [...], \"val_loss\": [...]}")
        n = max(len(v) for v in lists.values())
        for k, values in lists.items():
            col = [_number(v, where=f"{k}[{i}]") for i, v in enumerate(values)]
            columns[k] = col + [None] * (n - len(col))
    elif isinstance(doc, list):
        if not doc or not all(isinstance(e, dict) for e in doc):
            raise ModelLoadError("not a training log: expected a list of per-epoch objects such as "
                                 "[{\"epoch\": 0, \"loss\": ...}, ...]")
        keys: list[str] = []
        for entry in doc:
            keys.extend(str(k) for k in entry if str(k) not in keys)
        for k in keys:
            columns[k] = [_number(e.get(k), where=f"epoch entry {i}, {k!r}") for i, e in enumerate(doc)]
    else:
        raise ModelLoadError("not a training log: the JSON is neither a dict of lists nor a list of objects")
    return _build(p, "json", columns)


def _build(p: Path, fmt: str, columns: Mapping[str, list[float | None]], *,
           epochs: Sequence[int] | None = None, notes: Iterable[str] = ()) -> History:
    notes = list(notes)
    columns = dict(columns)
    n = max((len(v) for v in columns.values()), default=0)
    if epochs is None:
        key = next((k for k in columns if k.lower() == "epoch"), None)
        if key is not None:
            raw = columns.pop(key)
            if any(v is None or not math.isfinite(v) or v != int(v) for v in raw):
                raise ModelLoadError("not a training log: the epoch column holds values that are not "
                                     "whole numbers")
            epochs = [int(v) for v in raw]  # type: ignore[arg-type]
        else:
            epochs = list(range(n))
    epochs = list(epochs)
    # CSVLogger(append=True) across runs: keep the last run (epoch numbers restart).
    starts = [i for i in range(1, len(epochs)) if epochs[i] <= epochs[i - 1]]
    if starts:
        cut = starts[-1]
        notes.append(f"the log holds {len(starts) + 1} runs (the epoch count restarts); "
                     f"only the last one (from line {cut + 2}) is diagnosed")
        epochs = epochs[cut:]
        columns = {k: v[cut:] for k, v in columns.items()}
    metrics = {k: tuple(v) for k, v in columns.items()
               if k.lower() not in IGNORED and any(x is not None for x in v)}
    if not metrics:
        raise ModelLoadError("not a training log: it holds no metric values")
    if not epochs:
        raise ModelLoadError("not a training log: it holds no epoch")
    return History(path=str(p), format=fmt, epochs=tuple(epochs), metrics=metrics, notes=tuple(notes))


# -- TensorBoard ----------------------------------------------------------------------------

_VAL_RUNS = ("validation", "val", "valid", "eval", "evaluation", "test")
_RUNS = _VAL_RUNS + ("train", "training")


def _event_files(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    found: list[Path] = []
    for root, dirs, files in os.walk(p, followlinks=False):
        dirs.sort()
        for f in sorted(files):
            if "tfevents" in f:
                found.append(Path(root) / f)
                if len(found) > MAX_EVENT_FILES:
                    raise LimitExceeded(f"more than {MAX_EVENT_FILES} TensorBoard event files under the folder; "
                                        "point inspector at one run's folder")
    if not found:
        raise ModelLoadError("no TensorBoard event file (events.out.tfevents.*) in the folder; expected "
                             "the log_dir of keras.callbacks.TensorBoard, a CSVLogger file or History JSON")
    roots = sorted({str(f.parent.parent if f.parent.name.lower() in _RUNS else f.parent) for f in found})
    if len(roots) > 1:
        names = ", ".join(os.path.relpath(r, p) for r in roots[:3]) + (" …" if len(roots) > 3 else "")
        raise UsageError(f"the folder holds {len(roots)} TensorBoard runs ({names}); point inspector at one of them")
    return found


def _tag_name(tag: str, run: str) -> str | None:
    """The metric name a TensorBoard tag stands for, or ``None`` for non-epoch tags."""
    t = tag.strip()
    if t.startswith(("batch_", "evaluation_")) or "_vs_iterations" in t or "/" in t:
        return None
    if t.startswith("epoch_"):
        t = t[len("epoch_"):]
    if t.lower() in IGNORED or not t:
        return None
    if run.lower() in _VAL_RUNS and not is_validation(t):
        t = "val_" + t
    return t


def _read_tensorboard(p: Path) -> History:
    files = _event_files(p)
    reader = _scalar_reader()
    values: dict[str, dict[int, float]] = {}
    for f in files:
        run = f.parent.name if (p.is_file() or f.parent != p) else ""
        try:
            scalars = reader(f)
        except InspectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt event file is a load error, not a crash
            raise ModelLoadError(f"cannot read TensorBoard events from {f.name} ({type(exc).__name__}: "
                                 f"{str(exc)[:80]})") from None
        for tag, step, value in scalars:
            name = _tag_name(tag, run)
            if name is not None:
                values.setdefault(name, {})[int(step)] = value
    if not values:
        raise ModelLoadError("the TensorBoard events hold no per-epoch scalar (epoch_loss, epoch_accuracy …)")
    epochs = sorted({s for v in values.values() for s in v})
    columns = {k: [v.get(e) for e in epochs] for k, v in sorted(values.items(), key=lambda kv: _order(kv[0]))}
    return _build(p, "tensorboard", columns, epochs=epochs)


def _order(name: str) -> tuple[int, str]:
    return (1 if is_validation(name) else 0, base_name(name))


def _scalar_reader():
    """A function ``path -> [(tag, step, value)]``: tensorboard's EventAccumulator if
    installed, else TensorFlow's summary iterator.

    tensorboard imports TensorFlow, when it is installed, the first time it needs
    file access (seconds to tens of seconds); its own stub does the same job for
    reading event files.  When TensorFlow is not loaded yet, the ``notf`` marker
    tensorboard documents for this is registered, so the stub is used."""
    if "tensorflow" not in sys.modules and "tensorboard.compat.notf" not in sys.modules:
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
        from tensorboard.util import tensor_util
    except ImportError:
        ea = None
    if ea is not None:
        def read_tb(path: Path) -> list[tuple[str, int, float]]:
            acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
            acc.Reload()
            out: list[tuple[str, int, float]] = []
            tags = acc.Tags()
            for tag in tags.get("scalars", []):
                out.extend((tag, e.step, float(e.value)) for e in acc.Scalars(tag))
            for tag in tags.get("tensors", []):
                for e in acc.Tensors(tag):
                    v = _scalar(tensor_util.make_ndarray(e.tensor_proto))
                    if v is not None:
                        out.append((tag, e.step, v))
            return out

        return read_tb
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependency("reading TensorBoard event files", extra="tensorflow",
                                package="tensorboard (or tensorflow)") from None

    def read_tf(path: Path) -> list[tuple[str, int, float]]:
        out: list[tuple[str, int, float]] = []
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    out.append((v.tag, event.step, float(v.simple_value)))
                elif kind == "tensor":
                    value = _scalar(tf.make_ndarray(v.tensor))
                    if value is not None:
                        out.append((v.tag, event.step, value))
        return out

    return read_tf


def _scalar(arr: Any) -> float | None:
    import numpy as np

    a = np.asarray(arr)
    if a.size != 1 or a.dtype.kind not in "fiub":
        return None
    return float(a.reshape(()))


# -- curve arithmetic -------------------------------------------------------------------------


def median3(x: Sequence[float]) -> list[float]:
    """Running median over 3 epochs (the ends keep their value): removes a single
    outlying epoch without shifting where a curve turns."""
    n = len(x)
    if n < 3:
        return list(x)
    return [x[0]] + [sorted(x[i - 1:i + 2])[1] for i in range(1, n - 1)] + [x[-1]]


def noise(x: Sequence[float]) -> float:
    """Robust epoch-to-epoch noise of a curve (a standard deviation): the median
    absolute second difference ``x[t] - (x[t-1] + x[t+1]) / 2``, which a smooth
    trend barely moves, scaled to a Gaussian sigma (× 1.4826 / sqrt(1.5))."""
    if len(x) < 3:
        return 0.0
    d = sorted(abs(x[i] - (x[i - 1] + x[i + 1]) / 2) for i in range(1, len(x) - 1))
    mid = len(d) // 2
    med = d[mid] if len(d) % 2 else (d[mid - 1] + d[mid]) / 2
    return 1.4826 * med / math.sqrt(1.5)


def bounded(values: Sequence[float]) -> float | None:
    """The scale of an accuracy-like curve: 1.0 for values in 0..1, 100.0 for
    percentages, ``None`` otherwise."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if lo >= 0 and hi <= 1.0:
        return 1.0
    if lo >= 0 and hi <= 100.0:
        return 100.0
    return None


def lower_better(name: str, values: Sequence[float]) -> tuple[list[float], bool] | None:
    """``values`` as a lower-is-better curve: losses as they are, accuracy-like
    metrics as error rates (``scale - value``); second item: whether it is such
    an error rate.  ``None`` when the metric's direction is unknown or an
    accuracy-like metric is not bounded."""
    d = direction(name)
    if d == "min":
        return list(values), False
    if d == "max":
        scale = bounded(values)
        if scale is None:
            return [-v for v in values], False
        return [scale - v for v in values], True
    return None


def finite_prefix(h: History, *names: str) -> tuple[list[int], dict[str, list[float]]]:
    """Epochs where every metric of ``names`` has a value, up to (not including) the
    first epoch where one of them is NaN/Inf (HIST003 reports that)."""
    epochs: list[int] = []
    out: dict[str, list[float]] = {n: [] for n in names}
    cols = [h.metrics.get(n, ()) for n in names]
    for i, e in enumerate(h.epochs):
        vals = [c[i] if i < len(c) else None for c in cols]
        if any(v is None for v in vals):
            continue
        if any(not math.isfinite(v) for v in vals):  # type: ignore[arg-type]
            break
        epochs.append(e)
        for n, v in zip(names, vals):
            out[n].append(float(v))  # type: ignore[arg-type]
    return epochs, out


# -- diagnoses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NonFinite:
    """HIST003: the first epoch where a metric became NaN or infinite."""

    epoch: int
    metrics: tuple[str, ...]
    """Every metric that is non-finite at that epoch (``loss`` first)."""
    last_finite: dict[str, float] = field(default_factory=dict)
    """The metric's last finite value before, when it had one."""


def find_nonfinite(h: History) -> NonFinite | None:
    names = sorted(h.metrics, key=lambda n: (base_name(n) != "loss", is_validation(n), n))
    for i, e in enumerate(h.epochs):
        bad = [n for n in names if i < len(h.metrics[n]) and h.metrics[n][i] is not None
               and not math.isfinite(h.metrics[n][i])]  # type: ignore[arg-type]
        if bad:
            last = {}
            for n in bad:
                prev = [v for v in h.metrics[n][:i] if v is not None and math.isfinite(v)]
                if prev:
                    last[n] = prev[-1]
            return NonFinite(epoch=e, metrics=tuple(bad), last_finite=last)
    return None


@dataclass(frozen=True)
class Overfitting:
    """HIST001: validation got worse for a sustained window while training improved."""

    train: str
    val: str
    best_epoch: int
    """The epoch with the best (smoothed) validation value: where to stop."""
    start_epoch: int
    """The first epoch after it: where overfitting starts."""
    epochs_after: int
    val_best: float
    val_end: float
    train_at_best: float
    train_end: float
    gap_at_best: float
    gap_end: float
    error_rate: bool
    """True when the values are error rates derived from an accuracy-like metric."""


def find_overfitting(h: History, *, patience: int = 5, min_rise: float = 0.05,
                     min_train_improvement: float = 0.01) -> Overfitting | None:
    """The first train/validation pair (``loss`` first) that overfits.

    With ``v``/``t`` the validation/training curves (lower is better) and ``vs``,
    ``ts`` their 3-epoch running medians: ``b`` is the epoch of the smallest
    ``vs``; overfitting needs at least ``patience`` epochs after ``b``, all of the
    last ``patience`` smoothed validation values above ``vs[b] + tol`` (``tol`` =
    the larger of ``min_rise`` × ``vs[b]`` and three times the validation noise:
    ``vs[b]`` is the lowest of many noisy values, so it sits low), the
    smoothed training value at the end below ``ts[b]`` by more than
    ``min_train_improvement`` × ``ts[b]`` (and twice its noise), and the gap
    ``v - t`` at the end wider than at ``b`` by more than ``tol``.
    """
    for train, val in h.pairs():
        epochs, cols = finite_prefix(h, train, val)
        if len(epochs) < patience + 3:
            continue
        tv = lower_better(train, cols[train])
        vv = lower_better(val, cols[val])
        if tv is None or vv is None:
            continue
        t, v = tv[0], vv[0]
        ts, vs = median3(t), median3(v)
        b = min(range(len(vs)), key=lambda i: (vs[i], i))
        after = len(vs) - 1 - b
        if after < patience:
            continue
        tol = max(min_rise * abs(vs[b]), 3 * noise(v))
        if not all(x > vs[b] + tol for x in vs[-patience:]):
            continue
        need = max(min_train_improvement * abs(ts[b]), 2 * noise(t))
        if not ts[-1] < ts[b] - need:
            continue
        gap_b, gap_end = vs[b] - ts[b], vs[-1] - ts[-1]
        if not gap_end - gap_b > tol:
            continue
        return Overfitting(train=train, val=val, best_epoch=epochs[b], start_epoch=epochs[b + 1],
                           epochs_after=after, val_best=vs[b], val_end=vs[-1], train_at_best=ts[b],
                           train_end=ts[-1], gap_at_best=gap_b, gap_end=gap_end, error_rate=vv[1])
    return None


@dataclass(frozen=True)
class Instability:
    """HIST002: a validation curve that swings far more than the training curve."""

    metric: str
    start_epoch: int
    """The epoch of the first swing."""
    swings: int
    """Separate excursions (a spike or a dip; adjacent epochs count once)."""
    largest: float
    """The largest excursion from the running median: relative to it when
    ``relative`` (losses), else in the metric's units."""
    threshold: float
    train_noise: float | None
    """The training curve's epoch-to-epoch noise, on the same scale."""
    epochs: tuple[int, ...]
    """The epoch of each excursion."""
    also: tuple[str, ...] = ()
    """Other validation metrics that swing too."""
    relative: bool = False


def running_median(x: Sequence[float], half: int = 3) -> list[float | None]:
    """Centered running median over ``2 * half + 1`` epochs, the window shrinking
    symmetrically near the ends (``None`` at the first and last epoch).  On a
    monotone curve it returns the curve itself, however steep, so only epochs
    that stand out from their neighbours leave a residual."""
    n = len(x)
    out: list[float | None] = []
    for t in range(n):
        k = min(half, t, n - 1 - t)
        out.append(None if k == 0 else sorted(x[t - k:t + k + 1])[k])
    return out


def find_instability(h: History, *, min_swing: float = 0.15, min_accuracy_swing: float = 0.05,
                     noise_ratio: float = 4.0, min_swings: int = 3) -> Instability | None:
    """Validation curves with at least ``min_swings`` separate spikes or dips.

    An epoch is a spike (or a dip) when it stands out from the centered 7-epoch
    running median of its curve by more than the threshold: monotone curves,
    however steep, have none, an isolated outlier counts once, and a curve that
    zigzags every epoch is flagged at every epoch.  Adjacent outlying epochs on
    the same side count as one excursion.  Losses are compared relative to
    their level (the threshold is the larger of ``min_swing`` and
    ``noise_ratio`` × the training loss's relative noise, measured on its
    logarithm); accuracy-like metrics in absolute terms (the larger of
    ``min_accuracy_swing`` — × 100 for percentages — and ``noise_ratio`` × the
    training curve's noise).
    """
    found: list[Instability] = []
    vals = [n for n in h.metrics if is_validation(n) and direction(n) is not None]
    vals.sort(key=lambda n: (base_name(n) != "loss", direction(n) != "min", n))
    for val in vals:
        train = base_name(val) if base_name(val) in h.metrics else None
        names = (val, train) if train else (val,)
        epochs, cols = finite_prefix(h, *names)
        v = cols[val]
        if len(v) < 5:
            continue
        scale = bounded(v) if direction(val) == "max" else None
        relative = scale is None and all(x > 0 for x in v)
        tnoise = None
        if train:
            t = cols[train]
            if relative and all(x > 0 for x in t):
                tnoise = noise([math.log(x) for x in t])  # losses: noise relative to the level
            elif relative:
                tnoise = noise(t) / max(abs(sorted(t)[len(t) // 2]), 1e-12)
            else:
                tnoise = noise(t)
        events: list[tuple[int, float]] = []
        last_i, last_sign = -10, 0
        threshold_seen = 0.0
        for i, level in enumerate(running_median(v)):
            if level is None:
                continue
            if relative:
                r = (v[i] - level) / level
                th = max(min_swing, noise_ratio * (tnoise or 0.0))
            else:
                r = v[i] - level
                floor = min_accuracy_swing * scale if scale else min_swing * abs(level)
                th = max(floor, noise_ratio * (tnoise or 0.0))
            threshold_seen = max(threshold_seen, th)
            if abs(r) <= th:
                continue
            sign = 1 if r > 0 else -1
            if i - last_i == 1 and sign == last_sign:
                if abs(r) > events[-1][1]:
                    events[-1] = (events[-1][0], abs(r))
            else:
                events.append((i, abs(r)))
            last_i, last_sign = i, sign
        if len(events) >= min_swings:
            found.append(Instability(metric=val, start_epoch=epochs[events[0][0]], swings=len(events),
                                     largest=max(a for _, a in events), threshold=threshold_seen,
                                     train_noise=tnoise, epochs=tuple(epochs[i] for i, _ in events),
                                     relative=relative))
    if not found:
        return None
    return replace(found[0], also=tuple(f.metric for f in found[1:]))


@dataclass(frozen=True)
class Plateau:
    """HIST004: the training curve did not improve over the first epochs."""

    metric: str
    start_epoch: int
    window: int
    first: float
    best: float
    improvement: float
    """Relative improvement over the window (0.004 = 0.4 %)."""
    recovered_epoch: int | None
    """The epoch where the curve finally improved, if it did later."""


def find_plateau(h: History, *, window: int = 5, min_improvement: float = 0.01,
                 fitted_accuracy: float = 0.95) -> Plateau | None:
    """The training loss (or the first lower-is-better training metric) improves by
    less than ``min_improvement`` (relative) between the first epoch and the best of
    the next ``window`` epochs.  Not a plateau when an accuracy-like training
    metric already reaches ``fitted_accuracy`` over those epochs (the model fit
    its data within the first epoch)."""
    candidates = [n for n in h.metrics if not is_validation(n) and direction(n) == "min"]
    candidates.sort(key=lambda n: (n != "loss", n))
    if not candidates:
        return None
    name = candidates[0]
    epochs, cols = finite_prefix(h, name)
    x = cols[name]
    if len(x) < window + 1:
        return None
    first, best = x[0], min(x[1:window + 1])
    if first == 0:
        return None
    improvement = (first - best) / abs(first)
    if improvement >= min_improvement:
        return None
    for acc in (n for n in h.metrics if not is_validation(n) and direction(n) == "max"):
        ac = finite_prefix(h, acc)[1][acc]
        scale = bounded(ac[:window + 1])
        if scale and max(ac[:window + 1]) >= fitted_accuracy * scale:
            return None
    recovered = next((epochs[i] for i in range(window + 1, len(x))
                      if (first - x[i]) / abs(first) >= 10 * min_improvement), None)
    return Plateau(metric=name, start_epoch=epochs[0], window=window, first=first, best=best,
                   improvement=improvement, recovered_epoch=recovered)


@dataclass(frozen=True)
class ValidationBetter:
    """HIST005: the validation curve is better than the training curve by a wide margin."""

    train: str
    val: str
    start_epoch: int
    epochs_better: int
    epochs_compared: int
    mean_gap: float
    """Mean margin: relative (0.25 = validation 25 % lower) for losses, absolute for accuracy."""
    relative: bool


def find_validation_better(h: History, *, min_gap: float = 0.10, min_accuracy_gap: float = 0.05,
                           min_share: float = 0.8, min_epochs: int = 3) -> ValidationBetter | None:
    """From the second logged epoch on (the first epoch's training value averages
    over a model that was still learning), the validation value beats the training
    value by more than ``min_gap`` (relative, losses) or ``min_accuracy_gap``
    (absolute on 0..1, accuracy-like) in at least ``min_share`` of the epochs."""
    for train, val in h.pairs():
        d = direction(train)
        if d is None:
            continue
        epochs, cols = finite_prefix(h, train, val)
        t, v = cols[train][1:], cols[val][1:]
        eps = epochs[1:]
        if len(t) < min_epochs:
            continue
        if d == "min":
            gaps = [(ti - vi) / abs(ti) if ti else 0.0 for ti, vi in zip(t, v)]
            limit, relative = min_gap, True
        else:
            scale = bounded(t + v)
            if scale is None:
                continue
            gaps = [(vi - ti) / scale for ti, vi in zip(t, v)]
            limit, relative = min_accuracy_gap, False
        better = [i for i, g in enumerate(gaps) if g > limit]
        if len(better) >= max(min_epochs, math.ceil(min_share * len(gaps))):
            return ValidationBetter(train=train, val=val, start_epoch=eps[better[0]],
                                    epochs_better=len(better), epochs_compared=len(gaps),
                                    mean_gap=sum(gaps) / len(gaps), relative=relative)
    return None
