"""Structural limits counted before the builder makes any object: how many layers a graph expands to
through model-local function calls (calls × body size, computed arithmetically), so a small file whose
functions call each other in a fan-out is refused in a moment instead of after shape inference and a
full build."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...limits import Limits
from .walk import cyclic_nodes, iter_nodes_flat, too_large

FunctionKey = tuple[str, str, str]


def function_key(node: Any) -> FunctionKey:
    """The key of the function a node calls (or would call)."""
    return (node.domain or "", node.op_type, getattr(node, "overload", "") or "")


def _tally(nodes: Any, protos: dict[FunctionKey, Any]) -> tuple[int, Counter[FunctionKey]]:
    """Nodes in ``nodes`` (nested graphs included) and how often each model-local function is called there."""
    count = 0
    calls: Counter[FunctionKey] = Counter()
    for node in iter_nodes_flat(nodes):
        count += 1
        key = function_key(node)
        if key in protos:
            calls[key] += 1
    return count, calls


def check_function_fan_out(model: Any, lim: Limits) -> None:
    """Refuse a model whose main graph expands, through calls of its model-local functions, to more
    than ``onnx_expanded_layers`` nodes (a function's body counts once per call; calls of recursive
    functions are not expanded, as the builder leaves them).  Arithmetic over the call graph: no body
    is expanded to find out.  A no-op for a model without functions.  The one expansion count of the
    loader: the builder runs it before shape inference, :func:`.inline.inline_calls` before its copy (the
    inlined copy never holds more nodes than this counts: a call node counts as itself plus its body)."""
    if not model.functions:
        return
    protos: dict[FunctionKey, Any] = {}
    for f in model.functions:
        protos.setdefault((f.domain, f.name, getattr(f, "overload", "") or ""), f)
    tallies = {key: _tally(f.node, protos) for key, f in protos.items()}
    cyclic = cyclic_nodes({key: set(calls) for key, (_, calls) in tallies.items()})
    limit = lim.onnx_expanded_layers
    expanded: dict[FunctionKey, int] = {}
    for root in protos:  # bodies in post-order, iteratively (the call graph comes from the file)
        stack = [root]
        while stack:
            key = stack[-1]
            if key in expanded:
                stack.pop()
                continue
            pending = [c for c in tallies[key][1] if c not in expanded and c not in cyclic and c != key]
            if pending and key not in cyclic:
                stack.extend(pending)
                continue
            stack.pop()
            own, calls = tallies[key]
            if key not in cyclic:
                own += sum(n * expanded[c] for c, n in calls.items() if c not in cyclic)
            expanded[key] = min(own, limit + 1)  # capped: the products stay small numbers
    total, calls = _tally(model.graph.node, protos)
    total += sum(n * expanded[c] for c, n in calls.items() if c not in cyclic)
    if total > limit:
        raise too_large(lim)
