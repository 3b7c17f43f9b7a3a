"""The activation probe for ONNX models, through onnxruntime (the ``runtime`` extra).

How (see :mod:`inspector.analysis.probe` for what is measured):

1. The file is read again with ``onnx.load(…, load_external_data=False)``;
   external data is then loaded only from locations inside the model's folder
   (absolute paths, ``..`` and symbolic links that leave the folder are refused,
   even with ``--trust``), for every tensor the model reaches — sparse values and
   indices and attribute tensors too — so the copy onnxruntime gets names no file
   it could resolve against the working directory.
2. For every activation node of the main graph (``Relu``, ``Sigmoid``,
   ``Tanh``, ``HardSigmoid``, ``Softsign``, ``LeakyRelu``, ``Elu`` …) the
   in-memory copy gets reduction nodes on the node's input — the
   pre-activation: ``ReduceSum`` and ``ReduceSumSquare`` (moments),
   ``ReduceMax`` over all axes but the unit axis (ReLU family) or a per-unit
   count of values in the saturated region (sigmoid-like), ``Size``, and an
   ``If`` that counts NaN/Inf values (and recomputes the moments over the finite
   ones) only when the sums are not finite.  Their small results become extra
   graph outputs; the activations themselves are never copied out.
3. The copy runs once per chunk of the batch in an ``InferenceSession``: one
   forward pass computes the model and every statistic.

A unit is a channel (axis 1) for tensors a convolution, pooling or
normalization produced (ONNX is NCHW), else a feature of the last axis.
Tensors whose rank is unknown, and models with an opset older than 11, are
measured by exposing the tensor itself and reducing it in numpy (slower, same
numbers).  Nodes inside ``If``/``Loop``/``Scan`` bodies are not measured.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InspectorError, MissingDependency, ModelLoadError, UnsafeModel
from ..graphquery import activation_of, producers
from ..ir import Layer, ModelGraph
from .probe import Aggregator, ProbeReport, Progress, RawStats, Target, finish, make_target, output_layers, timer
from .probe_inputs import InputSpec, make_batch

CHANNELS_FIRST = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                            "BatchNormalization", "InstanceNormalization", "LpPool", "QLinearConv", "ConvInteger",
                            "DepthToSpace", "SpaceToDepth", "LRN", "MaxUnpool", "DeformConv", "GridSample"})
FEATURES_LAST = frozenset({"MatMul", "Gemm", "Einsum", "LayerNormalization", "MatMulInteger", "QLinearMatMul",
                           "Attention", "MultiHeadAttention", "SkipLayerNormalization", "Gather"})
PROTO_LIMIT = 2**31 - 2**20
"""Serialized models above this (protobuf's 2 GiB) are handed to onnxruntime through a temporary folder."""


def _frameworks() -> tuple[Any, Any]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependency("probing an ONNX model", extra="runtime", package="onnxruntime") from None
    import onnx

    return onnx, ort


def unit_axis(graph: ModelGraph, layer: Layer, rank: int) -> int:
    """1 for channels-first (NCHW) tensors, the last axis for features."""
    if rank <= 2:
        return max(rank - 1, 0)
    seen: set[str] = set()
    queue = [layer]
    while queue and len(seen) < 64:
        cur = queue.pop(0)
        for p in producers(graph, cur):
            if p.name in seen:
                continue
            seen.add(p.name)
            if p.type in CHANNELS_FIRST:
                return 1
            if p.type in FEATURES_LAST:
                return rank - 1
            queue.append(p)
    return 1 if rank >= 4 else rank - 1


def _load(onnx: Any, path: Path) -> Any:
    """The model at ``path`` with the external data of every tensor it reaches (sparse
    values and indices and attribute tensors too) read from inside its folder, so the
    copy handed to onnxruntime names no file: onnxruntime would resolve a location
    left in it against the working directory, not the model's folder."""
    from onnx import external_data_helper as edh

    from ..pathsafety import onnx_tensors

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"onnx could not read the model to probe it ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None
    base = path.resolve().parent
    for name, _, tensor in onnx_tensors(model):
        if not edh.uses_external_data(tensor):
            continue
        info = edh.ExternalDataInfo(tensor)
        tensor.raw_data = _read_external(_check_external(base, name, info.location), name, info.offset,
                                         info.length)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    return model


def _read_external(real: Path, name: str, offset: int | None, length: int | None) -> bytes:
    """``length`` bytes (all the rest when ``None``) of ``real`` from ``offset`` on."""
    start = int(offset or 0)
    try:
        with real.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            want = size - start if length is None else int(length)
            if start < 0 or want < 0 or start + want > size:
                raise ModelLoadError(f"the external data of tensor {name!r} (offset {start:,}, length {want:,}) lies "
                                     f"beyond the end of {real.name} ({size:,} bytes)")
            fh.seek(start)
            return fh.read(want)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the external data of tensor {name!r} ({exc.strerror or exc})") from None


def _check_external(base: Path, name: str, location: str) -> Path:
    """Refuse external data outside ``base`` (even with ``--trust``) or not a regular file.

    Hard links are allowed here: the loader reports them (SEC003), so the probe only
    gets this far when the user passed ``--trust``."""
    from ..pathsafety import resolve_inside

    real, why = resolve_inside(base, location, hard_links=True)
    if real is None:
        raise UnsafeModel(f"tensor {name!r} keeps its data at {location!r}, which the probe never reads: {why}")
    if not real.is_file():
        raise ModelLoadError(f"the external data file {location!r} of tensor {name!r} is missing or not a regular "
                             "file")
    return real


class _Builder:
    """Adds the probe's reduction nodes to an ONNX graph, opset-aware."""

    def __init__(self, onnx: Any, model: Any) -> None:
        self.onnx = onnx
        self.h = onnx.helper
        self.TP = onnx.TensorProto
        self.model = model
        self.graph = model.graph
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)
        self.nodes: list[Any] = []
        self.outputs: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0
        self.taken = {n for node in self.graph.node for n in list(node.input) + list(node.output)}
        self.taken |= {i.name for i in self.graph.initializer} | {i.name for i in self.graph.input}

    def name(self, hint: str) -> str:
        while True:
            self._n += 1
            n = f"inspector_probe/{self._n}/{hint}"
            if n not in self.taken:
                self.taken.add(n)
                return n

    def const(self, value: Any, dtype: Any, hint: str = "c") -> str:
        import numpy as np

        arr = np.asarray(value, dtype=dtype)
        n = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name=n))
        return n

    def node(self, op: str, inputs: list[str], hint: str, *, into: list[Any] | None = None, **attrs: Any) -> str:
        out = self.name(hint)
        (self.nodes if into is None else into).append(self.h.make_node(op, inputs, [out], **attrs))
        return out

    def reduce(self, op: str, x: str, axes: list[int] | None, hint: str, *, into: list[Any] | None = None) -> str:
        """``op`` over ``axes`` (all when ``None``), without keeping dims."""
        axes_as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if axes is None:
            return self.node(op, [x], hint, into=into, keepdims=0)
        if axes_as_input:
            import numpy as np

            return self.node(op, [x, self.const(axes, np.int64, "axes")], hint, into=into, keepdims=0)
        return self.node(op, [x], hint, into=into, keepdims=0, axes=axes)

    def output(self, name: str, elem: int) -> None:
        self.outputs.append(self.h.make_tensor_value_info(name, elem, None))

    def finish(self) -> Any:
        self.graph.node.extend(self.nodes)
        self.graph.initializer.extend(self.inits)
        self.graph.output.extend(self.outputs)
        return self.model


def _add_reductions(b: _Builder, t: Target, tensor: str, rank: int, dtype: str | None) -> dict[str, str]:
    """Nodes measuring ``tensor``; returns ``{stat: output name}``."""
    import numpy as np

    TP = b.TP
    x = tensor
    if dtype != "float32":
        x = b.node("Cast", [x], "x", to=TP.FLOAT)
    s = b.reduce("ReduceSum", x, None, "sum")
    ss = b.reduce("ReduceSumSquare", x, None, "sumsq")
    size = b.node("Size", [x], "size")
    total = b.node("Add", [s, ss], "total")
    bad = b.node("IsNaN", [b.node("Sub", [total, total], "diff")], "bad")
    # then: count NaN/Inf and recompute the sums over the finite values (rarely runs)
    then_nodes: list[Any] = []
    mask = b.node("IsNaN", [b.node("Sub", [x, x], "xdiff", into=then_nodes)], "mask", into=then_nodes)
    nf_t = b.reduce("ReduceSum", b.node("Cast", [mask], "maskd", into=then_nodes, to=TP.DOUBLE), None, "nf",
                    into=then_nodes)
    zero = b.const(0.0, np.float32, "zero")
    xd = b.node("Cast", [b.node("Where", [mask, zero, x], "xz", into=then_nodes)], "xd", into=then_nodes,
                to=TP.DOUBLE)
    fs_t = b.reduce("ReduceSum", xd, None, "fsum", into=then_nodes)
    fss_t = b.reduce("ReduceSumSquare", xd, None, "fsumsq", into=then_nodes)
    else_nodes: list[Any] = []
    nf_e = b.node("Cast", [b.const(0.0, np.float64, "zero64")], "nf0", into=else_nodes, to=TP.DOUBLE)
    fs_e = b.node("Cast", [s], "sumd", into=else_nodes, to=TP.DOUBLE)
    fss_e = b.node("Cast", [ss], "sumsqd", into=else_nodes, to=TP.DOUBLE)

    def branch(name: str, nodes: list[Any], outs: list[str]) -> Any:
        return b.h.make_graph(nodes, name, [], [b.h.make_tensor_value_info(o, TP.DOUBLE, []) for o in outs])

    outs = [b.name("nonfinite"), b.name("fsum"), b.name("fsumsq")]
    b.nodes.append(b.h.make_node("If", [bad], outs, then_branch=branch(b.name("then"), then_nodes,
                                                                        [nf_t, fs_t, fss_t]),
                                 else_branch=branch(b.name("else"), else_nodes, [nf_e, fs_e, fss_e])))
    result = {"size": size, "nonfinite": outs[0], "sum": outs[1], "sumsq": outs[2]}
    for key in ("size",):
        b.output(result[key], TP.INT64)
    for key in ("nonfinite", "sum", "sumsq"):
        b.output(result[key], TP.DOUBLE)
    reduce_axes = list(range(rank)) if rank <= 1 else [i for i in range(rank) if i != t.unit_axis % rank]
    if t.family == "rectifier":
        result["unit_max"] = b.reduce("ReduceMax", x, reduce_axes or None, "umax")
        b.output(result["unit_max"], TP.FLOAT)
    elif t.family == "saturating":
        lo, hi = b.const(t.lo, np.float32, "lo"), b.const(t.hi, np.float32, "hi")
        if t.inclusive and b.opset >= 12:
            below, above = b.node("LessOrEqual", [x, lo], "below"), b.node("GreaterOrEqual", [x, hi], "above")
        elif t.inclusive:
            below = b.node("Not", [b.node("Greater", [x, lo], "gt")], "below")
            above = b.node("Not", [b.node("Less", [x, hi], "lt")], "above")
        else:
            below, above = b.node("Less", [x, lo], "below"), b.node("Greater", [x, hi], "above")
        sat = b.node("Cast", [b.node("Or", [below, above], "sat")], "sati", to=TP.INT64)
        result["unit_saturated"] = b.reduce("ReduceSum", sat, reduce_axes or None, "usat")
        b.output(result["unit_saturated"], TP.INT64)
    return result


def _raw_in_numpy(arr: Any, t: Target) -> RawStats:
    """The same statistics, computed in numpy (fallback path)."""
    import numpy as np

    x = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(x)
    bad = int(x.size - np.count_nonzero(finite))
    xf = x[finite].astype(np.float64) if bad else x.astype(np.float64).reshape(-1)
    mean = float(xf.mean()) if xf.size else 0.0
    m2 = float(((xf - mean) ** 2).sum()) if xf.size else 0.0
    rank = x.ndim
    axes = tuple(range(rank)) if rank <= 1 else tuple(i for i in range(rank) if i != t.unit_axis % rank)
    raw = RawStats(size=int(x.size), nonfinite=bad, mean=mean, m2=m2,
                   units=int(x.shape[t.unit_axis % rank]) if rank > 1 else 1)
    if t.family == "rectifier":
        raw.unit_max = np.max(x, axis=axes).reshape(-1) if x.size else None
    elif t.family == "saturating":
        lo, hi = t.lo, t.hi
        assert lo is not None and hi is not None  # make_target sets both for a saturating target
        sat = (x <= lo) | (x >= hi) if t.inclusive else (x < lo) | (x > hi)
        raw.unit_saturated = sat.sum(axis=axes).reshape(-1)
    return raw


def _from_sums(size: int, nonfinite: float, s: float, ss: float) -> RawStats:
    n = size - int(nonfinite)
    mean = s / n if n else 0.0
    m2 = max(ss - s * s / n, 0.0) if n else 0.0
    return RawStats(size=size, nonfinite=int(nonfinite), mean=mean, m2=m2)


def _session(ort: Any, model: Any) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        if model.ByteSize() < PROTO_LIMIT:
            return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        import onnx

        with tempfile.TemporaryDirectory(prefix="inspector-probe-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            onnx.save_model(model, path, save_as_external_data=True, location="model.data")
            return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except InspectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime refuses the model: one line
        text = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"onnxruntime could not load the model to probe it ({type(exc).__name__}: {text})") \
            from None


def _specs(onnx: Any, model: Any, graph: ModelGraph) -> list[InputSpec]:
    inits = {i.name for i in model.graph.initializer}
    ir_inputs = {(graph.layer(r.layer).config or {}).get("name"): r.layer for r in graph.inputs if r.layer in graph}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
        except Exception:  # noqa: BLE001 - e.g. sequences or maps
            dtype = "object"
        dims: list[Any] = []
        if tt.HasField("shape"):
            for d in tt.shape.dim:
                dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        specs.append(InputSpec(name=vi.name, shape=tuple(dims), dtype=dtype, layer=ir_inputs.get(vi.name)))
    return specs


@dataclass
class Instrumented:
    """An ONNX model with the probe's extra outputs, and where to find each statistic."""

    model: Any
    targets: list[Target]
    original_outputs: list[str]
    wired: dict[str, dict[str, str]] = field(default_factory=dict)
    raw_outputs: dict[str, str] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fetch(self) -> list[str]:
        names = list(self.original_outputs)
        for stats in self.wired.values():
            names.extend(stats.values())
        names.extend(self.raw_outputs.values())
        return names


def instrument(graph: ModelGraph, model: Any) -> Instrumented:
    """Add the reduction nodes and outputs to ``model`` (an ``onnx.ModelProto`` of
    ``graph``'s file, changed in place)."""
    onnx, _ = _frameworks()
    b = _Builder(onnx, model)
    in_graph = b.opset >= 11
    result = Instrumented(model=model, targets=[], original_outputs=[o.name for o in model.graph.output])
    nested = 0
    for lay in graph.layers:
        nested += sum(1 for sub in lay.subgraphs.values() for _, inner in sub.walk()
                      if activation_of(inner) not in (None, "linear"))
        act = activation_of(lay)
        if act is None or act == "linear":
            continue
        first = lay.operand(0)
        tensor = first.tensor if first is not None else None
        if not tensor:
            continue
        shapes = graph.input_shapes(lay)
        shape = shapes[0] if shapes else None
        rank = len(shape) if shape is not None else None
        target = make_target(lay.name, lay, act, onnx=True, unit_axis=unit_axis(graph, lay, rank or 0))
        if target is None:
            continue
        result.targets.append(target)
        if rank and shape is not None:
            dim = shape[target.unit_axis % rank] if rank > 1 else 1
            if isinstance(dim, int) and dim > 0:
                result.units[lay.name] = dim
        if in_graph and rank is not None:
            result.wired[lay.name] = _add_reductions(b, target, tensor, rank, lay.dtype)
        else:
            cast = b.node("Cast", [tensor], "raw", to=b.TP.FLOAT)
            b.output(cast, b.TP.FLOAT)
            result.raw_outputs[lay.name] = cast
    if nested:
        result.notes.append(f"{nested} activation(s) inside If/Loop/Scan bodies are not measured")
    b.finish()
    return result


def load(graph: ModelGraph) -> Any:
    """The ``onnx.ModelProto`` of ``graph``'s file, external data resolved inside its folder."""
    onnx, _ = _frameworks()
    return _load(onnx, Path(str(graph.path)))


def session(model: Any) -> Any:
    """An onnxruntime CPU session for ``model``."""
    _, ort = _frameworks()
    return _session(ort, model)


def run(graph: ModelGraph, *, inputs: str | Path | None, batch_size: int, seed: int,
        progress: Progress | None = None) -> ProbeReport:
    import numpy as np

    onnx, ort = _frameworks()
    report = progress or (lambda stage, done, total: None)
    report("loading the model", 0, 1)
    model = _load(onnx, Path(str(graph.path)))
    specs = _specs(onnx, model, graph)
    batch = make_batch(graph, specs, inputs=inputs, batch_size=batch_size, seed=seed)
    inst = instrument(graph, model)
    sess = _session(ort, inst.model)
    fetch = inst.fetch
    input_names = [s.name for s in specs]
    agg = Aggregator(inst.targets)
    elapsed = timer()
    total = batch.count
    for i, chunk in enumerate(batch.chunks()):
        report("running the model", i, total)
        try:
            values = sess.run(fetch, dict(zip(input_names, chunk, strict=False)))
        except Exception as exc:  # noqa: BLE001 - a model that fails on the batch: one line
            text = " ".join(str(exc).split())[:200]
            raise ModelLoadError(f"the model failed on the probe batch ({type(exc).__name__}: {text})") from None
        got = dict(zip(fetch, values, strict=False))
        for j, name in enumerate(inst.original_outputs):
            out = np.asarray(got[name])
            bad = int(out.size - np.count_nonzero(np.isfinite(out))) if out.dtype.kind == "f" else 0
            agg.add_output(j, int(out.size), bad)
        for t in inst.targets:
            if t.path in inst.wired:
                w = inst.wired[t.path]
                raw = _from_sums(int(got[w["size"]]), float(got[w["nonfinite"]]), float(got[w["sum"]]),
                                 float(got[w["sumsq"]]))
                if "unit_max" in w:
                    raw.unit_max = np.asarray(got[w["unit_max"]]).reshape(-1)
                if "unit_saturated" in w:
                    raw.unit_saturated = np.asarray(got[w["unit_saturated"]]).reshape(-1)
            else:
                raw = _raw_in_numpy(got[inst.raw_outputs[t.path]], t)
            raw.units = raw.units or inst.units.get(t.path)
            agg.add(t.path, [raw])
    report("running the model", total, total)
    seconds = elapsed()
    return finish(graph, framework=f"onnxruntime {ort.__version__}", batch=batch, agg=agg, seconds=seconds,
                  output_names=inst.original_outputs, output_layers=output_layers(graph), notes=inst.notes)
