"""The rule catalog (``inspector rules``) as a table or JSON, and one rule's page (``inspector rule``)."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence

from ..rules.registry import Rule

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str, *, code: str = "") -> str:
    """``text`` with reStructuredText inline markup undone, for a terminal.

    Inline literals (````Normalization````) and roles (``:class:`~a.b.Context```` → ``Context``)
    lose their markup; ``code`` (``""`` or a backtick) is put around them instead.
    Fenced code blocks (```` ``` ````) are left alone."""
    parts = re.split(r"(^```.*?^```)", text, flags=re.M | re.S)

    def role(m: re.Match[str]) -> str:
        return code + m.group(1).rsplit(".", 1)[-1] + code if "~" in m.group(0) else code + m.group(1) + code

    for i in range(0, len(parts), 2):  # even parts lie outside fences
        parts[i] = _LITERAL.sub(lambda m: code + m.group(1) + code, _ROLE.sub(role, parts[i]))
    return "".join(parts)


def _text(rules: Sequence[Rule]) -> str:
    width = max((len(r.code) for r in rules), default=4)
    nwidth = max((len(r.name) for r in rules), default=4)
    lines = [f"{'CODE':<{width}}  {'NAME':<{nwidth}}  {'SEVERITY':<8}  SUMMARY"]
    for r in rules:
        lines.append(f"{r.code:<{width}}  {r.name:<{nwidth}}  {r.severity.value:<8}  {plain_text(r.summary)}")
    lines.append("")
    lines.append(f"{len(rules)} rules. `inspector rule CODE` shows what a rule checks and why.")
    return "\n".join(lines) + "\n"


def _fields(r: Rule) -> dict[str, Any]:
    return {"code": r.code, "name": r.name, "severity": r.severity.value, "family": r.family,
            "applies_to": sorted(r.types) if r.types is not None else None,
            "formats": list(r.formats), "needs": sorted(r.needs), "states": list(r.states),
            "options": dict(r.options), "summary": r.summary}


def _json(rules: Sequence[Rule]) -> str:
    return json.dumps([_fields(r) for r in rules], indent=2) + "\n"


RENDERERS: dict[str, Callable[[Sequence[Rule]], str]] = {"text": _text, "json": _json}
FORMATS: tuple[str, ...] = tuple(RENDERERS)


def render(rules: Sequence[Rule], *, fmt: str = "text") -> str:
    """The catalog of ``rules`` as ``fmt`` (one of :data:`FORMATS`)."""
    return RENDERERS[fmt](rules)


def rule_page(r: Rule) -> str:
    """What ``inspector rule CODE`` prints: severity, scope, options, then the documentation."""
    lines = [f"{r.code} ({r.name})", "",
             f"Default severity: {r.severity.value}",
             f"Applies to: {r.applies_to()}"]
    if r.options:
        opts = ", ".join(f"{k} = {v!r}" for k, v in r.options.items())
        lines.append(f"Options ([tool.inspector.rules.{r.code}]): {opts}")
    lines += ["", plain_text(r.doc, code="`"), ""]
    return "\n".join(lines)


def _json_page(r: Rule) -> str:
    return json.dumps({**_fields(r), "doc": r.doc}, indent=2) + "\n"


PAGE_FORMATS: dict[str, Callable[[Rule], str]] = {"text": rule_page, "json": _json_page}
"""``inspector rule`` formats by name: the page people read, or its fields for tooling."""
