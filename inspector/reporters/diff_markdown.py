"""``inspector diff --format markdown``: a pull-request comment about a model change."""

from __future__ import annotations

from ..analysis.diff import ModelDiff
from ..shapetext import format_output
from ..units import number, signed
from .diff_text import LABELS, pair_changes, percent, summary_line
from .markdown import _table, md_code, md_text

MAX_ROWS = 200


def render(d: ModelDiff, *, kinds: tuple[str, ...] = ()) -> str:
    before, after = md_code(d.a.path or d.a.name, table=False), md_code(d.b.path or d.b.name, table=False)
    out = [f"## Model diff: {before} → {after}", ""]
    rows = []
    for t in d.totals:
        rows.append((LABELS.get(t.what, t.what), number(t.before),
                     number(t.after),
                     f"**{signed(t.change)}**{percent(t)}" if t.changed else "0"))
    out += _table(["", "A", "B", "Change"], rows, "lrrr") + [""]
    out += [f"**Layers:** {md_text(summary_line(d))}", ""]
    lrows = []
    for f in d.added[:MAX_ROWS]:
        lrows.append(("added", "", md_code(f.name), md_code(f.type), md_code(format_output(list(f.shapes))),
                      f"{f.params:,}"))
    for f in d.removed[:MAX_ROWS]:
        lrows.append(("removed", md_code(f.name), "", md_code(f.type), md_code(format_output(list(f.shapes))),
                      f"{f.params:,}"))
    if lrows:
        out += _table(["", "A", "B", "Type", "Output shape", "Params"], lrows, "lllllr") + [""]
    crows = []
    for p in d.changed[:MAX_ROWS]:
        crows.append((md_code(p.a.name), md_code(p.b.name), md_text(p.how), md_text(pair_changes(p))))
    if crows:
        out += ["Changed layers:", ""]
        out += _table(["A", "B", "Matched by", "Changes"], crows) + [""]
    if len(d.added) > MAX_ROWS or len(d.removed) > MAX_ROWS or len(d.changed) > MAX_ROWS:
        out += ["*Long lists are cut at 200 rows; `inspector diff --format json` has them all.*", ""]
    if d.io:
        out += _table(["Model", "A", "B"], [(c.what, md_code(c.before), md_code(c.after)) for c in d.io]) + [""]
    if d.findings_compared:
        out += [f"**Findings:** {len(d.new_findings)} new, {len(d.fixed_findings)} fixed, "
                f"{d.unchanged_findings} unchanged", ""]
        frows = [("new", f"`{f.code}`", md_text(f.severity), md_code(f.layer) if f.layer else "*model*",
                  md_text(f.message)) for f in d.new_findings]
        frows += [("fixed", f"`{f.code}`", md_text(f.severity), md_code(f.layer) if f.layer else "*model*",
                   md_text(f.message)) for f in d.fixed_findings]
        if frows:
            out += _table(["", "Rule", "Severity", "Layer", "Message"], frows) + [""]
    for note in d.notes:
        out += [f"> {md_text(note)}", ""]
    out += ["Changed: " + (", ".join(f"**{k}**" for k in kinds) if kinds else "nothing that `--fail-on-change` "
                                                                               "gates on"), ""]
    return "\n".join(out)
