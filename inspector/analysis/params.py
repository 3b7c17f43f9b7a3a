"""Parameter counts: per layer, totals, and bytes by dtype.

Semantics (docs/architecture.md, Parameter semantics): a weight counts once however many
layers share it (``Weight.key``); trainability is the loader's ``Weight.trainable``
(it already applied frozen layers and nested models); quantization scales and
zero points, constants that are not parameters (``Weight.constant``: ONNX 0-d scalars,
bool masks, integer ids and labels) and optimizer state are reported apart, not as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Iterable

from ..ir import Layer, ModelGraph, Weight, dtype_bytes


@dataclass(frozen=True, slots=True)
class ParamCount:
    params: int
    trainable: int
    non_trainable: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ParamReport:
    """Per-layer counts (graph order) and model totals."""

    layers: tuple[tuple[str, ParamCount], ...]
    totals: ParamCount
    bytes_by_dtype: tuple[tuple[str, int, int], ...]
    """(dtype, parameter count, bytes), sorted by bytes then dtype name."""
    quantization: ParamCount
    """Scales and zero points of quantized tensors (not in ``totals``)."""
    optimizer: ParamCount
    """Optimizer state stored with the model (not in ``totals``)."""
    constants: ParamCount = ParamCount(0, 0, 0, 0)
    """Stored constants that are not parameters (``Weight.constant``; not in ``totals``)."""

    def layer(self, name: str) -> ParamCount:
        for lname, count in self.layers:
            if lname == name:
                return count
        raise KeyError(name)


def _count(weights: Iterable[Weight], *, quantization: bool = False, constant: bool = False) -> ParamCount:
    """Count unique tensors whose ``quantization`` and ``constant`` flags equal the arguments."""
    seen: set[str] = set()
    params = trainable = nbytes = 0
    for w in weights:
        if w.key in seen or w.quantization != quantization or w.constant != constant:
            continue
        seen.add(w.key)
        params += w.size
        nbytes += w.nbytes
        if w.trainable:
            trainable += w.size
    return ParamCount(params, trainable, params - trainable, nbytes)


def layer_params(layer: Layer) -> ParamCount:
    """What Keras's ``layer.count_params()`` reports: the layer's weights, nested
    models included, each stored tensor once."""
    return _count(layer.iter_weights())


NONE = ParamCount(0, 0, 0, 0)
"""The count of a layer without parameters (most nodes of an ONNX graph): one shared object."""


@dataclass(frozen=True, slots=True)
class ParamTotals:
    """The model totals of a :class:`ParamReport`, without its per-layer counts."""

    totals: ParamCount
    bytes_by_dtype: tuple[tuple[str, int, int], ...]
    quantization: ParamCount
    optimizer: ParamCount
    constants: ParamCount


class ParamTally:
    """The counts :func:`count_params` adds up, layer after layer (:meth:`layer`): each stored tensor once per
    category (parameters, quantization, constants), as :func:`_count` would count it, and parameter bytes by
    dtype.  A summary tallies in its own pass over the layers (:func:`inspector.analysis.summary._rows`)."""

    def __init__(self) -> None:
        self.sums: dict[tuple[bool, bool], list[int]] = {(False, False): [0, 0, 0], (True, False): [0, 0, 0],
                                                         (False, True): [0, 0, 0]}  # params, trainable, bytes
        self.by_dtype: dict[str, list[int]] = {}
        self.seen: set[tuple[str, bool, bool]] = set()
        self.counted: set[str] = set()
        """The keys of the parameters counted (``seen`` holds the other categories')."""
        self.counts: dict[tuple[int, int, int], ParamCount] = {}
        """One count object per distinct (size, trainable, bytes): a decoder's layers repeat a few shapes."""
        self.kinds: dict[tuple[Any, str, bool], tuple[int, int, ParamCount]] = {}
        """(size, bytes, count) of a parameter per (shape, dtype, trainable): 40,000 weights, a few shapes."""

    def add(self, w: Weight) -> ParamCount | None:
        """Count ``w`` (unless counted before); returns its own count when it is a parameter."""
        if w.quantization or w.constant:
            self._add_apart(w)
            return None
        kind = (w.shape, w.dtype, bool(w.trainable))
        try:
            known = self.kinds.get(kind)
        except TypeError:  # a shape that is not a tuple (a list): measured, not remembered
            known = self._measure(w)
        if known is None:
            known = self.kinds[kind] = self._measure(w)
        size, nbytes, count = known
        if w.key not in self.counted:
            self.counted.add(w.key)
            acc = self.sums[(False, False)]
            acc[0] += size
            acc[1] += count.trainable
            acc[2] += nbytes
            entry = self.by_dtype.setdefault(w.dtype, [0, 0])
            entry[0] += size
            entry[1] += nbytes
        return count

    def _measure(self, w: Weight) -> tuple[int, int, ParamCount]:
        """A parameter's size, bytes and count (one count object per distinct size, trainable, bytes)."""
        size = w.size
        nbytes = int(size * dtype_bytes(w.dtype) + 0.999999)  # Weight.nbytes, without computing the size twice
        trainable = size if w.trainable else 0
        key = (size, trainable, nbytes)
        count = self.counts.get(key)
        if count is None:
            count = self.counts[key] = ParamCount(size, trainable, size - trainable, nbytes)
        return size, nbytes, count

    def _add_apart(self, w: Weight) -> None:
        """Count a quantization scale or zero point, or a constant (unless counted before)."""
        flags = (w.quantization, w.constant)
        acc = self.sums.get(flags)
        if acc is None or (w.key, *flags) in self.seen:  # (both flags set: counted nowhere, as by _count)
            return
        self.seen.add((w.key, *flags))
        size = w.size
        acc[0] += size
        acc[1] += size if w.trainable else 0
        acc[2] += int(size * dtype_bytes(w.dtype) + 0.999999)

    def layer(self, lay: Layer, weights: list[Weight], nested: dict[str, ModelGraph]) -> ParamCount:
        """The count of ``lay`` (``layer_params``; its ``weights`` and ``nested`` graphs, read by the caller),
        its weights added to the totals.  A caller may take a layer without either as :data:`NONE` itself."""
        if nested or len(weights) > 1:  # the general path: nested weights, or several to count once
            for w in lay.iter_weights():
                self.add(w)
            return layer_params(lay)
        if weights:
            return self.add(weights[0]) or NONE
        return NONE

    def result(self, optimizer_weights: Iterable[Weight]) -> ParamTotals:
        """The totals of the layers tallied so far, and the optimizer state ``optimizer_weights``."""
        dtype_rows = tuple(sorted(((d, n, b) for d, (n, b) in self.by_dtype.items()), key=lambda r: (-r[2], r[0])))
        params, trainable, nbytes = self.sums[(False, False)]
        quant, const = self.sums[(True, False)], self.sums[(False, True)]
        opt = _count(optimizer_weights)
        return ParamTotals(totals=ParamCount(params, trainable, params - trainable, nbytes), bytes_by_dtype=dtype_rows,
                           quantization=ParamCount(quant[0], 0, quant[0], quant[2]),
                           optimizer=ParamCount(opt.params, 0, opt.params, opt.bytes),
                           constants=ParamCount(const[0], 0, const[0], const[2]))


_PARAM_FIELDS = attrgetter("name", "weights", "subgraphs")
"""What the count reads of a layer, read from C in one go."""


def count_params(graph: ModelGraph) -> ParamReport:
    """Count every parameter of ``graph`` once.

    One pass over the layers fills the per-layer counts (a layer without weights shares :data:`NONE`, one
    with a single weight is counted with the totals), the totals, the bytes by dtype, the quantization and
    the constant counts."""
    layers: list[tuple[str, ParamCount]] = []
    tally = ParamTally()
    count = tally.layer
    for lay, (name, weights, nested) in zip(graph.layers, map(_PARAM_FIELDS, graph.layers), strict=True):
        layers.append((name, count(lay, weights, nested) if weights or nested else NONE))
    t = tally.result(graph.optimizer_weights)
    return ParamReport(tuple(layers), t.totals, t.bytes_by_dtype, t.quantization, t.optimizer, t.constants)
