"""inspector: open saved deep-learning models statically, summarize and lint them.

Public API::

    import inspector
    graph = inspector.load("model.keras")        # ModelGraph, nothing executed
    print(inspector.summarize(graph))             # the classic Keras listing
    report = inspector.count_params(graph)        # exact parameter totals

Heavy frameworks (tensorflow, onnxruntime, matplotlib) are imported only by the
functions that need them, never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"  # the one home of the version: pyproject.toml reads it (setuptools dynamic)

from .analysis.params import ParamCount, ParamReport, count_params
from .errors import InspectorError, ModelLoadError, UnsafeModel, UnsupportedFormat
from .ir import Inbound, Layer, ModelGraph, Weight
from .loaders import load

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from .reporters.summary import SummaryOptions


def summarize(graph: ModelGraph, *, fmt: str = "classic", **options: Unpack[SummaryOptions]) -> str:
    """Format the summary of ``graph`` (``classic``, ``json``, ``csv`` or a tabulate format);
    ``options`` are :class:`inspector.reporters.summary.SummaryOptions`."""
    from .reporters.summary import render

    return render(graph, fmt=fmt, **options)


__all__ = [
    "Inbound", "InspectorError", "Layer", "ModelGraph", "ModelLoadError", "ParamCount",
    "ParamReport", "UnsafeModel", "UnsupportedFormat", "Weight", "count_params", "load",
    "summarize",
    "Finding", "Severity", "lint",
]


def __getattr__(name: str) -> object:
    """``lint`` (from :mod:`inspector.rules`), ``Finding`` and ``Severity`` (from
    :mod:`inspector.findings`), imported on first use so ``import inspector`` stays fast."""
    if name == "lint":
        from .rules import lint

        return lint
    if name in ("Finding", "Severity"):
        from . import findings

        return getattr(findings, name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
