"""``inspector diff`` as text: totals, then layer changes, then findings (ruff-like, diffable)."""

from __future__ import annotations

from ..analysis.diff import Delta, LayerFacts, ModelDiff, Pair
from ..shapetext import format_output
from ..units import number, relative_change, signed


def percent(d: Delta) -> str:
    """The relative change of a total, `` (+12.5%)`` ("" when it has none)."""
    return relative_change(d.before, d.after)


LABELS = {"layers": "Layers", "params": "Params", "trainable": "Trainable", "non_trainable": "Non-trainable",
          "bytes": "Weight bytes", "macs": "MACs"}


def facts_line(f: LayerFacts) -> str:
    shape = format_output(list(f.shapes))
    return f"{f.name} ({f.type}) {shape}, {f.params:,} params"


def pair_changes(p: Pair) -> str:
    parts = []
    for c in p.changes:
        if c.what == "config":
            parts.append(f"config {c.before} → {c.after.split(': ', 1)[-1]}")
        else:
            parts.append(f"{c.what} {c.before} → {c.after}")
    return "; ".join(parts)


def pair_name(p: Pair) -> str:
    if p.a.name == p.b.name:
        return f"{p.a.name} ({p.a.type})" if p.a.type == p.b.type else p.a.name
    return f"{p.a.name} → {p.b.name} (matched by {p.how})"


def summary_line(d: ModelDiff) -> str:
    unchanged = len(d.pairs) - len(d.changed)
    return (f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, {unchanged} unchanged"
            + (f" ({d.plumbing[0]} + {d.plumbing[1]} parameter-free export plumbing layers not matched)"
               if any(d.plumbing) else ""))


def render(d: ModelDiff, *, kinds: tuple[str, ...] = ()) -> str:
    lines = [f"A: {d.a.path or d.a.name} ({d.a.format}, {d.a.layers} layers)",
             f"B: {d.b.path or d.b.name} ({d.b.format}, {d.b.layers} layers)", ""]
    rows = [("", "A", "B", "change")]
    for t in d.totals:
        rows.append((LABELS.get(t.what, t.what), number(t.before),
                     number(t.after), signed(t.change) + percent(t)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip())
    lines += ["", f"Layers: {summary_line(d)}"]
    for f in d.added:
        lines.append(f"  + {facts_line(f)}")
    for f in d.removed:
        lines.append(f"  - {facts_line(f)}")
    for p in d.changed:
        lines.append(f"  ~ {pair_name(p)}: {pair_changes(p)}")
    renamed = [p for p in d.pairs if not p.changes and p.a.name != p.b.name]
    if renamed and not d.cross_format:
        lines.append(f"  = {len(renamed)} layer(s) unchanged under another name: "
                     + ", ".join(f"{p.a.name} → {p.b.name}" for p in renamed[:8])
                     + (", …" if len(renamed) > 8 else ""))
    if d.io:
        lines += ["", "Model inputs/outputs:"]
        lines += [f"  ~ {c.what}: {c.before} → {c.after}" for c in d.io]
    if d.findings_compared:
        lines += ["", f"Findings: {len(d.new_findings)} new, {len(d.fixed_findings)} fixed, "
                        f"{d.unchanged_findings} unchanged"]
        for f in d.new_findings:
            lines.append(f"  new   {f.code} [{f.severity}] {f.layer or '(model)'}: {f.message}")
        for f in d.fixed_findings:
            lines.append(f"  fixed {f.code} [{f.severity}] {f.layer or '(model)'}: {f.message}")
    for note in d.notes:
        lines += ["", f"Note: {note}"]
    lines += ["", "Changed: " + (", ".join(kinds) if kinds else "nothing that --fail-on-change gates on")]
    return "\n".join(lines) + "\n"
