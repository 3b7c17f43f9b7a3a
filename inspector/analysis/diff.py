"""Compare two models: which layers were added, removed or changed, how the
totals and MACs moved, and which lint findings are new or fixed.

How layers are matched
----------------------
Layers of model A and model B are paired in three passes; each pass only looks
at layers the earlier passes left unpaired.

1. **By name.**  A layer named ``dense_3`` in both models is the same layer.
   This is all a diff of two versions of one Keras model usually needs.
2. **By name scope** (exports).  Exporters name their nodes after the layer
   they come from: tf2onnx writes ``resnet50_1/conv1_bn_1/batchnorm/mul_1`` for
   Keras's ``conv1_bn``.  Each ``/``-separated component (with the ``_N``
   suffix Keras 3 adds to call scopes removed) is looked up among the other
   model's layer names; the first one that exists claims the node.  When an
   exporter splits one layer into several nodes (``MatMul`` + ``Softmax`` for a
   ``Dense(activation="softmax")``) the node whose kind matches the layer is its
   partner and the others are *parts* of it.  When it fuses layers (a
   convolution and the BatchNormalization after it become one ``Conv`` named
   after the BatchNormalization) the node is paired with the producer of the
   same kind, up to two layers upstream, and the layers in between are
   *folded* into it.
3. **By type sequence.**  The rest are aligned with :mod:`difflib` over their
   sequences of layer *kinds* (``Conv2D`` and ``Conv`` are both ``conv``,
   ``Dense``/``Gemm``/``MatMul`` are ``dense`` …) in graph order, and the runs
   that agree pair up (renamed layers: ``dense_3`` → ``dense_7``).  A layer
   whose kind changed under a new name is removed and added, not "changed".

Whatever is left is *removed* (only in A) or *added* (only in B).  Between
formats, parameter-free plumbing that only one side has (ONNX ``Transpose``,
``Shape``, ``Cast`` …) is counted apart instead of listed.

What "changed" means for a pair: the type (between formats: the kind), the
output shapes (between formats: the same dimensions in any order, since
Keras is channels-last and ONNX channels-first; unknown and batch dimensions
are ignored), the parameter count or its trainable part, the weights' dtypes,
and — within one format — the configuration keys and values (``name`` aside).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..ir import Layer, ModelGraph
from ..vocab import (
    KERAS_CONV,
    KERAS_CONV_TRANSPOSE,
    KERAS_DENSE,
    KERAS_DEPTHWISE,
    KERAS_PADDING,
    KERAS_SEPARABLE,
    ONNX_CONV,
    ONNX_CONV_TRANSPOSE,
    ONNX_MATMUL,
)
from .params import count_params

KINDS = ("params", "shapes", "layers", "macs", "findings")
"""What ``--fail-on-change`` can gate on."""

_KIND_OF_TYPE: dict[str, str] = {}
for _kind, _types in {
    "input": ("InputLayer",),
    "conv": KERAS_CONV | KERAS_SEPARABLE | KERAS_DEPTHWISE | ONNX_CONV,
    "conv-transpose": KERAS_CONV_TRANSPOSE | ONNX_CONV_TRANSPOSE,
    "dense": KERAS_DENSE | ONNX_MATMUL | {"Gemm"},
    "batchnorm": ("BatchNormalization",),
    "layernorm": ("LayerNormalization", "LayerNorm"),
    "relu": ("ReLU", "Relu"),
    "leaky-relu": ("LeakyReLU", "LeakyRelu"),
    "sigmoid": ("Sigmoid",),
    "tanh": ("Tanh",),
    "softmax": ("Softmax",),
    "max-pool": ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "MaxPool"),
    "avg-pool": ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "AveragePool"),
    "global-avg-pool": ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                        "GlobalAveragePool"),
    "global-max-pool": ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalMaxPool"),
    "add": ("Add",),
    "mul": ("Multiply", "Mul"),
    "concat": ("Concatenate", "Concat"),
    "pad": KERAS_PADDING | {"Pad"},
    "reshape": ("Flatten", "Reshape"),
    "dropout": ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"),
    "embedding": ("Embedding", "Gather"),
    "lstm": ("LSTM",),
    "gru": ("GRU",),
}.items():
    for _t in _types:
        _KIND_OF_TYPE[_t] = _kind

PLUMBING = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Shape", "Gather",
                      "Slice", "Concat", "Flatten", "ConstantOfShape", "Constant", "Expand", "Range",
                      "InputLayer", "Dropout", "Permute", "Size", "Split"})
"""Parameter-free layer types that exporters add or drop for layout and shape bookkeeping."""


def layer_kind(layer: Layer) -> str:
    """The format-free kind of a layer (``conv``, ``dense``, ``relu`` …)."""
    if layer.type == "Activation":
        act = layer.config.get("activation")
        if isinstance(act, dict):
            act = act.get("config", {}).get("name") or act.get("class_name")
        return str(act or "activation").lower().replace("_", "-")
    return _KIND_OF_TYPE.get(layer.type, layer.type.lower())


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """What the diff compares of one layer."""

    name: str
    type: str
    kind: str
    shapes: tuple[Any, ...]
    """Output shapes of the first call (as tuples)."""
    params: int
    trainable: int
    dtypes: tuple[str, ...]
    """The weights' dtypes (sorted, unique)."""
    index: int
    kernel: int = 0
    """Size of the layer's largest weight (its kernel): what survives an export
    that folds biases and normalization into it."""


@dataclass(frozen=True, slots=True)
class Change:
    """One difference of a matched pair: ``what`` (``type``, ``shape``, ``params``,
    ``trainable``, ``dtype``, ``config``) went from ``before`` to ``after``."""

    what: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Pair:
    """A layer of A matched to a layer of B, how, and what differs."""

    a: LayerFacts
    b: LayerFacts
    how: str
    """``name``, ``scope`` or ``alignment``."""
    changes: tuple[Change, ...]
    parts: tuple[str, ...] = ()
    """Other B nodes of the same A layer (an exporter split it)."""
    folded: tuple[str, ...] = ()
    """A layers an exporter fused into B's node (e.g. BatchNormalization into Conv)."""


@dataclass(frozen=True, slots=True)
class Delta:
    what: str
    before: int | None
    after: int | None

    @property
    def change(self) -> int | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class Side:
    name: str
    format: str
    path: str | None
    layers: int


@dataclass(frozen=True)
class ModelDiff:
    """The comparison of model ``a`` (before) with model ``b`` (after)."""

    a: Side
    b: Side
    cross_format: bool
    pairs: tuple[Pair, ...]
    """Every matched pair, in A's graph order (changed or not)."""
    removed: tuple[LayerFacts, ...]
    added: tuple[LayerFacts, ...]
    plumbing: tuple[int, int]
    """Parameter-free plumbing layers left unmatched in A and in B (between formats only)."""
    totals: tuple[Delta, ...]
    io: tuple[Change, ...]
    """Changes of the model's input and output shapes."""
    new_findings: tuple[Any, ...] = ()
    fixed_findings: tuple[Any, ...] = ()
    findings_compared: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    unchanged_findings: int = 0
    """Findings of B that A has too (same code, same or paired layer)."""

    @property
    def changed(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.changes)

    def total(self, what: str) -> Delta | None:
        for d in self.totals:
            if d.what == what:
                return d
        return None

    def kinds_changed(self, *, findings_at: str = "warning") -> tuple[str, ...]:
        """Which of :data:`KINDS` changed (new findings count from severity
        ``findings_at`` up; ``never`` ignores them)."""
        out = []
        totals_moved = any(d.changed for d in self.totals if d.what in ("params", "trainable", "non_trainable"))
        # Between formats the totals move whenever an exporter folds normalization into
        # kernels: there only per-layer kernels and unmatched weighted layers count.
        params_changed = (totals_moved and not self.cross_format) \
            or any(c.what in ("params", "trainable") for p in self.pairs for c in p.changes) \
            or any(f.params for f in self.added + self.removed)
        if params_changed:
            out.append("params")
        if any(c.what == "shape" for p in self.pairs for c in p.changes) or self.io:
            out.append("shapes")
        if self.added or self.removed or any(c.what == "type" for p in self.pairs for c in p.changes):
            out.append("layers")
        macs = self.total("macs")
        if macs is not None and macs.changed:
            out.append("macs")
        if findings_at != "never":
            rank = {"info": 0, "warning": 1, "error": 2}
            floor = rank.get(findings_at, 1)
            if any(rank.get(str(f.severity), 0) >= floor for f in self.new_findings):
                out.append("findings")
        return tuple(out)


# -- facts ----------------------------------------------------------------------------------


def _facts(graph: ModelGraph) -> list[LayerFacts]:
    params = dict(count_params(graph).layers)
    out = []
    for i, lay in enumerate(graph.layers):
        p = params[lay.name]
        own = [w for w in lay.iter_weights() if not w.quantization]
        dtypes = tuple(sorted({w.dtype for w in own}))
        kernel = max((w.size for w in own), default=0)
        out.append(LayerFacts(lay.name, lay.type, layer_kind(lay), tuple(lay.output_shapes), p.params, p.trainable,
                              dtypes, i, kernel))
    return out


def _shape_key(shape: Any, *, cross: bool) -> Any:
    if shape is None:
        return None
    dims = [d if isinstance(d, int) else None for d in shape]
    if cross:  # layout-free: the known dimensions in any order, size-1 axes dropped
        return tuple(sorted(d for d in dims if d is not None and d != 1))
    return tuple(dims)


def _shape_text(shapes: Sequence[Any]) -> str:
    from ..shapetext import format_output

    return format_output(list(shapes))


def _config_changes(a: Layer, b: Layer) -> list[Change]:
    ca = {k: v for k, v in a.described_config().items() if k != "name"}
    cb = {k: v for k, v in b.described_config().items() if k != "name"}

    def dump(v: Any) -> str:
        if isinstance(v, dict) and isinstance(v.get("class_name"), str):
            # A serialized Keras object (initializer, regularizer, dtype policy): its class
            # and non-empty settings read better than the raw dict.
            inner = v.get("config")
            if not isinstance(inner, dict):
                inner = {}
            args = ", ".join(f"{k}={json.dumps(x, default=str)}" for k, x in sorted(inner.items()) if x is not None)
            text = f"{v['class_name']}({args})"
        else:
            try:
                text = json.dumps(v, sort_keys=True, default=str)
            except (TypeError, ValueError):
                text = str(v)
        return text if len(text) <= 80 else text[:79] + "…"

    out = []
    for key in sorted(set(ca) | set(cb), key=str):
        if key not in ca:
            out.append(Change("config", f"{key}: (absent)", f"{key}: {dump(cb[key])}"))
        elif key not in cb:
            out.append(Change("config", f"{key}: {dump(ca[key])}", f"{key}: (absent)"))
        elif dump(ca[key]) != dump(cb[key]):
            out.append(Change("config", f"{key}: {dump(ca[key])}", f"{key}: {dump(cb[key])}"))
    return out


def _compare(fa: LayerFacts, fb: LayerFacts, la: Layer, lb: Layer, *, cross: bool) -> tuple[Change, ...]:
    out: list[Change] = []
    if (fa.kind != fb.kind) if cross else (fa.type != fb.type):
        out.append(Change("type", fa.type, fb.type))
    ka = [_shape_key(s, cross=cross) for s in fa.shapes]
    kb = [_shape_key(s, cross=cross) for s in fb.shapes]
    if ka != kb and not (cross and (not ka or not kb or None in ka or None in kb)):
        out.append(Change("shape", _shape_text(fa.shapes), _shape_text(fb.shapes)))
    if cross:
        # Exporters fold biases and normalization into kernels and drop zero biases;
        # the kernel is what must survive.
        if fa.kernel != fb.kernel:
            out.append(Change("params", f"kernel {fa.kernel:,}", f"kernel {fb.kernel:,}"))
    elif fa.params != fb.params:
        out.append(Change("params", f"{fa.params:,}", f"{fb.params:,}"))
    elif fa.trainable != fb.trainable:
        out.append(Change("trainable", f"{fa.trainable:,}", f"{fb.trainable:,}"))
    if fa.dtypes != fb.dtypes and fa.dtypes and fb.dtypes:
        out.append(Change("dtype", ", ".join(fa.dtypes), ", ".join(fb.dtypes)))
    if not cross:
        out.extend(_config_changes(la, lb))
    return tuple(out)


# -- matching ----------------------------------------------------------------------------------

_CALL_SUFFIX = re.compile(r"_\d+$")


def _scope_names(name: str) -> list[str]:
    """Candidate layer names hidden in an exported node's name, outermost first."""
    out = []
    for comp in name.split("/"):
        if not comp:
            continue
        out.append(comp)
        stripped = _CALL_SUFFIX.sub("", comp)
        if stripped != comp:
            out.append(stripped)
    return out


def _by_scope(a: ModelGraph, b: ModelGraph, fa: dict[str, LayerFacts], fb: dict[str, LayerFacts],
              free_a: set[str], free_b: list[str]) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[str]]]:
    """Match B nodes to A layers through the layer names in the nodes' scopes.
    Returns (b name → a name, a name → extra B parts, a name → folded A layers)."""
    claims: dict[str, list[str]] = {}
    for nb in free_b:
        if "/" not in nb:
            continue
        for cand in _scope_names(nb):
            if cand in free_a and cand != nb:
                claims.setdefault(cand, []).append(nb)
                break
    matched: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    folded: dict[str, list[str]] = {}
    used_a: set[str] = set()
    for name_a in sorted(claims, key=lambda n: fa[n].index):
        nodes = claims[name_a]
        kind_a = fa[name_a].kind
        primary = next((n for n in nodes if fb[n].kind == kind_a), None)
        target = name_a
        fold: list[str] = []
        if primary is None:
            # Fusion: a weighted node may be an upstream layer of its kind folded with this one
            # (tf2onnx names the Conv of a Conv2D + BatchNormalization after the BatchNormalization).
            weighted = [n for n in nodes if fb[n].params]
            cur = a.layer(name_a)
            for _ in range(2 if weighted else 0):
                refs = cur.inbound_flat()
                if len(refs) != 1 or refs[0].layer not in fa:
                    break
                up = a.layer(refs[0].layer)
                fold.append(cur.name)
                if up.name in free_a and up.name not in used_a and fa[up.name].kind == fb[weighted[0]].kind:
                    target, primary = up.name, weighted[0]
                    break
                cur = up
            if primary is None:
                fold = []
                # Else the node that computes the layer's output shape, else its last node.
                key = [_shape_key(s, cross=True) for s in fa[name_a].shapes]
                primary = next((n for n in nodes if [_shape_key(s, cross=True) for s in fb[n].shapes] == key),
                               nodes[-1])
        if target in used_a:
            continue
        used_a.add(target)
        matched[primary] = target
        rest = [n for n in nodes if n != primary]
        if rest:
            parts[target] = rest
            for n in rest:
                matched.setdefault(n, "")  # claimed as a part, not an addition
        if fold:
            folded[target] = [f for f in fold if f != target]
            used_a.update(folded[target])
    return matched, parts, folded


def _align(la: Sequence[LayerFacts], lb: Sequence[LayerFacts]) -> list[tuple[LayerFacts, LayerFacts]]:
    sa = [f.kind for f in la]
    sb = [f.kind for f in lb]
    pairs: list[tuple[LayerFacts, LayerFacts]] = []
    sm = difflib.SequenceMatcher(a=sa, b=sb, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":  # a layer whose kind changed is removed + added, not "changed"
            pairs.extend(zip(la[i1:i2], lb[j1:j2], strict=True))  # "equal" blocks have the same length
    return pairs


def _io_shapes(graph: ModelGraph, which: str) -> list[tuple[str, Any]]:
    refs = graph.inputs if which == "inputs" else graph.outputs
    return [(r.layer, graph.shape_of(r)) for r in refs]


def _io_changes(a: ModelGraph, b: ModelGraph, *, cross: bool) -> tuple[Change, ...]:
    out = []
    for which in ("inputs", "outputs"):
        sa, sb = _io_shapes(a, which), _io_shapes(b, which)
        ka = [_shape_key(s, cross=cross) for _, s in sa]
        kb = [_shape_key(s, cross=cross) for _, s in sb]
        if ka != kb:
            out.append(Change(which, ", ".join(_shape_text([s]) for _, s in sa) or "none",
                              ", ".join(_shape_text([s]) for _, s in sb) or "none"))
    return tuple(out)


def _finding_key(f: Any, rename: dict[str, str], *, cross: bool) -> tuple[str, str | None]:
    """``(code, layer)`` with the layer named as in model A.  Between formats a node
    inside a paired layer's name scope (ONNX ``dense/Sigmoid`` of Keras ``dense``) is
    that layer, so one finding reported on either side of an export is the same."""
    layer = f.layer
    if layer is not None:
        head, sep, tail = layer.partition("/")
        if layer in rename:
            layer = rename[layer]
        elif head in rename:
            layer = rename[head] if cross else rename[head] + sep + tail
    return f.code, layer


def _compare_findings(pairs: Sequence[Pair], scope: dict[str, str], list_a: list[Any], list_b: list[Any], *,
                      cross: bool) -> tuple[list[Any], list[Any], int]:
    """(new in B, fixed since A, how many of B's A has too), layers matched through ``pairs``."""
    rename = {p.b.name: p.a.name for p in pairs}
    for n, na in scope.items():
        if na == "":
            owner = next((p.a.name for p in pairs if n in p.parts), None)
            if owner:
                rename[n] = owner
    same = {p.a.name: p.a.name for p in pairs}
    keys_a = {_finding_key(f, same, cross=cross) for f in list_a}
    keys_b = {_finding_key(f, rename, cross=cross) for f in list_b}
    new = [f for f in list_b if _finding_key(f, rename, cross=cross) not in keys_a]
    fixed = [f for f in list_a if _finding_key(f, same, cross=cross) not in keys_b]
    return new, fixed, len(list_b) - len(new)


def diff_models(a: ModelGraph, b: ModelGraph, *, findings_a: Iterable[Any] | None = None,
                findings_b: Iterable[Any] | None = None) -> ModelDiff:
    """Compare ``a`` (before) with ``b`` (after).  ``findings_*`` are lint results of
    each model (``None``: findings are not compared)."""
    from .macs import count_macs

    cross = _family(a.format) != _family(b.format)
    facts_a, facts_b = _facts(a), _facts(b)
    m = _match(a, b, facts_a, facts_b)
    fb = {f.name: f for f in facts_b}
    out_pairs = []
    for f in facts_a:
        if f.name not in m.pairs:
            continue
        nb, how = m.pairs[f.name]
        changes = _compare(f, fb[nb], a.layer(f.name), b.layer(nb), cross=cross)
        out_pairs.append(Pair(f, fb[nb], how, changes, tuple(m.parts.get(f.name, ())),
                              tuple(m.folded.get(f.name, ()))))
    removed = [f for f in facts_a if f.name not in m.pairs and f.name not in m.folded_a]
    added = [f for f in facts_b if f.name not in m.paired_b]
    plumbing = (0, 0)
    if cross:
        def is_plumbing(f: LayerFacts) -> bool:
            return f.params == 0 and (f.type in PLUMBING or f.kind in ("input", "reshape", "dropout"))

        plumbing = (sum(map(is_plumbing, removed)), sum(map(is_plumbing, added)))
        removed = [f for f in removed if not is_plumbing(f)]
        added = [f for f in added if not is_plumbing(f)]
    pa, pb = count_params(a).totals, count_params(b).totals
    ma, mb = count_macs(a), count_macs(b)
    totals = (Delta("layers", len(a.layers), len(b.layers)), Delta("params", pa.params, pb.params),
              Delta("trainable", pa.trainable, pb.trainable), Delta("non_trainable", pa.non_trainable,
                                                                     pb.non_trainable),
              Delta("bytes", pa.bytes, pb.bytes), Delta("macs", ma.total, mb.total))
    compared = findings_a is not None and findings_b is not None
    new, fixed, unchanged = (_compare_findings(out_pairs, m.scope, list(findings_a or ()), list(findings_b or ()),
                                               cross=cross) if compared else ([], [], 0))
    notes = []
    if cross:
        notes.append(f"The models are in different formats ({a.format} and {b.format}): layers are matched by name "
                     "scope and by the order of their kinds, shapes are compared whatever their layout, and "
                     "exporters fold and split layers, so some per-layer differences are expected.")
    if not ma.complete or not mb.complete:
        notes.append("MACs are a lower bound for a model with layers of unknown cost.")
    return ModelDiff(
        a=Side(a.name, a.format, a.path, len(a.layers)), b=Side(b.name, b.format, b.path, len(b.layers)),
        cross_format=cross, pairs=tuple(out_pairs), removed=tuple(removed), added=tuple(added),
        plumbing=plumbing, totals=totals, io=_io_changes(a, b, cross=cross), new_findings=tuple(new),
        fixed_findings=tuple(fixed), findings_compared=compared, notes=tuple(notes), unchanged_findings=unchanged)


@dataclass
class _Matching:
    """Which layer of A became which layer of B."""

    pairs: dict[str, tuple[str, str]]
    """A name -> (B name, how it was matched)."""
    scope: dict[str, str]
    """B name -> A name it was matched to by name scope ("" when claimed as a part)."""
    parts: dict[str, list[str]]
    folded: dict[str, list[str]]
    folded_a: set[str]
    """A layers folded into another A layer's match."""
    paired_b: set[str]
    """B layers matched or claimed."""


def _match(a: ModelGraph, b: ModelGraph, facts_a: list[LayerFacts], facts_b: list[LayerFacts]) -> _Matching:
    """Match layers by name, then by name scope, then by aligning the order of their kinds."""
    fa = {f.name: f for f in facts_a}
    fb = {f.name: f for f in facts_b}
    pairs: dict[str, tuple[str, str]] = {}  # a name -> (b name, how)
    for name in fa:
        if name in fb:
            pairs[name] = (name, "name")
    free_a = {n for n in fa if n not in pairs}
    matched_b = {b_name for b_name, _ in pairs.values()}
    free_b = [f.name for f in facts_b if f.name not in matched_b]
    scope, parts, folded = _by_scope(a, b, fa, fb, free_a, free_b)
    claimed_b = set(scope)
    for nb, na in scope.items():
        if na:
            pairs[na] = (nb, "scope")
    folded_a = {n for names in folded.values() for n in names}
    rest_a = [f for f in facts_a if f.name not in pairs and f.name not in folded_a]
    rest_b = [f for f in facts_b if f.name not in matched_b and f.name not in claimed_b]
    for x, y in _align(rest_a, rest_b):
        pairs[x.name] = (y.name, "alignment")
    paired_b = {nb for nb, _ in pairs.values()} | claimed_b
    return _Matching(pairs, scope, parts, folded, folded_a, paired_b)


def _family(fmt: str) -> str:
    return "keras" if fmt in ("keras", "keras-h5") else fmt
