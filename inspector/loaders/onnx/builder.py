"""Building the :class:`~inspector.ir.ModelGraph` from a parsed ``ModelProto``:
graphs, sub-graphs and functions, folded constants, weights, layers, metadata."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable

from ... import lifetime
from ...errors import InspectorError, UnsafeModel
from ...ir import Dim, ExternalData, Inbound, Layer, ModelGraph, Operand, SecurityFact, Shape, Weight
from ...isolation import one_line
from ...limits import Limits
from ...pathsafety import resolve_inside
from . import inference, lite, retype, shapefold, wire
from .budget import check_function_fan_out
from .external import named_locations, stripped_locations
from .fold import FoldBudget, evaluate, is_static, np_dtype, num_elements, propagate_shape, simple_constant_value
from .inline import Inlined, call_attributes, call_prefix, inline_calls, restore
from .ops import (
    BN_STATS,
    CONFIG_VALUE,
    DEFAULT_DOMAINS,
    FOLDABLE_OTHER_DOMAIN,
    NON_DATA,
    NOT_FOLDABLE,
    QUANT,
    SMALL_VALUE,
    quant_positions,
)
from .paramrule import gathered_table_keys, is_integer_table, mark_constants, may_be_constant, quantized_weight_keys
from .plainvalue import UNDECODED, plain_list
from .protos import (
    DTYPES,
    any_graph,
    attribute_value,
    base_types,
    declared,
    dtype_name,
    small_value,
    tensor_dims,
    type_info,
)
from .scope import Const, NodeRow, OpInfo, Scope, Source, Task, node_rows
from .tensors import DataFiles, _fill_reader, const_reader, external_reader, inline_reader, proto_reader
from .walk import check_counts, check_expansion, cyclic_nodes, iter_nodes_flat, too_deep
from .wire import PROTOBUF_MAX_BYTES


class Builder:
    """Builds one :class:`~inspector.ir.ModelGraph` from a parsed ``ModelProto``
    (:meth:`build`); graphs, sub-graphs and function bodies are built from a work
    queue, not by recursion."""

    named_locations: tuple[set[str] | None] | None = None
    """The ``location`` values in the model's serialization (:func:`.external.named_locations`), when
    :meth:`build` read them off a serialization it made anyway or off the parsed bytes
    (:func:`.external.stripped_locations`): ``check_reachable`` needs no other."""

    sent: inference.Pending | None = None
    """The overlapped build's first request, sent by the loader before the model was parsed
    (:func:`.read._send_early`): :meth:`_build_overlapped` takes it back, a refusal drops it."""

    flat_model: Any = None
    """The model no attribute of whose nodes (main graph and functions) holds a graph, as its bytes showed
    (:attr:`.lite.Skeleton.flat`), when :meth:`build` knows one: its nodes' attributes are not looked at for
    graphs."""

    def __init__(self, path: Path, model: Any, stripped: wire.StrippedModel | None, size: int, lim: Limits, *,
                 infer_shapes: bool) -> None:
        self.path = path
        self.folder = path.parent
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
        self.fold_budget = FoldBudget()
        self.referenced: set[str] = set()
        self._schemas: dict[tuple[str, str, int], Any] = {}
        self._role_names: dict[tuple[str, str, int, int], list[str]] = {}
        self._resolved: dict[str, tuple[Path | None, str | None]] = {}
        self._data_files = DataFiles(self.folder)
        """The external data files readers open: each checked and opened once per load (:mod:`.tensors`)."""
        self.functions: dict[tuple[str, str, str], ModelGraph] = {}
        self._quantized_weights: set[str] = set()
        """Keys of stored tensors that reach a quantized operator as its weight (parameters whatever their dtype)."""
        self._integer_tables = False
        """A ``Gather`` read a stored integer table: :func:`.paramrule.gathered_table_keys` looks for the
        ``DequantizeLinear`` that makes it a quantized weight (most models have none: no pass over the layers)."""
        self._maybe_constant: list[Weight] = []
        """The weights made that :func:`.paramrule.may_be_constant` (the few whose ``constant`` waits for
        :attr:`_quantized_weights`): marked at the end, not every layer looked at for weights."""
        self.function_protos: dict[tuple[str, str, str], Any] = {}
        self.shape_inference = "not run"
        self.cyclic_functions: set[tuple[str, str, str]] = set()
        self._refused: dict[str, tuple[str, str]] = {}
        self.inlined: Inlined | None = None
        """Function calls inlined for shape inference: each call's body gets shapes (:mod:`.inline`)."""
        self._function_tasks: dict[tuple[str, str, str], Task] = {}
        self._call_bodies: dict[Any, ModelGraph] = {}
        """Bodies built for calls, by function, tensor types and attributes: calls alike share one."""
        self._sec_first: dict[str, str] = {}
        self.fold_uses: list[retype.FoldUse] | None = None
        """Types folds looked up, recorded in a speculative build (:mod:`.retype`)."""

    # ---- top level ----
    def build(self) -> ModelGraph:
        """The graph; shape inference, when asked for, runs in the helper while the graph is built
        from the file's own types (:mod:`.retype`), or first when that is not safe."""
        model = self.model
        stripped = self.stripped
        overlap = self.do_infer and retype.may_overlap(model)
        sent = self.sent
        if sent is not None and not overlap:  # (the loader sends it only for a build that overlaps)
            inference.cancel(sent)  # else the build's own request would wait for it forever
            sent = None
        try:
            skeleton = lite.skeleton(stripped.data) if stripped is not None and stripped.data else None
            check_counts(model, self.limits, skeleton)
            if skeleton is not None and stripped is not None and not stripped.edited and skeleton.flat:
                self.flat_model = model
            check_function_fan_out(model, self.limits)  # before shape inference, which expands every call
        except BaseException:
            if sent is not None:
                inference.cancel(sent)  # refused: the helper that started on it is stopped
            raise
        if overlap:
            return self._build_overlapped(model, skeleton, sent)
        if stripped is not None:
            self._locations_of(stripped)
            stripped.settle()  # the bytes parsed are not sent as they are: let them go before building
        if self.do_infer:
            model = self._infer(model)
        return self._construct(model)[0]

    def _locations_of(self, stripped: wire.StrippedModel) -> None:
        """:attr:`named_locations` read off the parsed bytes, before they go, when they tell them without
        a serialization of the model (:func:`.external.stripped_locations`: most files)."""
        found = stripped_locations(stripped)
        if found is not None:
            self.named_locations = (found,)

    def _construct(self, model: Any) -> tuple[ModelGraph, Scope]:
        """The graph of ``model`` as it is (types and all), and the main graph's scope."""
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
        check_expansion(graph, self.limits)
        if self._integer_tables:
            self._quantized_weights.update(gathered_table_keys(graph))
        mark_constants(self._maybe_constant, self._quantized_weights)
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
        return graph, main_scope

    def _build_overlapped(self, model: Any, skeleton: lite.Skeleton | None,
                          sent: inference.Pending | None = None) -> ModelGraph:
        """Shape inference in the helper while a speculative builder builds from the file's own
        types; then that graph, given the inferred types, or a build from the inferred model
        (:mod:`.retype`).  The result is the sequential build's in every case.  The bytes ``model``
        was parsed from are sent as they are when nothing changed it since (``skeleton``: its nodes;
        ``sent``: the request for them already sent, :attr:`sent`)."""
        stripped = self.stripped
        data: bytes | bytearray | None = None
        parsed = False  # ``data`` is the bytes ``model`` was parsed from (else its canonical serialization)
        # A file of at most 1/16 of protobuf's limit parses to a model far below it (re-encoding at most
        # quadruples a field): serialized, its length is the size ``_too_big`` would compute.
        if self.file_size <= PROTOBUF_MAX_BYTES // 16:
            parsed = stripped is not None and bool(stripped.data) and not stripped.edited
            data = stripped.data if parsed and stripped is not None else model.SerializeToString()
        started = [] if sent is None else [sent]  # dropped in the end unless its answer was read
        try:
            if self._too_big(model, None if data is None else len(data)):
                if stripped is not None:
                    stripped.settle()
                return self._construct(model)[0]
            started[:] = [inference.start_shape_inference(model, data_prop=True, types=True, data=data,
                                                          skeleton=skeleton, sent=sent)]
            if isinstance(started[0].outcome, str):  # data propagation must not run: the retry, now
                started.append(inference.start_shape_inference(model, data_prop=False, types=True, data=data,
                                                               skeleton=skeleton))
            # While the helper works: the text of the parsed bytes checked, and the locations check_reachable
            # looks for read off those bytes when they name none but the stripped tensors', else off the model's
            # canonical serialization (made here when the file's bytes were sent).
            canonical, serialized = (None if parsed else data), data is not None
            del data
            if stripped is not None:
                self._locations_of(stripped)
                if not parsed:  # (else the helper checks their text, sent them: they go once it answered)
                    stripped.settle()  # lets the parsed bytes go
            if serialized and self.named_locations is None:
                self.named_locations = (named_locations(model.SerializeToString() if canonical is None else canonical),)
            del canonical
            if retype.has_subgraphs(model, started[0]):  # looked at while the helper works
                return self._construct(inference.parsed(self._infer_model(model, started)))[0]
            return self._speculate(model, started)
        finally:
            for pending in started:
                inference.cancel(pending)  # nothing, unless an error left an answer unread

    def _speculate(self, model: Any, started: list[inference.Pending]) -> ModelGraph:
        """The graph built from ``model``'s own types while inference runs (``started``), finished
        with what inference found, or built again from the inferred model when that is not exact."""
        spec = Builder(self.path, model, self.stripped, self.file_size, self.limits, infer_shapes=False)
        spec._schemas, spec._role_names = self._schemas, self._role_names  # operator schemas,
        spec._resolved = self._resolved  # and the path checks of data files: once, whoever builds
        spec.flat_model = self.flat_model
        uses: list[retype.FoldUse] = []
        spec.fold_uses = uses
        try:
            graph, scope = spec._construct(model)
        except retype.Abandoned:  # it would be built again: wait for inference, then build, as before
            del spec
            return self._construct(inference.parsed(self._infer_model(model, started)))[0]
        except InspectorError:
            raise  # a limit or a refusal: it does not depend on types
        except Exception:  # noqa: BLE001 - whatever the sequential build makes of it
            return self._construct(inference.parsed(self._infer_model(model, started)))[0]
        inferred = self._infer_model(model, started)
        told = inference.text_utf8(inferred)  # the helper checked the text of the bytes it was sent
        if told is not None and self.stripped is not None:
            self.stripped.settle(utf8=told)  # (which are these when they are still kept: the parsed bytes)
        try:
            if retype.nested(graph):
                del graph, scope, spec
                return self._construct(inference.parsed(inferred))[0]
            same = inference.same_outline(inferred, model)  # then the inferred model need not be parsed here
            if inferred is not model and not same and inference.held(inferred):
                del graph, scope, spec  # the metadata would read it: fetched, and built from, as the sequential build
                return self._construct(inference.parsed(inferred))[0]
            if inferred is not model:
                types = retype.inferred_types(scope.types, uses, scope.consts, model, inferred)
                if types is None:  # a fold used a type inference changed: build as before
                    del graph, scope, spec
                    return self._construct(inference.parsed(inferred))[0]
                retype.apply(graph, types, scope.consts)
                scope.types = types
            graph.notes = self.notes = self.notes + spec.notes  # inference's notes first, as when built after it
            spec.shape_inference = self.shape_inference
            graph.metadata = spec._metadata(model if same else inferred, scope, graph)
            graph.invalidate()
            lifetime.hold(spec, scope, inferred)  # the working tables: the program frees them only at the next load
            return graph
        finally:
            inference.release(inferred)  # the helper holds no model once this build is done

    def _fold_type(self, scope: Scope, name: str, kind: str) -> tuple[str | None, Shape | None]:
        """The type a fold of ``name`` looks up (recorded for :mod:`.retype` in a speculative build)."""
        seen = scope.types.get(name, (None, None))
        uses = self.fold_uses
        if uses is not None:
            if uses and uses[-1][0] == "fold":
                retype.check_use(uses, scope.consts)  # the previous fold's constant is made by now
            uses.append((kind, name, seen))
            if kind == "fill":
                retype.check_use(uses, scope.consts)
        return seen

    def _too_big(self, model: Any, size: int | None = None) -> bool:
        """Is ``model`` (``size`` bytes serialized, when known) too big to serialize for shape inference
        (then it is skipped, with a note)?"""
        if (model.ByteSize() if size is None else size) > PROTOBUF_MAX_BYTES - (1 << 20):
            self.shape_inference = "skipped: the graph structure exceeds protobuf's 2 GiB limit"
            self.notes.append("Shape inference skipped: the graph structure exceeds protobuf's 2 GiB limit.")
            return True
        return False

    def _infer(self, model: Any) -> Any:
        if self._too_big(model):
            return model
        self.inlined = inline_calls(model, self.limits, checked=True) if len(model.functions) else None
        if self.inlined is not None:
            notes = len(self.notes)
            inferred = self._infer_model(self.inlined.model)
            if inferred is not self.inlined.model:
                self.inlined.learn(inferred)
                return restore(model, inferred)
            del self.notes[notes:]  # inference of the inlined copy failed: the model itself, as before
            self.inlined = None
        return self._infer_model(model)

    def _infer_model(self, model: Any, started: list[inference.Pending] | None = None) -> Any:
        """``model`` shape-inferred (and refined: :mod:`.shapefold`), or ``model`` itself when inference
        failed, with the notes saying so; ``started``: the runs with and without data propagation
        already started, if any."""
        errors: list[str] = []
        mark = len(self.notes)
        for i, data_prop in enumerate((True, False)):
            if started is not None and i < len(started):
                outcome = inference.finish(started[i])
                if isinstance(outcome, inference.Inferred):  # the helper may keep it until it is used
                    outcome.again = lambda: self._infer_again(model, mark)
            else:
                outcome = inference.run_shape_inference(model, data_prop=data_prop)
            if isinstance(outcome, str):
                errors.append(outcome)
                if outcome.startswith(inference.INFER_TIMEOUT):
                    break  # without data propagation it would only time out again
                continue
            self.shape_inference = "ok" if data_prop else "ok (without data propagation)"
            outcome, folded = shapefold.refine(outcome, data_prop=data_prop)
            if folded:
                inference.forget_types(outcome)  # refined: its types are no longer what the helper read
            if not data_prop:
                self.notes.append(
                    f"Shape inference with data propagation failed ({errors[0]}); shapes were inferred without it.")
            return outcome
        self.shape_inference = f"failed: {errors[-1]}"
        self.notes.append(f"Shape inference failed ({errors[-1]}); shapes come from the file's value_info only.")
        return model

    def _infer_again(self, model: Any, mark: int) -> Any:
        """``model`` inferred by the sequential path (its notes replacing those from ``mark`` on): the
        helper no longer holds the model it inferred while the speculative build ran."""
        del self.notes[mark:]
        return inference.parsed(self._infer_model(model))

    # ---- model-local functions ----
    def _plan_functions(self, model: Any, queue: deque[Task]) -> None:
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
        calls: dict[Any, set[Any]] = {}
        for key, f in protos.items():
            callees = set()
            for node in iter_nodes_flat(f.node):
                ck = (node.domain, node.op_type, getattr(node, "overload", "") or "")
                if ck in protos:
                    callees.add(ck)
            calls[key] = callees
        cyclic = cyclic_nodes(calls)
        for key in sorted(cyclic):
            self.notes.append(
                f"Function {key[0]}::{key[1]} calls itself (directly or not); its calls are not expanded.")
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
            self._function_tasks[key] = Task(f, sub, None, prefix, opsets, 1, is_function=True)
            queue.append(self._function_tasks[key])

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
            scope.types.update(task.types)  # one call's body: what inference of the inlined model found
            inits: list[Any] = []
            sparse: list[Any] = []
        else:
            scope.types.update(base_types(declared(proto)))  # the scope is new: its types are empty
            input_names = [vi.name for vi in proto.input]
            output_names = [vi.name for vi in proto.output]
            inits = list(proto.initializer)
            sparse = list(proto.sparse_initializer)
        self._stored_constants(inits, sparse, scope)
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
        rows = node_rows(proto.node)
        reads = _reads_in_file_order(rows)
        if reads is None:  # some node outputs a name an earlier node read: the whole check tells
            order = self._topological(rows, task)
            self.referenced.update(chain.from_iterable(map(itemgetter(3), rows)))  # every node's, folded or not
        else:
            order = None
            if self.referenced:
                self.referenced.update(reads)
            else:  # the first graph built: its set as it is, not copied (a decoder's is 160,000 names)
                self.referenced = reads
        if task.call is None:  # a call's own body is the function's, counted once
            self.node_count += len(rows)
        nested = self._node_layers(proto.node, rows, order, scope, task, queue, graph_outputs, layers,
                                   nestable=self.model is not self.flat_model)
        self._drop_shape_computations(layers, scope, graph_outputs, proto.node if nested else ())
        self._outputs(output_names, scope, layers)
        # Outer-scope InputLayers were appended to ``scope.graph.layers`` as found;
        # put them first, then this graph's own layers.
        graph.layers = graph.layers + layers
        graph.invalidate()
        return scope

    # long: the per-node hot path of the build, kept in one piece (a call per node costs time on 1M nodes)
    def _node_layers(self, nodes: Any, rows: list[NodeRow], order: list[int] | None, scope: Scope, task: Task,
                     queue: deque[Task], graph_outputs: set[str], layers: list[Layer], *, nestable: bool) -> bool:
        """Fold the constant nodes of a graph (``nodes``, read as ``rows``) and append a layer to ``layers``
        for each other node, in ``order`` (``None``: file order); whether some node holds a sub-graph.  A
        layer's operands: the producers of its inputs go to its inbound, the stored tensors that reach it
        as data to its weights, the tensors it consumes to ``scope``'s uses.  ``nestable``: whether an
        attribute may hold a graph (``False``: the model's bytes showed none, so no node's attributes are
        looked at for one)."""
        top = scope.parent is None
        consts, types, producers, made_at = scope.consts, scope.types, scope.producers, scope.made_at
        find_const = consts.get if top else scope.find_const
        used, scope_non_data = scope.used_names, scope.non_data
        data_uses, shape_uses = scope.data_uses, scope.shape_uses
        infos: dict[tuple[str, str, int], OpInfo] = {}
        nested = False  # a node holds a sub-graph
        calls = bool(self.functions)  # a node may call a model-local function
        const_operand = self._const_operand
        for idx, row in enumerate(rows) if order is None else zip(order, map(rows.__getitem__, order), strict=True):
            op, domain, name, inputs, outputs, n_attr = row
            # The node itself only where its attributes or a function call are looked at (or it folds).
            node: Any = nodes[idx] if n_attr or calls else None
            about = infos.get((op, domain, len(inputs)))
            if about is None:
                about = infos[(op, domain, len(inputs))] = self._op_info(op, domain, len(inputs), scope.opsets)
            attrs: Iterable[Any]
            if n_attr and nestable:
                attrs = list(node.attribute)  # each read once: a wrapper per read
                has_graph = any_graph(attrs)
                nested = nested or has_graph
            else:
                attrs = node.attribute if n_attr else _NO_ATTRIBUTES  # read once, by ``_config``
                has_graph = False
            if about.foldable and not has_graph and (op == "Constant" or not inputs or not inputs[0]
                                                     or find_const(inputs[0]) is not None) \
                    and self._foldable(node, row, about, find_const, graph_outputs):
                self._fold(nodes[idx] if node is None else node, scope)
                self.folded += 1
                continue
            pos = len(layers)
            base = name or f"{op}_{idx}"
            if base in used:
                lname = self._unique(scope, base, idx)
            else:
                used.add(base)
                lname = base
            non_data = about.non_data
            if non_data:  # read with a default: most operators have none
                scope_non_data[lname] = non_data
            notes: list[str] = []
            config: dict[str, Any] = self._config(attrs, task, notes) if n_attr else {}
            config["@outputs"] = outputs  # after the attributes
            inbound: list[Inbound] = []
            weights: dict[str, Weight] = {}
            operands: list[Operand] = []
            roles = about.roles
            for i, tname in enumerate(inputs):
                if not tname:
                    operands.append(Operand(roles[i], tname, "absent"))
                    continue
                const = find_const(tname)
                if const is not None:
                    made = const.operands if i in non_data else None  # a shape, axes or indices operand,
                    known = made.get((roles[i], tname, False)) if made else None  # made already: it adds nothing
                    operands.append(known or const_operand(i, tname, const, op, lname, about, notes, weights))
                    continue
                dtype, shape = types.get(tname, _UNKNOWN) if top else scope.find_type(tname)
                ref = producers.get(tname)
                if ref is None:
                    ref = Inbound(self._outer_input(tname, scope), 0, 0)
                inbound.append(ref)
                operands.append(Operand(roles[i], tname, "input", dtype, shape))
                (shape_uses if i in non_data else data_uses).append(tname)
            if about.constant:
                self._constant_node_weights(nodes[idx] if node is None else node, scope, weights)
            if len(outputs) == 1 and outputs[0] and outputs[0] not in made_at:  # as below, for the usual node
                out = outputs[0]
                first_dtype, shape = types.get(out, _UNKNOWN)
                shapes: list[Shape | None] = [shape]
                producers[out] = Inbound(lname, 0, 0)
                made_at[out] = pos
            else:
                shapes, first_dtype = self._wire_outputs(outputs, lname, pos, scope)
            # Positional (twice as fast as by keyword): name, type, config, inbound, node_shapes, weights,
            # subgraphs, trainable, module, dtype, notes, operands.
            layer = Layer(lname, about.ltype, config, [inbound], [shapes],
                          list(weights.values()) if weights else [], {}, True, None, first_dtype, notes, operands)
            if has_graph or calls:  # nothing nested otherwise
                self._nested_graphs(node, idx, layer, scope, task, queue)
            layers.append(layer)
        return nested

    def _stored_constants(self, inits: list[Any], sparse: list[Any], scope: Scope) -> None:
        """The graph's initializers and sparse initializers become constants of ``scope``."""
        consts, types, stored = scope.consts, scope.types, scope.stored
        for t in inits:  # each protobuf field read once: a model may hold 100,000s of initializers
            name = t.name
            stored.append(name)
            external = t.data_location == 1
            src = self._source_from_tensor(t, name, scope, external=external)
            if src is None:
                continue
            consts[name] = Const(name, src.dtype, src.shape, ((src, False),), None if external else t)
            types.setdefault(name, (src.dtype, src.shape))
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

    def _outputs(self, output_names: list[str], scope: Scope, layers: list[Layer]) -> None:
        """Wire the graph's outputs (a constant returned as an output gets a layer of its own)."""
        graph = scope.graph
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

    def _drop_shape_computations(self, layers: list[Layer], scope: Scope, graph_outputs: set[str],
                                 nested: Iterable[Any]) -> None:
        """Constants consumed by nodes that only compute shapes are not parameters.

        tf2onnx and PyTorch compute target shapes at run time (``Shape`` →
        ``Gather`` → ``Concat`` with a constant → ``Reshape``'s shape operand).  A
        node all of whose outputs end, directly or through other such nodes, only
        in shape/axes/index operands is a shape computation; the constants it
        consumes are shape data, not weights.

        Only the nodes upstream of a shape operand can be shape computations: they are
        visited from those operands backwards, latest first, so a node is judged after
        every later consumer of its outputs (as a pass over all layers in reverse would);
        ``nested`` holds the nodes of a graph some of whose nodes hold sub-graphs."""
        if not scope.shape_uses:
            return  # no tensor is consumed as a shape: no node computes only shapes
        import heapq
        from collections import Counter

        made_at, made_again = scope.made_at, scope.made_again

        def producers(tensor: str) -> list[int]:
            at = made_at.get(tensor)
            return [] if at is None else [at, *made_again.get(tensor, ())]

        shape_uses = set(scope.shape_uses)
        heap = [-pos for t in shape_uses for pos in producers(t)]
        if not heap:
            return  # no layer outputs a shape operand (graph inputs, outer tensors): nothing to count
        inner_refs: set[str] = set()
        if nested:
            inner_refs = {name for n in iter_nodes_flat(nested) for name in n.input}
        pending = Counter(scope.data_uses)  # data uses not (yet) by a shape computation
        heapq.heapify(heap)
        seen: set[int] = set()
        while heap:
            pos = -heapq.heappop(heap)
            if pos in seen:
                continue
            seen.add(pos)
            lay = layers[pos]
            outs = [o for o in lay.config.get("@outputs", []) if o]
            if not outs or any(o in graph_outputs or o in inner_refs for o in outs):
                continue
            if any(pending.get(o, 0) for o in outs) or not any(o in pending or o in shape_uses for o in outs):
                continue
            if lay.weights:
                lay.weights = []
                lay.operands = [replace(operand, kind="constant") if operand.kind == "weight" else operand
                                for operand in lay.operands]
            non_data = scope.non_data.get(lay.name, frozenset())
            for i, operand in enumerate(lay.operands):
                if operand.kind == "input" and i not in non_data:
                    pending[operand.tensor] -= 1
                    for before in producers(operand.tensor):
                        if before < pos:
                            heapq.heappush(heap, -before)

    def _topological(self, rows: list[NodeRow], task: Task) -> list[int] | None:
        """The order to build ``rows`` in: ``None`` for file order (already topological, as files
        usually are), else a dependency order that keeps the file order where it can (with a note)."""
        produced_at: dict[str, int] = {}
        first_use: dict[str, int] = {}  # inputs no earlier node produces -> the first node reading them
        for i, row in enumerate(rows):
            for name in row[3]:
                if name not in produced_at and name not in first_use:
                    first_use[name] = i
            for out in row[4]:
                if out and out not in produced_at:
                    produced_at[out] = i
        if not any(produced_at[name] > first_use[name] for name in first_use.keys() & produced_at.keys()):
            return None
        import heapq

        deps: list[set[int]] = []
        users: dict[int, list[int]] = {}
        for i, row in enumerate(rows):
            d = {produced_at[n] for n in row[3] if n in produced_at and produced_at[n] != i}
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
        if len(order) < len(rows):
            done = set(order)
            rest = [i for i in range(len(rows)) if i not in done]
            order.extend(rest)
            self.notes.append(
                f"Graph {task.graph.name!r} has a cycle through {len(rest)} node(s); they are listed in file order.")
        else:
            self.notes.append(f"Nodes of graph {task.graph.name!r} are not in topological order in the file; "
                              "they are listed in dependency order.")
        return order

    # ---- sources ----
    def _source_from_tensor(self, t: Any, name: str, scope: Scope, *, external: bool | None = None) -> Source | None:
        """The stored tensor ``t`` (``external``: whether it is marked as external data, when the
        caller read it already)."""
        dims = tensor_dims(t)
        code = t.data_type
        dtype = DTYPES.get(code) or dtype_name(code)
        if external is None:
            external = t.data_location == 1
        if dims is None:
            self.notes.append(f"Tensor {name!r} has negative dims {list(t.dims)}; it is not counted.")
            if external:  # its external data is still checked and listed
                self._external(name, (), code, {e.key: e.value for e in t.external_data})
            return None
        key = scope.key_prefix + name
        reader: Callable[[], Any] | None
        if not external:
            return Source(name, key, dtype, dims, None, proto_reader(t, name))
        entries = {e.key: e.value for e in t.external_data}
        location = entries.get("location", "")
        stripped = self.stripped
        if stripped is not None and location.startswith(stripped.token_prefix) and location in stripped.inline:
            reader = inline_reader(self.path, stripped.inline[location], name, dims, code)
            return Source(name, key, dtype, dims, None, reader)
        ext, reader = self._external(name, dims, code, entries)
        return Source(name, key, dtype, dims, ext, reader)

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
        info = self.external.get(location)
        if info is None:
            info = self.external[location] = {"location": location, "tensors": 0, "bytes": 0, "size": None,
                                              "status": "ok"}
        info["tensors"] += 1
        if length is not None:
            info["bytes"] += length
        checked = self._resolved.get(location)
        if checked is None:  # the path checks (lstat of every component) once per data file, not per tensor
            checked = self._resolved[location] = resolve_inside(self.folder, location)
        resolved, reason = checked
        if resolved is None:
            info["status"] = f"refused: {reason}"
            self._refused.setdefault(location, (name, str(reason)))

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
        return ext, external_reader(self._data_files, location, offset, length, dims, data_type, name)

    def _constant_node_sources(self, node: Any, scope: Scope) -> Const | None:
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
    def _foldable(self, node: Any, row: NodeRow, info: OpInfo, find_const: Callable[[str], Const | None],
                  graph_outputs: set[str]) -> bool:
        """Does a node (``row``) whose operator may fold (``info.foldable``) and that holds no sub-graph fold:
        all its inputs constants, no output a graph output, no call of a model-local function (``node``, read
        when some function may be called)?"""
        op, domain, _, inputs, outputs, _ = row
        if op != "Constant":  # most nodes take an activation: the cheapest check first (all checks are pure)
            some = False
            for name in inputs:
                if name:
                    if find_const(name) is None:
                        return False
                    some = True
            if not some:
                return False
        if any(o in graph_outputs for o in outputs if o):
            return False
        if info.may_call and (domain, op, getattr(node, "overload", "") or "") in self.function_protos:
            return False
        return True

    def _fold(self, node: Any, scope: Scope) -> None:
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
        find_const = scope.consts.get if scope.parent is None else scope.find_const
        inputs = [find_const(n) if n else None for n in node.input]
        if op == "ConstantOfShape":
            self._fold_constant_of_shape(node, inputs[0], scope)
            return
        origins = _data_origins(op, inputs)
        self._quantized_weights.update(quantized_weight_keys(op, len(inputs), enumerate(inputs)))
        value = evaluate(node, inputs, self.value_of, budget=self.fold_budget)
        for k, out in enumerate(node.output):
            if not out:
                continue
            dtype, shape = self._fold_type(scope, out, "fold")
            val = value[k] if value is not None and k < len(value) else None
            if val is not None:
                dtype = dtype or str(val.dtype)
                shape = tuple(int(d) for d in val.shape)
            elif shape is None or not is_static(shape):
                shape = propagate_shape(op, node, inputs) or shape
            if dtype is None and inputs and inputs[0] is not None and op not in ("Cast", "DequantizeLinear",
                                                                                   "QuantizeLinear", "Shape", "Size"):
                dtype = inputs[0].dtype
            c = Const(out, dtype, shape, origins)
            if val is not None:
                c.value, c.evaluated = val, True
            scope.consts[out] = c

    def _fold_constant_of_shape(self, node: Any, shape_const: Const | None, scope: Scope) -> None:
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
            _, inferred = self._fold_type(scope, out, "fill")
            if inferred is not None and is_static(inferred):
                dims = tuple(d for d in inferred if isinstance(d, int))  # all of them: it is static
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
        if dims is not None and num_elements(dims) <= SMALL_VALUE and self.fold_budget.take(num_elements(dims)):
            try:
                import numpy as np

                c.value, c.evaluated = np.full(dims, fill, dtype=np_dtype(dtype)), True
            except Exception:  # noqa: BLE001
                pass
        scope.consts[out] = c
        scope.types.setdefault(out, (dtype, dims))

    def value_of(self, c: Const) -> Any:
        """The numpy value of a small constant, or ``None``."""
        if c.evaluated:
            return c.value
        c.evaluated = True
        if c.proto is None or c.shape is None or not is_static(c.shape) or num_elements(c.shape) > SMALL_VALUE:
            return None
        c.value = small_value(c.proto)  # a malformed tensor just has no value
        return c.value

    def operand_value(self, c: Const) -> Any:
        """``Operand.value`` of a constant: ``value_of(c).tolist()`` when it has at most ``CONFIG_VALUE``
        elements, else ``None``; a stored tensor not evaluated yet is read without numpy where
        :mod:`.plainvalue` can (so a summary whose operand values are all plain imports no numpy)."""
        if not c.evaluated and c.proto is not None and c.shape is not None and is_static(c.shape) \
                and num_elements(c.shape) <= SMALL_VALUE:
            plain = plain_list(c.proto, limit=CONFIG_VALUE)
            if plain is not UNDECODED:
                return plain
        v = self.value_of(c)
        return v.tolist() if v is not None and v.size <= CONFIG_VALUE else None

    # ---- compute layers ----
    def _op_info(self, op: str, domain: str, n: int, opsets: dict[str, int]) -> OpInfo:
        """What the builder needs to know about ``op`` of ``domain`` called with ``n`` inputs."""
        default = domain in DEFAULT_DOMAINS
        return OpInfo(
            ltype=op if default else f"{domain}.{op}",
            roles=tuple(self._roles(op, domain, n, opsets)),
            non_data=NON_DATA.get(op, frozenset()),
            quant=quant_positions(op, n),
            bn_stats=BN_STATS.get(op, frozenset()) if default else frozenset(),
            foldable=(default or (domain, op) in FOLDABLE_OTHER_DOMAIN) and op not in NOT_FOLDABLE,
            constant=op == "Constant" and default,
            may_call=any(k[0] == domain and k[1] == op for k in self.function_protos))

    @staticmethod
    def _config(attrs: Iterable[Any], task: Task, notes: list[str]) -> dict[str, Any]:
        """A node's attributes as plain values (an attribute that cannot be read: ``None`` and a note)."""
        config: dict[str, Any] = {}
        for a in attrs:
            try:
                config[a.name] = attribute_value(task.attrs.get(a.ref_attr_name, a) if a.ref_attr_name else a)
            except Exception as exc:  # noqa: BLE001 - one odd attribute must not sink the model
                config[a.name] = None
                notes.append(f"attribute {a.name!r} could not be read ({one_line(exc, 80)})")
        return config

    @staticmethod
    def _wire_outputs(outputs: list[str], lname: str, pos: int, scope: Scope) -> tuple[list[Shape | None], str | None]:
        """Layer ``lname`` (at ``pos``) becomes the producer of ``outputs``; their shapes and the first
        one's dtype.  (:meth:`_node_layers` does this itself for a node with one new output.)"""
        types, producers, made_at = scope.types, scope.producers, scope.made_at
        shapes: list[Shape | None] = []
        first_dtype = None
        for k, out in enumerate(outputs):
            if not out:
                shapes.append(None)
                continue
            dtype, shape = types.get(out, _UNKNOWN)
            if k == 0:
                first_dtype = dtype
            shapes.append(shape)
            producers[out] = Inbound(lname, 0, k)
            if out in made_at:  # a file that reuses an output name
                scope.made_again.setdefault(out, []).append(pos)
            else:
                made_at[out] = pos
        return shapes, first_dtype

    def _constant_node_weights(self, node: Any, scope: Scope, weights: dict[str, Weight]) -> None:
        """The stored tensors of a ``Constant`` node that is not folded become its weights."""
        const = self._constant_node_sources(node, scope)
        for src, _is_q in (const.origins if const is not None else ()):
            if src.shape is not None and src.key not in weights:
                weights[src.key] = self._weight(Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype,
                                                       key=src.key, external=src.external, reader=src.reader))

    def _const_operand(self, i: int, tname: str, const: Const, op: str, lname: str, info: OpInfo,
                       notes: list[str], weights: dict[str, Weight]) -> Operand:
        """Input ``i`` of a node, a constant: its value when small, its stored tensors as weights when data.
        The operand is made once per constant, role and kind of position (:attr:`.Const.operands`)."""
        data = i not in info.non_data
        role = info.roles[i]
        if data:
            if op in QUANT:
                self._quantized_weights.update(quantized_weight_keys(op, len(info.roles), [(i, const)]))
            elif i == 0 and is_integer_table(op, i, const.dtype):
                self._integer_tables = True
            if const.origins:
                self._add_weights(lname, notes, const, role, weights, trainable=i not in info.bn_stats,
                                  quant=i in info.quant)
        made = const.operands
        if made is None:
            made = const.operands = {}
        key = (role, tname, data)
        operand = made.get(key)
        if operand is None:
            value = None
            if not data or (const.dtype in ("int64", "int32", "bool") and const.shape is not None
                            and is_static(const.shape) and num_elements(const.shape) <= 4):
                value = self.operand_value(const)
            kind = "weight" if data and const.origins else "constant"
            operand = made[key] = Operand(role, tname, kind, const.dtype, const.shape, value)
        return operand

    def _add_weights(self, lname: str, notes: list[str], const: Const, role: str, weights: dict[str, Weight], *,
                     trainable: bool, quant: bool) -> None:
        """The stored tensors that flow into ``const`` become weights of layer ``lname`` (once per key)."""
        for src, is_q in const.origins:
            if src.shape is None:
                notes.append(f"constant {src.name!r} has an unknown size and is not counted")
                continue
            if src.key in weights:
                continue
            # Positional (a model may hold 100,000s): name, role, shape, dtype, trainable, key, external,
            # quantization, constant, reader.
            weights[src.key] = self._weight(Weight(src.name, role, src.shape, src.dtype, trainable, src.key,
                                                   src.external, is_q or quant, False, src.reader))
            if src.external is not None:
                self._sec_first.setdefault(src.external.location, lname)

    def _weight(self, w: Weight) -> Weight:
        """``w``, a weight just made, kept for :func:`.paramrule.mark_constants` when it may be a constant."""
        if may_be_constant(w):
            self._maybe_constant.append(w)
        return w

    def _nested_graphs(self, node: Any, idx: int, layer: Layer, scope: Scope, task: Task,
                       queue: deque[Task]) -> None:
        """Queue the node's sub-graphs (``If``/``Loop``/``Scan`` bodies) and attach a called function's body."""
        lname = layer.name
        for a in node.attribute:
            if a.type not in (0, 5, 10):
                continue
            subs = []
            if a.type == 5 or (a.type == 0 and a.HasField("g")):
                subs = [(a.name, a.g)]
            elif a.type == 10:
                subs = [(f"{a.name}[{j}]", g) for j, g in enumerate(a.graphs)]
            for key, g in subs:
                if task.depth + 1 > self.limits.onnx_graph_depth:
                    raise too_deep(self.limits)
                sub = ModelGraph(name=g.name or f"{lname}/{key}", format="onnx", kind="onnx",
                                 metadata={"attribute": key, "parent": lname})
                layer.subgraphs[key] = sub
                queue.append(Task(g, sub, scope, f"{scope.key_prefix}{lname}/{key}/", scope.opsets,
                                  task.depth + 1))
        if not self.functions:
            return
        fkey = (node.domain or "", node.op_type, getattr(node, "overload", "") or "")
        if fkey in self.functions:
            if fkey in self.cyclic_functions:
                layer.notes.append("calls a recursive function; its body is not expanded")
            else:
                layer.subgraphs["function"] = self._call_body(node, idx, task, queue) or self.functions[fkey]

    def _call_body(self, node: Any, idx: int, task: Task, queue: deque[Task]) -> ModelGraph | None:
        """A body of its own for a call of the main graph (or of such a body) whose tensors got
        shapes from inference of the inlined model; ``None``: the call shares the function's body."""
        main = task.depth == 0 and not task.is_function
        if self.inlined is None or not (main or task.call is not None):
            return None
        prefix = call_prefix(task.call or "", idx)
        types = self.inlined.body_types(prefix)
        fkey = (node.domain or "", node.op_type, getattr(node, "overload", "") or "")
        shared = self._function_tasks.get(fkey)
        if types is None or shared is None:
            return None
        attrs = call_attributes(shared.proto, node, task.attrs)
        alike = (fkey, tuple(sorted(types.items(), key=lambda item: item[0])),
                 tuple(sorted((name, a.SerializeToString()) for name, a in attrs.items())))
        sub = self._call_bodies.get(alike)
        if sub is None:
            sub = ModelGraph(name=shared.graph.name, format="onnx", kind="onnx", metadata=dict(shared.graph.metadata))
            self._call_bodies[alike] = sub
            queue.append(replace(shared, graph=sub, depth=task.depth + 1, call=prefix, types=types, attrs=attrs))
        return sub

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
        weights = [self._weight(Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype, key=src.key,
                                       external=src.external, quantization=is_q, reader=src.reader))
                   for src, is_q in const.origins if src.shape is not None]
        layer = Layer(name=lname, type="Constant", config={"@outputs": [name]}, inbound=[[]],
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
        named = self._role_names.get((op, domain, version, n))
        if named is None:
            named = self._role_names[(op, domain, version, n)] = self._schema_roles(op, domain, version, n)
        return named

    def _schema_roles(self, op: str, domain: str, version: int, n: int) -> list[str]:
        """The operator schema's names of ``n`` input positions (``input_<i>`` past a known schema)."""
        key = (op, domain, version)
        schema = self._schemas.get(key, False)
        if schema is False:
            schema = None
            if version:
                try:
                    schema = lite.get_schema(op, version, domain)
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
    def _metadata(self, model: Any, scope: Scope, graph: ModelGraph) -> dict[str, Any]:
        g = model.graph
        opsets = {}
        for o in model.opset_import:
            opsets[o.domain or "ai.onnx"] = int(o.version)
        ext = []
        for loc in sorted(self.external):
            info = dict(self.external[loc])
            ext.append(info)
        unused = sorted(set(scope.stored) - self.referenced)

        def describe(refs: Iterable[Inbound], names: list[str]) -> list[dict[str, Any]]:
            out = []
            for _ref, name in zip(refs, names, strict=False):
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
                         "shape": _listed(scope.types.get(n, (None, None))[1])}
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


_UNKNOWN: tuple[None, None] = (None, None)
"""The type of a tensor nothing describes."""
_NO_ATTRIBUTES: tuple[Any, ...] = ()
"""The attributes of a node that has none."""


def _listed(shape: Shape | None) -> list[Dim] | None:
    """A shape as a list (how metadata holds it), or ``None`` when unknown."""
    return list(shape) if shape is not None else None


def _reads_in_file_order(rows: list[NodeRow]) -> set[str] | None:
    """The names the nodes ``rows`` read (``""`` included), when no node outputs a name an earlier node
    read: then the file order is topological, as :meth:`Builder._topological` would find (a tensor it
    finds read before it is first made is a name a later node outputs), at a set update and a disjointness
    test per node instead of its pass over every name; ``None`` otherwise (rare: a file out of order, or
    reusing an output name), and :meth:`Builder._topological` tells."""
    reads: set[str] = set()
    update, isdisjoint = reads.update, reads.isdisjoint
    for _, _, _, inputs, outputs, _ in rows:
        if not isdisjoint(outputs) and any(out and out in reads for out in outputs):  # "" names no tensor
            return None
        update(inputs)
    return reads


def _data_origins(op: str, inputs: list[Const | None]) -> tuple[tuple[Source, bool], ...]:
    """The initializers the outputs of an ``op`` node fed ``inputs`` are computed from,
    each once, with whether it reaches them through a quantized operand."""
    non_data = NON_DATA.get(op, frozenset())
    quant = quant_positions(op, len(inputs))
    origins: list[tuple[Source, bool]] = []
    for i, c in enumerate(inputs):
        if c is None or i in non_data:
            continue
        if i in quant:
            origins.extend((src, True) for src, _ in c.origins)
        else:
            origins.extend(c.origins)
    # Once each, first occurrence first: a Source compares (and hashes) by identity.
    return tuple(dict.fromkeys(origins))
