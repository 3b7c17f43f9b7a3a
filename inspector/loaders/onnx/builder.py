"""Building the :class:`~inspector.ir.ModelGraph` from a parsed ``ModelProto``:
graphs, sub-graphs and functions, folded constants, weights, layers, metadata."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ...errors import LimitExceeded, UnsafeModel
from ...ir import ExternalData, Inbound, Layer, ModelGraph, SecurityFact, Weight
from ...isolation import one_line as short
from ...limits import Limits, hint
from ...pathsafety import resolve_inside
from . import inference, wire
from .fold import evaluate, is_static, np_dtype, num_elements, propagate_shape, simple_constant_value
from .ops import (BN_STATS, CONFIG_VALUE, DEFAULT_DOMAINS, FOLDABLE_OTHER_DOMAIN, NON_DATA, NOT_FOLDABLE, QUANT,
                  SMALL_VALUE)
from .protos import attribute_value, dtype_name, small_value, tensor_dims, type_info
from .tensors import _fill_reader, const_reader, external_reader, inline_reader, proto_reader
from .wire import PROTOBUF_MAX_BYTES


# -- small records ---------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Source:
    """A stored tensor: what a parameter is."""

    name: str
    key: str
    dtype: str
    shape: tuple[int, ...] | None
    external: ExternalData | None = None
    reader: Callable[[], Any] | None = None


@dataclass(slots=True, eq=False)
class Const:
    """A constant tensor of a graph: stored, generated or folded from constants."""

    name: str
    dtype: str | None
    shape: tuple | None
    origins: tuple[tuple[Source, bool], ...]
    """(stored tensor, is_quantization) for every stored tensor that flows into it as data."""
    proto: Any = None
    """An inline ``TensorProto`` whose value can be parsed on demand."""
    value: Any = None
    evaluated: bool = False


@dataclass(slots=True, eq=False)
class Scope:
    parent: Scope | None
    graph: ModelGraph
    key_prefix: str
    opsets: dict[str, int]
    consts: dict[str, Const] = field(default_factory=dict)
    producers: dict[str, Inbound] = field(default_factory=dict)
    types: dict[str, tuple[str | None, tuple | None]] = field(default_factory=dict)
    outer: dict[str, str] = field(default_factory=dict)
    """Outer-scope tensor -> name of the InputLayer standing for it in this graph."""
    used_names: set[str] = field(default_factory=set)
    non_data: dict[str, frozenset[int]] = field(default_factory=dict)
    """Layer name -> operand positions that are shapes/indices (not data)."""

    def find_const(self, name: str) -> Const | None:
        scope: Scope | None = self
        while scope is not None:
            c = scope.consts.get(name)
            if c is not None:
                return c
            if name in scope.producers:
                return None
            scope = scope.parent
        return None

    def find_type(self, name: str) -> tuple[str | None, tuple | None]:
        scope: Scope | None = self
        while scope is not None:
            t = scope.types.get(name)
            if t is not None:
                return t
            scope = scope.parent
        return (None, None)

    def defined_outside(self, name: str) -> bool:
        scope = self.parent
        while scope is not None:
            if name in scope.producers or name in scope.consts or name in scope.outer:
                return True
            scope = scope.parent
        return False


@dataclass(slots=True)
class Task:
    proto: Any  # GraphProto or FunctionProto
    graph: ModelGraph
    parent: Scope | None
    key_prefix: str
    opsets: dict[str, int]
    depth: int
    is_function: bool = False



# -- the builder ---------------------------------------------------------------------------
class Builder:
    def __init__(self, path: Path, model, stripped: wire.StrippedModel | None, size: int, lim: Limits, *,
                 infer_shapes: bool) -> None:
        self.path = path
        self.limits = lim
        self.model = model
        self.stripped = stripped
        self.file_size = size
        self.do_infer = infer_shapes
        self.notes: list[str] = []
        self.security: list[SecurityFact] = []
        self.external: dict[str, dict[str, Any]] = {}
        self.node_count = 0
        self.folded = 0
        self.referenced: set[str] = set()
        self._schemas: dict[tuple[str, str, int], Any] = {}
        self.functions: dict[tuple[str, str, str], ModelGraph] = {}
        self.function_protos: dict[tuple[str, str, str], Any] = {}
        self.shape_inference = "not run"
        self.cyclic_functions: set = set()
        self._refused: dict[str, tuple[str, str]] = {}
        self._sec_first: dict[str, str] = {}

    # ---- top level ----
    def build(self) -> ModelGraph:
        model = self.model
        self._check_counts(model)
        if self.do_infer:
            model = self._infer(model)
        self.model = model
        g = model.graph
        opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        if "ai.onnx" in opsets and "" not in opsets:
            opsets[""] = opsets["ai.onnx"]
        name = g.name or self.path.stem
        graph = ModelGraph(name=name, format="onnx", kind="onnx", path=str(self.path))
        queue: deque[Task] = deque()
        self._plan_functions(model, queue)
        queue.appendleft(Task(g, graph, None, "", opsets, 0))
        main_scope: Scope | None = None
        while queue:
            task = queue.popleft()
            scope = self._build_graph(task, queue)
            if task.graph is graph:
                main_scope = scope
        assert main_scope is not None
        self._check_expansion(graph)
        for location, (tensor, reason) in self._refused.items():
            self.security.append(SecurityFact(
                code="SEC003",
                message=(f"external data location {location!r} of tensor {tensor!r} is outside the model's folder "
                         f"({reason}); inspector did not open it"),
                layer=self._sec_first.get(location), detail=location))
        graph.security = self.security
        graph.notes = self.notes
        graph.metadata = self._metadata(model, main_scope, graph)
        graph.invalidate()
        return graph

    def _too_deep(self) -> LimitExceeded:
        depth = self.limits.onnx_graph_depth
        return LimitExceeded(f"nests sub-graphs and function calls more than {depth:,} levels deep, past the "
                             f"onnx_graph_depth limit; {hint('onnx_graph_depth')}")

    def _check_counts(self, model) -> None:
        # Count nodes iteratively before doing any real work.
        max_nodes, max_depth = self.limits.onnx_nodes, self.limits.onnx_graph_depth
        total = 0
        stack = [model.graph] + [f for f in model.functions]
        depth_stack = [(s, 0) for s in stack]
        while depth_stack:
            g, depth = depth_stack.pop()
            if depth > max_depth:
                raise self._too_deep()
            total += len(g.node)
            if total > max_nodes:
                raise LimitExceeded(
                    f"has more than {max_nodes:,} nodes in its graphs, sub-graphs and functions, past the onnx_nodes "
                    f"limit; {hint('onnx_nodes')}")
            for node in g.node:
                for a in node.attribute:
                    if a.type == 5 or a.HasField("g"):
                        depth_stack.append((a.g, depth + 1))
                    for sub in a.graphs:
                        depth_stack.append((sub, depth + 1))

    def _infer(self, model):
        if model.ByteSize() > PROTOBUF_MAX_BYTES - (1 << 20):  # inference serializes the model
            self.shape_inference = "skipped: the graph structure exceeds protobuf's 2 GiB limit"
            self.notes.append("Shape inference skipped: the graph structure exceeds protobuf's 2 GiB limit.")
            return model
        errors: list[str] = []
        for data_prop in (True, False):
            outcome = inference.run_shape_inference(model, data_prop=data_prop)
            if isinstance(outcome, str):
                errors.append(outcome)
                if outcome.startswith(inference.INFER_TIMEOUT):
                    break  # without data propagation it would only time out again
                continue
            self.shape_inference = "ok" if data_prop else "ok (without data propagation)"
            if not data_prop:
                self.notes.append(
                    f"Shape inference with data propagation failed ({errors[0]}); shapes were inferred without it.")
            return outcome
        self.shape_inference = f"failed: {errors[-1]}"
        self.notes.append(f"Shape inference failed ({errors[-1]}); shapes come from the file's value_info only.")
        return model

    # ---- model-local functions ----
    def _plan_functions(self, model, queue: deque[Task]) -> None:
        protos: dict[tuple[str, str, str], Any] = {}
        for f in model.functions:
            key = (f.domain, f.name, getattr(f, "overload", "") or "")
            if key in protos:
                self.notes.append(f"Function {f.domain}::{f.name} is defined twice; the first definition is used.")
                continue
            protos[key] = f
        if not protos:
            return
        # Call graph between functions; functions on a cycle are not expanded.
        calls: dict[tuple, set[tuple]] = {}
        for key, f in protos.items():
            callees = set()
            for node in _iter_nodes_flat(f.node):
                ck = (node.domain, node.op_type, getattr(node, "overload", "") or "")
                if ck in protos:
                    callees.add(ck)
            calls[key] = callees
        cyclic = _cyclic_nodes(calls)
        for key in sorted(cyclic):
            self.notes.append(f"Function {key[0]}::{key[1]} calls itself (directly or not); its calls are not expanded.")
        self.cyclic_functions = cyclic
        self.function_protos = protos
        model_opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        for key, f in protos.items():
            sub = ModelGraph(name=f.name, format="onnx", kind="onnx",
                             metadata={"function": f"{f.domain}::{f.name}" if f.domain else f.name})
            self.functions[key] = sub
            opsets = dict(model_opsets)
            opsets.update({(o.domain or ""): int(o.version) for o in f.opset_import})
            prefix = f"{f.domain}::{f.name}/"
            queue.append(Task(f, sub, None, prefix, opsets, 1, is_function=True))

    # ---- one graph ----
    def _build_graph(self, task: Task, queue: deque[Task]) -> Scope:
        proto = task.proto
        graph = task.graph
        scope = Scope(task.parent, graph, task.key_prefix, task.opsets)
        layers: list[Layer] = []
        if task.is_function:
            input_names = list(proto.input)
            output_names = list(proto.output)
            for vi in getattr(proto, "value_info", []):
                scope.types[vi.name] = type_info(vi.type)
            inits: list = []
            sparse: list = []
        else:
            for vi in list(proto.input) + list(proto.output) + list(proto.value_info):
                info = type_info(vi.type)
                if vi.name not in scope.types or info[1] is not None:
                    scope.types[vi.name] = info
            input_names = [vi.name for vi in proto.input]
            output_names = [vi.name for vi in proto.output]
            inits = list(proto.initializer)
            sparse = list(proto.sparse_initializer)
        # Constants stored in the graph.
        for t in inits:
            src = self._source_from_tensor(t, t.name, scope)
            if src is None:
                continue
            scope.consts[t.name] = Const(t.name, src.dtype, src.shape, ((src, False),),
                                          proto=t if t.data_location != 1 else None)
            scope.types.setdefault(t.name, (src.dtype, src.shape))
        for st in sparse:
            name = st.values.name
            dtype = dtype_name(st.values.data_type)
            nnz = tensor_dims(st.values)
            dense = tuple(int(d) for d in st.dims)
            if nnz is None:
                continue
            src = Source(name, scope.key_prefix + name, dtype, nnz)
            scope.consts[name] = Const(name, dtype, dense, ((src, False),))
            scope.types.setdefault(name, (dtype, dense))
        # Inputs (weights listed as inputs are not model inputs).
        for name in input_names:
            if name in scope.consts:
                continue
            lname = self._unique(scope, name or "input")
            dtype, shape = scope.types.get(name, (None, None))
            layers.append(Layer(name=lname, type="InputLayer", config={"name": name}, inbound=[[]],
                                node_shapes=[[shape]], dtype=dtype))
            scope.producers[name] = Inbound(lname, 0, 0)
            graph.inputs.append(Inbound(lname, 0, 0))
        graph_outputs = set(output_names)
        # Nodes, in a topological order that keeps the file order where it can.
        nodes = list(proto.node)
        order = self._topological(nodes, scope, task)
        for idx in order:
            node = nodes[idx]
            self.node_count += 1
            for name in node.input:
                self.referenced.add(name)
            if self._foldable(node, scope, graph_outputs, task):
                self._fold(node, scope)
                self.folded += 1
                continue
            layers.append(self._layer(node, idx, scope, task, queue))
        self._drop_shape_computations(layers, scope, graph_outputs, nodes)
        # Outputs.
        for name in output_names:
            self.referenced.add(name)
            ref = scope.producers.get(name)
            if ref is None and name in scope.outer:
                ref = Inbound(scope.outer[name], 0, 0)
            if ref is None:
                const = scope.find_const(name)
                if const is not None:
                    layer = self._constant_output_layer(name, const, scope)
                    layers.append(layer)
                    ref = Inbound(layer.name, 0, 0)
                elif scope.defined_outside(name):
                    ref = Inbound(self._outer_input(name, scope), 0, 0)
                else:
                    self.notes.append(f"Graph output {name!r} of {graph.name!r} is produced by no node.")
                    continue
            graph.outputs.append(ref)
        # Outer-scope InputLayers were appended to ``scope.graph.layers`` as found;
        # put them first, then this graph's own layers.
        graph.layers = graph.layers + layers
        graph.invalidate()
        return scope

    def _drop_shape_computations(self, layers: list[Layer], scope: Scope, graph_outputs: set[str],
                                 nodes: list) -> None:
        """Constants consumed by nodes that only compute shapes are not parameters.

        tf2onnx and PyTorch compute target shapes at run time (``Shape`` →
        ``Gather`` → ``Concat`` with a constant → ``Reshape``'s shape operand).  A
        node all of whose outputs end, directly or through other such nodes, only
        in shape/axes/index operands is a shape computation; the constants it
        consumes are shape data, not weights."""
        inner_refs: set[str] = set()
        if any(a.type in (5, 10) or a.HasField("g") for n in nodes for a in n.attribute):
            inner_refs = {name for n in _iter_nodes_flat(nodes) for name in n.input}
        consumers: dict[str, list[tuple[Layer, int]]] = {}
        for lay in layers:
            for i, entry in enumerate(lay.config.get("@inputs", [])):
                if entry.get("kind") == "input":
                    consumers.setdefault(entry["tensor"], []).append((lay, i))
        shape_only: set[str] = set()
        for lay in reversed(layers):
            outs = [o for o in lay.config.get("@outputs", []) if o]
            if not outs or any(o in graph_outputs or o in inner_refs for o in outs):
                continue
            used = False
            ok = True
            for o in outs:
                for consumer, i in consumers.get(o, ()):
                    used = True
                    if i in scope.non_data.get(consumer.name, frozenset()) or consumer.name in shape_only:
                        continue
                    ok = False
                    break
                if not ok:
                    break
            if ok and used:
                shape_only.add(lay.name)
                if lay.weights:
                    lay.weights = []
                    for entry in lay.config.get("@inputs", []):
                        if entry.get("kind") == "weight":
                            entry["kind"] = "constant"

    def _topological(self, nodes: list, scope: Scope, task: Task) -> list[int]:
        produced_at: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for out in node.output:
                if out and out not in produced_at:
                    produced_at[out] = i
        in_order = True
        for i, node in enumerate(nodes):
            for name in node.input:
                j = produced_at.get(name)
                if j is not None and j > i:
                    in_order = False
                    break
            if not in_order:
                break
        if in_order:
            return list(range(len(nodes)))
        import heapq

        deps: list[set[int]] = []
        users: dict[int, list[int]] = {}
        for i, node in enumerate(nodes):
            d = {produced_at[n] for n in node.input if n in produced_at and produced_at[n] != i}
            deps.append(d)
            for j in d:
                users.setdefault(j, []).append(i)
        remaining = [len(d) for d in deps]
        heap = [i for i, r in enumerate(remaining) if r == 0]
        heapq.heapify(heap)
        order: list[int] = []
        while heap:
            i = heapq.heappop(heap)
            order.append(i)
            for u in users.get(i, ()):
                remaining[u] -= 1
                if remaining[u] == 0:
                    heapq.heappush(heap, u)
        if len(order) < len(nodes):
            done = set(order)
            rest = [i for i in range(len(nodes)) if i not in done]
            order.extend(rest)
            self.notes.append(
                f"Graph {task.graph.name!r} has a cycle through {len(rest)} node(s); they are listed in file order.")
        else:
            self.notes.append(f"Nodes of graph {task.graph.name!r} are not in topological order in the file; "
                              "they are listed in dependency order.")
        return order

    # ---- sources ----
    def _source_from_tensor(self, t, name: str, scope: Scope) -> Source | None:
        dims = tensor_dims(t)
        dtype = dtype_name(t.data_type)
        if dims is None:
            self.notes.append(f"Tensor {name!r} has negative dims {list(t.dims)}; it is not counted.")
            return None
        key = scope.key_prefix + name
        external = None
        reader: Callable[[], Any] | None
        if t.data_location == 1:
            entries = {e.key: e.value for e in t.external_data}
            location = entries.get("location", "")
            if self.stripped is not None and location.startswith(self.stripped.token_prefix) \
                    and location in self.stripped.inline:
                reader = inline_reader(self.path, self.stripped.inline[location], name, dims, t.data_type)
            else:
                external, reader = self._external(name, dims, t.data_type, entries)
        else:
            reader = proto_reader(t, name)
        return Source(name, key, dtype, dims, external, reader)

    def _external(self, name: str, dims: tuple[int, ...], data_type: int,
                  entries: dict[str, str]) -> tuple[ExternalData | None, Callable[[], Any] | None]:
        location = entries.get("location", "")
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else None
        except ValueError:
            self.notes.append(f"Tensor {name!r} has a malformed external-data offset or length.")
            offset, length = 0, None
        ext = ExternalData(location, offset, length)
        info = self.external.setdefault(location, {"location": location, "tensors": 0, "bytes": 0,
                                                   "size": None, "status": "ok"})
        info["tensors"] += 1
        if length is not None:
            info["bytes"] += length
        resolved, reason = resolve_inside(self.path.parent, location)
        if resolved is None:
            info["status"] = f"refused: {reason}"
            self._refused.setdefault(location, (name, reason))

            def refused() -> Any:
                raise UnsafeModel(f"external data {location!r} of {name!r} is outside the model's folder ({reason})")

            return ext, refused
        if info["size"] is None and info["status"] == "ok":
            try:
                st = resolved.stat()
                if not resolved.is_file():
                    info["status"] = "not a regular file"
                else:
                    info["size"] = st.st_size
            except OSError:
                info["status"] = "missing"
                self.notes.append(f"External data file {location!r} is missing next to the model.")
        return ext, external_reader(self.path.parent, location, offset, length, dims, data_type, name)

    def _constant_node_sources(self, node, scope: Scope) -> Const | None:
        out = node.output[0] if node.output else ""
        if not out:
            return None
        key_name = out
        for a in node.attribute:
            kind = a.name
            if kind == "value":
                src = self._source_from_tensor(a.t, key_name, scope)
                if src is None:
                    return None
                return Const(out, src.dtype, src.shape, ((src, False),), proto=a.t if a.t.data_location != 1 else None)
            if kind == "sparse_value":
                nnz = tensor_dims(a.sparse_tensor.values)
                if nnz is None:
                    return None
                dtype = dtype_name(a.sparse_tensor.values.data_type)
                src = Source(out, scope.key_prefix + out, dtype, nnz)
                return Const(out, dtype, tuple(int(d) for d in a.sparse_tensor.dims), ((src, False),))
            simple = {"value_float": ("float32", ()), "value_int": ("int64", ()), "value_string": ("string", ()),
                      "value_floats": ("float32", (len(a.floats),)), "value_ints": ("int64", (len(a.ints),)),
                      "value_strings": ("string", (len(a.strings),))}
            if kind in simple:
                dtype, shape = simple[kind]
                value = simple_constant_value(a)
                src = Source(out, scope.key_prefix + out, dtype, shape, reader=const_reader(value))
                c = Const(out, dtype, shape, ((src, False),))
                c.value, c.evaluated = value, True
                return c
        return None

    # ---- folding ----
    def _foldable(self, node, scope: Scope, graph_outputs: set[str], task: Task) -> bool:
        domain = node.domain or ""
        op = node.op_type
        if domain not in DEFAULT_DOMAINS and (domain, op) not in FOLDABLE_OTHER_DOMAIN:
            return False
        if op in NOT_FOLDABLE or any(o in graph_outputs for o in node.output if o):
            return False
        if (domain, op, getattr(node, "overload", "") or "") in self.function_protos:
            return False
        if any(a.type in (5, 10) or a.HasField("g") for a in node.attribute):
            return False
        if op == "Constant":
            return True
        inputs = [n for n in node.input if n]
        if not inputs:
            return False
        return all(scope.find_const(n) is not None for n in inputs)

    def _fold(self, node, scope: Scope) -> None:
        op = node.op_type
        if op == "Constant":
            c = self._constant_node_sources(node, scope)
            if c is not None:
                scope.consts[c.name] = c
                scope.types.setdefault(c.name, (c.dtype, c.shape))
            else:
                for out in node.output:
                    if out:
                        scope.consts[out] = Const(out, None, None, ())
            return
        inputs = [scope.find_const(n) if n else None for n in node.input]
        if op == "ConstantOfShape":
            self._fold_constant_of_shape(node, inputs[0], scope)
            return
        non_data = NON_DATA.get(op, frozenset())
        quant = QUANT.get(op, frozenset())
        origins: list[tuple[Source, bool]] = []
        seen: set[tuple[int, bool]] = set()
        for i, c in enumerate(inputs):
            if c is None or i in non_data:
                continue
            for src, is_q in c.origins:
                q = is_q or i in quant
                if (id(src), q) not in seen:
                    seen.add((id(src), q))
                    origins.append((src, q))
        value = evaluate(node, inputs, self)
        for k, out in enumerate(node.output):
            if not out:
                continue
            dtype, shape = scope.types.get(out, (None, None))
            val = value[k] if value is not None and k < len(value) else None
            if val is not None:
                dtype = dtype or str(val.dtype)
                shape = tuple(int(d) for d in val.shape)
            elif shape is None or not is_static(shape):
                shape = propagate_shape(op, node, inputs) or shape
            if dtype is None and inputs and inputs[0] is not None and op not in ("Cast", "DequantizeLinear",
                                                                                   "QuantizeLinear", "Shape", "Size"):
                dtype = inputs[0].dtype
            c = Const(out, dtype, shape, tuple(origins))
            if val is not None:
                c.value, c.evaluated = val, True
            scope.consts[out] = c

    def _fold_constant_of_shape(self, node, shape_const: Const | None, scope: Scope) -> None:
        out = node.output[0] if node.output else ""
        if not out:
            return
        dims = None
        if shape_const is not None:
            v = self.value_of(shape_const)
            if v is not None:
                try:
                    dims = tuple(int(x) for x in v.reshape(-1))
                except (TypeError, ValueError):
                    dims = None
        if dims is None:
            _, inferred = scope.types.get(out, (None, None))
            if inferred is not None and is_static(inferred):
                dims = tuple(int(d) for d in inferred)
        if dims is not None and any(d < 0 for d in dims):
            dims = None
        dtype, fill = "float32", 0.0
        for a in node.attribute:
            if a.name == "value":
                dtype = dtype_name(a.t.data_type)
                arr = small_value(a.t) if num_elements(tensor_dims(a.t) or (0,)) <= SMALL_VALUE else None
                fill = arr.reshape(-1)[0].item() if arr is not None and arr.size else 0
        src = Source(out, scope.key_prefix + out, dtype, dims,
                      reader=_fill_reader(dims, fill, dtype, out) if dims is not None else None)
        c = Const(out, dtype, dims, ((src, False),))
        if dims is not None and num_elements(dims) <= SMALL_VALUE:
            try:
                import numpy as np

                c.value, c.evaluated = np.full(dims, fill, dtype=np_dtype(dtype)), True
            except Exception:  # noqa: BLE001
                pass
        scope.consts[out] = c
        scope.types.setdefault(out, (dtype, dims))

    def value_of(self, c: Const):
        """The numpy value of a small constant, or ``None``."""
        if c.evaluated:
            return c.value
        c.evaluated = True
        if c.proto is None or c.shape is None or not is_static(c.shape) or num_elements(c.shape) > SMALL_VALUE:
            return None
        c.value = small_value(c.proto)  # a malformed tensor just has no value
        return c.value

    # ---- compute layers ----
    def _layer(self, node, idx: int, scope: Scope, task: Task, queue: deque[Task]) -> Layer:
        domain = node.domain or ""
        op = node.op_type
        ltype = op if domain in DEFAULT_DOMAINS else f"{domain}.{op}"
        lname = self._unique(scope, node.name or f"{op}_{idx}", idx)
        roles = self._roles(op, domain, len(node.input), scope.opsets)
        non_data = NON_DATA.get(op, frozenset()) if domain in DEFAULT_DOMAINS or op in NON_DATA else frozenset()
        quant = QUANT.get(op, frozenset())
        bn_stats = BN_STATS.get(op, frozenset()) if domain in DEFAULT_DOMAINS else frozenset()
        layer = Layer(name=lname, type=ltype)
        scope.non_data[lname] = non_data
        config: dict[str, Any] = {}
        for a in node.attribute:
            try:
                config[a.name] = attribute_value(a)
            except Exception as exc:  # noqa: BLE001 - one odd attribute must not sink the model
                config[a.name] = None
                layer.notes.append(f"attribute {a.name!r} could not be read ({short(exc, 80)})")
        operands: list[dict[str, Any]] = []
        inbound: list[Inbound] = []
        weights: dict[str, Weight] = {}
        for i, tname in enumerate(node.input):
            role = roles[i]
            entry: dict[str, Any] = {"name": role, "tensor": tname}
            if not tname:
                entry["kind"] = "absent"
                operands.append(entry)
                continue
            const = scope.find_const(tname)
            if const is not None:
                data = i not in non_data
                entry["kind"] = "weight" if data and const.origins else "constant"
                entry["dtype"] = const.dtype
                entry["shape"] = list(const.shape) if const.shape is not None else None
                if not data or (const.shape is not None and is_static(const.shape) and num_elements(const.shape) <= 4
                                and const.dtype in ("int64", "int32", "bool")):
                    v = self.value_of(const)
                    if v is not None and v.size <= CONFIG_VALUE:
                        entry["value"] = v.tolist()
                if data:
                    for src, is_q in const.origins:
                        if src.shape is None:
                            layer.notes.append(f"constant {src.name!r} has an unknown size and is not counted")
                            continue
                        if src.key in weights:
                            continue
                        weights[src.key] = Weight(
                            name=src.name, role=role, shape=src.shape, dtype=src.dtype,
                            trainable=i not in bn_stats, key=src.key, external=src.external,
                            quantization=is_q or i in quant, reader=src.reader)
                        if src.external is not None:
                            self._sec_first.setdefault(src.external.location, lname)
            else:
                dtype, shape = scope.find_type(tname)
                entry["kind"] = "input"
                entry["dtype"] = dtype
                entry["shape"] = list(shape) if shape is not None else None
                ref = scope.producers.get(tname)
                if ref is None:
                    ref = Inbound(self._outer_input(tname, scope), 0, 0)
                inbound.append(ref)
            operands.append(entry)
        config["@inputs"] = operands
        config["@outputs"] = list(node.output)
        layer.config = config
        if op == "Constant" and domain in DEFAULT_DOMAINS:
            const = self._constant_node_sources(node, scope)
            for src, is_q in (const.origins if const is not None else ()):
                if src.shape is not None and src.key not in weights:
                    weights[src.key] = Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype,
                                              key=src.key, external=src.external, reader=src.reader)
        layer.inbound = [inbound]
        layer.weights = list(weights.values())
        shapes = []
        first_dtype = None
        for k, out in enumerate(node.output):
            if not out:
                shapes.append(None)
                continue
            dtype, shape = scope.types.get(out, (None, None))
            if k == 0:
                first_dtype = dtype
            shapes.append(shape)
            scope.producers[out] = Inbound(lname, 0, k)
        layer.node_shapes = [shapes]
        layer.dtype = first_dtype
        # Nested graphs.
        for a in node.attribute:
            subs = []
            if a.type == 5 or (a.type == 0 and a.HasField("g")):
                subs = [(a.name, a.g)]
            elif a.type == 10:
                subs = [(f"{a.name}[{j}]", g) for j, g in enumerate(a.graphs)]
            for key, g in subs:
                if task.depth + 1 > self.limits.onnx_graph_depth:
                    raise self._too_deep()
                sub = ModelGraph(name=g.name or f"{lname}/{key}", format="onnx", kind="onnx",
                                 metadata={"attribute": key, "parent": lname})
                layer.subgraphs[key] = sub
                queue.append(Task(g, sub, scope, f"{scope.key_prefix}{lname}/{key}/", scope.opsets,
                                   task.depth + 1))
        fkey = (domain, op, getattr(node, "overload", "") or "")
        if fkey in self.functions:
            if fkey in self.cyclic_functions:
                layer.notes.append("calls a recursive function; its body is not expanded")
            else:
                layer.subgraphs["function"] = self.functions[fkey]
        return layer

    def _outer_input(self, tname: str, scope: Scope) -> str:
        """An InputLayer in ``scope``'s graph standing for a tensor from an enclosing graph."""
        existing = scope.outer.get(tname)
        if existing is not None:
            return existing
        lname = self._unique(scope, tname)
        outer = scope.defined_outside(tname)
        dtype, shape = scope.find_type(tname)
        config = {"name": tname, "outer_scope": True} if outer else {"name": tname, "undefined": True}
        layer = Layer(name=lname, type="InputLayer", config=config, inbound=[[]], node_shapes=[[shape]],
                      dtype=dtype)
        if not outer:
            layer.notes.append("this tensor is consumed but produced by no node, input or initializer")
            self.notes.append(f"Tensor {tname!r} in graph {scope.graph.name!r} is used but never defined.")
        scope.graph.layers.append(layer)
        scope.outer[tname] = lname
        scope.producers.setdefault(tname, Inbound(lname, 0, 0))
        return lname

    def _constant_output_layer(self, name: str, const: Const, scope: Scope) -> Layer:
        lname = self._unique(scope, name)
        weights = [Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype, key=src.key,
                          external=src.external, quantization=is_q, reader=src.reader)
                   for src, is_q in const.origins if src.shape is not None]
        layer = Layer(name=lname, type="Constant", config={"@inputs": [], "@outputs": [name]}, inbound=[[]],
                      node_shapes=[[const.shape]], weights=weights, dtype=const.dtype)
        layer.notes.append("a constant tensor returned as a graph output")
        scope.producers[name] = Inbound(lname, 0, 0)
        return layer

    def _unique(self, scope: Scope, base: str, idx: int | None = None) -> str:
        used = scope.used_names
        name = base
        if name in used and idx is not None:
            name = f"{base}_{idx}"
        n = 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        return name

    def _roles(self, op: str, domain: str, n: int, opsets: dict[str, int]) -> list[str]:
        version = opsets.get(domain, opsets.get("ai.onnx" if domain == "" else domain, 0)) or 0
        key = (op, domain, version)
        schema = self._schemas.get(key, False)
        if schema is False:
            schema = None
            if version:
                try:
                    from onnx import defs

                    schema = defs.get_schema(op, version, domain)
                except Exception:  # noqa: BLE001 - unknown or custom op
                    schema = None
            self._schemas[key] = schema
        names: list[str] = []
        formal = list(schema.inputs) if schema is not None else []
        for i in range(n):
            if i < len(formal):
                names.append(formal[i].name)
            elif formal and str(formal[-1].option).endswith("Variadic"):
                names.append(formal[-1].name)
            else:
                names.append(f"input_{i}")
        return names

    # ---- checks and metadata ----
    def _check_expansion(self, graph: ModelGraph) -> None:
        """Bound the depth and size of a full walk (shared function bodies count per call)."""
        max_layers, max_depth = self.limits.onnx_expanded_layers, self.limits.onnx_graph_depth
        sizes: dict[int, int] = {}
        depths: dict[int, int] = {}
        stack: list[tuple[ModelGraph, bool]] = [(graph, False)]
        on_stack: set[int] = set()
        while stack:
            g, done = stack.pop()
            gid = id(g)
            if done:
                size, depth = len(g.layers), 1
                for lay in g.layers:
                    for sub in lay.subgraphs.values():
                        size += sizes.get(id(sub), 0)
                        depth = max(depth, depths.get(id(sub), 0) + 1)
                sizes[gid], depths[gid] = size, depth
                on_stack.discard(gid)
                if size > max_layers:
                    raise LimitExceeded(
                        f"expands to more than {max_layers:,} layers through nested sub-graphs and function calls, "
                        f"past the onnx_expanded_layers limit; {hint('onnx_expanded_layers')}")
                if depth > max_depth:
                    raise self._too_deep()
                continue
            if gid in sizes or gid in on_stack:
                continue
            on_stack.add(gid)
            stack.append((g, True))
            for lay in g.layers:
                for sub in lay.subgraphs.values():
                    if id(sub) not in sizes and id(sub) not in on_stack:
                        stack.append((sub, False))

    def _metadata(self, model, scope: Scope, graph: ModelGraph) -> dict[str, Any]:
        g = model.graph
        opsets = {}
        for o in model.opset_import:
            opsets[o.domain or "ai.onnx"] = int(o.version)
        ext = []
        for loc in sorted(self.external):
            info = dict(self.external[loc])
            ext.append(info)
        inits = {t.name for t in g.initializer}
        unused = sorted(n for n in inits if n not in self.referenced)

        def describe(refs: Iterable[Inbound], names: list[str]) -> list[dict[str, Any]]:
            out = []
            for ref, name in zip(refs, names):
                dtype, shape = scope.types.get(name, (None, None))
                out.append({"name": name, "dtype": dtype, "shape": list(shape) if shape is not None else None})
            return out

        input_names = [vi.name for vi in g.input if vi.name not in scope.consts]
        output_names = [vi.name for vi in g.output]
        meta: dict[str, Any] = {
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
            "ir_version": int(model.ir_version),
            "opset_import": dict(sorted(opsets.items())),
            "domain": model.domain,
            "model_version": int(model.model_version),
            "doc_string": model.doc_string,
            "graph_name": g.name,
            "metadata_props": {p.key: p.value for p in model.metadata_props},
            "inputs": describe(graph.inputs, input_names),
            "outputs": [{"name": n, "dtype": scope.types.get(n, (None, None))[0],
                         "shape": (list(scope.types[n][1]) if scope.types.get(n, (None, None))[1] is not None else None)}
                        for n in output_names],
            "external_data": ext,
            "file_size": self.file_size,
            "functions": sorted(f"{k[0]}::{k[1]}" if k[0] else k[1] for k in self.function_protos),
            "nodes": self.node_count,
            "folded_nodes": self.folded,
            "initializers": len(g.initializer) + len(g.sparse_initializer),
            "unused_initializers": unused,
            "shape_inference": self.shape_inference,
            "training_info": len(model.training_info),
        }
        return meta


def _iter_nodes_flat(nodes) -> Iterable[Any]:
    """Every node in ``nodes`` and in their sub-graphs, without recursion."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        for a in node.attribute:
            if a.HasField("g"):
                stack.extend(a.g.node)
            for g in a.graphs:
                stack.extend(g.node)


def _cyclic_nodes(edges: dict) -> set:
    """Vertices of ``edges`` that lie on a cycle (iterative Tarjan)."""
    index: dict = {}
    low: dict = {}
    on: set = set()
    stack: list = []
    result: set = set()
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges.get(v, ()):
                    result.update(comp)
    return result
