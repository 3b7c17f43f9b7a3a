"""Use case "probe a model": run a loaded model on one batch, with a progress line.

Callable from Python with plain values (:class:`ProbeOptions`); ``inspector
probe``, ``inspector lint --probe`` and ``inspector report --probe`` wire their
command lines to it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import MissingDependency, UnsafeModel
from .textsafe import visible

if TYPE_CHECKING:  # pragma: no cover
    from .analysis.probe import ProbeReport
    from .ir import ModelGraph
    from .rules.engine import Selection

PROBE_RULES = ("ACT003", "ACT004", "NUM005")
"""The rules that read probe measurements: ``lint --probe`` runs the model only for them."""


@dataclass(frozen=True)
class ProbeOptions:
    """The batch a probe feeds the model."""

    inputs: str | None = None
    """A ``.npy``/``.npz`` batch; ``None``: synthetic data."""
    batch_size: int = 8
    seed: int = 0
    trust: bool = False
    """Run the model even when the static safety scan found something."""


def run_probe(graph: ModelGraph, path: str, options: ProbeOptions) -> ProbeReport:
    """Probe one loaded model, with a progress line on stderr when it is a terminal."""
    from .analysis.probe import probe
    from .reporters.progress import ProgressLine

    with ProgressLine(f"probe {path}") as progress:
        return probe(graph, inputs=options.inputs, batch_size=options.batch_size, seed=options.seed,
                     trust=options.trust, progress=progress)


def probe_for_lint(graph: ModelGraph, path: str, options: ProbeOptions,
                   selection: Selection | None = None) -> ProbeReport | None:
    """``lint --probe``: the probe report for one model, or ``None`` when no probe
    rule is enabled or the static scan found a security problem (then the model is
    not run — the SEC findings say why — and a warning goes to stderr).  Without the
    framework that runs the model the probe is unavailable: one warning line names the
    extra to install and the static rules still run."""
    if selection is not None and not any(selection.is_enabled(code) for code in PROBE_RULES):
        return None
    try:
        return run_probe(graph, path, options)
    except UnsafeModel as exc:
        print(f"inspector: warning: {path}: probe skipped: {visible(str(exc))}", file=sys.stderr)
        return None
    except MissingDependency as exc:
        print(f"inspector: warning: {path}: probe unavailable, static rules only: {visible(str(exc))}",
              file=sys.stderr)
        return None
