"""Diagnosing training curves: the facts the ``HIST`` rules report about a :class:`History`.

Every diagnosis is robust to single-epoch noise: curves are smoothed with a
3-epoch running median before minima are taken, a change must exceed both a
relative margin and a multiple of the curve's own noise (estimated robustly from
second differences), and a problem must persist over a window of epochs.
Accuracy-like metrics (higher is better, values in 0..1 or 0..100) are turned
into error rates (``1 - accuracy``) so one "lower is better" logic serves all.
The logs themselves are read by :mod:`inspector.analysis.history_logs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

from .history_logs import History, base_name, direction, is_validation

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
        for n, v in zip(names, vals, strict=True):  # one value per name
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
        tnoise = _train_noise(cols[train], relative=relative) if train else None
        floor = min_swing if relative else (min_accuracy_swing * scale if scale else None)
        events, threshold_seen = _excursions(v, relative=relative, floor=floor, min_swing=min_swing,
                                             noise_floor=noise_ratio * (tnoise or 0.0))
        if len(events) >= min_swings:
            found.append(Instability(metric=val, start_epoch=epochs[events[0][0]], swings=len(events),
                                     largest=max(a for _, a in events), threshold=threshold_seen,
                                     train_noise=tnoise, epochs=tuple(epochs[i] for i, _ in events),
                                     relative=relative))
    if not found:
        return None
    return replace(found[0], also=tuple(f.metric for f in found[1:]))


def _train_noise(t: list[float], *, relative: bool) -> float:
    """The training curve's epoch-to-epoch noise on the scale the validation curve is
    judged on: relative to its level when ``relative``, else in the metric's units."""
    if relative and all(x > 0 for x in t):
        return noise([math.log(x) for x in t])  # losses: noise relative to the level
    if relative:
        return noise(t) / max(abs(sorted(t)[len(t) // 2]), 1e-12)
    return noise(t)


def _excursions(v: list[float], *, relative: bool, floor: float | None, min_swing: float,
                noise_floor: float) -> tuple[list[tuple[int, float]], float]:
    """``(index, size)`` of each excursion of ``v`` from its running median, adjacent
    outlying epochs on the same side counted once, and the largest threshold used.

    The threshold at an epoch is the larger of ``noise_floor`` and ``floor`` (a fixed
    relative or accuracy swing), or of ``noise_floor`` and ``min_swing`` × the level
    when ``floor`` is None (an unbounded curve judged in its units)."""
    events: list[tuple[int, float]] = []
    last_i, last_sign = -10, 0
    threshold_seen = 0.0
    for i, level in enumerate(running_median(v)):
        if level is None:
            continue
        r = (v[i] - level) / level if relative else v[i] - level
        th = max(floor if floor is not None else min_swing * abs(level), noise_floor)
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
    return events, threshold_seen


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
            # finite_prefix fills every column in step: t and v have the same length
            gaps = [(ti - vi) / abs(ti) if ti else 0.0 for ti, vi in zip(t, v, strict=True)]
            limit, relative = min_gap, True
        else:
            scale = bounded(t + v)
            if scale is None:
                continue
            gaps = [(vi - ti) / scale for ti, vi in zip(t, v, strict=True)]
            limit, relative = min_accuracy_gap, False
        better = [i for i, g in enumerate(gaps) if g > limit]
        if len(better) >= max(min_epochs, math.ceil(min_share * len(gaps))):
            return ValidationBetter(train=train, val=val, start_epoch=eps[better[0]],
                                    epochs_better=len(better), epochs_compared=len(gaps),
                                    mean_gap=sum(gaps) / len(gaps), relative=relative)
    return None
