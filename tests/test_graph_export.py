"""``inspector graph``: GraphML, node-link JSON, DOT and Mermaid exports read back by
their own readers (networkx, pydot) and checked against Keras's view of the model."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import networkx as nx
import pytest

from helpers.cli import run_cli
from helpers.hostile import functional_config, keras_archive, layer_entry
from inspector import load
from inspector.cli import main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HOSTILE = 'bad "name" \\ with <tags> & {braces} | pipes'


@pytest.fixture(scope="module")
def branchy(saved_model):
    """A functional model with shared layers and several inputs (``shared_twice``)."""
    from helpers.keras_models import keras_model

    return saved_model("shared_twice", "keras"), keras_model("shared_twice")


def model_nodes(model, layer) -> list:
    """The calls of ``layer`` that belong to ``model`` (Keras 3 keys them ``<id>_ib-<i>``)."""
    return [n for i, n in enumerate(layer._inbound_nodes) if f"{id(layer)}_ib-{i}" in model._nodes]


def keras_edges(model) -> set[tuple[str, str]]:
    """Producer → consumer pairs, as Keras records them."""
    edges = set()
    for layer in model.layers:
        for node in model_nodes(model, layer):
            for t in node.input_tensors:
                edges.add((t._keras_history[0].name, layer.name))
    return edges


def export(tmp_path: Path, model: Path, fmt: str, *extra: str) -> str:
    out = tmp_path / f"graph.{fmt}"
    assert run_cli("graph", model, "--format", fmt, "-o", out, *extra).code == 0
    return out.read_text()


def test_graphml_round_trip(tmp_path, branchy):
    path, model = branchy
    g = nx.read_graphml(Path(tmp_path / "g.graphml").write_text(export(tmp_path, path, "graphml")) and
                        tmp_path / "g.graphml")
    assert set(g.nodes) == {layer.name for layer in model.layers}
    assert set(g.edges) == keras_edges(model)
    for layer in model.layers:
        attrs = g.nodes[layer.name]
        assert attrs["type"] == type(layer).__name__
        assert attrs["params"] == layer.count_params()
        for value in attrs.values():
            assert isinstance(value, (str, int, float, bool))  # GraphML holds scalars only


def test_json_round_trip(tmp_path, branchy):
    path, model = branchy
    doc = json.loads(export(tmp_path, path, "json"))
    assert doc["schema"] == "inspector.graph/1"
    g = nx.node_link_graph(doc, edges="edges")
    assert g.is_directed()
    assert set(g.edges) == keras_edges(model)
    for layer in model.layers:
        attrs = g.nodes[layer.name]
        assert attrs["params"] == layer.count_params()
        shapes = [tuple(s) for s in attrs["output_shapes"]]
        node = model_nodes(model, layer)[0]
        assert shapes == [tuple(t.shape) for t in node.output_tensors]
        assert sum(math.prod(w["shape"]) for w in attrs["weights"]) == layer.count_params()


def test_dot_parses_with_pydot(tmp_path, branchy):
    pydot = pytest.importorskip("pydot", reason="pydot is optional: the DOT export is written without it")
    path, model = branchy
    (graph,) = pydot.graph_from_dot_data(export(tmp_path, path, "dot"))
    names = {n.get_name().strip('"') for n in graph.get_nodes()} - {"node", "edge", "graph"}
    assert names == {layer.name for layer in model.layers}
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()}
    assert edges == keras_edges(model)


def _hostile(tmp_path: Path) -> Path:
    cfg = functional_config(layer_entry("ReLU", HOSTILE, "x"), layer_entry("ReLU", "after\u0001ctl", HOSTILE))
    return keras_archive(tmp_path / "hostile.keras", cfg)


def test_hostile_names_survive_every_format(tmp_path):
    path = _hostile(tmp_path)
    g = nx.read_graphml(Path(tmp_path / "h.graphml").write_text(export(tmp_path, path, "graphml")) and
                        tmp_path / "h.graphml")
    assert HOSTILE in g.nodes and ("x", HOSTILE) in g.edges
    assert any(n.startswith("after") for n in g.nodes)  # the control character cannot be XML: replaced
    doc = json.loads(export(tmp_path, path, "json"))
    assert {n["id"] for n in doc["nodes"]} == {"x", HOSTILE, "after\u0001ctl"}
    pydot = pytest.importorskip("pydot")
    (dot,) = pydot.graph_from_dot_data(export(tmp_path, path, "dot"))
    assert len([e for e in dot.get_edges()]) == 2
    mermaid = export(tmp_path, path, "mermaid")
    labels = [line.split('["', 1)[1].rsplit('"]', 1)[0] for line in mermaid.splitlines() if '["' in line]
    body = "\n".join(labels).replace("<br/>", "\n")  # the line breaks inspector itself writes
    assert "#34;name#34;" in body
    for ch in '"<>{}|&\\\x01':
        assert ch not in body, ch  # every such character is a #code; entity inside labels


def test_mermaid_collapses_resnet50(saved_app):
    from inspector.analysis.diagram import diagram
    from inspector.reporters.mermaid import render

    graph = load(saved_app("ResNet50", "keras"))
    d = diagram(graph, max_nodes=60)
    assert d.collapsed and len(d.blocks) <= 60
    covered = [name for b in d.blocks for name in b.layers]
    assert sorted(covered) == sorted(lay.name for lay in graph.layers)  # every layer in exactly one block
    q = nx.DiGraph(list(d.edges))
    assert nx.is_directed_acyclic_graph(q)
    # ResNet50's repeated identity blocks fold: conv4 has five (block2..block6).
    folded = {b.title: b.repeat for b in d.blocks if b.repeat > 1}
    assert folded.get("conv4_block2 … conv4_block6") == 5
    text = render(graph, max_nodes=60)
    assert text.startswith("flowchart TD\n") and len(re.findall(r"^    n\d+[\[(]", text, re.M)) == len(d.blocks)
    # Uncollapsed: one node per layer.
    full = render(graph, max_nodes=None)
    assert len(re.findall(r"^    n\d+[\[(]", full, re.M)) == len(graph.layers)


def test_mermaid_falls_back_to_segments():
    """Names that do not group (numbered nodes in a chain) still give at most
    ``max_nodes`` blocks, in graph order."""
    from inspector.analysis.diagram import diagram
    from inspector.ir import Inbound, Layer, ModelGraph

    layers = [Layer("in", "InputLayer", node_shapes=[[(None, 4)]])]
    for i in range(200):
        prev = layers[-1].name
        layers.append(Layer(f"n{i:03d}x", "Relu", inbound=[[Inbound(prev)]], node_shapes=[[(None, 4)]]))
    layers.append(Layer("side", "Add", inbound=[[Inbound("n010x"), Inbound("n150x")]], node_shapes=[[(None, 4)]]))
    g = ModelGraph("g", "onnx", layers=layers, inputs=[Inbound("in")], outputs=[Inbound("side")])
    d = diagram(g, max_nodes=20)
    assert len(d.blocks) <= 20
    assert sorted(n for b in d.blocks for n in b.layers) == sorted(lay.name for lay in layers)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(list(d.edges)))


def _prefix_oracle(name: str, k: int, sep: str) -> str:
    """The first ``k`` tokens of ``name``, as written in it: the grouping's key, spelled the direct way."""
    if sep == "/":
        parts = [t for t in name.split("/") if t]
        return "/".join(parts[:k]) if parts else name
    count = 0
    for m in re.finditer(r"[_.:/\-]+", name):
        if m.start() == 0:
            continue
        count += 1
        if count == k:
            return name[: m.start()]
    return name


def test_name_prefixes_made_once_are_the_direct_ones():
    """The prefix grouping reads each name's prefixes of every depth from one list made per name (the
    162,000 names of a decoder, tried at every depth): each equals the direct spelling, on names of
    separators at the start, the end, in runs, alone, and none."""
    import random

    from inspector.analysis.diagram import _prefixes

    rng = random.Random(7)
    names = ["", "/", "//", "_", "a", "/model/layers.0/MatMul", "conv2d_1", "_x__y_", "a::b--c..d"]
    names += ["".join(rng.choice("ab_/.-:") for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    for name in names:
        for sep in "/_":
            own = _prefixes(name, sep)
            for k in range(1, 12):
                assert (own[k - 1] if k <= len(own) else own[-1]) == _prefix_oracle(name, k, sep), (name, sep, k)


def test_the_diagram_order_is_the_sorted_order_with_or_without_the_sort():
    """A graph already in producer-first order is its own order (no sort run); one that is not, and one
    naming a layer twice, are sorted as before: producers first, ties by position."""
    from inspector.analysis import diagram as diagram_module
    from inspector.ir import Inbound, Layer, ModelGraph

    def graph(order: list[str], feeds: dict[str, list[str]]) -> ModelGraph:
        layers = [Layer(n, "Relu", inbound=[[Inbound(f) for f in feeds.get(n, [])]], node_shapes=[[(None, 4)]])
                  for n in order]
        return ModelGraph("g", "onnx", layers=layers)

    def by_sort(g: ModelGraph) -> list[str]:
        position = {lay.name: i for i, lay in enumerate(g.layers)}
        return list(nx.lexicographical_topological_sort(g.nx, key=lambda n: position.get(n, 0)))

    feeds = {"b": ["a"], "c": ["a", "outside"], "d": ["b", "c"]}
    in_order = graph(["a", "b", "c", "d"], feeds)
    assert diagram_module._topological(in_order) == ["a", "b", "c", "d"] == by_sort(in_order)
    shuffled = graph(["d", "b", "a", "c"], feeds)
    assert not diagram_module._in_order(shuffled.layers, {n: i for i, n in enumerate(["d", "b", "a", "c"])})
    assert diagram_module._topological(shuffled) == by_sort(shuffled) == ["a", "b", "c", "d"]
    twice = graph(["a", "b", "a", "c"], {"b": ["a"], "c": ["b"]})
    assert not diagram_module._in_order(twice.layers, {"a": 2, "b": 1, "c": 3})  # a name twice: sorted


def test_graph_cli_stdout_and_errors(cli, tmp_path):
    seed = Path(__file__).resolve().parents[1] / "samples" / "seed_cnn.keras"
    code, out, _ = cli("graph", seed, "-f", "mermaid")
    assert code == 0 and out.startswith("flowchart TD")
    with pytest.raises(SystemExit) as exc:  # argparse's own exit, as main raises it
        main(["graph", str(seed), "-f", "svg"])
    assert exc.value.code == 2
    code, _, err = cli("graph", seed, "-o", tmp_path / "no" / "such" / "dir.graphml")
    assert code == 2 and "does not exist" in err
