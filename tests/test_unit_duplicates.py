"""Duplicate and zero units (inspector.analysis.unit_duplicates): the fast paths (sampled keys, units of one
weight) against the general path (projections), which paths are taken, and the chunked moments' buffers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inspector.analysis import unit_duplicates as ud
from inspector.analysis import weights
from inspector.analysis.weights import kernel_layout, tensor_stats
from inspector.ir import Layer, Weight

LAYOUTS = [
    ("Dense", "kernel", (40, 24), {}),
    ("Conv2D", "kernel", (3, 3, 5, 24), {}),
    ("Conv2D", "kernel", (3, 3, 5, 24), {"groups": 3}),
    ("Conv2DTranspose", "kernel", (3, 3, 24, 5), {}),
    ("Conv", "W", (24, 5, 3, 3), {"group": 1}),
    ("Conv", "W", (24, 5, 3, 3), {"group": 4}),
    ("ConvTranspose", "W", (5, 24, 3, 3), {"group": 1}),
    ("Gemm", "B", (24, 40), {"transB": 1}),
    ("MatMul", "B", (40, 24), {}),
    ("MatMul", "B", (1, 24), {}),
    ("MatMul", "B", (3, 24), {}),
]


def _kernel(shape: tuple[int, ...], axis: int, dtype: str, seed: int = 1) -> np.ndarray:
    """A kernel with units 2 = 7 = 20, 11 = 13, 4 and 5 all zero (5 as -0.0), 9 = 16 but for their last weight."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(shape) * 4
    if base.size == 24:  # one weight per unit: distinct non-zero values, even as int8
        base = (rng.permutation(24) + 1.0).reshape(shape) * np.where(np.arange(24) % 2, 1, -1).reshape(shape)
    k = np.ascontiguousarray(np.moveaxis(base, axis, 0).astype(dtype))
    k[7] = k[2]
    k[20] = k[2]
    k[11] = k[13]
    k[4] = 0.0
    k[5] = -0.0
    k[16] = k[9]
    k[16].reshape(-1)[-1] = 100
    return np.ascontiguousarray(np.moveaxis(k, 0, axis))


def _both(x: np.ndarray, lay: Layer, w: Weight) -> tuple[object, object]:
    layout = kernel_layout(lay, w)
    assert layout is not None
    x3 = ud.as_3d(np.ascontiguousarray(x), layout.unit_axis)
    groups = ud._group_ids(layout)
    fan = x.size // layout.units
    fast = (ud.single_input(x.reshape(-1), int(np.count_nonzero(x == 0))) if fan == 1 and layout.groups <= 1
            else ud.sampled(x3, groups))
    return fast, ud.projected(x3, groups)


@pytest.mark.parametrize("ltype,role,shape,cfg", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8"])
def test_fast_paths_agree_with_the_projections(ltype, role, shape, cfg, dtype):
    lay = Layer("l", ltype, config=cfg)
    w = Weight("k", role, shape, dtype)
    layout = kernel_layout(lay, w)
    assert layout is not None and layout.units == 24
    x = _kernel(shape, layout.unit_axis, dtype)
    fast, general = _both(x, lay, w)
    assert fast is not None and fast == general
    zero_units, groups = general
    assert zero_units == 2
    per_group = {1: ((2, 7, 20), (11, 13)), 3: ((2, 7), (11, 13)), 4: ()}  # units of different groups never pair
    assert groups == per_group[layout.groups]


def test_units_equal_on_every_sampled_position_are_compared_in_full():
    rng = np.random.default_rng(4)
    k = rng.standard_normal((200, 10)).astype(np.float32)  # fan-in 200: 16 sampled rows
    k[:, 3] = k[:, 1]
    k[:, 6] = k[:, 1]
    k[101, 6] += 1  # 6 agrees with 1 on the sampled rows (0, 13, 26 …), not on row 101
    x3 = ud.as_3d(k, 1)
    sampled_rows = np.arange(16) * 199 // 15
    assert 101 not in sampled_rows
    found = ud.sampled(x3, np.zeros(10, np.int64))
    assert found == ud.projected(x3, np.zeros(10, np.int64)) == (0, ((1, 3),))


def _spy(monkeypatch) -> list[str]:
    taken: list[str] = []
    for name in ("projected", "sampled", "single_input"):
        real = getattr(ud, name)

        def spy(*args, _real=real, _name=name, **kw):
            taken.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(ud, name, spy)
    return taken


def test_dense_kernels_take_the_sampled_path(monkeypatch):
    taken = _spy(monkeypatch)
    x = _kernel((40, 24), 1, "float32")
    s = tensor_stats(Weight("k", "kernel", x.shape, "float32"), x, layer=Layer("l", "Dense"))
    assert taken == ["sampled"] and s.duplicate_groups == ((2, 7, 20), (11, 13)) and s.zero_units == 2
    taken.clear()
    row = np.array([[0.5, -1.0, 0.5, 0.0, 2.0, -0.0, 2.0]], np.float32)
    s = tensor_stats(Weight("r", "B", row.shape, "float32"), row, layer=Layer("m", "MatMul"))
    assert taken == ["single_input"] and s.duplicate_groups == ((0, 2), (4, 6)) and s.zero_units == 2


def test_sparse_kernels_take_the_general_path(monkeypatch):
    """Most units are zero on every sampled position (a pruned kernel): more to compare in full than the
    budget, so the projections decide, with the same answer."""
    rng = np.random.default_rng(5)
    k = np.zeros((300, 200), np.float32)
    k[7, :] = rng.standard_normal(200)  # row 7 is not sampled: every unit's key is zero
    k[7, 150] = k[7, 20]
    k[:, 40] = 0.0  # a zero unit
    k[7, 41] = 0.0
    assert 7 not in np.arange(16) * 299 // 15
    taken = _spy(monkeypatch)
    s = tensor_stats(Weight("k", "kernel", k.shape, "float32"), k, layer=Layer("l", "Dense"))
    assert taken == ["sampled", "projected"]
    assert s.zero_units == 2 and s.duplicate_groups == ((20, 150),)


def test_values_near_the_dtype_maximum_take_the_general_path(monkeypatch):
    k = _kernel((40, 24), 1, "float32") * np.float32(1e36)  # projections would overflow float32
    taken = _spy(monkeypatch)
    s = tensor_stats(Weight("k", "kernel", k.shape, "float32"), k, layer=Layer("l", "Dense"))
    assert taken == ["projected"] and s.zero_units == 2


def _reference_moments(flat: np.ndarray, is_float: bool) -> dict[str, float]:
    """The chunked moments as they were computed before the buffers (fresh temporaries per chunk)."""
    nan = inf = zeros = over = under = count = 0
    lo, hi, mean, m2 = math.inf, -math.inf, 0.0, 0.0
    work = np.float64 if flat.dtype == np.float64 or not is_float else np.float32
    for start in range(0, flat.size, weights.CHUNK):
        chunk = flat[start:start + weights.CHUNK].astype(work)
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(chunk.sum())
        if is_float and not math.isfinite(total):
            bad = ~np.isfinite(chunk)
            nan += int(np.count_nonzero(np.isnan(chunk)))
            inf += int(np.count_nonzero(bad)) - int(np.count_nonzero(np.isnan(chunk)))
            chunk = chunk[~bad]
            total = float(chunk.sum(dtype=np.float64))
        k = chunk.size
        nonzero = int(np.count_nonzero(chunk))
        zeros += k - nonzero
        cmin, cmax = float(chunk.min()), float(chunk.max())
        lo, hi = min(lo, cmin), max(hi, cmax)
        if is_float:
            over += int(np.count_nonzero(np.abs(chunk) > weights.FLOAT16_MAX))
            under += int(np.count_nonzero(np.abs(chunk) < weights.FLOAT16_TINY)) - (k - nonzero)
        cmean = total / k
        d = chunk - chunk[0]
        cm2 = max(float(np.dot(d, d)) - k * (cmean - float(chunk[0])) ** 2, 0.0)
        delta = cmean - mean
        tot = count + k
        mean += delta * k / tot
        m2 += cm2 + delta * delta * count * k / tot
        count = tot
    return {"nan": nan, "inf": inf, "zeros": zeros, "f16_overflow": over, "f16_underflow": under,
            "minimum": lo, "maximum": hi, "mean": mean, "std": math.sqrt(m2 / count)}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int16"])
def test_moments_in_reused_buffers_are_bit_identical(dtype, threads, monkeypatch):
    """Three chunks and a bit, with zeros, -0.0, values below 2**-24 and above 65504, and (floats) a
    non-finite chunk: every count and float equals the fresh-temporaries computation bit for bit, whether
    one thread reduces every chunk or a second thread the second half."""
    halves: list[tuple[int, int]] = []
    real = weights._reduce_range

    def spy(flat, is_float, start, stop):
        halves.append((start, stop))
        return real(flat, is_float, start, stop)

    monkeypatch.setattr(weights, "_reduce_range", spy)
    monkeypatch.setattr(weights, "_cores", lambda: threads)
    monkeypatch.setattr(weights, "PARALLEL_CHUNKS", 3)
    rng = np.random.default_rng(6)
    a = rng.standard_normal(3 * weights.CHUNK + 1001) * 0.02 + 0.5
    a[::977] = 0.0
    if dtype != "int16":
        a[5::1009] = -0.0
        a[7::1013] = 1e-9
        a[11::50_000] = 7e4 if dtype != "float16" else 6e4
        a[weights.CHUNK + 3] = np.nan
        a[weights.CHUNK + 9] = -np.inf
    else:
        a = a * 1000
    flat = a.astype(dtype)
    got = weights._moments(flat, flat.dtype.kind == "f")
    want = _reference_moments(flat, flat.dtype.kind == "f")
    assert got == want
    small = flat[:weights.CHUNK // 2]  # one chunk: fresh temporaries, no buffers
    assert weights._moments(small, flat.dtype.kind == "f") == _reference_moments(small, flat.dtype.kind == "f")
    n = flat.size
    assert sorted(halves) == ([(0, n)] if threads == 1 else [(0, 2 * weights.CHUNK), (2 * weights.CHUNK, n)])
    if dtype == "float32":
        assert got["nan"] == 1 and got["inf"] == 1 and got["f16_underflow"] > 0 and got["f16_overflow"] > 0
        assert got["zeros"] > 0


def test_copies_for_full_comparison_stay_small(monkeypatch):
    """64 identical units of 20,000 weights: few units, but comparing them in full would copy the whole
    kernel, so the projections (which read it in chunks) decide."""
    unit = np.random.default_rng(7).standard_normal((20_000, 1)).astype(np.float32)
    k = np.repeat(unit, 64, axis=1)
    taken = _spy(monkeypatch)
    s = tensor_stats(Weight("k", "kernel", k.shape, "float32"), k, layer=Layer("l", "Dense"))
    assert taken == ["sampled", "projected"] and s.duplicate_groups == (tuple(range(64)),)
    taken.clear()
    small = k[:2_000]  # the same kernel with 2,000 inputs: a copy of 128,000 values is fine
    s = tensor_stats(Weight("s", "kernel", small.shape, "float32"), small, layer=Layer("l", "Dense"))
    assert taken == ["sampled"] and s.duplicate_groups == (tuple(range(64)),)
