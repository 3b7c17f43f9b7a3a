"""Streaming per-tensor statistics for the lint rules.

Every stored tensor is read once, one at a time, and reduced to a few numbers:
non-finite counts, min/max/mean/std of the finite values, exact zeros, whether
every value is the same, how many values fall outside the float16 range, and,
for the weight matrices of layers whose output units all see the same inputs
(Dense, convolutions, Gemm …), which output units are exact duplicates.  The
tensor itself is dropped before the next one is read, and the reductions work
on bounded chunks, so the memory a lint needs stays near the size of the
largest tensor however large the model is.

Duplicate units are found without copying the kernel: each unit is given a
fingerprint (the dot product of its incoming weights with one fixed random
vector, accumulated over chunks), only units whose fingerprints agree are
compared exactly, and the candidates are then split by their biases, because
two units are interchangeable only if weights *and* bias agree.

The layout of a kernel (which axis holds the output units, its fan-in and
fan-out) depends on the layer kind and the framework: :func:`kernel_layout`
knows Keras's ``(…, in, out)`` kernels, transposed convolutions, depthwise and
separable convolutions, and ONNX's ``(out, in/groups, …)`` convolution weights,
``Gemm`` (``transB``) and ``MatMul`` operands.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..errors import InspectorError
from ..ir import Layer, ModelGraph, Weight

CHUNK = 1 << 18
"""Elements reduced at a time: temporaries stay at a few MiB whatever the tensor size."""

FLOAT16_MAX = 65504.0
FLOAT16_TINY = 2.0 ** -24
"""The smallest positive float16 (subnormal): smaller magnitudes round to zero."""

KERNEL_ROLES = frozenset({"kernel", "pointwise_kernel", "depthwise_kernel"})
"""Keras roles that name a weight matrix.  Biases, gamma/beta, moving statistics,
embeddings and recurrent kernels are not kernels for the symmetry rules."""

# ONNX operand names (the loader's roles are the operator schema's input names).
ONNX_KERNEL_OPERANDS = {"Conv": "W", "ConvTranspose": "W", "QLinearConv": "w", "ConvInteger": "w",
                        "Gemm": "B", "MatMul": "B", "MatMulInteger": "B", "QLinearMatMul": "b"}
ONNX_BIAS_OPERANDS = {"Conv": "B", "ConvTranspose": "B", "QLinearConv": "B", "Gemm": "C"}

RECURRENT_TYPES = frozenset({"SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                             "RNN", "Bidirectional", "SimpleRNNCell", "LSTMCell", "GRUCell",
                             "CuDNNLSTM", "CuDNNGRU", "LSTM_ONNX", "Scan"})
KERAS_CONV = frozenset({"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D"})
KERAS_CONV_T = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                          "Convolution2DTranspose", "Convolution3DTranspose"})
KERAS_DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
KERAS_SEPARABLE = frozenset({"SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
                             "SeparableConvolution2D"})
ONNX_CONV = frozenset({"Conv", "QLinearConv", "ConvInteger"})
ONNX_CONV_T = frozenset({"ConvTranspose"})
ONNX_MATMUL = frozenset({"MatMul", "MatMulInteger", "QLinearMatMul"})


@dataclass(frozen=True, slots=True)
class KernelLayout:
    """How a weight matrix maps inputs to output units."""

    unit_axis: int
    """Axis (non-negative) that indexes the output units."""
    units: int
    fan_in: int
    """Inputs each output unit sums over."""
    fan_out: int
    """Outputs each input contributes to."""
    groups: int = 1
    """Units in different groups see different inputs (grouped convolution)."""
    depthwise: bool = False
    """Each unit sees its own input channel only: identical filters are not symmetric."""
    recurrent: bool = False


@dataclass(frozen=True, slots=True)
class TensorStats:
    """What one read of one tensor tells the rules."""

    key: str
    name: str
    role: str
    layer: str
    """Path of the (first) layer that owns the tensor."""
    shape: tuple[int, ...]
    dtype: str
    size: int
    numeric: bool
    """False for strings and other values without arithmetic (no statistics)."""
    nan: int = 0
    inf: int = 0
    minimum: float = math.nan
    maximum: float = math.nan
    mean: float = math.nan
    std: float = math.nan
    zeros: int = 0
    f16_overflow: int = 0
    """Finite values with magnitude above 65504 (they become inf in float16)."""
    f16_underflow: int = 0
    """Non-zero values with magnitude below 2**-24 (they become 0 in float16)."""
    layout: KernelLayout | None = None
    zero_units: int = 0
    """Kernel units whose incoming weights are all zero."""
    duplicate_groups: tuple[tuple[int, ...], ...] = ()
    """Groups of kernel units with identical incoming weights (biases not yet compared)."""
    placeholder: bool = False
    """The tensor is generated by the graph (e.g. ONNX ``ConstantOfShape``), not stored."""

    @property
    def finite(self) -> bool:
        return self.nan == 0 and self.inf == 0

    @property
    def constant(self) -> bool:
        """Every value is the same finite number (and there is more than one value)."""
        return self.numeric and self.size > 1 and self.finite and self.minimum == self.maximum

    @property
    def all_zero(self) -> bool:
        return self.numeric and self.size > 0 and self.zeros == self.size

    def is_constant_value(self, value: float) -> bool:
        return self.numeric and self.size > 0 and self.finite and self.minimum == self.maximum == value


@dataclass(frozen=True, slots=True)
class LayerStats:
    """Per-layer results that need several tensors (kernel and bias)."""

    layer: str
    duplicate_groups: tuple[tuple[int, ...], ...] = ()
    """Groups of output units identical in weights *and* bias."""


@dataclass(frozen=True)
class WeightReport:
    """Statistics of every stored tensor, by weight key, plus per-layer results."""

    tensors: dict[str, TensorStats] = field(default_factory=dict)
    layers: dict[str, LayerStats] = field(default_factory=dict)
    unreadable: tuple[tuple[str, str], ...] = ()
    """(weight name, reason) for tensors whose values could not be read."""
    largest_bytes: int = 0

    def of(self, weight: Weight) -> TensorStats | None:
        return self.tensors.get(weight.key)

    def layer(self, path: str) -> LayerStats | None:
        return self.layers.get(path)


# -- layouts -----------------------------------------------------------------------


def _prod(values: Iterable[int]) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


def _int(value, default: int = 1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def weight_kind(layer: Layer | None, weight: Weight) -> str | None:
    """``"kernel"`` for a layer's weight matrix, ``"bias"`` for its bias, else ``None``
    (Keras roles, or the ONNX operand the tensor feeds)."""
    if layer is None:
        return None
    if weight.role in KERNEL_ROLES:
        return "kernel"
    if weight.role == "bias":
        return "bias"
    if ONNX_KERNEL_OPERANDS.get(layer.type) == weight.role:
        return "kernel"
    if ONNX_BIAS_OPERANDS.get(layer.type) == weight.role:
        return "bias"
    return None


def kernel_layout(layer: Layer, weight: Weight) -> KernelLayout | None:
    """Where the output units of ``weight`` are, or ``None`` when it is not a weight
    matrix whose units share their inputs (biases, BN parameters, embeddings,
    attention kernels with several unit axes …)."""
    shape = tuple(int(d) for d in weight.shape)
    if not shape or weight_kind(layer, weight) != "kernel":
        return None
    t = layer.type
    cfg = layer.config or {}
    if t in RECURRENT_TYPES:
        if len(shape) == 2 and weight.role == "kernel":
            return KernelLayout(1, shape[1], shape[0], shape[1], recurrent=True)
        return None
    rank = len(shape)
    if t == "Dense" and rank == 2:
        return KernelLayout(1, shape[1], shape[0], shape[1])
    if t in KERAS_CONV and rank >= 3:
        rf = _prod(shape[:-2])
        groups = max(_int(cfg.get("groups", 1)), 1)
        out = shape[-1]
        return KernelLayout(rank - 1, out, shape[-2] * rf, (out // groups or out) * rf, groups=groups)
    if t in KERAS_CONV_T and rank >= 3:
        rf = _prod(shape[:-2])
        return KernelLayout(rank - 2, shape[-2], shape[-1] * rf, shape[-2] * rf)
    if (t in KERAS_DEPTHWISE or (t in KERAS_SEPARABLE and weight.role == "depthwise_kernel")) and rank >= 3:
        rf = _prod(shape[:-2])
        return KernelLayout(rank - 1, shape[-2] * shape[-1], rf, rf * shape[-1], depthwise=True)
    if t in KERAS_SEPARABLE and weight.role == "pointwise_kernel" and rank >= 3:
        return KernelLayout(rank - 1, shape[-1], shape[-2], shape[-1])
    if t in ONNX_CONV and rank >= 3:
        rf = _prod(shape[2:])
        groups = max(_int(cfg.get("group", 1)), 1)
        out = shape[0]
        depthwise = groups > 1 and shape[1] == 1
        return KernelLayout(0, out, shape[1] * rf, (out // groups or out) * rf, groups=groups,
                            depthwise=depthwise)
    if t in ONNX_CONV_T and rank >= 3:
        rf = _prod(shape[2:])
        groups = max(_int(cfg.get("group", 1)), 1)
        return KernelLayout(1, shape[1] * groups, shape[0] // groups * rf, shape[1] * rf, groups=groups)
    if t == "Gemm" and rank == 2:
        if _int(cfg.get("transB", 0), 0):
            return KernelLayout(0, shape[0], shape[1], shape[0])
        return KernelLayout(1, shape[1], shape[0], shape[1])
    if t in ONNX_MATMUL and rank == 2:
        return KernelLayout(1, shape[1], shape[0], shape[1])
    return None


# -- one tensor ----------------------------------------------------------------------


def _moments(flat: np.ndarray, is_float: bool) -> dict:
    """Chunked reductions over a flat array: no temporaries larger than a chunk.

    The variance is accumulated about a shift (the first finite value of each
    chunk) and merged across chunks (Chan et al.), so it stays accurate for
    tensors whose mean dwarfs their spread (moving variances, BN gammas).
    """
    n = flat.size
    nan = inf = zeros = over = under = 0
    count = 0
    lo, hi = math.inf, -math.inf
    mean = 0.0
    m2 = 0.0
    work = np.float64 if flat.dtype == np.float64 or not is_float else np.float32
    for start in range(0, n, CHUNK):
        chunk = flat[start:start + CHUNK]
        if chunk.dtype != work:
            chunk = chunk.astype(work)
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(chunk.sum())
        if is_float and not math.isfinite(total):
            bad = ~np.isfinite(chunk)
            n_nan = int(np.count_nonzero(np.isnan(chunk)))
            nan += n_nan
            inf += int(np.count_nonzero(bad)) - n_nan
            chunk = chunk[~bad]
            total = float(chunk.sum(dtype=np.float64))
        elif not math.isfinite(total):  # a float32 sum of huge finite values overflowed
            total = float(chunk.sum(dtype=np.float64))
        k = chunk.size
        if k == 0:
            continue
        nonzero = int(np.count_nonzero(chunk))
        zeros += k - nonzero
        cmin, cmax = float(chunk.min()), float(chunk.max())
        lo, hi = min(lo, cmin), max(hi, cmax)
        if is_float:
            if cmax > FLOAT16_MAX or cmin < -FLOAT16_MAX:
                over += int(np.count_nonzero(np.abs(chunk) > FLOAT16_MAX))
            if nonzero:
                under += int(np.count_nonzero(np.abs(chunk) < FLOAT16_TINY)) - (k - nonzero)
        cmean = total / k
        shift = chunk[0]
        d = chunk - shift
        dm = cmean - float(shift)
        with np.errstate(over="ignore", invalid="ignore"):  # values near the dtype's max: inf is the answer
            cm2 = max(float(np.dot(d, d)) - k * dm * dm, 0.0)
        del d
        delta = cmean - mean
        tot = count + k
        mean += delta * k / tot
        m2 += cm2 + delta * delta * count * k / tot
        count = tot
    return {
        "nan": nan, "inf": inf, "zeros": zeros, "f16_overflow": over, "f16_underflow": under,
        "minimum": lo if count else math.nan, "maximum": hi if count else math.nan,
        "mean": mean if count else math.nan,
        "std": math.sqrt(m2 / count) if count else math.nan,
    }


def _as_3d(x: np.ndarray, axis: int) -> np.ndarray:
    """View ``x`` as (before, units, after) without copying (``x`` is C-contiguous)."""
    before = _prod(x.shape[:axis])
    after = _prod(x.shape[axis + 1:])
    return x.reshape(before, x.shape[axis], after)


def _fingerprints(x: np.ndarray, layout: KernelLayout) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: two random projections of its incoming weights (``(units, 2)``) and
    the 3-D view ``(before, units, after)`` of the kernel used to compare units.

    A float32 kernel whose units sit on the first or last axis is projected with
    one BLAS call on a view (no copy); other dtypes and layouts are projected in
    chunks, so no temporary exceeds ~CHUNK elements.
    """
    x3 = _as_3d(np.ascontiguousarray(x), layout.unit_axis)
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
        return np.asarray(fp, dtype=np.float64), x3
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
    return fp, x3


def _unit_analysis(x: np.ndarray, layout: KernelLayout) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """(number of all-zero units, groups of identical units) of a kernel.

    Identical units have (up to rounding) identical fingerprints; so units are
    sorted by fingerprint, runs of near-equal fingerprints become candidates, and
    only candidates are compared exactly (by a hash of their weights).
    """
    u = layout.units
    if u < 2:
        return 0, ()
    fp, x3 = _fingerprints(x, layout)
    scale = float(np.max(np.abs(fp))) if fp.size else 0.0
    tol = 1e-5 * scale
    # A zero unit projects to exactly 0; confirm on the weights themselves.
    zero_cand = np.flatnonzero((fp[:, 0] == 0) & (fp[:, 1] == 0))
    zero = {int(j) for j in zero_cand if not np.any(x3[:, j, :])}
    per_group = u // layout.groups if layout.groups > 1 and u % layout.groups == 0 else u
    group_id = np.arange(u) // per_group
    order = np.lexsort((fp[:, 0], group_id))
    groups: list[tuple[int, ...]] = []
    i = 0
    while i < u:
        j = i + 1
        while (j < u and group_id[order[j]] == group_id[order[i]]
               and fp[order[j], 0] - fp[order[j - 1], 0] <= tol):
            j += 1
        if j - i > 1:
            members = [int(k) for k in order[i:j] if int(k) not in zero]
            buckets: dict[bytes, list[int]] = {}
            for idx in members:
                if any(abs(fp[idx, 1] - fp[m, 1]) <= tol for m in members if m != idx):
                    digest = hashlib.blake2b(np.ascontiguousarray(x3[:, idx, :]).tobytes(),
                                             digest_size=20).digest()
                    buckets.setdefault(digest, []).append(idx)
            groups.extend(tuple(sorted(g)) for g in buckets.values() if len(g) > 1)
        i = j
    return len(zero), tuple(sorted(groups))


def tensor_stats(weight: Weight, values: np.ndarray, *, layer: Layer | None = None,
                 layer_path: str = "", placeholder: bool = False) -> TensorStats:
    """Reduce one tensor to its :class:`TensorStats`."""
    arr = np.asarray(values)
    if arr.dtype.kind == "V" and str(arr.dtype).startswith(("bfloat16", "float8", "float4")):
        arr = arr.astype(np.float32)  # ml_dtypes' low-precision floats: reduce them as float32
    kind = arr.dtype.kind
    numeric = kind in "fiub" and arr.dtype.names is None
    base = dict(key=weight.key, name=weight.name, role=weight.role, layer=layer_path,
                shape=tuple(int(d) for d in arr.shape), dtype=str(arr.dtype), size=int(arr.size),
                numeric=numeric, placeholder=placeholder)
    if not numeric or arr.size == 0:
        return TensorStats(**base)
    if kind == "b":
        arr = arr.view(np.uint8)
    flat = arr.reshape(-1)
    moments = _moments(flat, kind == "f")
    layout = kernel_layout(layer, weight) if layer is not None else None
    zero_units, dups = 0, ()
    if (layout is not None and not layout.depthwise and not layout.recurrent and moments["nan"] == 0
            and moments["inf"] == 0 and moments["minimum"] != moments["maximum"]
            and layout.units == arr.shape[layout.unit_axis]):
        zero_units, dups = _unit_analysis(arr, layout)
    return TensorStats(**base, **moments, layout=layout, zero_units=zero_units, duplicate_groups=dups)


def _bias_split(groups: tuple[tuple[int, ...], ...], bias: np.ndarray | None) -> tuple[tuple[int, ...], ...]:
    if bias is None:
        return groups
    flat = np.asarray(bias).reshape(-1)
    out = []
    for g in groups:
        if max(g) >= flat.size:
            continue
        buckets: dict[bytes, list[int]] = {}
        for idx in g:
            buckets.setdefault(flat[idx:idx + 1].tobytes(), []).append(idx)
        out.extend(tuple(v) for v in buckets.values() if len(v) > 1)
    return tuple(sorted(out))


# -- the whole graph -------------------------------------------------------------------


def is_placeholder(weight: Weight) -> bool:
    """A tensor the graph generates from one fill value (ONNX ``ConstantOfShape``)
    instead of storing it: the file holds no weights for it.  Test models whose
    weights were stripped (the ONNX "light" zoo models) look like this; their
    kernels are constant by construction, not by a training mistake."""
    reader = weight.reader
    if reader is None:
        return False
    return bool(getattr(reader, "generated", False)) or \
        getattr(reader, "__qualname__", "").startswith("_fill_reader")


def analyze(graph: ModelGraph) -> WeightReport:
    """Read every stored tensor of ``graph`` once and reduce it to statistics.

    Tensors are read in graph order, one at a time; a tensor shared by several
    layers is read once (its statistics are keyed by ``Weight.key``).  A tensor
    that cannot be read (values not stored, broken file) is listed in
    ``unreadable`` and skipped: lint reports what it can.
    """
    tensors: dict[str, TensorStats] = {}
    layers: dict[str, LayerStats] = {}
    unreadable: list[tuple[str, str]] = []
    largest = 0
    for path, lay in graph.walk():
        # Kernels first, so a layer's duplicate groups can be split by its bias.
        kinds = {id(w): weight_kind(lay, w) for w in lay.weights}
        own = sorted(lay.weights, key=lambda w: (kinds[id(w)] != "kernel", kinds[id(w)] != "bias"))
        kernel_groups: tuple[tuple[int, ...], ...] | None = None
        bias: np.ndarray | None = None
        for w in own:
            if w.quantization:
                continue
            stats = tensors.get(w.key)
            values = None
            if stats is None:
                if w.reader is None:
                    unreadable.append((w.name, "values not stored in the file"))
                    continue
                try:
                    values = w.read()
                except InspectorError as exc:
                    unreadable.append((w.name, str(exc)))
                    continue
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    unreadable.append((w.name, f"{type(exc).__name__}: {exc}"))
                    continue
                largest = max(largest, int(getattr(values, "nbytes", 0)))
                stats = tensor_stats(w, values, layer=lay, layer_path=path,
                                     placeholder=is_placeholder(w))
                tensors[w.key] = stats
            lay_out = stats.layout
            if (lay_out is not None and not lay_out.depthwise and not lay_out.recurrent
                    and kernel_groups is None):
                kernel_groups = stats.duplicate_groups
            elif kinds[id(w)] == "bias" and kernel_groups:
                if values is None and w.reader is not None:
                    try:
                        values = w.read()
                    except Exception:  # noqa: BLE001 - a bias we cannot read splits nothing
                        values = None
                bias = None if values is None else np.asarray(values)
            del values
        if kernel_groups:
            layers[path] = LayerStats(path, _bias_split(kernel_groups, bias))
        bias = None
    return WeightReport(tensors, layers, tuple(unreadable), largest)
