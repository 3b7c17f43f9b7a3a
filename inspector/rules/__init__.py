"""Lint rules: the registry, the public :func:`lint` entry point, and the catalog.

Each family module in this package (``init``, ``activations``, ``batchnorm``,
``numerics``, ``normalization``, ``regularization``, ``graph``, ``model`` …)
registers its rules with :func:`~inspector.rules.engine.rule` when imported.
Every module of the package whose name does not start with ``_`` is imported on
first use, so a new family only has to be dropped in (``security.py``,
``probe.py``, ``history.py`` …).

    >>> from inspector import load, lint
    >>> for f in lint(load("model.keras")):
    ...     print(f.layer, f.code, f.message)
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import UsageError
from .engine import (REGISTRY, STATES, Context, Finding, Hit, ModelReport, Rule, RuleCrash, Selection, Severity,
                     rule, run_rules, select_rules)

if TYPE_CHECKING:  # pragma: no cover
    from ..config import LintConfig
    from ..ir import ModelGraph

__all__ = ["Context", "Finding", "Hit", "ModelReport", "Rule", "RuleCrash", "Selection", "Severity",
           "all_rules", "get_rule", "lint", "resolve", "rule"]

_INFRA = {"engine"}
_loaded = False


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _INFRA:
            continue
        importlib.import_module(f"{__name__}.{info.name}")


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code."""
    _load_families()
    return sorted(REGISTRY.values(), key=lambda r: (r.family, r.code))


def get_rule(code: str) -> Rule:
    """The rule with ``code`` (case-insensitive), or a :class:`UsageError` naming the catalog."""
    _load_families()
    try:
        return REGISTRY[code.strip().upper()]
    except KeyError:
        raise UsageError(f"unknown rule {code!r}: run `inspector rules` for the catalog") from None


def resolve(config: LintConfig | None = None, *, select: Iterable[str] | None = None,
            ignore: Iterable[str] | None = None, path: str | None = None) -> Selection:
    """Turn a configuration (plus overrides) into the rules that run for ``path``.

    ``per-file-ignores`` of the configuration apply when ``path`` matches.
    Rule options are checked against what each rule declares.
    """
    _load_families()
    sel = list(select) if select is not None else list(config.select if config else ("ALL",))
    ign = list(config.ignore) if config else []
    if ignore is not None:
        ign += list(ignore)
    if config is not None and path is not None:
        ign += list(config.ignores_for(path))
    enabled = select_rules(sel, ign)
    options: dict[str, dict[str, Any]] = {}
    severities: dict[str, Severity] = {}
    for code, opts in (config.rule_options.items() if config else ()):
        r = get_rule(code)
        for key, value in opts.items():
            if key == "severity":
                severities[r.code] = Severity.parse(value)
                continue
            if key not in r.options:
                known = ", ".join(sorted(r.options)) or "none"
                raise UsageError(f"rule {r.code} has no option {key!r} (options: {known}, severity)")
            default = r.options[key]
            if default is not None and not isinstance(value, type(default)) and not (
                    isinstance(default, float) and isinstance(value, int)):
                raise UsageError(f"option {key!r} of rule {r.code} must be a {type(default).__name__}, "
                                 f"not {value!r}")
            options.setdefault(r.code, {})[key] = value
    return Selection(enabled, options, severities)


def lint(graph: ModelGraph, *, config: LintConfig | None = None,
         select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
         probe: Any = None, history: Any = None, debug: bool = False) -> list[Finding]:
    """Check ``graph`` and return its findings, sorted by graph order then code.

    Tensor values are read only if an enabled rule needs them, each tensor once,
    one at a time (:func:`inspector.analysis.weights.analyze`).  ``probe`` and
    ``history`` enable the rules that need activation measurements or a training
    log.
    """
    selection = resolve(config, select=select, ignore=ignore, path=graph.path)
    rules = [r for r in all_rules() if r.code in selection.enabled]
    weights = state = None
    if any("weights" in r.needs or set(r.states) != set(STATES) for r in rules):
        from ..analysis.state import infer_state
        from ..analysis.weights import analyze

        weights = analyze(graph)
        state = infer_state(graph, weights)
    return run_rules(graph, rules, selection=selection, weights=weights, state=state,
                     probe=probe, history=history, path=graph.path, debug=debug)
