"""The lint engine: rule selection, the context a rule sees, and the run loop.

Rules are defined and looked up in :mod:`inspector.rules.registry`; results
(:class:`~inspector.findings.Finding` …) live in :mod:`inspector.findings`.

A rule body only *looks*: it receives a :class:`Context` and yields
:class:`Hit` objects (a message, optionally another layer or a different
severity); the engine turns hits into findings, applies the selection, and
sorts them by graph order then code.  Rules never format output and never read
tensors themselves: the weight statistics are computed once, in one streaming
pass, by :mod:`inspector.analysis.weights` and shared.

Rules that need data the static file does not hold declare it with ``needs``:
``"probe"`` (activation statistics from :mod:`inspector.analysis.probe`) or
``"history"`` (a training log).  When that data is not supplied, the rule is
skipped silently, so ``inspector lint model.keras`` stays static and fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Iterator, Mapping, TypeVar

from ..errors import InspectorError, UsageError
from ..findings import Finding, Severity
from ..ir import Layer, ModelGraph
from .registry import Rule, all_rules, get_rule

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.history_logs import History
    from ..analysis.probe import ProbeReport
    from ..analysis.state import StateReport
    from ..analysis.weights import WeightReport
    from ..config import LintConfig


T = TypeVar("T")


class RuleCrash(InspectorError):
    """A rule failed on a model: a bug in inspector, reported as one line."""


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule body yields: a message about the current layer (or ``layer``),
    at the rule's default severity unless ``severity`` is given."""

    message: str
    layer: str | None = None
    severity: Severity | None = None


# -- selection ------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which rules run, with which options and severities (resolved from config)."""

    enabled: frozenset[str]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    severities: Mapping[str, Severity] = field(default_factory=dict)

    def is_enabled(self, code: str) -> bool:
        return code in self.enabled


def check_selectors(selectors: Iterable[str], *, what: str = "selector") -> list[str]:
    """Normalize codes/prefixes (``INIT``, ``INIT00``, ``ALL``) and reject unknown ones."""
    codes = [r.code for r in all_rules()]
    out = []
    for raw in selectors:
        sel = raw.strip().upper()
        if not sel:
            continue
        if sel != "ALL" and not any(c.startswith(sel) for c in codes):
            raise UsageError(f"unknown rule {what} {raw!r}: run `inspector rules` for the catalog")
        out.append(sel)
    return out


def _match_len(code: str, selectors: Iterable[str]) -> int:
    best = -1
    for sel in selectors:
        if sel == "ALL":
            best = max(best, 0)
        elif code.startswith(sel):
            best = max(best, len(sel))
    return best


def select_rules(select: Iterable[str] = ("ALL",), ignore: Iterable[str] = ()) -> frozenset[str]:
    """Codes enabled by ``select`` minus ``ignore``; the most specific selector wins
    (``--ignore INIT --select INIT002`` keeps INIT002), a tie goes to ``ignore``."""
    select, ignore = check_selectors(select), check_selectors(ignore, what="in ignore")
    enabled = set()
    for r in all_rules():
        s, i = _match_len(r.code, select), _match_len(r.code, ignore)
        if s >= 0 and s > i:
            enabled.add(r.code)
    return frozenset(enabled)


def resolve(config: LintConfig | None = None, *, select: Iterable[str] | None = None,
            ignore: Iterable[str] | None = None, path: str | None = None) -> Selection:
    """Turn a configuration (plus overrides) into the rules that run for ``path``.

    ``per-file-ignores`` of the configuration apply when ``path`` matches.
    Rule options are checked against what each rule declares.
    """
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
            _check_option(r, key, value)
            options.setdefault(r.code, {})[key] = value
    return Selection(enabled, options, severities)


def _check_option(r: Rule, key: str, value: Any) -> None:
    """A :class:`UsageError` unless rule ``r`` declares option ``key`` with a value of ``value``'s type."""
    if key not in r.options:
        known = ", ".join(sorted(r.options)) or "none"
        raise UsageError(f"rule {r.code} has no option {key!r} (options: {known}, severity)")
    default = r.options[key]
    if default is not None and not isinstance(value, type(default)) and not (
            isinstance(default, float) and isinstance(value, int)):
        raise UsageError(f"option {key!r} of rule {r.code} must be a {type(default).__name__}, "
                         f"not {value!r}")


# -- the context a rule sees ------------------------------------------------------------


@dataclass
class Context:
    """What a rule body sees.  ``graph`` is the graph that holds ``layer`` (a nested
    model or ONNX subgraph for nested layers); ``model`` is the top-level graph."""

    model: ModelGraph
    graph: ModelGraph
    selection: Selection
    rule: Rule | None = None
    layer: Layer | None = None
    prefix: str = ""
    weights: WeightReport | None = None
    state: StateReport | None = None
    probe: ProbeReport | None = None
    history: History | None = None
    extras: dict[Hashable, Any] = field(default_factory=dict)
    """Shared per-run scratch space for rules of one family (e.g. cached walks)."""

    @property
    def path(self) -> str | None:
        """The current layer's path (``outer/inner/dense``)."""
        return None if self.layer is None else self.prefix + self.layer.name

    @property
    def current(self) -> Layer:
        """The layer a per-layer rule (registered with ``types``) is called on."""
        return _supplied(self.layer, "a layer")

    @property
    def weight_report(self) -> WeightReport:
        """The tensor statistics, for a rule that ``needs`` ``weights``."""
        return _supplied(self.weights, "weight statistics")

    @property
    def probe_report(self) -> ProbeReport:
        """The activation measurements, for a rule that ``needs`` ``probe``."""
        return _supplied(self.probe, "probe measurements")

    @property
    def training_log(self) -> History:
        """The training history, for a rule that ``needs`` ``history``."""
        return _supplied(self.history, "a training history")

    def path_of(self, layer: Layer | str) -> str:
        return self.prefix + (layer if isinstance(layer, str) else layer.name)

    def option(self, name: str) -> Any:
        """This rule's option ``name``: the configured value or the rule's default."""
        assert self.rule is not None
        configured = self.selection.options.get(self.rule.code, {})
        if name in configured:
            return configured[name]
        return self.rule.options[name]

    def enabled(self, code: str) -> bool:
        """Whether another rule runs too (so one problem is reported once)."""
        return self.selection.is_enabled(code)

    @property
    def model_state(self) -> str:
        return self.state.state if self.state is not None else "unknown"

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """Compute something once per graph and share it between rules."""
        return self.shared((key, id(self.graph)), compute)

    def shared(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Compute something once per run (under ``key``) and share it between rules."""
        if key not in self.extras:
            self.extras[key] = compute()
        value: T = self.extras[key]
        return value


def _supplied(value: T | None, what: str) -> T:
    """``value``, which the engine guarantees for the rule running (its ``types``/``needs``)."""
    if value is None:
        raise RuntimeError(f"the engine passed no {what} to this rule")
    return value


# -- running ----------------------------------------------------------------------------


def graphs_of(graph: ModelGraph) -> Iterator[tuple[str, ModelGraph]]:
    """The graph and every nested graph, with the path prefix of their layers
    (depth first, without recursion: the nesting depth comes from the file)."""
    stack: list[tuple[str, ModelGraph]] = [("", graph)]
    while stack:
        prefix, g = stack.pop()
        yield prefix, g
        nested = []
        for lay in g.layers:
            for key, sub in lay.subgraphs.items():
                nested.append((f"{prefix}{lay.name}/" if key == "model" else f"{prefix}{lay.name}/{key}/", sub))
        stack.extend(reversed(nested))


def format_family(fmt: str) -> str:
    """``keras`` for both Keras file formats, else the format itself."""
    return "keras" if fmt in ("keras", "keras-h5") else fmt


def layer_order(graph: ModelGraph) -> dict[str, int]:
    """Position of every layer path in graph order (nested layers after their parent)."""
    return {path: i for i, (path, _) in enumerate(graph.walk())}


def run_rules(graph: ModelGraph, rules: Iterable[Rule], *, selection: Selection,
              weights: WeightReport | None = None, state: StateReport | None = None,
              probe: ProbeReport | None = None, history: History | None = None, path: str | None = None,
              debug: bool = False) -> list[Finding]:
    """Run ``rules`` over ``graph`` and return the findings sorted by graph order then code."""
    shared: dict[Hashable, Any] = {"debug": debug}
    model_state = state.state if state is not None else "unknown"
    findings: list[Finding] = []
    available = {"weights": weights is not None, "probe": probe is not None,
                 "history": history is not None}
    for r in rules:
        if format_family(graph.format) not in r.formats:
            continue
        if any(not available[n] for n in r.needs):
            continue
        if model_state not in r.states:
            continue
        severity = selection.severities.get(r.code, r.severity)
        for prefix, g in graphs_of(graph):
            ctx = Context(model=graph, graph=g, selection=selection, rule=r, prefix=prefix,
                          weights=weights, state=state, probe=probe, history=history, extras=shared)
            if r.types is None:
                if g is not graph:
                    continue  # model-level rules look at the top graph once
                findings.extend(_collect(r, ctx, severity, path))
                continue
            for lay in g.layers:
                if lay.type in r.types:
                    ctx.layer = lay
                    findings.extend(_collect(r, ctx, severity, path))
    order = layer_order(graph)
    findings.sort(key=lambda f: (-1 if f.layer is None else order.get(f.layer, len(order)),
                                 f.code, f.message))
    return findings


def _collect(r: Rule, ctx: Context, severity: Severity, path: str | None) -> list[Finding]:
    try:
        return list(_hits(r, ctx, severity, path))
    except InspectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - one rule's bug must not end the run in a traceback
        if ctx.extras.get("debug"):
            raise
        where = f" at layer {ctx.path!r}" if ctx.layer is not None else ""
        raise RuleCrash(f"rule {r.code} failed{where} ({type(exc).__name__}: {exc}); this is a bug in "
                        "inspector, please report it (use --debug for the traceback)") from exc


def _hits(r: Rule, ctx: Context, severity: Severity, path: str | None) -> Iterator[Finding]:
    for hit in r.check(ctx) or ():
        if isinstance(hit, str):
            hit = Hit(hit)
        layer = hit.layer if hit.layer is not None else ctx.path
        sev = hit.severity if hit.severity is not None else severity
        if hit.severity is not None and r.code in ctx.selection.severities:
            sev = ctx.selection.severities[r.code]  # an explicit override wins
        yield Finding(code=r.code, name=r.name, severity=sev, message=hit.message,
                      layer=layer, path=path)
