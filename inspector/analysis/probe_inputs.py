"""The batch the activation probe feeds a model: read from a file or drawn to fit.

``--inputs FILE``
    ``.npy``: one array, for a model with one input.  ``.npz``: one array per
    input, keyed by the input's name, or positionally (``arr_0``, ``arr_1`` … as
    ``numpy.savez(file, a, b)`` writes them).  Read with ``allow_pickle=False``:
    an inputs file is data, never code.  The first axis is the batch; the
    other axes must match the model's known dimensions; values must be finite.
    The batch is fed ``--batch-size`` samples at a time (or the model's fixed
    batch size).

Synthetic inputs (no file), ``--batch-size`` samples drawn with ``--seed``:
    * float inputs: **standard normal** values (what a standardized input looks
      like), except inputs **the model rescales itself from pixel units**, which
      get uniform integer values 0..255 (as floats): the first layer that changes
      values after the input (looking through reshapes, casts, padding, crops,
      resizing and augmentation layers, and into a nested model) is

      - a Keras ``Rescaling`` layer with ``|scale| <= 1/100`` (``1/255``,
        ``1/127.5``), or a ``Normalization`` layer whose variance says it
        standardizes raw pixels (mean standard deviation >= 10), or
      - an ONNX ``Mul`` by constants ``<= 1/100``, ``Div`` by constants
        ``>= 100``, or ``Sub``/``Add`` of a constant of magnitude ``>= 10``
        (mean subtraction in pixel units, as in caffe-style preprocessing);
    * ``uint8`` inputs: 0..255;
    * integer inputs that index an embedding (a Keras ``Embedding``, an ONNX
      ``Gather`` from a constant table): uniform in ``0 .. rows-1``;
    * anything else (other integers, strings) cannot be guessed: pass ``--inputs``.

    Every dimension but the batch must be known; an input with an unknown
    dimension (``(None, None, 3)`` images, variable-length sequences) needs
    ``--inputs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ModelLoadError, UsageError
from ..ir import Layer, ModelGraph
from .probe import InputInfo

PASS_THROUGH = frozenset({
    "InputLayer", "Reshape", "Flatten", "Permute", "Cast", "Identity", "Transpose", "Squeeze", "Unsqueeze",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "Pad",
    "Resizing", "Resize", "CenterCrop", "Dropout", "GaussianNoise", "GaussianDropout", "SpatialDropout2D",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop", "RandomContrast",
    "RandomBrightness", "RandomHeight", "RandomWidth", "Masking",
})
"""Layers that do not change the range of values (at inference)."""

PIXEL_SCALE = 1 / 100
PIXEL_STD = 10.0
PIXEL_OFFSET = 10.0


@dataclass(frozen=True)
class InputSpec:
    """One model input as the framework declares it."""

    name: str
    shape: tuple[Any, ...]
    """Dimensions, the batch first: ints, ``None`` (or a symbolic name) when unknown."""
    dtype: str
    """A numpy dtype name (``float32``, ``int64``, ``uint8``, ``bool``, ``str``…)."""
    layer: str | None = None
    """The graph's input layer for it (for the pixel and embedding rules)."""


@dataclass
class InputBatch:
    """The whole batch, one array per input, and how to cut it into chunks."""

    arrays: list[Any]
    infos: list[InputInfo]
    samples: int
    chunk: int
    notes: list[str] = field(default_factory=list)

    def chunks(self) -> Iterator[list[Any]]:
        for start in range(0, self.samples, self.chunk):
            yield [a[start:start + self.chunk] for a in self.arrays]

    @property
    def count(self) -> int:
        return math.ceil(self.samples / self.chunk) if self.samples else 0


def make_batch(graph: ModelGraph, specs: Sequence[InputSpec], *, inputs: str | Path | None,
               batch_size: int, seed: int) -> InputBatch:
    """The batch to feed: read from ``inputs`` or synthetic (see the module docs)."""
    if not specs:
        raise ModelLoadError("the model declares no input to feed")
    fixed = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int) and s.shape[0] > 0}
    if len(fixed) > 1:
        raise ModelLoadError(f"the model's inputs declare different fixed batch sizes ({sorted(fixed)})")
    fixed_batch = fixed.pop() if fixed else None
    if inputs is not None:
        return _from_file(Path(inputs), specs, batch_size=batch_size, fixed_batch=fixed_batch)
    return _synthetic(graph, specs, batch_size=batch_size, seed=seed, fixed_batch=fixed_batch)


def _known_dims(spec: InputSpec, *, what: str) -> tuple[int, ...]:
    dims = spec.shape[1:]
    if any(not isinstance(d, int) or d < 0 for d in dims):
        shown = "(" + ", ".join("None" if d is None else str(d) for d in spec.shape) + ")"
        raise UsageError(f"input {spec.name!r} has unknown dimensions {shown}: {what}; pass a batch with "
                         "--inputs FILE.npy (or .npz with one array per input)")
    return tuple(dims)


def _synthetic(graph: ModelGraph, specs: Sequence[InputSpec], *, batch_size: int, seed: int,
               fixed_batch: int | None) -> InputBatch:
    import numpy as np

    rng = np.random.default_rng(seed)
    chunk = fixed_batch or batch_size
    samples = math.ceil(batch_size / chunk) * chunk
    arrays, infos, notes = [], [], []
    if fixed_batch and samples != batch_size:
        notes.append(f"the model's batch size is fixed at {fixed_batch}: {samples} samples were drawn")
    for spec in specs:
        dims = _known_dims(spec, what="synthetic data needs every dimension but the batch")
        shape = (samples, *dims)
        dtype = np.dtype(_numpy_dtype(spec))
        layer = _input_layer(graph, spec)
        if dtype.kind == "f":
            if layer is not None and expects_pixels(graph, layer):
                arr, source = rng.integers(0, 256, size=shape).astype(dtype), "pixels"
            else:
                arr, source = rng.standard_normal(size=shape).astype(dtype), "normal"
        elif dtype == np.uint8:
            arr, source = rng.integers(0, 256, size=shape, dtype=np.uint8), "pixels"
        elif dtype.kind in "iu":
            rows = embedding_rows(graph, layer) if layer is not None else None
            if not rows:
                raise UsageError(f"input {spec.name!r} is {dtype.name}: inspector cannot guess valid values "
                                 "(only indices into an embedding); pass a batch with --inputs FILE.npy|.npz")
            hi = min(rows, int(np.iinfo(dtype).max) + 1)
            arr, source = rng.integers(0, hi, size=shape).astype(dtype), "integers"
        elif dtype.kind == "b":
            arr, source = rng.integers(0, 2, size=shape).astype(bool), "integers"
        else:
            raise UsageError(f"input {spec.name!r} is {dtype.name}: pass a batch with --inputs FILE.npy|.npz")
        arrays.append(arr)
        infos.append(InputInfo(name=spec.name, shape=shape, dtype=dtype.name, source=source))
    return InputBatch(arrays=arrays, infos=infos, samples=samples, chunk=chunk, notes=notes)


def _numpy_dtype(spec: InputSpec) -> str:
    d = (spec.dtype or "float32").lower()
    if d in ("string", "str", "object"):
        return "str"
    if d == "bfloat16":
        return "float32"
    return d


def _from_file(path: Path, specs: Sequence[InputSpec], *, batch_size: int, fixed_batch: int | None) -> InputBatch:
    import numpy as np

    if not path.is_file():
        raise UsageError(f"{path}: no such inputs file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = "it holds Python objects, which are never unpickled" if "pickle" in str(exc) else str(exc)[:80]
        raise UsageError(f"{path}: cannot read the inputs ({msg}); save plain arrays with numpy.save/savez") from None
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: not a .npy/.npz file ({str(exc)[:80]})") from None
    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise UsageError(f"{path}: one array for a model with {len(specs)} inputs "
                             f"({', '.join(s.name for s in specs)}); use an .npz with one array per input")
        given = {specs[0].name: loaded}
    else:
        with loaded:
            data = {k: loaded[k] for k in loaded.files}
        given = _match_npz(path, data, specs)
    arrays, infos = [], []
    samples = None
    for spec in specs:
        arr = given[spec.name]
        dims = tuple(spec.shape[1:])
        if arr.ndim != len(spec.shape):
            raise UsageError(f"{path}: input {spec.name!r} needs {len(spec.shape)} dimensions "
                             f"(batch first, model shape {_shape(spec.shape)}), the file gives {arr.shape}")
        for want, got in zip(dims, arr.shape[1:], strict=True):  # ranks checked above
            if isinstance(want, int) and want >= 0 and want != got:
                raise UsageError(f"{path}: input {spec.name!r} has shape {arr.shape}, the model expects "
                                 f"{_shape(spec.shape)}")
        arr = _convert(path, spec, arr)
        if samples is None:
            samples = arr.shape[0]
        elif arr.shape[0] != samples:
            raise UsageError(f"{path}: the arrays hold different numbers of samples ({samples} and {arr.shape[0]})")
        arrays.append(arr)
        infos.append(InputInfo(name=spec.name, shape=tuple(arr.shape), dtype=arr.dtype.name, source="file"))
    assert samples is not None
    if samples == 0:
        raise UsageError(f"{path}: the inputs hold no sample")
    notes = []
    chunk = fixed_batch or min(batch_size, samples)
    if fixed_batch and samples % fixed_batch:
        kept = samples - samples % fixed_batch
        if not kept:
            raise UsageError(f"{path}: the model's batch size is fixed at {fixed_batch}, the file holds {samples}")
        notes.append(f"the model's batch size is fixed at {fixed_batch}: the last {samples - kept} sample(s) "
                     "were left out")
        arrays = [a[:kept] for a in arrays]
        infos = [InputInfo(i.name, (kept, *i.shape[1:]), i.dtype, i.source) for i in infos]
        samples = kept
    return InputBatch(arrays=arrays, infos=infos, samples=samples, chunk=chunk, notes=notes)


def _shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("None" if not isinstance(d, int) or d < 0 else str(d) for d in shape) + ")"


def _match_npz(path: Path, data: dict[str, Any], specs: Sequence[InputSpec]) -> dict[str, Any]:
    names = [s.name for s in specs]
    if set(names) <= set(data):
        extra = sorted(set(data) - set(names))
        if extra:
            raise UsageError(f"{path}: arrays {extra} match no model input (inputs: {', '.join(names)})")
        return {n: data[n] for n in names}
    positional = [f"arr_{i}" for i in range(len(specs))]
    if set(data) == set(positional):
        return {n: data[p] for n, p in zip(names, positional, strict=True)}  # both one per spec
    if len(data) == 1 and len(specs) == 1:
        return {names[0]: next(iter(data.values()))}
    missing = [n for n in names if n not in data]
    raise UsageError(f"{path}: no array for input(s) {', '.join(map(repr, missing))}; name the arrays after "
                     f"the model's inputs ({', '.join(names)}) or pass them in order (numpy.savez(file, a, b))")


def _convert(path: Path, spec: InputSpec, arr: Any) -> Any:
    import numpy as np

    want = np.dtype(_numpy_dtype(spec))
    if arr.dtype.kind not in "fiub":
        raise UsageError(f"{path}: input {spec.name!r} holds {arr.dtype} values, not numbers")
    if arr.dtype.kind == "f" and want.kind in "iub":
        raise UsageError(f"{path}: input {spec.name!r} holds floats, the model expects {want.name}")
    if arr.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise UsageError(f"{path}: input {spec.name!r} holds {bad} NaN/Inf value(s); the probe needs "
                             "finite inputs")
    return np.ascontiguousarray(arr.astype(want, copy=False))


# -- what the model does with an input -------------------------------------------------------------


def _input_layer(graph: ModelGraph, spec: InputSpec) -> Layer | None:
    for name in (spec.layer, spec.name):
        if name and name in graph and graph.layer(name).type == "InputLayer":
            return graph.layer(name)
    for ref in graph.inputs:
        lay = graph.layer(ref.layer) if ref.layer in graph else None
        if lay is not None and (lay.config or {}).get("name") == spec.name:
            return lay
    return None


def _first_transforms(graph: ModelGraph, start: Layer, *, depth: int = 0) -> list[tuple[ModelGraph, Layer]]:
    """The first layers after ``start`` that change values, looking through
    :data:`PASS_THROUGH` layers and into nested models."""
    out: list[tuple[ModelGraph, Layer]] = []
    seen = {start.name}
    queue = list(graph.consumers(start.name))
    while queue and len(seen) < 10_000:
        lay = queue.pop(0)
        if lay.name in seen:
            continue
        seen.add(lay.name)
        sub = lay.subgraph
        if sub is not None and depth < 8:
            for ref in sub.inputs[:1]:
                if ref.layer in sub:
                    out.extend(_first_transforms(sub, sub.layer(ref.layer), depth=depth + 1))
            continue
        if lay.type in PASS_THROUGH:
            queue.extend(graph.consumers(lay.name))
        else:
            out.append((graph, lay))
    return out


def _floats(value: Any) -> list[float]:
    import numpy as np

    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return []
    return [float(v) for v in arr if math.isfinite(v)]


def _weight_values(layer: Layer, role_or_name: str, *, limit: int = 4096) -> list[float]:
    for w in layer.weights:
        if (w.role == role_or_name or w.name == role_or_name or w.name.endswith("/" + role_or_name)) \
                and w.size <= limit:
            try:
                return _floats(w.read())
            except Exception:  # noqa: BLE001 - an unreadable constant just means "no evidence"
                return []
    return []


def _onnx_constant(layer: Layer) -> list[float]:
    """The values of the constant operand of a binary ONNX node, if small."""
    for operand in layer.operands:
        if operand.kind not in ("weight", "constant"):
            continue
        if operand.value is not None:
            return _floats(operand.value)
        values = _weight_values(layer, operand.tensor)
        if values:
            return values
    return []


def expects_pixels(graph: ModelGraph, input_layer: Layer) -> bool:
    """Whether the model rescales this input from pixel units itself (module docs)."""
    for _, lay in _first_transforms(graph, input_layer):
        cfg = lay.config or {}
        if lay.type == "Rescaling":
            scale = _floats(cfg.get("scale", 1.0))
            if scale and max(abs(s) for s in scale) <= PIXEL_SCALE:
                return True
        elif lay.type == "Normalization":
            var = _floats(cfg.get("variance")) or _weight_values(lay, "variance")
            if var and sum(math.sqrt(max(v, 0.0)) for v in var) / len(var) >= PIXEL_STD:
                return True
        elif lay.type in ("Mul", "Div", "Sub", "Add"):
            values = _onnx_constant(lay)
            if not values:
                continue
            if lay.type == "Mul" and max(abs(v) for v in values) <= PIXEL_SCALE:
                return True
            if lay.type == "Div" and min(abs(v) for v in values) >= 1 / PIXEL_SCALE:
                return True
            if lay.type in ("Sub", "Add") and max(abs(v) for v in values) >= PIXEL_OFFSET:
                return True
    return False


def embedding_rows(graph: ModelGraph, input_layer: Layer) -> int | None:
    """Rows of the embedding table this integer input indexes, if it does."""
    rows = []
    for _, lay in _first_transforms(graph, input_layer):
        cfg = lay.config or {}
        if lay.type == "Embedding" and isinstance(cfg.get("input_dim"), int):
            rows.append(cfg["input_dim"])
        elif lay.type == "Gather":
            for w in lay.weights:
                if w.shape:
                    rows.append(int(w.shape[0]))
                    break
    return min(rows) if rows else None
