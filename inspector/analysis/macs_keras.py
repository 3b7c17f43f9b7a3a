"""MACs of Keras composite layers: custom registered layers built from sublayers.

keras_hub's ``TransformerEncoder``/``TransformerDecoder``, ``CachedMultiHeadAttention``
and the decoder blocks of its backbones (and any user layer built the same way) store
no list of their sublayers in the config, only their weights, under the sublayer's
path (``self_attention_layer/query/kernel``, ``feedforward_output_dense/kernel``).
The cost is read from those weights and the call's input shapes:

* a **projection** (a sublayer with a rank-2 kernel ``[in, out]``: ``Dense``, or the
  rank-3 query/key/value/output kernels of an attention block) costs one MAC per
  kernel element per token it is applied to;
* an **attention block** (a sublayer path with ``query``, ``key``, ``value`` and
  ``output``/``attention_output`` kernels, ``_query_dense`` … and ``q_proj`` … too)
  adds ``QKᵀ`` and ``AV``: ``T_q · T_k · (H·d_k + H·d_v)``, the query projection's
  and the output projection's size over the layer's width, whatever the order of
  their axes (``[D, H, d]`` in Keras, ``[H, D, d]`` in Gemma); grouped-query attention
  included: keys and values are shared, not computed less often.  A causal mask does not halve it (ONNX
  ``MatMul`` does not either).  ``T_q`` is the number of tokens of the first input
  (every dim between the batch and the last); ``T_k`` is ``T_q``, or the second
  input's tokens for a block whose path says ``cross`` (a decoder's cross-attention);
* embeddings (a sublayer whose path says ``embedding``), normalizations and biases
  (sublayers with rank-1 weights only) cost 0.

A layer is counted only when every sublayer is one of these, and every projection
reads the layer's width, the width another projection writes, or an attention block's
input: anything else (a convolution kernel, a rank-3 kernel outside attention, a
fused QKV projection whose attention products cannot be seen) leaves the layer
unknown rather than guessing.  keras_hub's ``ReversibleEmbedding`` is a lookup
(0), or, when its output is the vocabulary (``reverse=True``), a projection onto it;
``PositionEmbedding``, ``SinePositionEncoding`` and ``RotaryEmbedding`` cost 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from ..ir import Layer, ModelGraph, Shape, Weight
from ..vocab import BOUND_DIMS, SEQ_DIM
from .symbolic import Poly, Value

__all__ = ["backbone_macs", "block_macs", "composite_macs"]

_ZERO = frozenset({"PositionEmbedding", "SinePositionEncoding", "RotaryEmbedding", "AlibiBias"})
"""keras_hub layers that add or look up, never multiply-accumulate."""

_ROLE = re.compile(r"^_*(?:(query|q)|(key|k)|(value|v)|(output|attention_output|o|out))(?:_dense|_proj)?$")
"""An attention block's sublayer name: group 1 query, 2 key, 3 value, 4 output."""

_ATTENTION_WORDS = ("attention", "attn")


@dataclass(frozen=True, slots=True)
class _Block:
    """One attention block inside a composite layer: its four kernels."""

    path: str
    query: Weight
    key: Weight
    value: Weight
    output: Weight
    groups: tuple[str, ...]
    """The sublayer paths of the four projections (their biases are not projections)."""


def composite_macs(cls: str, layer: Layer, ins: Sequence[Shape | None], outs: Sequence[Shape | None]) -> int | None:
    """MACs of one call of the composite or keras_hub layer ``layer`` (class ``cls``);
    ``None`` when it is not a layer this module understands or a shape is unknown."""
    if cls in _ZERO:
        return 0
    if cls == "ReversibleEmbedding":
        return _reversible_embedding(layer, ins, outs)
    x = _tokens_and_width(ins[0] if ins else None)
    if x is None:
        return None
    kv = _tokens_and_width(ins[1]) if len(ins) > 1 else None
    total = block_macs(cls, layer, x[0], x[1], second=len(ins) > 1, kv_tokens=kv[0] if kv else None)
    return total if total is None or isinstance(total, int) else None


def block_macs(cls: str, layer: Layer, tokens: Value, width: int, *, second: bool = False,
               kv_tokens: Value | None = None) -> Value | None:
    """MACs of one call of the composite layer ``layer`` on ``tokens`` tokens (a number, or a
    polynomial in ``seq``) of ``width`` features; ``second``: the call has a second input, of
    ``kv_tokens`` tokens (``None``: unknown).  ``None`` when the layer is not understood."""
    groups = _groups(layer)
    if not groups:
        return None
    blocks = _attention_blocks(groups)
    if blocks is None:
        return None
    if not blocks and (_says_attention(cls) or any(_says_attention(path) for path in groups)):
        return None  # attention we cannot see (a fused projection, a matmul of inputs): unknown
    if any(_reads_second(b) for b in blocks) and second:
        if kv_tokens is None:
            return None
    elif any("cross" in b.path.lower() for b in blocks):
        return None  # a cross-attention without the sequence it attends to
    in_block = {path for b in blocks for path in b.groups}
    total: Value = 0
    for b in blocks:
        tk = kv_tokens if _reads_second(b) and second and kv_tokens is not None else tokens
        if width not in b.query.shape or width not in b.output.shape:
            return None  # the block does not read and write the layer's width: not a placement we know
        q_width, o_width = _prod(b.query.shape) // width, _prod(b.output.shape) // width
        total = total + (tokens * (_prod(b.query.shape) + _prod(b.output.shape))
                         + tk * (_prod(b.key.shape) + _prod(b.value.shape)) + tokens * tk * (q_width + o_width))
    projections = [w for path, ws in groups.items() if path not in in_block and not _is_embedding(path)
                   for w in ws if len(w.shape) >= 2]
    if any(len(w.shape) != 2 for w in projections):
        return None  # a convolution or an einsum we cannot place
    widths = {width} | {w.shape[-1] for w in projections} | {b.output.shape[-1] for b in blocks}
    if any(w.shape[0] not in widths for w in projections):
        return None
    return total + tokens * sum(_prod(w.shape) for w in projections)


def _reversible_embedding(layer: Layer, ins: Sequence[Shape | None], outs: Sequence[Shape | None]) -> int | None:
    emb = [w for w in layer.weights if len(w.shape) == 2]
    if not emb:
        return None
    vocab, dim = emb[0].shape
    out = outs[0] if outs else None
    if out is None or not out or out[-1] != vocab or vocab == dim:
        return 0  # a lookup
    x = _tokens_and_width(ins[0] if ins else None)
    return None if x is None else x[0] * vocab * dim


def _tokens_and_width(shape: Shape | None) -> tuple[int, int] | None:
    """(tokens per sample, last dim) of ``[batch, …tokens…, width]``; the batch may be unknown."""
    if shape is None or len(shape) < 2:
        return None
    dims = [d for d in shape[1:] if isinstance(d, int) and not isinstance(d, bool) and d >= 0]
    if len(dims) != len(shape) - 1:
        return None
    return _prod(dims[:-1]), dims[-1]


def _groups(layer: Layer) -> dict[str, list[Weight]]:
    """The layer's weights by sublayer path (only when the weights live in sublayers)."""
    groups: dict[str, list[Weight]] = {}
    for w in layer.weights:
        if w.quantization:
            continue
        path, sep, _ = w.name.rpartition("/")
        if not sep:
            return {}
        groups.setdefault(path, []).append(w)
    return groups


def _attention_blocks(groups: dict[str, list[Weight]]) -> list[_Block] | None:
    """Attention blocks among ``groups``; ``None`` when a block is incomplete."""
    by_parent: dict[str, dict[int, tuple[str, Weight]]] = {}
    for path, weights in groups.items():
        parent, _, leaf = path.rpartition("/")
        match = _ROLE.match(leaf.lower())
        kernels = [w for w in weights if len(w.shape) >= 2]
        if match is None or not kernels:
            continue
        role = next(i for i in range(1, 5) if match.group(i))
        by_parent.setdefault(parent, {})[role] = (path, kernels[0])
    blocks = []
    for parent, roles in by_parent.items():
        if len(roles) != 4:
            return None
        blocks.append(_Block(parent, roles[1][1], roles[2][1], roles[3][1], roles[4][1],
                             tuple(path for path, _ in roles.values())))
    return blocks


def _reads_second(block: _Block) -> bool:
    """Whether a block's keys and values come from the call's second input: a cross-attention,
    or the layer itself is the attention (``CachedMultiHeadAttention(query, value)``)."""
    return not block.path or "cross" in block.path.lower()


def _says_attention(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in _ATTENTION_WORDS)


def _is_embedding(name: str) -> bool:
    return "embedding" in name.lower()


def _prod(values: Sequence[Any]) -> int:
    return math.prod(int(v) for v in values)


# -- models saved whole without wiring (keras_hub backbones) -----------------------------------
def backbone_macs(graph: ModelGraph) -> list[tuple[str, Value | None]] | None:
    """MACs per layer of a token model saved whole without functional wiring (a registered
    ``keras.Model`` subclass such as a keras_hub ``Backbone``), per sample, on ``[batch, seq]``
    token inputs: a polynomial in ``seq``, or numbers when ``--dim seq=N`` bound it.  ``None``
    when ``graph`` is not such a model (no embedding gives the model's width): image backbones
    and other subclassed models keep the generic rules (their layers unknown).

    Per layer: embeddings, normalizations and other layers with rank-1 weights only cost 0; a
    ``ReversibleEmbedding`` is a lookup (a backbone outputs the hidden states, and a subclassed
    model records no outputs that could show a projection onto the vocabulary); a ``Dense``
    reading the model's width costs one MAC per kernel element per token, or per sample when
    its name says ``pool`` (BERT's pooler reads the first token); a composite block costs what
    :func:`block_macs` says; anything else is unknown."""
    if graph.kind != "subclassed" or graph.format == "onnx":
        return None
    width = _model_width(graph)
    if width is None:
        return None
    bound = graph.metadata.get(BOUND_DIMS)
    value = bound.get(SEQ_DIM) if isinstance(bound, dict) else None
    tokens: Value = value if isinstance(value, int) else Poly.symbol(SEQ_DIM)
    return [(lay.name, _backbone_layer(lay, tokens, width)) for lay in graph.layers]


def _model_width(graph: ModelGraph) -> int | None:
    """The width of a token model: the most common feature dim of its embedding tables."""
    widths = Counter(w.shape[-1] for lay in graph.layers if _is_embedding(lay.name) or _is_embedding(lay.type)
                     for w in lay.weights if len(w.shape) == 2 and "/" not in w.name)
    return int(widths.most_common(1)[0][0]) if widths else None


def _backbone_layer(layer: Layer, tokens: Value, width: int) -> Value | None:
    weights = [w for w in layer.weights if not w.quantization]
    if len(weights) != len(layer.weights):
        return None
    if layer.type in _ZERO or layer.type == "ReversibleEmbedding" or all(len(w.shape) <= 1 for w in weights):
        return 0
    if any("/" in w.name for w in weights):
        return block_macs(layer.type, layer, tokens, width)
    if _is_embedding(layer.name) or _is_embedding(layer.type):
        return 0 if all(len(w.shape) <= 2 for w in weights) else None
    kernels = [w for w in weights if len(w.shape) >= 2]
    if layer.type != "Dense" or len(kernels) != 1 or len(kernels[0].shape) != 2 or kernels[0].shape[0] != width:
        return None
    rows: Value = 1 if "pool" in layer.name.lower() else tokens
    return rows * _prod(kernels[0].shape)
