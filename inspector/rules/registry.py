"""The rule registry: what a rule is, how it is registered, and how it is looked up.

A rule is one function in a family module (``inspector/rules/<family>.py``)
registered with :func:`rule`.  The decorator carries everything the engine needs
to know *without running the rule*: its code, kebab-case name, default severity,
the layer types and file formats it applies to, the data it needs (weights,
probe measurements, a training history) and the model states it makes sense for.
The function's docstring is the rule's documentation (``What it does`` /
``Why is this bad?`` / ``Example``): ``inspector rule CODE`` prints it and SARIF
ships it as help text.

Every module of this package whose name does not start with ``_`` (and is not
infrastructure) is a family, imported on the first lookup, so a new family only
has to be dropped in.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TypeVar

from ..errors import UsageError
from ..findings import Severity

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Context, Hit

CODE_RE = re.compile(r"^[A-Z]+\d{3}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
DOC_HEADINGS = ("What it does", "Why is this bad?", "Example")
FORMATS = ("keras", "savedmodel", "onnx")
"""Format families a rule can apply to: ``keras`` covers ``.keras`` and legacy ``.h5``."""
NEEDS = frozenset({"weights", "probe", "history"})
STATES = ("trained", "untrained", "unknown")

_INFRA = frozenset({"engine", "registry"})
"""Modules of the package that hold no rules."""

F = TypeVar("F", bound=Callable[..., Any])


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
        """The code without its number (``INIT`` for ``INIT002``)."""
        return re.sub(r"\d+$", "", self.code)

    @property
    def doc(self) -> str:
        """The rule's documentation: its check function's docstring."""
        return inspect.cleandoc(self.check.__doc__ or "")

    @property
    def summary(self) -> str:
        """The first paragraph of the docstring (one line)."""
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    @property
    def scope(self) -> str:
        """``model`` for a rule that looks at the whole model once, else ``layer``."""
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
         options: Mapping[str, Any] | None = None) -> Callable[[F], F]:
    """Register the decorated function as rule ``code``.

    ``types``: layer types to call the rule on (once per matching layer, with
    ``ctx.layer`` set); omit it for a rule that looks at the whole model once.
    ``needs``: ``weights`` (tensor statistics), ``probe``, ``history``.
    ``states``: model states the rule is meaningful for.
    ``options``: thresholds users may tune, with defaults.
    """

    def register(fn: F) -> F:
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
        fn.rule_code = code  # type: ignore[attr-defined]  # a plain attribute on the function; mypy models none
        return fn

    return register


_loaded = False


def load_families() -> None:
    """Import every rule family module once (each registers its rules)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(__package__ or "inspector.rules")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _INFRA:
            continue
        importlib.import_module(f"{package.__name__}.{info.name}")


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code."""
    load_families()
    return sorted(REGISTRY.values(), key=lambda r: (r.family, r.code))


def get_rule(code: str) -> Rule:
    """The rule with ``code`` or kebab-case name (case-insensitive), or a :class:`UsageError`
    naming the catalog."""
    load_families()
    key = code.strip()
    found = REGISTRY.get(key.upper())
    if found is None:
        found = next((r for r in REGISTRY.values() if r.name == key.lower()), None)
    if found is None:
        raise UsageError(f"unknown rule {code!r}: run `inspector rules` for the catalog")
    return found
