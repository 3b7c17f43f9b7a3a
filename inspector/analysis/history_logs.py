"""Training logs: read Keras training logs into one :class:`History` per run.

A model file shows how a network is built; its *training log* shows how it
learned.  This module reads the three logs Keras users have at hand and turns
each into one :class:`History` (epoch numbers plus one value per epoch for every
metric); :mod:`inspector.analysis.curves` answers the questions the ``HIST`` rules
ask of it:

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

The metric names say what a curve is: :func:`is_validation`, :func:`base_name`
and :func:`direction` (lower or higher is better).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import InspectorError, LimitExceeded, MissingDependency, ModelLoadError, UsageError
from ..units import is_number

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
        pairs = [(e, v) for e, v in zip(self.epochs, values, strict=False) if v is not None]
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
        raise UsageError("no such file or folder")
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
    from ..fileio import read_capped
    from ..limits import Limits, current

    limit = current().json_bytes

    def too_big(size: int | None) -> LimitExceeded:
        how_big = f"{size:,} bytes, more than" if size is not None else "more than"
        return LimitExceeded(f"the training log is {how_big} the limit of {limit:,} "
                             f"(raise it with {Limits.env_name('json_bytes')})")

    def unreadable(exc: OSError) -> UsageError:
        return UsageError(f"cannot read the training log ({exc.strerror or exc})")

    return read_capped(p, limit, too_big=too_big, unreadable=unreadable)


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
    if all(is_number(h) for h in header):
        raise ModelLoadError("not a training log: the CSV has no header line of metric names")
    columns: dict[str, list[float | None]] = {h: [] for h in header}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ModelLoadError(f"not a training log: line {i} has {len(row)} fields, the header {len(header)}")
        for h, cell in zip(header, row, strict=True):  # row length checked above
            columns[h].append(_number(cell, where=f"line {i}, column {h!r}"))
    return _build(p, "csv", columns)



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


ScalarReader = Callable[[Path], list[tuple[str, int, float]]]
"""Reads one event file: ``path -> [(tag, step, value)]``."""


def _scalar_reader() -> ScalarReader:
    """A function ``path -> [(tag, step, value)]``: tensorboard's EventAccumulator if
    installed, else TensorFlow's summary iterator.

    tensorboard imports TensorFlow, when it is installed, the first time it needs
    file access (seconds to tens of seconds); its own stub does the same job for
    reading event files.  When TensorFlow is not loaded yet, the ``notf`` marker
    tensorboard documents for this is registered, so the stub is used."""
    if "tensorflow" not in sys.modules and "tensorboard.compat.notf" not in sys.modules:
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    reader = _tensorboard_reader()
    return reader if reader is not None else _tensorflow_reader()


def _tensorboard_reader() -> ScalarReader | None:
    """tensorboard's EventAccumulator, or None when tensorboard is not installed."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
        from tensorboard.util import tensor_util
    except ImportError:
        return None

    def read_tb(path: Path) -> list[tuple[str, int, float]]:
        acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
        acc.Reload()
        out: list[tuple[str, int, float]] = []
        tags = acc.Tags()
        for tag in tags.get("scalars", []):
            out.extend((tag, e.step, float(e.value)) for e in acc.Scalars(tag))
        for tag in tags.get("tensors", []):
            for e in acc.Tensors(tag):
                v = _tensor_scalar(e.tensor_proto, tensor_util.make_ndarray)
                if v is not None:
                    out.append((tag, e.step, v))
        return out

    return read_tb


def _tensorflow_reader() -> ScalarReader:
    """TensorFlow's summary iterator (MissingDependency when TensorFlow is missing too)."""
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
                    value = _tensor_scalar(v.tensor, tf.make_ndarray)
                    if value is not None:
                        out.append((v.tag, event.step, value))
        return out

    return read_tf


MAX_SCALAR_BYTES = 16
"""Most bytes one stored value of a TensorBoard tensor takes (a complex128)."""


def _tensor_scalar(proto: Any, make_ndarray: Callable[[Any], Any]) -> float | None:
    """The value of a TensorBoard ``TensorProto`` that declares exactly one element,
    else ``None``, decided before anything is decoded.

    ``make_ndarray`` materialises the declared shape, repeating a single stored value
    to fill it: a 262-byte event declaring ``[2**28]`` floats would take a GiB.  An
    epoch metric is one number, so a tensor declaring any other element count, or
    storing more bytes than one value takes, is skipped unread."""
    if any(d.size != 1 for d in proto.tensor_shape.dim):
        return None
    if len(proto.tensor_content) > MAX_SCALAR_BYTES or len(proto.string_val) > 1:
        return None
    return _scalar(make_ndarray(proto))


def _scalar(arr: Any) -> float | None:
    import numpy as np

    a = np.asarray(arr)
    if a.size != 1 or a.dtype.kind not in "fiub":
        return None
    return float(a.reshape(()))

