"""GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per
finding, shown as annotations on the pull request."""

from __future__ import annotations

from typing import Sequence

from ..findings import ModelReport

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(reports: Sequence[ModelReport]) -> str:
    lines = []
    for r in reports:
        if r.error is not None:
            lines.append(f"::error file={_prop(r.path)},title=inspector::{_data('cannot lint: ' + r.error)}")
        for f in r.findings:
            where = f"{f.layer}: " if f.layer else ""
            lines.append(f"::{_LEVEL[f.severity.value]} file={_prop(r.path)},title={_prop(f.code + ' ' + f.name)}"
                         f"::{_data(where + f.message)}")
    return "\n".join(lines) + ("\n" if lines else "")
