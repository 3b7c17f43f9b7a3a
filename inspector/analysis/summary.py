"""Collect → aggregate: everything a summary reporter prints, computed once.

Reporters format a :class:`Summary`; they never count or walk the graph
themselves (torchinfo's collect → aggregate → format split).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Iterator, Sequence, overload

from ..graphquery import call_inputs
from ..ir import Inbound, Layer, ModelGraph, Shape, Weight
from ..trust import facts_by_code
from .params import NONE, ParamCount, ParamTally

if TYPE_CHECKING:
    from .duplicates import DuplicateReport
    from .symbolic import Poly


@dataclass(frozen=True, slots=True)
class SummaryRow:
    name: str
    type: str
    output_shapes: tuple[Shape | None, ...]
    """Shapes of the first call's outputs."""
    multiple_shapes: bool
    """Calls of a shared layer produce different shapes (Keras prints ``multiple``)."""
    is_input: bool
    params: ParamCount
    connections: tuple[Inbound, ...]
    """Every tensor consumed, call after call (Keras 2's "Connected to")."""
    macs: int | None
    dtype: str | None
    weights: tuple[Weight, ...]
    """The layer's own weights (``ir.Weight``), for machine-readable formats."""
    notes: tuple[str, ...]
    last_call_shapes: tuple[Shape | None, ...] = ()
    """Shapes of the last call's outputs (Keras 3 prints these for a shared layer)."""
    macs_formula: Poly | None = None
    """The layer's MACs as a formula in symbolic dims, when they are one (``macs`` is then ``None``)."""


@dataclass(frozen=True, slots=True)
class Summary:
    name: str
    format: str
    path: str | None
    kind: str
    sequential_like: bool
    """Keras 2's test for the narrow, three-column listing."""
    rows: SummaryRows
    """The layers' rows (a sequence of :class:`SummaryRow`, kept column by column)."""
    totals: ParamCount
    bytes_by_dtype: tuple[tuple[str, int, int], ...]
    optimizer: ParamCount
    quantization: ParamCount
    constants: ParamCount
    """Stored constants that are not parameters (ONNX scalars, masks, ids; not in ``totals``)."""
    macs_total: int | None
    macs_complete: bool
    notes: tuple[str, ...]
    security: tuple[tuple[str, int], ...]
    """Security facts the loader recorded, as (SEC code, count), sorted by code."""
    duplicates: DuplicateReport | None = None
    """Stored tensors that copy another one; ``None`` when not looked for (only JSON reports them)."""
    macs_formula: Poly | None = None
    """The MACs as a formula in symbolic dims, when they leave layers unknown (``MacsReport.formula``)."""
    macs_formula_complete: bool = True
    """Every layer's MACs are known or a formula, so ``macs_formula`` is the model's cost."""

    @property
    def security_warning(self) -> str | None:
        """The one line a summary prints under its table when the file is unsafe."""
        if not self.security:
            return None
        total = sum(n for _, n in self.security)
        codes = ", ".join(code if n == 1 else f"{code} ×{n}" for code, n in self.security)
        noun = "problem" if total == 1 else "problems"
        return (f"Warning: {total} security {noun} in this file ({codes}): it may carry code or point "
                f"outside itself; nothing was executed. Run `inspector lint --select SEC` for details.")


def _keras_depths(graph: ModelGraph) -> dict[tuple[str, int], int]:
    """Depth of every call node, computed as Keras's ``_map_graph_network`` does:
    output nodes at depth 0, a producer one deeper than its deepest consumer, and
    all calls of one layer at the layer's greatest depth."""
    # Nodes in decreasing depth order = reverse post-order of a DFS from the outputs.
    order: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    for out in graph.outputs:
        start = (out.layer, out.node_index)
        if start in seen or out.layer not in graph:
            continue
        stack: list[tuple[tuple[str, int], int]] = [(start, 0)]
        seen.add(start)
        while stack:
            node, i = stack.pop()
            lay = graph.layer(node[0])
            refs = call_inputs(lay, node[1])
            if i < len(refs):
                stack.append((node, i + 1))
                nxt = (refs[i].layer, refs[i].node_index)
                if nxt not in seen and refs[i].layer in graph:
                    seen.add(nxt)
                    stack.append((nxt, 0))
            else:
                order.append(node)
    depth_of: dict[tuple[str, int], int] = {}
    layer_depth: dict[str, int] = {}
    for node in reversed(order):
        depth = depth_of.setdefault(node, 0)
        depth = max(depth, layer_depth.get(node[0], 0))
        layer_depth[node[0]] = depth
        depth_of[node] = depth
        lay = graph.layer(node[0])
        for ref in call_inputs(lay, node[1]):
            if ref.layer not in graph:  # a config may name a layer it does not hold: no node, no depth
                continue
            key = (ref.layer, ref.node_index)
            depth_of[key] = max(depth + 1, depth_of.get(key, 0))
    return depth_of


def is_sequential_like(graph: ModelGraph) -> bool:
    """Keras 2's rule for the narrow listing: a Sequential model, or a functional
    one with at most one node per depth, each with at most one inbound tensor, and
    no layer called twice."""
    if graph.kind == "sequential":
        return True
    if graph.kind != "functional":
        return False
    depths = _keras_depths(graph)
    by_depth: dict[int, list[tuple[str, int]]] = {}
    for node, depth in depths.items():
        by_depth.setdefault(depth, []).append(node)
    for nodes in by_depth.values():
        if len(nodes) > 1:
            return False
        name, idx = nodes[0]
        lay = graph.layer(name)
        if len(call_inputs(lay, idx)) > 1:
            return False
    per_layer: dict[str, int] = {}
    for name, _ in depths:
        per_layer[name] = per_layer.get(name, 0) + 1
        if per_layer[name] > 1:
            return False
    return True


def _row(layer: Layer, params: ParamCount, macs: int | None, formula: Poly | None = None) -> SummaryRow:
    """The row of one layer, computed field by field (the general path of :func:`_rows`)."""
    return SummaryRow(
        name=layer.name,
        type=layer.type,
        output_shapes=tuple(layer.output_shapes),
        multiple_shapes=layer.has_multiple_shapes,
        is_input=layer.type == "InputLayer",
        params=params,
        connections=tuple(layer.inbound_flat()),
        macs=macs,
        dtype=layer.dtype,
        weights=tuple(layer.weights),
        notes=tuple(layer.notes),
        last_call_shapes=tuple(layer.node_shapes[-1]) if layer.node_shapes else (),
        macs_formula=formula,
    )


_INPUT = "InputLayer"


@dataclass(frozen=True, eq=False)
class SummaryRows(Sequence[SummaryRow]):
    """A summary's rows, kept column by column: a sequence of :class:`SummaryRow` (as a tuple of them
    reads: ``len``, indexing, slices, iteration, ``==``), each row made when it is first read.

    A huge graph (an ONNX decoder has 162,000 nodes) needs no row object for the classic listing: its
    reporter reads the columns.  Equal shape tuples are one object (a graph has few distinct shapes;
    reporters format each once).  Field ``i`` of each column is the ``i``-th row's field of that name
    (``is_input`` is ``types[i] == "InputLayer"``)."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    output_shapes: tuple[tuple[Shape | None, ...], ...]
    multiple_shapes: tuple[bool, ...]
    params: tuple[ParamCount, ...]
    connections: tuple[tuple[Inbound, ...], ...]
    macs: tuple[int | None, ...]
    dtypes: tuple[str | None, ...]
    weights: tuple[tuple[Weight, ...], ...]
    notes: tuple[tuple[str, ...], ...]
    last_call_shapes: tuple[tuple[Shape | None, ...], ...]
    macs_formulas: tuple[Poly | None, ...]

    @cached_property
    def _rows(self) -> tuple[SummaryRow, ...]:
        """Every row, made once, on first use."""
        return tuple(map(SummaryRow, self.names, self.types, self.output_shapes, self.multiple_shapes,
                         map(_INPUT.__eq__, self.types), self.params, self.connections, self.macs, self.dtypes,
                         self.weights, self.notes, self.last_call_shapes, self.macs_formulas))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[SummaryRow]:
        return iter(self._rows)

    @overload
    def __getitem__(self, index: int) -> SummaryRow: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[SummaryRow, ...]: ...

    def __getitem__(self, index: int | slice) -> SummaryRow | tuple[SummaryRow, ...]:
        return self._rows[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SummaryRows):
            return self is other or self._rows == other._rows
        return isinstance(other, tuple) and self._rows == other

    def __hash__(self) -> int:
        return hash(self._rows)

    def __repr__(self) -> str:
        return f"SummaryRows({self._rows!r})"


def _general_rows(indices: list[int], layers: list[Layer], params: list[ParamCount], *,
                  shapes: list[tuple[Shape | None, ...]], last: list[tuple[Shape | None, ...]], multiple: list[bool],
                  conns: list[tuple[Inbound, ...]]) -> None:
    """Fill the row ``indices`` of the shape and connection columns by the general :func:`_row` (a shared
    layer, a layer called several times or never, a shape that is not a tuple); ``layers``: the rows'."""
    for i in indices:
        row = _row(layers[i], params[i], None)
        shapes[i], last[i], multiple[i], conns[i] = (row.output_shapes, row.last_call_shapes, row.multiple_shapes,
                                                     row.connections)


_ROW_FIELDS = attrgetter("name", "type", "node_shapes", "inbound", "weights", "notes", "dtype", "subgraphs")
"""What a row reads of a layer, read from C in one go."""


# long: the per-layer hot path of a summary, kept in one pass (each pass re-reads 162,000 layers from memory)
def _rows(graph: ModelGraph, tally: ParamTally, macs: dict[str, int | None],
          formulas: dict[str, Poly]) -> tuple[SummaryRows, list[str]]:
    """The rows of ``graph``'s layers (Keras lists no InputLayer for a Sequential model), and the notes of
    its layers; every layer's parameters counted by ``tally`` (``count_params``'s pass, made in this one).
    The common layer, called once with hashable shapes, fills its columns without the general :func:`_row`'s
    copies and properties; the columns equal :func:`_row`'s fields (tests/test_summary_fast_paths.py checks
    both paths)."""
    count_layer = tally.layer
    drop_inputs = graph.kind == "sequential"
    names: list[str] = []
    types: list[str] = []
    params: list[ParamCount] = []
    shapes: list[tuple[Shape | None, ...]] = []
    conns: list[tuple[Inbound, ...]] = []
    dtypes: list[str | None] = []
    weights: list[tuple[Weight, ...]] = []
    notes: list[tuple[str, ...]] = []
    layer_notes: list[str] = []
    general: list[int] = []
    known: dict[tuple[Shape | None, ...], tuple[Shape | None, ...]] = {}
    share = known.setdefault
    # One pass reading each layer once, every column filled in it: seven passes (one per column, even from
    # C) cost more, each re-reading 162,000 layers that are no longer in the processor's cache.
    for lay, (name, kind, calls, inbound, owned, said, dtype, nested) in zip(graph.layers,
                                                                            map(_ROW_FIELDS, graph.layers),
                                                                            strict=True):
        count = count_layer(lay, owned, nested) if owned or nested else NONE
        if said:
            layer_notes.extend([f"{name}: {note}" for note in said])
        if drop_inputs and kind == _INPUT:
            continue
        shared: tuple[Shape | None, ...] | None = None
        if len(calls) == 1 and len(inbound) <= 1:  # else a shared layer, several calls, or none
            first = tuple(calls[0])
            try:
                shared = share(first, first)
            except TypeError:  # a shape that is not a tuple of dims: left to the general path
                pass
        if shared is None:  # filled by the general path
            general.append(len(names))
            shapes.append(())
            conns.append(())
        else:
            shapes.append(shared)
            conns.append(tuple(inbound[0]) if inbound else ())
        names.append(name)
        types.append(kind)
        params.append(count)
        dtypes.append(dtype)
        weights.append(tuple(owned))
        notes.append(tuple(said))
    last, multiple = list(shapes), [False] * len(names)
    if general:
        layers = [lay for lay in graph.layers if not drop_inputs or lay.type != _INPUT]
        _general_rows(general, layers, params, shapes=shapes, last=last, multiple=multiple, conns=conns)
    n = len(names)
    return SummaryRows(
        names=tuple(names),
        types=tuple(types),
        output_shapes=tuple(shapes),
        multiple_shapes=tuple(multiple),
        params=tuple(params),
        connections=tuple(conns),
        macs=tuple(map(macs.get, names)) if macs else (None,) * n,
        dtypes=tuple(dtypes),
        weights=tuple(weights),
        notes=tuple(notes),
        last_call_shapes=tuple(last),
        macs_formulas=tuple(map(formulas.get, names)) if formulas else (None,) * n,
    ), layer_notes


def _duplicates(graph: ModelGraph) -> DuplicateReport:
    from .duplicates import SUMMARY_READ_BYTES, find_duplicates

    return find_duplicates(graph, max_read_bytes=SUMMARY_READ_BYTES)


def summarize(graph: ModelGraph, *, macs: bool = True, duplicates: bool = False) -> Summary:
    """Aggregate ``graph`` into a :class:`Summary` (MACs only when ``macs``, copied tensors only when
    ``duplicates``: finding them reads the candidate tensors)."""
    tally = ParamTally()
    macs_by_layer: dict[str, int | None] = {}
    formula_by_layer: dict[str, Poly] = {}
    macs_total: int | None = None
    macs_complete = False
    formula: Poly | None = None
    formula_complete = True
    if macs:
        from .macs import count_macs

        mreport = count_macs(graph)
        macs_by_layer = dict(mreport.layers)
        formula_by_layer = dict(mreport.layer_formulas)
        macs_total = mreport.total
        macs_complete = not mreport.unknown
        formula, formula_complete = mreport.formula, mreport.formula_complete
    rows, layer_notes = _rows(graph, tally, macs_by_layer, formula_by_layer)
    report = tally.result(graph.optimizer_weights)
    notes = graph.notes + layer_notes
    return Summary(
        name=graph.name,
        format=graph.format,
        path=graph.path,
        kind=graph.kind,
        sequential_like=is_sequential_like(graph),
        rows=rows,
        totals=report.totals,
        bytes_by_dtype=report.bytes_by_dtype,
        optimizer=report.optimizer,
        quantization=report.quantization,
        constants=report.constants,
        macs_total=macs_total,
        macs_complete=macs_complete,
        notes=tuple(notes),
        security=tuple(facts_by_code(graph).items()),
        duplicates=_duplicates(graph) if duplicates else None,
        macs_formula=formula,
        macs_formula_complete=formula_complete,
    )
