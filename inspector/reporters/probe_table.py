"""``inspector probe`` output: the per-activation table, in every summary format.

``classic`` (the default) draws the table the way the Keras listing does
(``_`` and ``=`` rules, fixed columns sized to their content); ``json`` is the
``inspector.probe/1`` document; ``csv`` one row per activation; any other name
is a tabulate table format (``simple``, ``github``, ``grid`` …).  Shares print
as percentages, ``-`` where a measure does not apply (saturation for ReLU
layers, dead units for sigmoid layers).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Callable

from ..analysis.probe import ActivationStats, ProbeReport
from ..textsafe import csv_row, json_text, scrub
from ..units import fraction, short_float

SCHEMA = "inspector.probe/1"
COLUMNS = ("Layer", "Activation", "Units", "Mean", "Std", "Saturated", "Sat. units", "Dead units", "Non-finite")
RIGHT = frozenset(COLUMNS[2:])
SOURCES = {"normal": "standard normal", "pixels": "pixel values 0..255", "integers": "random indices",
           "file": "from the inputs file"}


def _share(x: float | None) -> str:
    return fraction(x, missing="-")


def _num(x: float | None) -> str:
    return short_float(x, missing="n/a", nan="n/a")


def _cells(s: ActivationStats) -> list[str]:
    same = s.type.lower() == s.activation.replace("_", "")
    return [s.layer, s.activation if same else f"{s.activation} ({s.type})",
            f"{s.units:,}" if s.units else "-", _num(s.mean), _num(s.std), _share(s.saturated),
            _share(s.saturated_units), _share(s.dead_units), f"{s.nonfinite:,}"]


def footer(report: ProbeReport) -> list[str]:
    lines = [f"Model: {report.model} ({report.format}), run with {report.framework}"]
    for i in report.inputs:
        shape = "(" + ", ".join(str(d) for d in i.shape) + ")"
        lines.append(f"Input {i.name}: {shape} {i.dtype}, {SOURCES.get(i.source, i.source)}")
    lines.append(f"Activations measured: {len(report.layers)} over {report.samples} sample(s) in "
                 f"{report.seconds:.2f} s")
    for out in report.outputs:
        if out.nonfinite:
            lines.append(f"Output {out.name}: {out.nonfinite:,} of {out.values:,} values are NaN/Inf")
    lines.extend(f"Note: {n}" for n in report.notes)
    return lines


def as_dict(report: ProbeReport) -> dict[str, Any]:
    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else x

    return {
        "schema": SCHEMA,
        "model": {"name": report.model, "format": report.format, "path": report.path},
        "framework": report.framework,
        "samples": report.samples,
        "seconds": round(report.seconds, 6),
        "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype, "source": i.source}
                   for i in report.inputs],
        "layers": [{"layer": s.layer, "type": s.type, "activation": s.activation, "family": s.family,
                    "units": s.units, "values": s.values, "calls": s.calls, "mean": num(s.mean),
                    "std": num(s.std), "nonfinite": s.nonfinite, "saturated": s.saturated,
                    "saturated_units": s.saturated_units, "dead_units": s.dead_units,
                    "region": list(s.region) if s.region else None} for s in report.layers],
        "outputs": [{"name": o.name, "layer": o.layer, "values": o.values, "nonfinite": o.nonfinite}
                    for o in report.outputs],
        "notes": list(report.notes),
    }


def _classic(rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        parts = [(c.rjust(w) if COLUMNS[i] in RIGHT else c.ljust(w))
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return " " + "  ".join(parts).rstrip()

    total = sum(widths) + 2 * (len(widths) - 1) + 1
    out = ["_" * total, line(COLUMNS), "=" * total]
    for i, r in enumerate(rows):
        out.append(line(r))
        if i < len(rows) - 1:
            out.append("_" * total)
    out.append("=" * total)
    return out


def _json(report: ProbeReport, fmt: str, compact: bool) -> str:
    return json_text(json.dumps(as_dict(report), indent=None if compact else 2, ensure_ascii=False)) + "\n"


def _csv(report: ProbeReport, fmt: str, compact: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["layer", "type", "activation", "family", "units", "values", "mean", "std", "saturated",
                "saturated_units", "dead_units", "nonfinite"])
    for s in report.layers:
        w.writerow(csv_row([s.layer, s.type, s.activation, s.family, s.units, s.values, s.mean, s.std,
                            "" if s.saturated is None else s.saturated,
                            "" if s.saturated_units is None else s.saturated_units,
                            "" if s.dead_units is None else s.dead_units, s.nonfinite]))
    return buf.getvalue()


def _table(report: ProbeReport, fmt: str, compact: bool) -> str:
    """The classic table, or a tabulate table format, with the footer."""
    rows = [_cells(s) for s in report.layers]
    if fmt == "classic":
        body = _classic(rows)
    else:
        from tabulate import tabulate

        body = [tabulate(rows, headers=list(COLUMNS), tablefmt=fmt, disable_numparse=True,
                         colalign=tuple("right" if c in RIGHT else "left" for c in COLUMNS))]
    if not rows:
        body.append("(no activation layer to measure)")
    return "\n".join(body + [""] + footer(report)) + "\n"


RENDERERS: dict[str, Callable[[ProbeReport, str, bool], str]] = {"json": _json, "csv": _csv, "classic": _table}
"""Formats of inspector's own; any other summary format name is a tabulate table (:func:`_table`)."""


BOX_DRAWN = {"keras3": "mixed_grid"}
"""Summary formats that are no tabulate format: the probe table draws them in a like style."""


def render(report: ProbeReport, *, fmt: str = "classic", compact: bool = False) -> str:
    """Format ``report`` as ``fmt`` (a name of :func:`inspector.reporters.summary.formats`)."""
    fmt = BOX_DRAWN.get(fmt, fmt)
    return RENDERERS.get(fmt, _table)(report if fmt == "json" else scrub(report), fmt, compact)
