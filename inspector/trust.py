"""What a loaded graph says about the safety of its file, for commands that must
decide whether to go further than reading it.

Loaders record everything they cannot trust as
:class:`~inspector.ir.SecurityFact` objects (``SEC001``–``SEC006``), and never
execute or follow any of it.  The ``SEC`` lint rules report those facts; this
module answers the two questions commands ask of them:

* :func:`facts_by_code` — how many problems of each kind, for the one-line
  warning under a summary;
* :func:`require_trust` — may this model be handed to a framework that *runs* it
  (the opt-in probe loads a model with Keras, TensorFlow or ONNX Runtime)?  Not
  while any fact stands, unless the user passed ``--trust``.
"""

from __future__ import annotations

from .errors import UnsafeModel
from .ir import ModelGraph, SecurityFact

SEC_TITLES = {
    "SEC001": "code-carrying layer",
    "SEC002": "reference to code or files outside Keras",
    "SEC003": "ONNX external data outside the model's folder",
    "SEC004": "HDF5 link or dataset that reaches outside the file",
    "SEC005": "file-system, network or Python-callback op in the SavedModel",
    "SEC006": "a second model in the same file or folder (polyglot)",
}
"""A short noun phrase per SEC code, for one-line messages."""


def security_facts(graph: ModelGraph) -> list[SecurityFact]:
    """The facts of ``graph`` and of every nested graph, each once, in file order."""
    out: list[SecurityFact] = []
    seen: set[tuple[str, str | None, str]] = set()
    graphs = [graph, *graph.nested_graphs()]
    for g in graphs:
        for fact in g.security:
            key = (fact.code, fact.layer, fact.message)
            if key not in seen:
                seen.add(key)
                out.append(fact)
    return out


def facts_by_code(graph: ModelGraph) -> dict[str, int]:
    """``{"SEC001": 2, "SEC004": 1}``: how many facts of each code, sorted by code."""
    counts: dict[str, int] = {}
    for fact in security_facts(graph):
        counts[fact.code] = counts.get(fact.code, 0) + 1
    return dict(sorted(counts.items()))


def require_trust(graph: ModelGraph, *, trust: bool, action: str = "run the model") -> None:
    """Raise :class:`UnsafeModel` when ``graph`` holds any security fact and the user
    did not pass ``--trust``: running such a model (with Keras, TensorFlow or ONNX
    Runtime) would execute its code or open the files it names."""
    if trust:
        return
    facts = security_facts(graph)
    if not facts:
        return
    codes = ", ".join(f"{code} {SEC_TITLES.get(code, '')}".strip() for code in facts_by_code(graph))
    raise UnsafeModel(
        f"refusing to {action}: the file holds {len(facts)} security problem(s) ({codes}); "
        "see `inspector lint --select SEC`, and pass --trust only if you trust the file's author")
