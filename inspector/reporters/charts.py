"""Charts for the human reports, drawn with matplotlib (the ``report`` extra).

Every function takes already-aggregated numbers (from
:mod:`inspector.analysis.report`, the probe or the history analyser) and returns
a :class:`Chart`: SVG text (inlined by the HTML report) or PNG bytes (written
beside a Markdown report).  matplotlib is imported inside :func:`_mpl` only, with
the non-interactive Agg backend and without pyplot (no global figure state, no
GUI, faster import).

Output is deterministic: SVG ids are hashed with a fixed salt and carry no date,
so the same model gives byte-identical charts.  Text is drawn as paths (no font
is needed by whoever opens the file, and no label from a hostile model file ends
up as markup); math-text parsing is off, so a ``$`` in a layer name is just a
dollar sign.  Labels are stripped of control characters and shortened.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import MissingDependency
from ..units import compact_count, count_text, percent

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.typing import RcKeyType

    from ..analysis.report import LayerShare, OtherShare, ReportData, TypeShare, WeightHistogram

# One palette for every chart (colour-blind safe: Okabe–Ito inspired).
BLUE = "#3b6fb6"
ORANGE = "#e08a2c"
GREEN = "#3a9b6b"
RED = "#c8433a"
PURPLE = "#7b5ea7"
GREY = "#a9b0bb"
INK = "#25303b"
MUTED = "#6b7683"
GRID = "#e6e9ee"

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "inspector",
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 8,
    "axes.edgecolor": "#c5ccd5",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "xtick.color": MUTED,
    "ytick.color": INK,
    "text.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.image_inline": True,
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Chart:
    """One rendered chart."""

    key: str
    """Stable identifier (``params-by-layer``): HTML id, image file stem."""
    title: str
    alt: str
    """A sentence describing the chart for readers who cannot see it."""
    data: bytes
    fmt: str
    """``svg`` or ``png``."""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def available() -> bool:
    """Whether matplotlib can be imported (charts are optional)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _mpl() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency("drawing charts", extra="report", package="matplotlib") from None
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return matplotlib, Figure


def label(text: str, limit: int = 34) -> str:
    """A chart label: no control characters, at most ``limit`` characters (middle elided)."""
    flat = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(text)) or "(empty)"
    if len(flat) <= limit:
        return flat
    keep = limit - 1
    return flat[: keep - keep // 3] + "…" + flat[-(keep // 3):]


def _save(fig: Any, key: str, title: str, alt: str, fmt: str) -> Chart:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.08)
        else:
            fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight", pad_inches=0.1)
    fig.clear()
    return Chart(key, title, alt, buf.getvalue(), fmt)


WIDTH = 10.0
"""Figure width in inches: at 96 px per inch the HTML page shows charts at their
natural size, and 1,000-pixel PNGs read well in a pull-request comment."""


def _figure(width: float, height: float) -> Any:
    width = WIDTH * width / 7.6  # the layouts below are written for a 7.6-inch figure
    matplotlib, Figure = _mpl()
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height))
    return fig


def _style(ax: Any, *, axis: str = "x") -> None:
    ax.set_axisbelow(True)
    ax.grid(axis=axis, color=GRID, linewidth=0.8)
    ax.tick_params(length=0, pad=4)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#c5ccd5")


def _count_fmt(value: float, _pos: Any = None) -> str:
    """Axis ticks (a matplotlib formatter): short (``250K``, ``1.5M``, ``4G``)."""
    return compact_count(value)


def floats(values: Iterable[int | float]) -> list[float]:
    """Counts as floats for matplotlib, which cannot take Python integers past 64 bits (a file
    can declare dims of 2^40 × 2^40); beyond float range they are capped."""
    return [float(v) if abs(v) < 1e300 else (1e300 if v > 0 else -1e300) for v in values]


def _pct(part: int | float, whole: int | float) -> str:
    return percent(part, whole, floor=0.1, cap=True)


# -- by layer ---------------------------------------------------------------------------------


def _layer_bars(rows: Sequence[LayerShare], other: OtherShare | None, *, key: str, total: int,
                title: str, what: str, fmt: str, chart_key: str) -> Chart:
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        labels = [f"{label(r.name, 30)}  ·  {label(r.type, 18)}" for r in rows]
        if key == "params":
            first = floats(r.trainable for r in rows)
            second = floats(r.params - r.trainable for r in rows)
            values = [r.params for r in rows]
        else:
            values = [int(r.macs or 0) for r in rows]
            first = floats(values)
            second = [0.0 for _ in rows]
        colors = [BLUE if key == "params" else GREEN] * len(rows)
        n = len(labels)
        fig = _figure(7.6, 0.9 + 0.26 * max(n, 1))
        ax = fig.add_subplot()
        y = list(range(n))
        ax.barh(y, first, color=colors, height=0.68, label="trainable" if key == "params" else what)
        if any(second):
            ax.barh(y, second, left=first, color=ORANGE, height=0.68, label="non-trainable")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_fmt))
        peak = max(floats(values)) if values else 1.0
        for yi, v, fv in zip(y, values, floats(values), strict=True):
            ax.text(fv + peak * 0.01, yi, f"{count_text(v)}  {_pct(v, total)}", va="center", ha="left",
                    fontsize=7.5, color=MUTED)
        ax.set_xlim(0, peak * 1.22 if peak else 1)
        if other is not None:
            rest = other.params if key == "params" else other.macs
            ax.set_title(f"{title}\n", linespacing=1.6)
            ax.text(0.0, 1.02, f"the other {other.layers} layers with {what} hold {count_text(rest)} "
                    f"({_pct(rest, total)})", transform=ax.transAxes, fontsize=7.8, color=MUTED, va="bottom")
        else:
            ax.set_title(title)
        _style(ax)
        if any(second):
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
        shown = ", ".join(f"{r.name} ({count_text(v)})" for r, v in zip(rows[:3], values[:3], strict=True))
        alt = f"Horizontal bars: the {len(rows)} layers with the most {what}; largest: {shown}."
        return _save(fig, chart_key, title, alt, fmt)


def params_by_layer(data: ReportData, *, fmt: str = "svg") -> Chart | None:
    if not data.top_params:
        return None
    n = len(data.top_params)
    return _layer_bars(data.top_params, data.other_params, key="params", total=data.summary.totals.params,
                       title=f"Parameters by layer (top {n})", what="parameters", fmt=fmt,
                       chart_key="params-by-layer")


def macs_by_layer(data: ReportData, *, fmt: str = "svg") -> Chart | None:
    if not data.top_macs:
        return None
    n = len(data.top_macs)
    total = data.summary.macs_total or sum(int(r.macs or 0) for r in data.top_macs)
    return _layer_bars(data.top_macs, data.other_macs, key="macs", total=total,
                       title=f"MACs by layer (top {n})", what="MACs", fmt=fmt, chart_key="macs-by-layer")


# -- by type ------------------------------------------------------------------------------------


def by_type(data: ReportData, *, fmt: str = "svg", top: int = 12) -> Chart | None:
    rows: list[TypeShare] = [t for t in data.by_type if t.params or t.macs]
    if not rows:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        head, tail = rows[:top], rows[top:]
        labels = [f"{label(t.type, 24)} ×{t.count}" for t in head]
        params = floats(t.params for t in head)
        train = floats(t.trainable for t in head)
        macs = floats(t.macs for t in head)
        colors_p, colors_m = [BLUE] * len(head), [GREEN] * len(head)
        if tail:
            labels.append(f"{len(tail)} other types")
            params += floats([sum(t.params for t in tail)])
            train += floats([sum(t.trainable for t in tail)])
            macs += floats([sum(t.macs for t in tail)])
            colors_p.append(GREY)
            colors_m.append(GREY)
        n = len(labels)
        fig = _figure(7.6, 0.95 + 0.27 * n)
        ax1, ax2 = fig.subplots(1, 2, sharey=True)
        y = list(range(n))
        ax1.barh(y, train, color=colors_p, height=0.68, label="trainable")
        nt = [p - t for p, t in zip(params, train, strict=True)]
        if any(nt):
            ax1.barh(y, nt, left=train, color=ORANGE, height=0.68, label="non-trainable")
        ax2.barh(y, macs, color=colors_m, height=0.68)
        ax1.set_yticks(y, labels)
        ax1.invert_yaxis()
        total_p = data.summary.totals.params
        total_m = sum(macs)
        for ax, vals, total, title in ((ax1, params, total_p, "Parameters by layer type"),
                                       (ax2, macs, total_m, "MACs by layer type")):
            peak = max(vals) if vals and max(vals) > 0 else 1
            for yi, v in zip(y, vals, strict=True):
                if v:
                    ax.text(v + peak * 0.02, yi, _pct(v, total), va="center", fontsize=7.5, color=MUTED)
            ax.set_xlim(0, peak * 1.25)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_fmt))
            ax.set_title(title)
            _style(ax)
        ax2.tick_params(axis="y", left=False)
        if not any(macs):
            ax2.text(0.5, 0.5, "no MACs counted", transform=ax2.transAxes, ha="center", color=MUTED)
        alt = ("Two bar charts, parameters and MACs summed per layer type; largest: "
               + ", ".join(f"{t.type} ({count_text(t.params)} params)" for t in head[:3]) + ".")
        return _save(fig, "by-type", "Parameters and MACs by layer type", alt, fmt)


# -- split -------------------------------------------------------------------------------------------


def split(data: ReportData, *, fmt: str = "svg") -> Chart | None:
    """Two donuts: trainable vs non-trainable parameters, and parameter memory by dtype."""
    totals = data.summary.totals
    if totals.params <= 0:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        fig = _figure(7.6, 2.3)
        ax1, ax2 = fig.subplots(1, 2)
        parts = [(totals.trainable, "trainable", BLUE), (totals.non_trainable, "non-trainable", ORANGE)]
        parts = [p for p in parts if p[0] > 0]
        wedge = {"width": 0.36, "edgecolor": "white", "linewidth": 1.5}
        ax1.pie(floats(p[0] for p in parts), colors=[p[2] for p in parts], startangle=90, counterclock=False,
                wedgeprops=wedge)
        ax1.text(0, 0.08, count_text(totals.params), ha="center", va="center", fontsize=11, weight="bold")
        ax1.text(0, -0.16, "parameters", ha="center", va="center", fontsize=7.5, color=MUTED)
        ax1.legend([f"{name}: {count_text(v)} ({_pct(v, totals.params)})" for v, name, _ in parts],
                   loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=1)
        ax1.set_title("Trainable vs non-trainable", loc="center")
        dtypes = [(d, n, b) for d, n, b in data.summary.bytes_by_dtype if b > 0] or \
                 [(d, n, b) for d, n, b in data.summary.bytes_by_dtype]
        palette = [PURPLE, GREEN, BLUE, ORANGE, RED, GREY]
        total_bytes = sum(b for _, _, b in dtypes)
        if dtypes and total_bytes > 0:
            ax2.pie(floats(b for _, _, b in dtypes), colors=palette[: len(dtypes)] + [GREY] * (len(dtypes) - 6),
                    startangle=90, counterclock=False, wedgeprops=wedge)
            from ..units import readable_size

            ax2.text(0, 0.08, readable_size(total_bytes), ha="center", va="center", fontsize=11,
                     weight="bold")
            ax2.text(0, -0.16, "of weights", ha="center", va="center", fontsize=7.5, color=MUTED)
            ax2.legend([f"{label(d, 16)}: {readable_size(b)} ({_pct(b, total_bytes)})" for d, _, b in dtypes],
                       loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=1 if len(dtypes) < 3 else 2)
        else:
            ax2.axis("off")
        ax2.set_title("Memory by dtype", loc="center")
        for ax in (ax1, ax2):
            ax.set_aspect("equal")
        alt = (f"Donut charts: {count_text(totals.trainable)} trainable and {count_text(totals.non_trainable)} "
               f"non-trainable parameters; weight memory by dtype.")
        return _save(fig, "split", "Trainable vs non-trainable, memory by dtype", alt, fmt)


# -- along the network ---------------------------------------------------------------------------------


PROFILE_BARS = 1000
"""At most this many bars in the profile (more than its width in pixels): beyond, each bar is the largest layer of
a run of consecutive layers, so a 162,000-layer graph draws 1,000 steps instead of an 8 MB path nobody can see."""


def _peaks(values: list[float], bars: int) -> tuple[list[float], list[float], int]:
    """``values`` (one per layer) as at most ``bars`` bars: their heights, their edges in layer-index units, and
    how many consecutive layers each covers (the last may cover fewer); each bar the largest value it covers."""
    n = len(values)
    step = max(1, math.ceil(n / bars))
    if step == 1:
        return values, [i - 0.5 for i in range(n + 1)], 1
    starts = range(0, n, step)
    return [max(values[a:a + step]) for a in starts], [a - 0.5 for a in starts] + [n - 0.5], step


def profile(data: ReportData, *, fmt: str = "svg") -> Chart | None:
    """Parameters and MACs of every layer in graph order: where in depth the model
    keeps its weights and spends its compute (TensorBoard's per-op profile, flattened)."""
    rows = data.summary.rows
    if len(rows) < 2 or data.summary.totals.params <= 0:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        params = floats(r.params.params for r in rows)
        macs = floats(int(r.macs or 0) for r in rows)
        has_macs = any(macs)
        fig = _figure(7.6, 3.0 if has_macs else 1.9)
        axes = fig.subplots(2 if has_macs else 1, 1, sharex=True, squeeze=False)[:, 0]
        heights, edges, step = _peaks(params, PROFILE_BARS)
        # One polygon per panel (stairs), not one patch per layer: fast for big models.
        axes[0].stairs(heights, edges, fill=True, color=BLUE, linewidth=0)
        axes[0].set_ylabel("params")
        axes[0].set_title("Parameters and MACs along the network (layers in graph order)")
        if has_macs:
            axes[1].stairs(_peaks(macs, PROFILE_BARS)[0], edges, fill=True, color=GREEN, linewidth=0)
            axes[1].set_ylabel("MACs")
        for ax in axes:
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_fmt))
            _style(ax, axis="y")
            ax.tick_params(axis="y", labelsize=7.5, colors=MUTED)
            ax.set_xlim(-1, len(rows))
        axes[-1].set_xlabel("layer index")
        # Name the single largest layer of each panel.
        for ax, vals in zip(axes, (params, macs), strict=False):  # no MACs panel: params only
            if not any(vals):
                continue
            i = max(range(len(vals)), key=lambda k: (vals[k], -k))
            ax.annotate(label(rows[i].name, 28), (i, vals[i]), xytext=(0, 3), textcoords="offset points",
                        ha="center" if 0.1 < i / len(vals) < 0.9 else ("left" if i < len(vals) / 2 else "right"),
                        fontsize=7.5, color=MUTED)
            ax.set_ylim(0, max(vals) * 1.18)
        alt = f"Bar profile of parameters{' and MACs' if has_macs else ''} per layer over {len(rows)} layers" + (
            f"; each bar is the largest of {step} consecutive layers." if step > 1 else ".")
        return _save(fig, "profile", "Parameters and MACs along the network", alt, fmt)


# -- weights --------------------------------------------------------------------------------------------


def histograms(data: ReportData, *, fmt: str = "svg") -> Chart | None:
    hists: Sequence[WeightHistogram] = data.histograms
    if not hists:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        cols = min(len(hists), 3) if len(hists) != 4 else 2
        rows = math.ceil(len(hists) / cols)
        fig = _figure(7.6, 0.35 + 1.9 * rows)
        axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"hspace": 0.8, "wspace": 0.2})
        for k, ax in enumerate(axes.flat):
            if k >= len(hists):
                ax.axis("off")
                continue
            h = hists[k]
            constant = h.minimum == h.maximum
            # Red: a constant kernel (every unit alike) or non-finite values.
            alarm = h.nonfinite or (constant and h.role in ("kernel", "W", "w", "embeddings", "depthwise_kernel")
                                    and h.size > 1)
            ax.stairs(h.counts, h.edges, fill=True, color=RED if alarm else PURPLE, alpha=0.85)
            ax.set_title(label(h.layer, 30), fontsize=8.5)
            shape = "×".join(str(d) for d in h.shape) or "scalar"
            note = f"{label(h.role, 18)} {shape}\nμ {h.mean:.2g} · σ {h.std:.2g}"
            if constant:
                note += " · constant"
            if h.sampled < h.size:
                note += f" · {_count_fmt(h.sampled)} sampled"
            if h.nonfinite:
                note += f"\n{h.nonfinite:,} non-finite"
            ax.set_xlabel(note, fontsize=6.8, color=MUTED, labelpad=3, linespacing=1.4)
            peak = max(h.counts, default=0)
            ax.set_ylim(0, peak * 1.12 if peak else 1)
            _style(ax, axis="y")
            ax.tick_params(labelsize=6.8, colors=MUTED)
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.locator_params(axis="x", nbins=4)
        fig.subplots_adjust(left=0.02, right=0.98)
        fig.suptitle("Weight values of the largest layers", x=0.02, ha="left", fontsize=10, weight="bold")
        alt = "Histograms of the weight values of " + ", ".join(h.layer for h in hists) + "."
        return _save(fig, "weights", "Weight values of the largest layers", alt, fmt)


# -- dynamic analysis ------------------------------------------------------------------------------------


def share_bars(rows: Sequence[tuple[str, float | None, float | None]], *, fmt: str = "svg",
               key: str = "probe", title: str = "Saturated and dead units per activation layer",
               labels: tuple[str, str] = ("saturated units", "dead units")) -> Chart | None:
    """Grouped horizontal bars of two shares (0..1) per layer, e.g. the probe's
    saturation and dead-unit shares; ``None`` values are left out."""
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    if not rows:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        n = len(rows)
        fig = _figure(7.6, 0.95 + 0.3 * n)
        ax = fig.add_subplot()
        y = list(range(n))
        first = [r[1] if r[1] is not None else 0.0 for r in rows]
        second = [r[2] if r[2] is not None else 0.0 for r in rows]
        ax.barh([v - 0.18 for v in y], first, height=0.34, color=ORANGE, label=labels[0])
        ax.barh([v + 0.18 for v in y], second, height=0.34, color=RED, label=labels[1])
        ax.axvline(0.5, color=MUTED, linestyle=(0, (3, 3)), linewidth=0.8)
        ax.set_yticks(y, [label(r[0], 34) for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.0)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_title(title)
        ax.legend(loc="lower right", ncols=2)
        _style(ax)
        alt = f"Bars: {labels[0]} and {labels[1]} share of units for {n} layers (dashed line: 50%)."
        return _save(fig, key, title, alt, fmt)


def _train_name(name: str) -> str:
    """``loss`` for ``val_loss`` / ``validation_loss``; other names unchanged."""
    for prefix in ("val_", "validation_"):
        if name.lower().startswith(prefix):
            return name[len(prefix):]
    return name


def curves(series: Sequence[tuple[str, Sequence[float | None]]], *, epochs: Sequence[int] | None = None,
           onset: int | None = None, spikes: Sequence[int] = (), fmt: str = "svg",
           title: str = "Training curves", key: str = "history",
           marks: Sequence[tuple[int, str]] = ()) -> Chart | None:
    """Training curves: one panel for losses and one for every other metric; the
    overfitting onset as a shaded region from ``onset`` on, ``spikes`` as markers
    on the validation curves, ``marks`` as labelled vertical lines."""
    series = [(name, list(vals)) for name, vals in series if any(v is not None for v in vals)]
    if not series:
        return None
    matplotlib, _ = _mpl()
    with matplotlib.rc_context(_RC):
        losses = [s for s in series if "loss" in s[0].lower()]
        others = [s for s in series if "loss" not in s[0].lower()]
        panels = [p for p in (losses, others) if p]
        fig = _figure(7.6, 2.7)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        longest = max(len(v) for _, v in series)
        xs = list(epochs) if epochs is not None and len(epochs) >= longest else list(range(1, longest + 1))
        palette = [BLUE, ORANGE, GREEN, PURPLE, RED, GREY]
        base_names = sorted({_train_name(n) for n, _ in series})
        color_of = {n: palette[i % len(palette)] for i, n in enumerate(base_names)}
        for ax, panel in zip(axes, panels, strict=True):
            for name, vals in panel:
                base = _train_name(name)
                val = base != name
                # A series may end early (xs spans the longest one).
                pts = [(x, v) for x, v in zip(xs, vals, strict=False) if v is not None and math.isfinite(v)]
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color_of[base],
                        linestyle="--" if val else "-", linewidth=1.6, label=label(name, 24))
                if val and spikes:
                    sp = [(x, v) for x, v in pts if x in set(spikes)]
                    if sp:
                        ax.plot([p[0] for p in sp], [p[1] for p in sp], linestyle="none", marker="o",
                                markersize=5, markerfacecolor="white", markeredgecolor=RED,
                                markeredgewidth=1.5)
            if onset is not None:
                ax.axvspan(onset, xs[-1], color=RED, alpha=0.07, linewidth=0)
                ax.axvline(onset, color=RED, linewidth=1.0, linestyle=(0, (4, 3)))
                ax.text(onset, 1.0, " overfitting", transform=ax.get_xaxis_transform(), color=RED,
                        fontsize=7.5, va="top")
            for x, text in marks:
                ax.axvline(x, color=MUTED, linewidth=0.8, linestyle=":")
                ax.text(x, 0.02, f" {label(text, 20)}", transform=ax.get_xaxis_transform(), color=MUTED,
                        fontsize=7)
            ax.set_xlabel("epoch")
            ax.set_title("Loss" if panel is losses else "Metrics")
            ax.margins(x=0.02)
            ax.legend(loc="best")
            _style(ax, axis="both")
        alt = (f"Line charts of {', '.join(n for n, _ in series)} per epoch"
               + (f"; overfitting from epoch {onset}" if onset is not None else "")
               + (f"; spikes at epochs {', '.join(str(s) for s in spikes)}" if spikes else "") + ".")
        return _save(fig, key, title, alt, fmt)


# -- everything -----------------------------------------------------------------------------------------


def model_charts(data: ReportData, *, fmt: str = "svg") -> list[Chart]:
    """The static charts of a report, in page order (absent ones left out)."""
    out = []
    for fn in (params_by_layer, macs_by_layer, by_type, split, profile, histograms):
        chart = fn(data, fmt=fmt)
        if chart is not None:
            out.append(chart)
    return out


def dynamic_charts(data: ReportData, *, fmt: str = "svg") -> list[Chart]:
    """Charts of the probe and the training history, when the report has them."""
    out = []
    if data.probe is not None:
        rows = [(r.layer, r.saturated_units, r.dead) for r in data.probe.rows]
        chart = share_bars(rows, fmt=fmt)
        if chart is not None:
            out.append(chart)
    if data.history is not None:
        h = data.history
        chart = curves(h.series, epochs=h.epochs, onset=h.onset, spikes=h.spikes, fmt=fmt,
                       marks=((h.best, "best"),) if h.best is not None else ())
        if chart is not None:
            out.append(chart)
    return out


_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(chart: Chart) -> str:
    """The chart's SVG ready to paste into HTML: no XML prolog, doctype or metadata
    (they name remote URLs), ids prefixed with the chart key so that several charts
    can share a page, scalable (``viewBox`` kept, fixed size dropped)."""
    svg = chart.text
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", chart.key) + "-"
    ids = set(_ID.findall(svg))
    if ids:
        svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
        svg = re.sub(r'(xlink:href|href)="#([^"]+)"',
                     lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"' if m.group(2) in ids else m.group(0), svg)
        svg = re.sub(r"url\(#([^)]+)\)",
                     lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids else m.group(0), svg)
    head_end = svg.find(">")
    head = svg[:head_end]
    head = head.replace("<svg", f'<svg class="chart-svg" role="img" aria-label="{_attr(chart.alt)}"', 1)
    return head + svg[head_end:]


def _attr(text: str) -> str:
    import html

    return html.escape(_CONTROL.sub(" ", text), quote=True)
