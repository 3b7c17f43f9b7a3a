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

from ..ir import Layer, ModelGraph, Weight


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
    """Count every parameter of ``graph`` once."""
    layers = tuple((lay.name, layer_params(lay)) for lay in graph.layers)
    all_weights = list(graph.iter_weights())
    totals = _count(all_weights)
    by_dtype: dict[str, list[int]] = {}
    seen: set[str] = set()
    for w in all_weights:
        if w.key in seen or w.quantization or w.constant:
            continue
        seen.add(w.key)
        entry = by_dtype.setdefault(w.dtype, [0, 0])
        entry[0] += w.size
        entry[1] += w.nbytes
    dtype_rows = tuple(sorted(((d, n, b) for d, (n, b) in by_dtype.items()),
                              key=lambda r: (-r[2], r[0])))
    quant = _count(all_weights, quantization=True)
    quant = ParamCount(quant.params, 0, quant.params, quant.bytes)
    opt = _count(graph.optimizer_weights)
    opt = ParamCount(opt.params, 0, opt.params, opt.bytes)
    const = _count(all_weights, constant=True)
    const = ParamCount(const.params, 0, const.params, const.bytes)
    return ParamReport(layers, totals, dtype_rows, quant, opt, const)

