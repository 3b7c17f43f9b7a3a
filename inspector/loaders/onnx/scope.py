"""The builder's working records: stored tensors (:class:`Source`), constants
(:class:`Const`), the scope of one graph being built (:class:`Scope`) and a graph
waiting to be built (:class:`Task`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ...ir import ExternalData, Inbound, ModelGraph, Shape


@dataclass(slots=True, eq=False)
class Source:
    """A stored tensor: what a parameter is."""

    name: str
    key: str
    dtype: str
    shape: tuple[int, ...] | None
    external: ExternalData | None = None
    reader: Callable[[], Any] | None = None


@dataclass(slots=True, eq=False)
class Const:
    """A constant tensor of a graph: stored, generated or folded from constants."""

    name: str
    dtype: str | None
    shape: Shape | None
    origins: tuple[tuple[Source, bool], ...]
    """(stored tensor, is_quantization) for every stored tensor that flows into it as data."""
    proto: Any = None
    """An inline ``TensorProto`` whose value can be parsed on demand."""
    value: Any = None
    evaluated: bool = False


@dataclass(slots=True, eq=False)
class Scope:
    parent: Scope | None
    graph: ModelGraph
    key_prefix: str
    opsets: dict[str, int]
    consts: dict[str, Const] = field(default_factory=dict)
    producers: dict[str, Inbound] = field(default_factory=dict)
    types: dict[str, tuple[str | None, Shape | None]] = field(default_factory=dict)
    outer: dict[str, str] = field(default_factory=dict)
    """Outer-scope tensor -> name of the InputLayer standing for it in this graph."""
    used_names: set[str] = field(default_factory=set)
    non_data: dict[str, frozenset[int]] = field(default_factory=dict)
    """Layer name -> operand positions that are shapes/indices (not data)."""

    def find_const(self, name: str) -> Const | None:
        scope: Scope | None = self
        while scope is not None:
            c = scope.consts.get(name)
            if c is not None:
                return c
            if name in scope.producers:
                return None
            scope = scope.parent
        return None

    def find_type(self, name: str) -> tuple[str | None, Shape | None]:
        scope: Scope | None = self
        while scope is not None:
            t = scope.types.get(name)
            if t is not None:
                return t
            scope = scope.parent
        return (None, None)

    def defined_outside(self, name: str) -> bool:
        scope = self.parent
        while scope is not None:
            if name in scope.producers or name in scope.consts or name in scope.outer:
                return True
            scope = scope.parent
        return False


@dataclass(slots=True)
class Task:
    proto: Any  # GraphProto or FunctionProto
    graph: ModelGraph
    parent: Scope | None
    key_prefix: str
    opsets: dict[str, int]
    depth: int
    is_function: bool = False
    call: str | None = None
    """For the body of one call (:mod:`.inline`): the call's prefix; ``None`` for a shared body."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """For the body of one call: the attributes the call binds (``ref_attr_name`` -> attribute)."""
    types: dict[str, tuple[str | None, Shape | None]] = field(default_factory=dict)
    """For the body of one call: the types shape inference gave its tensors."""
