"""Helpers for the lint tests: load a saved model as ``inspector lint`` does, lint it, pick findings.

Keras models are saved with ``helpers.keras_models.keras_file`` and ONNX models with
``helpers.onnx_models.onnx_file``; every test goes through ``inspector.loaders.load``
on the saved file, exactly as ``inspector lint`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable


def load_graph(path: Path):
    """``inspector.loaders.load(path)`` with ``graph.path`` set to the path as given."""
    from inspector.loaders import load

    graph = load(path)
    graph.path = str(path)
    return graph


def lint_path(path: Path, **kwargs: Any):
    from inspector.rules import lint

    return lint(load_graph(path), **kwargs)


def hits(findings: Iterable, code: str) -> list:
    """The findings with ``code``."""
    return [f for f in findings if f.code == code]


def problems(findings: Iterable) -> list:
    """Findings at warning or error level."""
    return [f for f in findings if f.severity.value in ("warning", "error")]
