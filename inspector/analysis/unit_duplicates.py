"""Which output units of a weight matrix are all zero, and which are exact copies of another.

Two units are duplicates when their incoming weights are byte-for-byte the same (and they
are in the same group of a grouped convolution); units whose weights are all zero are
counted apart and never reported as duplicates.  Two ways find them, with the same answer:

* **sampled keys** (the fast path): each unit's weights at a few fixed positions of its
  fan-in (:data:`SAMPLES`) are hashed; units whose keys no other unit shares cannot be
  duplicates, and only the few that share one are compared in full.  One small gather
  instead of a pass over the kernel, and no per-run Python work, so a model of 100,000
  small tensors or a 32,000-unit head costs milliseconds.  Taken when the units to check
  in full are few (:func:`_within_budget`) and the projections below could not overflow;
* **projections** (the general path, :func:`projected`): each unit gets a fingerprint,
  two random projections of its weights accumulated over chunks; units are sorted by
  fingerprint, runs of near-equal fingerprints become candidates, and candidates are
  compared exactly by a hash of their weights.  One pass over the kernel, used when many
  units share their sampled keys (sparse or heavily quantized kernels).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .weights import KernelLayout

CHUNK = 1 << 18
"""Elements projected at a time: temporaries stay at a few MiB whatever the kernel size."""

SAMPLES = 16
"""Positions of each unit's fan-in that make its sampled key (all of them when the fan-in is smaller)."""

_MIX = np.uint64(0x9E3779B97F4A7C15)
"""Odd 64-bit multiplier of the key hash (the golden-ratio constant)."""

_FLOAT_MAX = {False: float(np.finfo(np.float32).max), True: float(np.finfo(np.float64).max)}
"""The largest float the projections are computed in, by whether the kernel is float64."""

Groups = tuple[tuple[int, ...], ...]


def unit_analysis(x: np.ndarray, layout: KernelLayout, *, magnitude: float, zeros: int) -> tuple[int, Groups]:
    """(number of all-zero units, groups of identical non-zero units) of a kernel.

    ``magnitude`` is the largest absolute value of ``x`` (finite): the sampled path is only
    taken where the general path's projections are finite, so both give the same groups.
    ``zeros`` is the number of values of ``x`` that are 0."""
    if layout.units < 2:
        return 0, ()
    fan = x.size // layout.units
    finite = magnitude * fan * 16 < _FLOAT_MAX[x.dtype == np.float64]  # projections finite: fast paths agree
    if finite and fan == 1 and layout.groups <= 1:
        return single_input(x.reshape(-1), zeros)
    group_id = _group_ids(layout)
    if finite:
        found = sampled(as_3d(np.ascontiguousarray(x), layout.unit_axis), group_id)
        if found is not None:
            return found
    return projected(as_3d(np.ascontiguousarray(x), layout.unit_axis), group_id)


def as_3d(x: np.ndarray, axis: int) -> np.ndarray:
    """View ``x`` as (before, units, after) without copying (``x`` is C-contiguous)."""
    before = math.prod(int(d) for d in x.shape[:axis])
    after = math.prod(int(d) for d in x.shape[axis + 1:])
    return x.reshape(before, x.shape[axis], after)


def _group_ids(layout: KernelLayout) -> np.ndarray:
    """Per unit, its group of a grouped convolution (all 0 when the units do not split evenly)."""
    u = layout.units
    if layout.groups <= 1 or u % layout.groups:
        return np.zeros(u, dtype=np.int64)
    return np.arange(u) // (u // layout.groups)


def single_input(units: np.ndarray, zeros: int) -> tuple[int, Groups]:
    """:func:`unit_analysis` of units of one weight each (a ``(1, units)`` row block): the zero units
    are the ``zeros`` values, and two units are duplicates when their (non-zero, finite) values
    are equal, which for them is the same as equal bytes."""
    ordered = np.sort(units)
    same = (ordered[1:] == ordered[:-1]) & (ordered[1:] != 0)
    if not same.any():  # the common case: no value repeats
        return zeros, ()
    values = np.unique(ordered[1:][same])
    found = [tuple(np.flatnonzero(units == v).tolist()) for v in values.tolist()]
    return zeros, tuple(sorted(found))


# -- the sampled path ---------------------------------------------------------------------------


def _within_budget(checks: int, units: int, fan: int) -> bool:
    """Whether the sampled path may compare ``checks`` units in full (copies of them: at most an eighth of
    the kernel, or 1 Mi values) rather than hand over to the projections."""
    return checks <= max(64, units // 32) and checks * fan <= max(4 * CHUNK, units * fan // 8)


def sampled(x3: np.ndarray, group_id: np.ndarray) -> tuple[int, Groups] | None:
    """:func:`unit_analysis` from sampled keys, or ``None`` when too many units share theirs."""
    a, u, b = x3.shape
    fan = a * b
    if x3.dtype.itemsize not in (1, 2, 4, 8):  # no unsigned integer of its width to hash its bits
        return None
    k = min(fan, SAMPLES)
    pos = np.arange(k, dtype=np.int64) * (fan - 1) // max(k - 1, 1)  # k distinct positions, first and last
    whole = k == fan  # the key is the unit's every weight: nothing to confirm
    keys = np.ascontiguousarray(x3[pos // b, :, pos % b].T)  # (units, samples)
    zero_keys = np.flatnonzero(~keys.any(axis=1))
    shared = _shared(_key_hash(keys, group_id))
    if not whole and not _within_budget(zero_keys.size + shared.size, u, fan):
        return None
    zero = zero_keys if whole else zero_keys[~_gather(x3, zero_keys).any(axis=1)]
    if shared.size < 2:
        return int(zero.size), ()
    members = shared[~np.isin(shared, zero)] if zero.size else shared
    rows = keys[members] if whole else _gather(x3, members)
    return int(zero.size), _equal_rows(members, group_id[members], rows)


def _equal_rows(members: np.ndarray, group_id: np.ndarray, rows: np.ndarray) -> Groups:
    """Groups (sorted) of ``members`` (ascending) whose group and row bytes are equal."""
    if members.size < 2:
        return ()
    prefix = group_id.astype("<i8").view(np.uint8).reshape(members.size, 8)
    table = np.concatenate((prefix, rows.view(np.uint8).reshape(members.size, -1)), axis=1)
    _, inverse, counts = np.unique(table, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    dup = counts[inverse] > 1
    idx, inv = members[dup], inverse[dup]
    if idx.size == 0:
        return ()
    order = np.argsort(inv, kind="stable")  # equal rows stay in ascending unit order
    idx, inv = idx[order], inv[order]
    cuts = np.flatnonzero(np.diff(inv)) + 1
    return tuple(sorted(tuple(part.tolist()) for part in np.split(idx, cuts)))


def _key_hash(keys: np.ndarray, group_id: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of ``keys`` (of its bytes: each value's bits as an unsigned integer)
    and its group: equal rows in one group have equal hashes."""
    bits = keys.view(f"u{keys.dtype.itemsize}")
    h: np.ndarray = group_id.astype(np.uint64) * _MIX
    for column in bits.T:
        np.bitwise_xor(h, column, out=h)
        np.multiply(h, _MIX, out=h)
        np.bitwise_xor(h, h >> np.uint64(29), out=h)
    return h


def _shared(h: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the rows whose hash another row has too."""
    ordered = np.sort(h)
    same = ordered[1:] == ordered[:-1]
    if not same.any():  # the common case: every key is unique
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isin(h, ordered[1:][same]))


def _gather(x3: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The weights of ``units``, one contiguous row each (a copy of ``len(units)`` units)."""
    a, _, b = x3.shape
    return np.ascontiguousarray(np.moveaxis(x3[:, units, :], 1, 0)).reshape(units.size, a * b)


# -- the general path -------------------------------------------------------------------------


def fingerprints(x3: np.ndarray) -> np.ndarray:
    """Per unit of the (before, units, after) view ``x3``: two random projections of its
    incoming weights (``(units, 2)``, float64).

    A float32 kernel whose units sit on the first or last axis is projected with
    one BLAS call on a view (no copy); other dtypes and layouts are projected in
    chunks, so no temporary exceeds ~CHUNK elements.
    """
    a, u, b = x3.shape
    rng = np.random.default_rng(0x5EED)
    if b == 1 or a == 1:
        # units on the last axis: (fan, units); on the first: (units, fan)
        m = x3.reshape(a, u) if b == 1 else x3.reshape(u, b)
        fan = a if b == 1 else b
        work = np.float64 if m.dtype == np.float64 else np.float32
        r = rng.standard_normal((fan, 2)).astype(work)
        if m.dtype == work:
            fp = (m.T @ r) if b == 1 else (m @ r)
        else:
            fp = np.zeros((u, 2), dtype=work)
            step = max(1, CHUNK // max(u, 1))
            for k in range(0, fan, step):
                part = (m[k:k + step] if b == 1 else m[:, k:k + step]).astype(work)
                fp += (part.T @ r[k:k + step]) if b == 1 else (part @ r[k:k + step])
                del part
        return np.asarray(fp, dtype=np.float64)
    fp = np.zeros((u, 2), dtype=np.float64)
    bstep = b if u * b <= CHUNK else max(1, CHUNK // u)
    astep = max(1, CHUNK // (u * bstep))
    for a0 in range(0, a, astep):
        for b0 in range(0, b, bstep):
            block = x3[a0:a0 + astep, :, b0:b0 + bstep].astype(np.float64)
            r = rng.standard_normal((2, block.shape[0], block.shape[2]))
            fp[:, 0] += np.einsum("ajb,ab->j", block, r[0])
            fp[:, 1] += np.einsum("ajb,ab->j", block, r[1])
            del block
    return fp


def projected(x3: np.ndarray, group_id: np.ndarray) -> tuple[int, Groups]:
    """:func:`unit_analysis` by fingerprints: identical units have (up to rounding) identical
    fingerprints; so units are sorted by fingerprint, runs of near-equal fingerprints become
    candidates, and only candidates are compared exactly (by a hash of their weights)."""
    fp = fingerprints(x3)
    scale = float(np.max(np.abs(fp))) if fp.size else 0.0
    tol = 1e-5 * scale
    # A zero unit projects to exactly 0; confirm on the weights themselves.
    zero_cand = np.flatnonzero((fp[:, 0] == 0) & (fp[:, 1] == 0))
    zero = {int(j) for j in zero_cand if not np.any(x3[:, j, :])}
    order = np.lexsort((fp[:, 0], group_id))
    groups: list[tuple[int, ...]] = []
    for i, j in _runs(fp[order, 0], group_id[order], tol):
        members = [k for k in order[i:j].tolist() if k not in zero]
        buckets: dict[bytes, list[int]] = {}
        for idx in _near_second(fp, members, tol):
            digest = hashlib.blake2b(np.ascontiguousarray(x3[:, idx, :]).tobytes(), digest_size=20).digest()
            buckets.setdefault(digest, []).append(idx)
        groups.extend(tuple(sorted(g)) for g in buckets.values() if len(g) > 1)
    return len(zero), tuple(sorted(groups))


def _runs(first: np.ndarray, group: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """(start, end) of every run of at least two sorted units in one group whose neighbouring first
    fingerprints differ by at most ``tol`` (found with numpy: a row-block kernel has thousands of units)."""
    linked = (np.diff(first) <= tol) & (group[1:] == group[:-1])
    starts = np.concatenate(([0], np.flatnonzero(~linked) + 1))
    ends = np.concatenate((starts[1:], [first.size]))
    longer = ends - starts > 1
    return list(zip(starts[longer].tolist(), ends[longer].tolist(), strict=True))


def _near_second(fp: np.ndarray, members: list[int], tol: float) -> list[int]:
    """The ``members`` whose second fingerprint is within ``tol`` of another member's, in order."""
    if len(members) <= 16 or len(members) > 2048:  # small: plain Python is faster; big: no pairwise table
        second_of = {m: float(fp[m, 1]) for m in members}
        return [idx for idx in members
                if any(abs(second_of[idx] - second_of[m]) <= tol for m in members if m != idx)]
    second = fp[members, 1]
    near = np.abs(second[:, None] - second[None, :]) <= tol
    np.fill_diagonal(near, False)
    return [idx for idx, hit in zip(members, near.any(axis=1), strict=True) if hit]
