"""GRAPH: structure — parts of the graph that do nothing for its outputs.

A graph that carries nodes, weights or inputs its outputs never use usually
means an export went wrong (a branch meant to be an output was dropped, an
input was never wired in) and at best costs file size and load time.
"""

from __future__ import annotations

from typing import Iterator

from ..findings import Severity
from ..graphquery import outer_captures
from ..ir import ModelGraph
from .engine import Context, Hit
from .registry import rule


def live_layers(graph: ModelGraph) -> set[str]:
    """Layers the graph's outputs depend on (the outputs included).  A tensor that an
    ``If``/``Loop``/``Scan`` body reads by its outer-scope name is used by that node."""
    import networkx as nx

    g = graph.nx
    captures = outer_captures(graph)
    if captures:
        g = g.copy()
        g.add_edges_from((producer, user) for user, producers in captures.items() for producer in producers)
    live: set[str] = set()
    for ref in graph.outputs:
        if ref.layer in g and ref.layer not in live:
            live.add(ref.layer)
            live |= nx.ancestors(g, ref.layer)
    return live


def _unused_initializers(graph: ModelGraph) -> list[tuple[str, int]]:
    """(name, bytes) of stored tensors no node consumes (recorded by the ONNX loader)."""
    items = graph.metadata.get("unused_initializers") or []
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append((str(item.get("name")), int(item.get("bytes", 0) or 0)))
        elif isinstance(item, (tuple, list)) and item:
            out.append((str(item[0]), int(item[1]) if len(item) > 1 else 0))
        else:
            out.append((str(item), 0))
    return out


@rule("GRAPH001", "dead-nodes", Severity.WARNING, options={"min-bytes": 1 << 20})
def dead_nodes(ctx: Context) -> Iterator[Hit]:
    """Nodes whose results no output uses, and stored tensors no node uses.

    ## What it does
    Walks back from the graph's outputs and reports every node (layer)
    that none of them depends on, and every stored initializer (ONNX) that
    no node consumes.  A tensor read inside an ``If``/``Loop``/``Scan``
    body by its outer-scope name counts as used by that node.  Unused tensors smaller than ``min-bytes`` in total
    (default 1 MiB) are informational: leftovers that only cost a little
    file size.

    ## Why is this bad?
    Dead nodes are computation nobody needs; they often mean an output
    was lost during export (the branch is there, the output is not).
    Unused initializers are weights that were meant to be used or should
    have been stripped: they inflate the file and the load time.  Remove
    them (e.g. ``onnxsim``, ``onnx.utils.extract_model``) or wire the
    missing output back in.

    ## Example
    ```python
    aux = layers.Dense(10, name="aux_head")(features)
    model = keras.Model(inputs, main_output)   # aux_head is not an output: dead in an export
    ```

    ## What it does not flag
    Nodes whose results only ``If``/``Loop``/``Scan`` bodies read through
    outer-scope names (silero-vad's branches, for instance): those reads are
    uses, even though no edge of the outer graph shows them.  Dead nodes
    inside such bodies are not reported either.
    """
    graph = ctx.model
    if graph.outputs:
        live = live_layers(graph)
        dead = [lay for lay in graph.layers if lay.name not in live and lay.type != "InputLayer"]
        for lay in dead:
            yield Hit(f"no model output depends on this {lay.type} node; remove it or add the "
                      "missing output", layer=ctx.path_of(lay))
    unused = _unused_initializers(graph)
    if unused:
        total = sum(b for _, b in unused)
        names = ", ".join(repr(n) for n, _ in unused[:3]) + (", …" if len(unused) > 3 else "")
        size = f" ({total:,} bytes)" if total else ""
        small = total < int(ctx.option("min-bytes"))
        yield Hit(f"{len(unused)} stored tensor(s){size} are used by no node: {names}; "
                  "strip them from the file", severity=Severity.INFO if small else None)


@rule("GRAPH002", "unused-inputs", Severity.WARNING)
def unused_inputs(ctx: Context) -> Iterator[Hit]:
    """A model input that nothing consumes.

    ## What it does
    Reports graph inputs that no layer or node reads (and that are not
    passed straight through as outputs).  An input that an
    ``If``/``Loop``/``Scan`` body reads by its outer-scope name is read.

    ## Why is this bad?
    Callers must still provide a value for the input, so they prepare data
    the model ignores.  More often it is a wiring mistake: the input was
    meant to feed a branch that was never connected, so the model silently
    works without information its authors thought it used.

    ## Example
    ```python
    a, b = keras.Input((8,)), keras.Input((8,))
    model = keras.Model([a, b], layers.Dense(1)(a))   # GRAPH002: b is unused
    ```

    ## What it does not flag
    Inputs consumed only inside ``If``/``Loop``/``Scan`` bodies (outer-scope
    captures, e.g. the ``sr`` or ``state`` inputs of silero-vad), and inputs
    returned unchanged as outputs.
    """
    graph = ctx.model
    outputs = {ref.layer for ref in graph.outputs}
    captured = {name for producers in outer_captures(graph).values() for name in producers}
    for lay in graph.layers:
        if lay.type != "InputLayer" or lay.name in outputs:
            continue
        if not graph.consumers(lay.name) and lay.name not in captured:
            yield Hit("this input is consumed by no layer: callers must feed data the model ignores",
                      layer=ctx.path_of(lay))


@rule("GRAPH003", "duplicate-tensors", Severity.INFO)
def duplicate_tensors(ctx: Context) -> Iterator[Hit]:
    """A stored tensor that is an identical or transposed copy of another stored tensor.

    ## What it does
    Compares the stored tensors (initializers, layer weights; nested graphs included) of one
    dtype and size whose shapes are equal, or reversed for 2-D tensors, and reports each tensor
    whose values equal another's, or the other's transpose, naming both tensors and the bytes
    the copy wastes.  Shapes are compared first; values are read only for those candidates,
    first as a small sample and in full only when the samples agree.

    ## Why is this bad?
    The copy doubles the file space and the load time of one weight, and it counts twice as
    parameters, so the model looks bigger than it is.  The TorchScript ONNX exporter, for
    instance, stores GPT-2's tied token embedding twice (``wte`` and its transpose for the
    language-model head): 38.6M of the 162.9M numbers in the file are that copy.  Export with
    the weights tied (or deduplicate the initializers, e.g. ``onnxsim``) to store it once.

    ## Example
    ```python
    # an ONNX graph with initializers E [50257, 768] and E_T = E.T [768, 50257]
    # GRAPH003: 'E_T' is a transposed copy of 'E' (154,389,504 bytes wasted)
    ```

    ## What it does not flag
    Tensors with fewer than 1,024 elements (biases, scales and masks that coincide by chance
    and waste little), quantization scales and zero points, tensors generated from one fill
    value (``ConstantOfShape``), tensors that hold one value throughout (the zero biases and
    unit scales of a freshly initialized Keras model are equal because an initializer filled
    them, not because one weight was stored twice), one tensor shared by several layers (it is
    stored once), copies with any differing value, and tensors whose values the file does not
    hold.
    """
    from ..analysis.duplicates import find_duplicates

    taken = ctx.weights.samples if ctx.weights is not None else None  # no second read of what lint read
    for pair in find_duplicates(ctx.model, taken=taken).pairs:
        if pair.fill:
            continue
        yield Hit(f"{pair.describe()}; store the tensor once")
