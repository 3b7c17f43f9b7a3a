"""Lint rules: the public :func:`lint` entry point.

The package is organised as:

- :mod:`~inspector.rules.registry`: the :func:`~inspector.rules.registry.rule` decorator,
  the catalog (``all_rules``, ``get_rule``) and family loading;
- :mod:`~inspector.rules.engine`: selection (``resolve``), the :class:`Context`
  a rule sees, :class:`Hit`, and the run loop;
- one family module per rule code prefix (``init``, ``activations``, ``batchnorm``,
  ``numerics`` …), each registering its rules when imported.

Results (``Finding``, ``Severity``, ``ModelReport``) live in :mod:`inspector.findings`.

    >>> from inspector import load, lint
    >>> for f in lint(load("model.keras")):
    ...     print(f.layer, f.code, f.message)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from .engine import resolve, run_rules
from .registry import STATES, all_rules

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.history_logs import History
    from ..analysis.probe import ProbeReport
    from ..analysis.state import StateReport
    from ..config import LintConfig
    from ..findings import Finding
    from ..ir import ModelGraph

__all__ = ["lint"]


def lint(graph: ModelGraph, *, config: LintConfig | None = None,
         select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
         probe: ProbeReport | None = None, history: History | None = None, debug: bool = False) -> list[Finding]:
    """Check ``graph`` and return its findings, sorted by graph order then code.

    Tensor values are read only if an enabled rule needs them, each tensor once,
    one at a time (:func:`inspector.analysis.weights.analyze`).  ``probe`` and
    ``history`` enable the rules that need activation measurements or a training
    log.
    """
    return lint_with_state(graph, config=config, select=select, ignore=ignore, probe=probe, history=history,
                           debug=debug)[0]


def lint_with_state(graph: ModelGraph, *, config: LintConfig | None = None,
                    select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                    probe: ProbeReport | None = None, history: History | None = None, debug: bool = False,
                    need_state: bool = False) -> tuple[list[Finding], StateReport | None]:
    """:func:`lint`, and the model state the rules used (``None`` when no rule needed the weights;
    ``need_state``: read them anyway, e.g. for ``inspector scan``)."""
    selection = resolve(config, select=select, ignore=ignore, path=graph.path)
    rules = [r for r in all_rules() if r.code in selection.enabled]
    weights = state = None
    if need_state or any("weights" in r.needs or set(r.states) != set(STATES) for r in rules):
        from ..analysis.state import infer_state
        from ..analysis.weights import analyze

        weights = analyze(graph)
        state = infer_state(graph, weights)
    findings = run_rules(graph, rules, selection=selection, weights=weights, state=state,
                         probe=probe, history=history, path=graph.path, debug=debug)
    return findings, state
