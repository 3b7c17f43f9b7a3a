"""The builder's working records: stored tensors (:class:`Source`), constants
(:class:`Const`), the scope of one graph being built (:class:`Scope`), a graph
waiting to be built (:class:`Task`), the fields of every node read once
(:data:`NodeRow`, :func:`node_rows`) and what the builder needs to know about one
operator (:class:`OpInfo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...ir import ExternalData, Inbound, ModelGraph, Operand, Shape

NodeRow = tuple[str, str, str, list[str], list[str], int]
"""One node's fields, read from protobuf once: (op_type, domain, name, inputs, outputs, number of
attributes).  Reading a protobuf field builds a new Python object on every access, and the builder looks
at each node's inputs and outputs several times (order, folding, layer, shape pass).  The ``NodeProto``
is not kept: a row's position is the node's, and the builder reads the few nodes it needs again (those
with attributes), so the wrapper protobuf makes of each node while they are read is let go at once."""


def node_rows(nodes: Sequence[Any]) -> list[NodeRow]:
    """The :data:`NodeRow` of every node, in file order (a repeated field's slice is a list, made in one
    call: faster than ``list()`` over the field)."""
    return [(n.op_type, n.domain, n.name, n.input[:], n.output[:], len(n.attribute)) for n in nodes]


@dataclass(frozen=True, slots=True)
class OpInfo:
    """What the builder needs to know about an operator called with a given number of inputs in one
    graph (its opsets): worked out once per (op, domain, inputs), not once per node."""

    ltype: str
    """The layer type: ``op``, or ``domain.op`` outside the default domain."""
    roles: tuple[str, ...]
    """The schema's name of each input position."""
    non_data: frozenset[int]
    """Input positions that are shapes, axes or indices (:data:`~.ops.NON_DATA`)."""
    quant: frozenset[int]
    """Input positions that are quantization scales and zero points (:data:`~.ops.QUANT`)."""
    bn_stats: frozenset[int]
    """Input positions holding batch-norm statistics (not trainable)."""
    foldable: bool
    """The operator may fold when all its inputs are constants (domain and op allow it; a node calling a
    model-local function is checked per node, by its overload)."""
    constant: bool
    """A ``Constant`` of the default domain."""
    may_call: bool
    """A model-local function has this domain and name."""


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
    operands: dict[tuple[str, str, bool], Operand] | None = None
    """The operands made of this constant, by (role, tensor, at a data position): layers that consume it
    alike share one :class:`~inspector.ir.Operand` (frozen), its value decoded once."""


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
    data_uses: list[str] = field(default_factory=list)
    """Tensors (not constants) a layer consumes at a data position, once per use."""
    shape_uses: list[str] = field(default_factory=list)
    """Tensors (not constants) a layer consumes as a shape, axes or indices, once per use."""
    made_at: dict[str, int] = field(default_factory=dict)
    """Tensor -> position (in the graph's own layers) of the layer that outputs it."""
    made_again: dict[str, list[int]] = field(default_factory=dict)
    """Tensor -> positions of further layers that output it (a file reusing an output name)."""
    stored: list[str] = field(default_factory=list)
    """Names of the graph's initializers (sparse ones not included), in file order."""

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
