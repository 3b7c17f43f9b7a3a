"""The lint engine: severities, findings, the rule registry, and the run loop.

A rule is one function in a family module (``inspector/rules/<family>.py``)
registered with :func:`rule`.  The decorator carries everything the engine needs
to know *without running the rule*: its code, kebab-case name, default severity,
the layer types and file formats it applies to, the data it needs (weights,
probe measurements, a training history) and the model states it makes sense for.
The function's docstring is the rule's documentation (``What it does`` /
``Why is this bad?`` / ``Example``): ``inspector rule CODE`` prints it and SARIF
ships it as help text.

A rule body only *looks*: it receives a :class:`Context` and yields
:class:`Hit` objects (a message, optionally another layer or a different
severity); the engine turns hits into :class:`Finding` objects, applies the
selection, and sorts them by graph order then code.  Rules never format output
and never read tensors themselves: the weight statistics are computed once, in
one streaming pass, by :mod:`inspector.analysis.weights` and shared.

Rules that need data the static file does not hold declare it with ``needs``:
``"probe"`` (activation statistics from :mod:`inspector.analysis.probe`) or
``"history"`` (a training log).  When that data is not supplied, the rule is
skipped silently, so ``inspector lint model.keras`` stays static and fast.
"""

from __future__ import annotations

import enum
import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from ..errors import InspectorError, UsageError
from ..ir import Layer, ModelGraph

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.state import StateReport
    from ..analysis.weights import WeightReport

CODE_RE = re.compile(r"^[A-Z]+\d{3}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
DOC_HEADINGS = ("What it does", "Why is this bad?", "Example")
FORMATS = ("keras", "savedmodel", "onnx")
"""Format families a rule can apply to: ``keras`` covers ``.keras`` and legacy ``.h5``."""
NEEDS = frozenset({"weights", "probe", "history"})
STATES = ("trained", "untrained", "unknown")


class Severity(str, enum.Enum):
    """How bad a finding is.  Ordered: ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        try:
            return cls(str(value.value if isinstance(value, Severity) else value).lower())
        except ValueError:
            raise UsageError(
                f"unknown severity {value!r}: choose one of error, warning, info") from None

    def __str__(self) -> str:  # "error", not "Severity.ERROR"
        return self.value


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in one model.

    ``layer`` is the layer's path in the graph (``outer/inner/dense`` for nested
    models) or ``None`` for a finding about the whole model; ``path`` is the model
    file the finding is about (``None`` when linting an in-memory graph).
    """

    code: str
    name: str
    severity: Severity
    message: str
    layer: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ModelReport:
    """The lint result for one model file, as reporters receive it."""

    path: str
    name: str | None = None
    format: str | None = None
    findings: tuple[Finding, ...] = ()
    suppressed: int = 0
    """Findings the baseline accepted (not in ``findings``)."""
    error: str | None = None
    """Why the file could not be linted (then ``findings`` is empty)."""


class RuleCrash(InspectorError):
    """A rule failed on a model: a bug in inspector, reported as one line."""


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule body yields: a message about the current layer (or ``layer``),
    at the rule's default severity unless ``severity`` is given."""

    message: str
    layer: str | None = None
    severity: Severity | None = None


@dataclass(frozen=True)
class Rule:
    """A registered rule: metadata plus the check function."""

    code: str
    name: str
    severity: Severity
    check: Callable[[Context], Iterable[Hit | str]] = field(repr=False, compare=False)
    types: frozenset[str] | None = None
    """Layer types the rule looks at (``None``: the rule looks at the whole model once)."""
    formats: tuple[str, ...] = FORMATS
    needs: frozenset[str] = frozenset()
    states: tuple[str, ...] = STATES
    """Model states the rule makes sense for (see :mod:`inspector.analysis.state`)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Tunable thresholds with their defaults (``[tool.inspector.rules.CODE]``)."""
    module: str = ""

    @property
    def family(self) -> str:
        return re.sub(r"\d+$", "", self.code)

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.check.__doc__ or "")

    @property
    def summary(self) -> str:
        """The first paragraph of the docstring (one line)."""
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    @property
    def scope(self) -> str:
        return "model" if self.types is None else "layer"

    def applies_to(self) -> str:
        """What the rule looks at, in words (for ``inspector rules``)."""
        what = "the whole model" if self.types is None else ", ".join(sorted(self.types))
        extra = []
        if set(self.formats) != set(FORMATS):
            extra.append("formats: " + ", ".join(self.formats))
        if self.needs:
            extra.append("needs: " + ", ".join(sorted(self.needs)))
        if set(self.states) != set(STATES):
            extra.append("models: " + ", ".join(self.states))
        return what + (f" ({'; '.join(extra)})" if extra else "")


REGISTRY: dict[str, Rule] = {}


def rule(code: str, name: str, severity: Severity | str, *,
         types: Iterable[str] | None = None, formats: Iterable[str] = FORMATS,
         needs: Iterable[str] = (), states: Iterable[str] = STATES,
         options: Mapping[str, Any] | None = None) -> Callable:
    """Register the decorated function as rule ``code``.

    ``types``: layer types to call the rule on (once per matching layer, with
    ``ctx.layer`` set); omit it for a rule that looks at the whole model once.
    ``needs``: ``weights`` (tensor statistics), ``probe``, ``history``.
    ``states``: model states the rule is meaningful for.
    ``options``: thresholds users may tune, with defaults.
    """

    def register(fn: Callable) -> Callable:
        if not CODE_RE.match(code):
            raise ValueError(f"rule code {code!r} must match {CODE_RE.pattern}")
        if not NAME_RE.match(name):
            raise ValueError(f"rule name {name!r} must be kebab-case")
        if code in REGISTRY and REGISTRY[code].check is not fn:
            raise ValueError(f"rule code {code} registered twice")
        unknown = set(needs) - NEEDS
        if unknown:
            raise ValueError(f"unknown needs {sorted(unknown)} for {code}")
        REGISTRY[code] = Rule(
            code=code, name=name, severity=Severity.parse(severity), check=fn,
            types=None if types is None else frozenset(types), formats=tuple(formats),
            needs=frozenset(needs), states=tuple(states), options=dict(options or {}),
            module=fn.__module__,
        )
        fn.rule_code = code  # type: ignore[attr-defined]
        return fn

    return register


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
    from . import all_rules

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
    from . import all_rules

    select, ignore = check_selectors(select), check_selectors(ignore, what="in ignore")
    enabled = set()
    for r in all_rules():
        s, i = _match_len(r.code, select), _match_len(r.code, ignore)
        if s >= 0 and s > i:
            enabled.add(r.code)
    return frozenset(enabled)


def default_selection() -> Selection:
    from . import all_rules

    return Selection(frozenset(r.code for r in all_rules()))


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
    probe: Any = None
    history: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    """Shared per-run scratch space for rules of one family (e.g. cached walks)."""

    @property
    def path(self) -> str | None:
        """The current layer's path (``outer/inner/dense``)."""
        return None if self.layer is None else self.prefix + self.layer.name

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

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute something once per graph and share it between rules."""
        k = (key, id(self.graph))
        if k not in self.extras:
            self.extras[k] = compute()
        return self.extras[k]


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
              probe: Any = None, history: Any = None, path: str | None = None,
              debug: bool = False) -> list[Finding]:
    """Run ``rules`` over ``graph`` and return the findings sorted by graph order then code."""
    shared: dict[Any, Any] = {"debug": debug}
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
