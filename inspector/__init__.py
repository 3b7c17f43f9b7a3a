"""inspector: open saved deep-learning models statically, summarize and lint them.

Public API (:mod:`inspector.api`; README, "Python API")::

    import inspector
    graph = inspector.load("model.keras")        # ModelGraph, nothing executed
    print(inspector.summarize(graph))             # the classic Keras listing
    report = inspector.count_params(graph)        # exact parameter totals
    result = inspector.lint("model.keras", select=["INIT", "BN"])   # LintResult: .findings, .to_dict()
    inspector.summary(keras_model).to_dict()      # in-memory keras.Model / onnx.ModelProto too
    inspector.count_macs("model.onnx").total
    inspector.write_report("model.keras", "report.html")

Heavy frameworks (tensorflow, onnxruntime, matplotlib) are imported only by the
functions that need them, never here; :mod:`inspector.api` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"  # the one home of the version: pyproject.toml reads it (setuptools dynamic)

from .analysis.params import ParamCount, ParamReport, count_params
from .errors import InspectorError, ModelLoadError, UnsafeModel, UnsupportedFormat
from .ir import Inbound, Layer, ModelGraph, Weight

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from .api import LintResult, ModelSummary, Source, count_macs, lint, load, summary, write_report
    from .findings import Finding, Severity
    from .reporters.summary import SummaryOptions


def summarize(source: Source, *, fmt: str = "classic", **options: Unpack[SummaryOptions]) -> str:
    """Format the summary of ``source`` (a path, a graph, a ``keras.Model`` or an ``onnx.ModelProto``)
    as ``classic``, ``json``, ``csv`` or a tabulate format; ``options`` are
    :class:`inspector.reporters.summary.SummaryOptions`.  :func:`summary` returns the data instead."""
    from .api import opened
    from .reporters.summary import render

    with opened(source) as graph:
        return render(graph, fmt=fmt, **options)


__all__ = [
    "Inbound", "InspectorError", "Layer", "ModelGraph", "ModelLoadError", "ParamCount",
    "ParamReport", "UnsafeModel", "UnsupportedFormat", "Weight", "count_params", "load",
    "summarize",
    "Finding", "Severity", "lint", "summary", "count_macs", "write_report", "LintResult", "ModelSummary",
]

_API = frozenset({"load", "lint", "summary", "count_macs", "write_report", "LintResult", "ModelSummary"})


def __getattr__(name: str) -> object:
    """The functions and results of :mod:`inspector.api`, ``Finding`` and ``Severity`` (from
    :mod:`inspector.findings`), imported on first use so ``import inspector`` stays fast."""
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in ("Finding", "Severity"):
        from . import findings

        return getattr(findings, name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
