"""Stored tensors that are copies of another stored tensor: identical, or (2-D) transposed.

Some exporters store one weight twice: the TorchScript ONNX exporter writes GPT-2's tied
token embedding once as ``wte`` and once transposed as the language-model head's ``MatMul``
operand.  Both count as parameters and both take file space, with no hint that they are one.

:func:`find_duplicates` finds such pairs cheaply.  Shapes come first: only tensors of one
dtype and element count whose shapes are equal, or reversed for 2-D tensors, are candidates,
and only candidates are read.  A candidate is read once and reduced to a small sample of its
values (in its own orientation and, for a 2-D tensor, transposed); only tensors whose samples
agree are compared in full, two tensors in memory at a time.  Tensors smaller than
:data:`MIN_ELEMENTS` are ignored (small biases, scales and masks coincide by chance and waste
nothing), as are quantization scales, placeholders generated from one fill value, strings and
tensors whose values the file does not hold.  Reading goes through the loaders' readers, so
the resource limits (``INSPECTOR_MAX_TENSOR_BYTES`` …) apply.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Mapping

import numpy as np

from ..errors import InspectorError
from ..ir import ModelGraph, Weight
from .weights import is_placeholder

MIN_ELEMENTS = 1024
"""Tensors with fewer elements are never reported as copies."""

_SAMPLE = 64  # values compared before two tensors are read in full

SUMMARY_READ_BYTES = 256 * 2**20
"""The most a summary or ``info`` reads to look for copies.  A summary otherwise reads no
weight byte; past this (every layer of an LLM has same-shaped candidates) the check is
skipped and said to be (``DuplicateReport.skipped_bytes``).  ``lint`` always checks."""


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """``copy`` holds the same values as ``original`` (transposed when ``transposed``)."""

    original: str
    copy: str
    transposed: bool
    wasted_bytes: int
    """Bytes the copy takes: what storing the tensor once would save."""
    fill: bool = False
    """Every value is the same one: tensors an initializer filled (the zero biases and unit
    scales of an untrained model) are equal without being copies of one weight."""

    def describe(self) -> str:
        """One line: both names, how they relate and the wasted bytes."""
        how = "a transposed copy" if self.transposed else "an identical copy"
        return f"{self.copy!r} is {how} of {self.original!r} ({self.wasted_bytes:,} bytes wasted)"

    def as_dict(self) -> dict[str, object]:
        return {"original": self.original, "copy": self.copy, "transposed": self.transposed,
                "wasted_bytes": self.wasted_bytes}


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    """Every copy found, in graph order of the copy."""

    pairs: tuple[DuplicatePair, ...]
    skipped_bytes: int = 0
    """When not 0, the check did not run: reading the candidates would have cost this much."""

    @property
    def wasted_bytes(self) -> int:
        return sum(p.wasted_bytes for p in self.pairs)


def _stored(graph: ModelGraph) -> list[Weight]:
    """Distinct stored tensors (by ``Weight.key``) that may be copies, in graph order."""
    seen: set[str] = set()
    out: list[Weight] = []
    for _, lay in graph.walk():
        for w in lay.weights:
            if w.key in seen:
                continue
            seen.add(w.key)
            if (w.reader is not None and not w.quantization and w.size >= MIN_ELEMENTS
                    and w.dtype != "string" and not is_placeholder(w)):
                out.append(w)
    return out


def _candidates(weights: list[Weight]) -> list[Weight]:
    """The tensors that share dtype, size and (possibly reversed, for 2-D) shape with another."""
    groups: dict[tuple[str, tuple[int, ...]], list[Weight]] = defaultdict(list)
    for w in weights:
        shape = tuple(w.shape)
        canonical = min(shape, shape[::-1]) if len(shape) == 2 else shape
        groups[(w.dtype, canonical)].append(w)
    keep = {id(w) for group in groups.values() if len(group) > 1 for w in group}
    return [w for w in weights if id(w) in keep]


def _read(w: Weight) -> np.ndarray | None:
    try:
        values = np.asarray(w.read())
    except (InspectorError, OSError, ValueError, KeyError, TypeError):
        return None  # a tensor that cannot be read is nobody's copy
    return values if values.shape == tuple(w.shape) else None


def _sample(values: np.ndarray, *, transposed: bool = False) -> bytes:
    """Values at fixed positions of ``values`` (of ``values.T`` when ``transposed``; no copy is made)."""
    if transposed:
        rows, cols = _transposed_positions(tuple(values.shape))
        return np.ascontiguousarray(values[cols, rows]).tobytes()
    return np.ascontiguousarray(values.reshape(-1)[_positions(values.size)]).tobytes()


@lru_cache(maxsize=1024)
def _positions(size: int) -> np.ndarray:
    """The positions :func:`_sample` takes from a tensor of ``size`` values (remembered: a lint samples
    100,000s of tensors of a few shapes)."""
    positions = np.linspace(0, size - 1, _SAMPLE).astype(np.int64)
    positions.flags.writeable = False
    return positions


@lru_cache(maxsize=1024)
def _transposed_positions(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of :func:`_positions` in the transpose of a 2-D tensor of ``shape``."""
    rows, cols = np.unravel_index(_positions(math.prod(shape)), shape[::-1])
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


class _Originals:
    """The values of the original last compared, kept until another one is: tensors equal to one
    original (the zero biases of an untrained model) come one after another, and it is read once, not
    once per copy.  One tensor at most is kept (peak: it and the copy compared with it)."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.values: np.ndarray | None = None
        self._fill: bool | None = None

    def fill(self) -> bool:
        """Whether the original last compared holds one value throughout (worked out once)."""
        if self._fill is None:
            a = self.values
            self._fill = a is not None and a.size > 0 and bool(np.all(a == a.reshape(-1)[0]))
        return self._fill

    def same(self, original: Weight, copy: Weight, transposed: bool) -> bool:
        if self.key != original.key:
            self.key, self.values, self._fill = None, None, None  # the previous one is freed before the next is read
            self.values, self.key = _read(original), original.key
        a = self.values
        if a is None:
            return False
        b = _read(copy)
        return b is not None and bool(np.array_equal(a, b.T if transposed else b))


def samples(values: np.ndarray) -> tuple[bytes, bytes | None]:
    """The samples :func:`find_duplicates` compares first: of ``values`` and, for a 2-D tensor, of its
    transpose (``None`` otherwise).  The weight statistics take them while a tensor is in memory
    (``WeightReport.samples``), so that ``lint`` need not read every candidate twice."""
    return _sample(values), (_sample(values, transposed=True) if values.ndim == 2 else None)


def _pairs(weights: list[Weight], taken: Mapping[str, tuple[bytes, bytes | None]]) -> Iterator[DuplicatePair]:
    # (dtype, shape, sample) of every tensor read so far -> the tensors with that sample
    index: dict[tuple[str, tuple[int, ...], bytes], list[Weight]] = defaultdict(list)
    originals = _Originals()
    _same = originals.same
    for w in weights:
        pair = taken.get(w.key)
        if pair is None:
            values = _read(w)
            if values is None:
                continue
            pair = samples(values)
            del values
        shape = tuple(w.shape)
        own = (w.dtype, shape, pair[0])
        flipped = (w.dtype, shape[::-1], pair[1]) if pair[1] is not None else None
        found = next(((o, False) for o in index.get(own, ()) if _same(o, w, False)), None)
        if found is None and flipped is not None:
            found = next(((o, True) for o in index.get(flipped, ()) if _same(o, w, True)), None)
        if found is not None:
            yield DuplicatePair(found[0].name, w.name, found[1], w.nbytes, originals.fill())
        else:
            index[own].append(w)


def find_duplicates(graph: ModelGraph, *, max_read_bytes: int | None = None,
                    taken: Mapping[str, tuple[bytes, bytes | None]] | None = None) -> DuplicateReport:
    """The stored tensors of ``graph`` (nested graphs included) that copy another one.

    With ``max_read_bytes``, nothing is read when the candidates hold more than that:
    the report then has no pairs and says how many bytes were skipped.  ``taken``: the
    :func:`samples` of tensors (by ``Weight.key``) already read, which are then read again
    only when their samples agree with another tensor's."""
    candidates = _candidates(_stored(graph))
    needed = sum(w.nbytes for w in candidates)
    if max_read_bytes is not None and needed > max_read_bytes:
        return DuplicateReport((), skipped_bytes=needed)
    return DuplicateReport(tuple(_pairs(candidates, taken or {})))
