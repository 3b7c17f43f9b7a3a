"""Wording shared by the HTML and Markdown reports (so neither imports the other)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .. import __version__

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.report import ReportData

SEVERITIES = ("error", "warning", "info")
"""Finding severities in the order the reports list them."""


def written_by(data: ReportData) -> str:
    """The closing line: what the report was made from."""
    sources = ["the model file, without running it" if data.probe is None else "the model file"]
    if data.probe is not None:
        sources.append("one run of the model on a probe batch")
    if data.history is not None:
        sources.append("the training log")
    what = sources[0] if len(sources) == 1 else ", ".join(sources[:-1]) + " and " + sources[-1]
    return f"Written by inspector {__version__} from {what}."


def epochs_text(epochs: Sequence[int]) -> str:
    """How many epochs a training log holds and which: ``12 (epoch 1 to 12)``."""
    if not epochs:
        return "none"
    return f"{len(epochs)} (epoch {epochs[0]} to {epochs[-1]})" if len(epochs) > 1 else f"1 (epoch {epochs[0]})"
