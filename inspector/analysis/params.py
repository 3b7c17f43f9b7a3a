"""Parameter counts: per layer, totals, and bytes by dtype.

Semantics (docs/architecture.md, Parameter semantics): a weight counts once however many
layers share it (``Weight.key``); trainability is the loader's ``Weight.trainable``
(it already applied frozen layers and nested models); quantization scales and
zero points, constants that are not parameters (``Weight.constant``: ONNX 0-d scalars,
bool masks, integer ids and labels) and optimizer state are reported apart, not as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

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


def count_params(graph: ModelGraph) -> ParamReport:
    """Count every parameter of ``graph`` once.

    One pass over the weights fills the totals, the bytes by dtype, the quantization and the constant
    counts (each stored tensor once per category, as :func:`_count` would count it)."""
    layers = tuple((lay.name, layer_params(lay)) for lay in graph.layers)
    sums: dict[tuple[bool, bool], list[int]] = {(False, False): [0, 0, 0], (True, False): [0, 0, 0],
                                                (False, True): [0, 0, 0]}  # params, trainable, bytes
    by_dtype: dict[str, list[int]] = {}
    seen: set[tuple[str, bool, bool]] = set()
    for w in graph.iter_weights():
        flags = (w.quantization, w.constant)
        acc = sums.get(flags)
        if acc is None or (w.key, *flags) in seen:
            continue
        seen.add((w.key, *flags))
        size = w.size
        nbytes = int(size * dtype_bytes(w.dtype) + 0.999999)  # Weight.nbytes, without computing the size twice
        acc[0] += size
        acc[2] += nbytes
        if w.trainable:
            acc[1] += size
        if flags == (False, False):
            entry = by_dtype.setdefault(w.dtype, [0, 0])
            entry[0] += size
            entry[1] += nbytes
    dtype_rows = tuple(sorted(((d, n, b) for d, (n, b) in by_dtype.items()),
                              key=lambda r: (-r[2], r[0])))
    params, trainable, nbytes = sums[(False, False)]
    totals = ParamCount(params, trainable, params - trainable, nbytes)
    quant, const = sums[(True, False)], sums[(False, True)]
    opt = _count(graph.optimizer_weights)
    return ParamReport(layers, totals, dtype_rows, ParamCount(quant[0], 0, quant[0], quant[2]),
                       ParamCount(opt.params, 0, opt.params, opt.bytes), ParamCount(const[0], 0, const[0], const[2]))
