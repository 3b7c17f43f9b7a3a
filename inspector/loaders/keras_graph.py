"""Keras model config → :class:`~inspector.ir.ModelGraph` skeleton, shared by the Keras loaders.

:func:`graph_from_config` builds the layers, their wiring (inbound nodes, read by
:mod:`~inspector.loaders.keras_config`) and nested models of a whole config, with no
weights yet; ``keras_v3`` (the ``.keras`` zip), ``keras_h5`` (legacy HDF5) and
``savedmodel`` attach the weights they find to these layers, then call :func:`finish`.

Nothing in a config is ever executed or imported: class names, module names and
function references are data (what would run code is recorded by
:func:`~inspector.loaders.keras_security.scan_config`).

``Layer.trainable`` is the *effective* flag: a layer's own ``trainable`` and every
enclosing ``trainable: false`` (a layer inside a frozen nested model is not
trainable, whatever its own config says).  A nested model built from an ``Input``
owns a hidden first node, so Keras 2 refers to its calls from 1: those indices are
renumbered from 0 here, as Keras 3 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import LimitExceeded, ModelLoadError
from ..ir import Inbound, Layer, ModelGraph, Shape
from ..limits import current, hint
from .keras_config import (
    flat_refs,
    input_layer_shape,
    is_model_entry,
    keras2_node,
    keras3_node,
    policy_name,
    single_shape,
    snake_case,
)
from .keras_security import scan_config

MAX_LAYER_OUTPUTS = 10_000
"""Highest output index a config may refer to (a layer with more outputs is hostile)."""


@dataclass(slots=True)
class _Build:
    fmt: str
    layer_count: int = 0
    style: str | None = None


def graph_from_config(cfg: Any, *, fmt: str) -> ModelGraph:
    """Build the graph skeleton of a whole model config (no weights yet).

    Raises :class:`ModelLoadError` when ``cfg`` is not a Keras model config.
    """
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str) or "config" not in cfg:
        raise ModelLoadError(
            "its config is not a Keras model (no class_name/config at the top): "
            "the file was not written by Keras model.save()"
        )
    if not isinstance(cfg.get("config"), (dict, list)):
        raise ModelLoadError("its model config has no layer list: the file is not a Keras model")
    state = _Build(fmt)
    graph = _build_model(cfg, state, parent_trainable=True, depth=0)
    graph.metadata["config_style"] = state.style or _guess_style(cfg)
    graph.security.extend(scan_config(cfg))
    return graph


def _guess_style(cfg: dict[str, Any]) -> str:
    """``keras3`` or ``keras2`` for a config without inbound nodes (a Sequential):
    Keras 3 writes ``batch_shape`` and dtype-policy objects, Keras 2 ``batch_input_shape``
    and plain dtype strings."""
    conf = cfg.get("config")
    entries = conf.get("layers") if isinstance(conf, dict) else conf
    for e in entries if isinstance(entries, list) else []:
        c = e.get("config") if isinstance(e, dict) else None
        if not isinstance(c, dict):
            continue
        if "batch_shape" in c or (isinstance(c.get("dtype"), dict)
                                  and c["dtype"].get("class_name") in ("DTypePolicy", "QuantizedDTypePolicy")):
            return "keras3"
        if "batch_input_shape" in c or isinstance(c.get("dtype"), str) and c.get("class_name") != "InputLayer":
            return "keras2"
    module = cfg.get("module")
    return "keras3" if isinstance(module, str) and module.startswith("keras") else "keras2"


def _layer_name(entry: dict[str, Any], index: int) -> str:
    conf = entry.get("config")
    name = entry.get("name")
    if not isinstance(name, str) and isinstance(conf, dict):
        name = conf.get("name")
    if not isinstance(name, str) or not name:
        name = f"{snake_case(str(entry.get('class_name', 'layer')))}_{index}"
    return name


def _build_model(entry: dict[str, Any], state: _Build, *, parent_trainable: bool, depth: int) -> ModelGraph:
    lim = current()
    if depth > lim.model_nesting:
        raise LimitExceeded(f"models are nested more than {lim.model_nesting} levels deep in the config "
                            f"({hint('model_nesting')})")
    class_name = entry.get("class_name")
    conf = entry.get("config")
    if isinstance(conf, list):
        conf = {"layers": conf}
    if not isinstance(conf, dict):
        conf = {}
    name = conf.get("name") if isinstance(conf.get("name"), str) else entry.get("name")
    trainable = parent_trainable and conf.get("trainable", True) is not False
    graph = ModelGraph(name=str(name or snake_case(str(class_name))), format=state.fmt, trainable=trainable)
    entries = conf.get("layers")
    if not isinstance(entries, list):
        graph.kind = "subclassed"
        graph.notes.append(
            f"{class_name} is a subclassed model: its config does not list its layers, "
            "so the table shows the weights the file stores, without wiring or shapes"
        )
        return graph
    state.layer_count += len(entries)
    if state.layer_count > lim.layers:
        raise LimitExceeded(f"the config lists more than {lim.layers:,} layers ({hint('layers')})")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("class_name"), str):
            raise ModelLoadError(
                f"layer #{i} of model {graph.name!r} is not a Keras layer entry: the config is damaged"
            )
    functional = ("input_layers" in conf or "output_layers" in conf
                  or any("inbound_nodes" in e for e in entries))
    if functional:
        _build_functional(graph, conf, entries, state, trainable=trainable, depth=depth)
    else:
        _build_sequential(graph, conf, entries, state, trainable=trainable, depth=depth)
    return graph


def _make_layer(entry: dict[str, Any], index: int, state: _Build, *, parent_trainable: bool, depth: int) -> Layer:
    cls = entry["class_name"]
    if ">" in cls:  # a registered custom class named "package>Class" (legacy h5 configs)
        cls = cls.rsplit(">", 1)[-1] or cls
    conf = entry.get("config")
    if not isinstance(conf, dict):
        conf = {"layers": conf} if isinstance(conf, list) else {}
    module = entry.get("module")
    lay = Layer(
        name=_layer_name(entry, index),
        type=cls,
        config=conf,
        trainable=parent_trainable and conf.get("trainable", True) is not False,
        module=module if isinstance(module, str) else None,
        dtype=policy_name(conf.get("dtype")),
    )
    if is_model_entry(entry):
        lay.subgraphs["model"] = _build_model(entry, state, parent_trainable=lay.trainable, depth=depth + 1)
    return lay


def _set_shape(producer: Layer, ref: Inbound, shape: Shape | None, *, overwrite: bool = True) -> None:
    if ref.node_index >= len(producer.node_shapes) or ref.tensor_index >= MAX_LAYER_OUTPUTS:
        return
    outs = producer.node_shapes[ref.node_index]
    while len(outs) <= ref.tensor_index:
        outs.append(None)
    if shape is not None and (overwrite or outs[ref.tensor_index] is None):
        outs[ref.tensor_index] = shape


def _build_functional(graph: ModelGraph, conf: dict[str, Any], entries: list[dict[str, Any]],
                      state: _Build, *, trainable: bool, depth: int) -> None:
    graph.kind = "functional"
    layers = [_make_layer(e, i, state, parent_trainable=trainable, depth=depth) for i, e in enumerate(entries)]
    by_name = {lay.name: lay for lay in layers}
    names = set(by_name)
    recorded: list[tuple[Inbound, Shape | None]] = []
    keras2 = False
    for lay, e in zip(layers, entries, strict=True):  # one layer per entry
        nodes = e.get("inbound_nodes")
        if not isinstance(nodes, list):
            nodes = []
        if lay.type == "InputLayer" and not nodes:
            lay.inbound = [[]]
            lay.node_shapes = [[input_layer_shape(lay.config)]]
            continue
        for node in nodes:
            if isinstance(node, dict):
                state.style = state.style or "keras3"
                pairs = keras3_node(node)
                lay.inbound.append([ref for ref, _ in pairs])
                recorded.extend(pairs)
            else:
                state.style = state.style or "keras2"
                keras2 = True
                lay.inbound.append(keras2_node(node, names))
            lay.node_shapes.append([None])
    graph.layers = layers
    graph.inputs = flat_refs(conf.get("input_layers"))
    graph.outputs = flat_refs(conf.get("output_layers"))
    if keras2:
        _renumber_keras2_model_nodes(graph, entries)
    _record_output_shapes(graph, by_name, recorded)
    missing = sorted({ref.layer for lay in layers for ref in lay.inbound_flat() if ref.layer not in names})
    if missing:
        graph.notes.append(f"the config refers to layers it does not define: {', '.join(missing[:5])}")
    graph.invalidate()


def _record_output_shapes(graph: ModelGraph, by_name: dict[str, Layer],
                          recorded: list[tuple[Inbound, Shape | None]]) -> None:
    """Make room in each producer for every output some layer (or the model) reads,
    then fill in the shapes Keras 3 recorded in the inbound nodes."""
    for ref, _ in recorded:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, None)
    for ref in graph.outputs:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, None)
    for lay in graph.layers:
        for node in lay.inbound:
            for ref in node:
                if ref.layer in by_name:
                    _set_shape(by_name[ref.layer], ref, None)
    for ref, shape in recorded:
        if ref.layer in by_name:
            _set_shape(by_name[ref.layer], ref, shape)


def _renumber_keras2_model_nodes(graph: ModelGraph, entries: list[dict[str, Any]]) -> None:
    """Keras 2 numbers the calls of a nested model built from an ``Input`` from 1 (its
    node 0 is the model's own construction, which the config omits): shift to 0."""
    shift: dict[str, int] = {}
    all_refs = [ref for lay in graph.layers for ref in lay.inbound_flat()] + graph.outputs
    for lay, e in zip(graph.layers, entries, strict=True):  # graph.layers is the list made from entries
        sub = lay.subgraph
        if sub is None:
            continue
        sub_entries = e.get("config", {}).get("layers") if isinstance(e.get("config"), dict) else e.get("config")
        first_is_input = (isinstance(sub_entries, list) and sub_entries
                          and isinstance(sub_entries[0], dict) and sub_entries[0].get("class_name") == "InputLayer")
        refs = [r for r in all_refs if r.layer == lay.name]
        if first_is_input and refs and all(r.node_index >= 1 for r in refs):
            shift[lay.name] = 1
        elif refs and max(r.node_index for r in refs) >= len(lay.inbound) and min(r.node_index for r in refs) >= 1:
            shift[lay.name] = 1
    if not shift:
        return

    def fix(ref: Inbound) -> Inbound:
        n = shift.get(ref.layer, 0)
        return Inbound(ref.layer, ref.node_index - n, ref.tensor_index) if n else ref

    for lay in graph.layers:
        lay.inbound = [[fix(r) for r in node] for node in lay.inbound]
    graph.outputs = [fix(r) for r in graph.outputs]


def _build_sequential(graph: ModelGraph, conf: dict[str, Any], entries: list[dict[str, Any]],
                      state: _Build, *, trainable: bool, depth: int) -> None:
    graph.kind = "sequential"
    body = list(entries)
    input_entry = None
    if body and body[0].get("class_name") == "InputLayer":
        input_entry = body.pop(0)
    layers = [_make_layer(e, i, state, parent_trainable=trainable, depth=depth) for i, e in enumerate(body, 1)]
    if input_entry is not None:
        inp = _make_layer(input_entry, 0, state, parent_trainable=trainable, depth=depth)
        shape = input_layer_shape(inp.config)
    else:
        first = layers[0] if layers else None
        shape = None
        if first is not None:
            shape = input_layer_shape(first.config)
            build = body[0].get("build_config")
            if shape is None and isinstance(build, dict):
                shape = single_shape(build.get("input_shape"))
        if shape is None:
            shape = single_shape(conf.get("build_input_shape"))
        name = f"{first.name}_input" if first is not None and shape is not None else "input_layer"
        inp = Layer(name=name, type="InputLayer", trainable=trainable,
                    config={"name": name, "batch_shape": list(shape) if shape is not None else None},
                    notes=["synthesized: the Sequential config has no InputLayer entry"])
    inp.inbound = [[]]
    inp.node_shapes = [[shape]]
    prev = inp
    for lay, e in zip(layers, body, strict=True):  # one layer per body entry
        lay.inbound = [[Inbound(prev.name, 0, 0)]]
        lay.node_shapes = [[None]]
        build = e.get("build_config")
        if isinstance(build, dict) and prev.node_shapes[0][0] is None:
            prev.node_shapes[0][0] = single_shape(build.get("input_shape"))
        prev = lay
    graph.layers = [inp, *layers]
    graph.inputs = [Inbound(inp.name)]
    graph.outputs = [Inbound(prev.name)]
    graph.invalidate()


def is_operation(layer: Layer) -> bool:
    """A Keras 3 functional-API operation (``keras.ops.add(x, y)``): a node of the
    graph and a row of the summary, but not a layer and never saved with weights."""
    module = layer.module or ""
    return module.startswith("keras.src.ops") or module.startswith("keras.ops")


def container_layers(graph: ModelGraph) -> list[Layer]:
    """The layers Keras keeps in ``model.layers``, whose order names their weight
    groups (a Sequential's input is not one, nor is a functional operation)."""
    layers = graph.layers[1:] if graph.kind == "sequential" else graph.layers
    return [lay for lay in layers if not is_operation(lay)]


# -- finishing ---------------------------------------------------------------------------

def iter_graphs(graph: ModelGraph) -> Iterator[ModelGraph]:
    """``graph`` and every nested model graph, outermost first (no recursion)."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for lay in reversed(g.layers):
            sub = lay.subgraph
            if sub is not None:
                stack.append(sub)


def finish(graph: ModelGraph) -> ModelGraph:
    """Compute the shapes the file does not record, then drop cached views."""
    from . import keras_shapes

    try:
        keras_shapes.fill_shapes(graph)
    except Exception as exc:  # pragma: no cover - fill_shapes promises not to raise
        graph.notes.append(f"output shapes could not all be computed ({type(exc).__name__})")
    for g in iter_graphs(graph):
        g.invalidate()
    return graph

