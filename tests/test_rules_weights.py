"""Streaming weight statistics (inspector.analysis.weights): numbers, duplicates, reads, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from inspector.analysis.weights import analyze, kernel_layout, tensor_stats
from inspector.ir import Inbound, Layer, ModelGraph, Weight


def _weight(name: str, role: str, array: np.ndarray, reads: list | None = None, key: str = "") -> Weight:
    def read():
        if reads is not None:
            reads.append(name)
        return array

    return Weight(name, role, tuple(array.shape), str(array.dtype), key=key or name, reader=read)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8"])
def test_statistics_match_numpy(dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(700_001) * 3 + 1.5)
    a = a.astype(dtype) if dtype != "int8" else np.clip(a * 10, -128, 127).astype(dtype)
    s = tensor_stats(Weight("t", "bias", a.shape, dtype), a)
    ref = a.astype(np.float64)
    assert s.size == a.size and s.finite
    assert s.minimum == ref.min() and s.maximum == ref.max()
    assert s.mean == pytest.approx(ref.mean(), rel=1e-6, abs=1e-9)
    assert s.std == pytest.approx(ref.std(), rel=1e-5)
    assert s.zeros == int(np.count_nonzero(ref == 0))


def test_non_finite_and_float16_range():
    a = np.array([np.nan, 1.0, np.inf, -np.inf, 70000.0, -1e6, 1e-9, 0.0, 3.0], np.float32)
    s = tensor_stats(Weight("t", "kernel", a.shape, "float32"), a)
    assert (s.nan, s.inf) == (1, 2)
    finite = a[np.isfinite(a)].astype(np.float64)
    assert s.minimum == finite.min() and s.maximum == finite.max()
    assert s.mean == pytest.approx(finite.mean())
    assert s.f16_overflow == 2 and s.f16_underflow == 1 and s.zeros == 1
    assert not s.constant and not s.finite


def test_constant_tensor():
    s = tensor_stats(Weight("t", "kernel", (3, 4), "float32"), np.full((3, 4), 0.25, np.float32))
    assert s.constant and s.is_constant_value(0.25) and s.std == 0.0
    assert tensor_stats(Weight("z", "kernel", (5,), "float32"), np.zeros(5, np.float32)).all_zero


@pytest.mark.parametrize("ltype,role,shape,cfg", [
    ("Dense", "kernel", (40, 24), {}),
    ("Conv2D", "kernel", (3, 3, 5, 24), {}),
    ("Conv2DTranspose", "kernel", (3, 3, 24, 5), {}),
    ("Conv", "W", (24, 5, 3, 3), {"group": 1}),
    ("ConvTranspose", "W", (5, 24, 3, 3), {"group": 1}),
    ("Gemm", "B", (24, 40), {"transB": 1}),
    ("MatMul", "B", (40, 24), {}),
])
def test_duplicate_units_for_every_layout(ltype, role, shape, cfg):
    rng = np.random.default_rng(1)
    lay = Layer("l", ltype, config=cfg)
    w = Weight("k", role, shape, "float32")
    layout = kernel_layout(lay, w)
    assert layout is not None and layout.units == 24
    k = np.moveaxis(rng.standard_normal(shape).astype(np.float32), layout.unit_axis, 0).copy()
    k[7] = k[2]
    k[20] = k[2]
    k[11] = k[13]
    k[4] = 0.0
    k[5] = 0.0
    k = np.ascontiguousarray(np.moveaxis(k, 0, layout.unit_axis))
    for values in (k, k.astype(np.float16)):
        s = tensor_stats(w, values, layer=lay)
        assert s.duplicate_groups == ((2, 7, 20), (11, 13)) and s.zero_units == 2


def test_each_tensor_read_once_and_bias_splits_duplicates():
    rng = np.random.default_rng(2)
    reads: list[str] = []
    k = rng.standard_normal((8, 6)).astype(np.float32)
    k[:, 1] = k[:, 0]
    k[:, 2] = k[:, 0]
    b = np.array([0.5, 0.5, 0.1, 0, 0, 0], np.float32)
    shared = _weight("shared/kernel", "kernel", rng.standard_normal((6, 6)).astype(np.float32), reads)
    layers = [
        Layer("input", "InputLayer", inbound=[[]], node_shapes=[[(None, 8)]]),
        Layer("d1", "Dense", inbound=[[Inbound("input")]], node_shapes=[[(None, 6)]],
              weights=[_weight("d1/bias", "bias", b, reads), _weight("d1/kernel", "kernel", k, reads)]),
        Layer("d2", "Dense", inbound=[[Inbound("d1")]], node_shapes=[[(None, 6)]], weights=[shared]),
        Layer("d3", "Dense", inbound=[[Inbound("d2")]], node_shapes=[[(None, 6)]], weights=[shared]),
    ]
    graph = ModelGraph("m", "keras", layers=layers, inputs=[Inbound("input")], outputs=[Inbound("d3")])
    report = analyze(graph)
    assert sorted(reads) == ["d1/bias", "d1/kernel", "shared/kernel"]   # once each, shared once
    assert report.tensors["d1/kernel"].duplicate_groups == ((0, 1, 2),)
    assert report.layer("d1").duplicate_groups == ((0, 1),)               # unit 2 has another bias


def test_memory_stays_near_the_largest_tensor():
    big = np.random.default_rng(3).standard_normal((1024, 4096)).astype(np.float32)  # 16 MiB
    k = Layer("big", "Dense", weights=[Weight("big/kernel", "kernel", big.shape, "float32",
                                              reader=lambda: big.copy())])
    graph = ModelGraph("m", "keras", layers=[k])
    tracemalloc.start()
    try:
        analyze(graph)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the read copy itself (1x) plus bounded chunk temporaries: well under 2x
    assert peak < 1.5 * big.nbytes, peak / big.nbytes
