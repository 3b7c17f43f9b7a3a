"""Generate Llama-style decoder ONNX graphs of any size, for the performance benchmarks (issue 14).

    python bench/make_decoder.py OUT.onnx --layers 2 --hidden 64 --ffn 172 --vocab 256 --heads 4
    python bench/make_decoder.py OUT.onnx --preset llama2-7b          # 25 GiB sparse external data
    python bench/make_decoder.py OUT.onnx --preset tensors-100k --seq 128

or, from Python, ``write_decoder(path, DecoderSpec(layers=2, ...))``.

The graph is what a transformer export looks like, written with ``onnx.helper``: a token embedding
``Gather``; per layer an RMSNorm decomposed into Pow/ReduceMean/Add/Sqrt/Div/Mul, Q/K/V ``MatMul`` with
Reshape/Transpose into heads, rotary embeddings (cos/sin tables gathered by position, rotate-half through
Slice/Neg/Concat), scaled scores plus a causal mask built once with ``Where``, Softmax, the output
projection, a residual, and a SiLU-gated MLP (gate/up/down ``MatMul``, Sigmoid, Mul); a final RMSNorm and the
LM head. A layer is 56 nodes; the graph adds 15 around them (2,893 layers: 162,023 nodes; 17,839: 998,999).

Weights (``--data``):

* ``dense``: float32 external data with random values (N(0, 0.02); norms are ones), written chunk by chunk;
* ``sparse``: the same external layout, but the data file is only ``truncate``-d to its size: a file with
  holes that reads as zeros and costs no disk, for graphs whose weight bytes must never be read;
* ``inline``: the values inside the ``.onnx`` file (raw_data), as small exports store them;
* ``none``: no initializers at all; weights are graph inputs with their shapes (structure only).

``--split-tensors N`` stores the weights as about N external (or inline) tensors: each weight is cut into
row blocks that a ``Concat`` joins back, as exporters that save one tensor per row block do. External tensors
share one data file (``OUT.onnx.data``), each at its own offset.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

DataMode = Literal["dense", "sparse", "inline", "none"]
DATA_MODES: tuple[DataMode, ...] = ("dense", "sparse", "inline", "none")
NODES_PER_LAYER = 56
OPSET = 17
_ALIGN = 4096  # external tensors start on a page boundary (as onnx's own writer can do)
_CHUNK_ELEMS = 16 * 1024 * 1024  # 64 MiB of float32 per write when generating dense data


@dataclass(frozen=True)
class DecoderSpec:
    """The shape of one generated decoder and how its weights are stored."""

    layers: int = 2
    hidden: int = 64
    ffn: int = 172
    vocab: int = 256
    heads: int = 4
    seq: str | int = "sequence"  # a symbolic name or a fixed length
    batch: str | int = 1
    max_positions: int = 2048  # rows of the RoPE cos/sin tables
    data: DataMode = "inline"
    split_tensors: int = 0  # 0: one tensor per weight
    seed: int = 0

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads


@dataclass(frozen=True)
class Preset:
    """A named spec reproducing one row of issue 14, with a reduced ``--quick`` variant."""

    spec: DecoderSpec
    quick: DecoderSpec
    note: str


_TINY: dict[str, Any] = {"hidden": 8, "ffn": 16, "vocab": 64, "heads": 2, "max_positions": 64, "data": "inline"}
PRESETS: dict[str, Preset] = {
    "small": Preset(DecoderSpec(layers=2, hidden=64, ffn=172, vocab=256, heads=4, max_positions=128),
                    DecoderSpec(layers=2, hidden=64, ffn=172, vocab=256, heads=4, max_positions=128),
                    "a small ONNX decoder for startup time"),
    "nodes-162k": Preset(DecoderSpec(layers=2893, **_TINY), DecoderSpec(layers=290, **_TINY),
                         "162,023 nodes, 2,893 small layers, inline weights"),
    "nodes-999k": Preset(DecoderSpec(layers=17839, **_TINY), DecoderSpec(layers=1784, **_TINY),
                         "998,999 nodes, 17,839 small layers, inline weights"),
    "tensors-100k": Preset(DecoderSpec(layers=16, hidden=512, ffn=1376, vocab=32000, heads=8, max_positions=512,
                                       data="dense", split_tensors=100_000),
                           DecoderSpec(layers=4, hidden=256, ffn=688, vocab=4096, heads=4, max_positions=256,
                                       data="dense", split_tensors=10_000),
                           "100,000 external tensors in one data file"),
    "dense-0.54b": Preset(DecoderSpec(layers=28, hidden=1024, ffn=4096, vocab=32000, heads=16, data="dense"),
                          DecoderSpec(layers=4, hidden=1024, ffn=4096, vocab=32000, heads=16, data="dense"),
                          "0.54 B parameters, 2.0 GiB dense float32 external data"),
    "llama2-7b": Preset(DecoderSpec(layers=32, hidden=4096, ffn=11008, vocab=32000, heads=32, max_positions=4096,
                                    data="sparse"),
                        DecoderSpec(layers=32, hidden=4096, ffn=11008, vocab=32000, heads=32, max_positions=4096,
                                    data="sparse"),
                        "Llama-2-7B shapes, 25 GiB sparse external data (no disk used)"),
}


@dataclass
class _Weight:
    """One weight before it is written: name, shape and how to make its values."""

    name: str
    shape: tuple[int, ...]
    kind: Literal["normal", "ones", "cos", "sin"]
    pieces: int = 1


@dataclass
class _Graph:
    """Nodes and weights collected while the decoder is built."""

    spec: DecoderSpec
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    weights: list[_Weight] = field(default_factory=list)
    consts: list[onnx.TensorProto] = field(default_factory=list)

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs: Any) -> str:
        """Add one node with a single output named after it; returns that output."""
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def weight(self, name: str, shape: tuple[int, ...], kind: Literal["normal", "ones", "cos", "sin"]) -> str:
        """Declare a weight; its values are produced when the model is written."""
        self.weights.append(_Weight(name, shape, kind))
        return name

    def const(self, name: str, values: Sequence[int] | Sequence[float], dtype: int) -> str:
        """A small inline constant (shapes, axes, epsilon) shared by every layer."""
        array = np.asarray(values, dtype=helper.tensor_dtype_to_np_dtype(dtype))
        self.consts.append(onnx.numpy_helper.from_array(array, name))
        return name


def _rms_norm(g: _Graph, x: str, prefix: str, weight: str) -> str:
    """RMSNorm as exporters decompose it: x / sqrt(mean(x^2) + eps) * weight (6 nodes)."""
    sq = g.node("Pow", [x, "const_two"], f"{prefix}/Pow")
    mean = g.node("ReduceMean", [sq], f"{prefix}/ReduceMean", axes=[-1], keepdims=1)
    eps = g.node("Add", [mean, "const_eps"], f"{prefix}/Add")
    root = g.node("Sqrt", [eps], f"{prefix}/Sqrt")
    norm = g.node("Div", [x, root], f"{prefix}/Div")
    return g.node("Mul", [norm, weight], f"{prefix}/Mul")


def _rope(g: _Graph, x: str, prefix: str, cos: str, sin: str) -> str:
    """Rotary embedding: x * cos + rotate_half(x) * sin (9 nodes, cos/sin unsqueezed per layer)."""
    c = g.node("Unsqueeze", [cos, "const_axis1"], f"{prefix}/Unsqueeze")
    s = g.node("Unsqueeze", [sin, "const_axis1"], f"{prefix}/Unsqueeze_1")
    first = g.node("Slice", [x, "const_zero", "const_half", "const_axis_last"], f"{prefix}/Slice")
    second = g.node("Slice", [x, "const_half", "const_big", "const_axis_last"], f"{prefix}/Slice_1")
    neg = g.node("Neg", [second], f"{prefix}/Neg")
    rotated = g.node("Concat", [neg, first], f"{prefix}/Concat", axis=-1)
    a = g.node("Mul", [x, c], f"{prefix}/Mul")
    b = g.node("Mul", [rotated, s], f"{prefix}/Mul_1")
    return g.node("Add", [a, b], f"{prefix}/Add")


def _heads(g: _Graph, x: str, prefix: str, shape: str) -> str:
    """[B, S, n*d] -> [B, n, S, d] (Reshape + Transpose)."""
    r = g.node("Reshape", [x, shape], f"{prefix}/Reshape")
    return g.node("Transpose", [r], f"{prefix}/Transpose", perm=[0, 2, 1, 3])


def _attention(g: _Graph, x: str, i: int, cos: str, sin: str, mask: str) -> str:
    """Self-attention of layer ``i`` with RoPE and the shared causal mask (42 nodes)."""
    s, p = g.spec, f"/model/layers.{i}/self_attn"
    w = f"model.layers.{i}.self_attn"
    q = g.node("MatMul", [x, g.weight(f"{w}.q_proj.weight", (s.hidden, s.hidden), "normal")], f"{p}/q_proj/MatMul")
    k = g.node("MatMul", [x, g.weight(f"{w}.k_proj.weight", (s.hidden, s.hidden), "normal")], f"{p}/k_proj/MatMul")
    v = g.node("MatMul", [x, g.weight(f"{w}.v_proj.weight", (s.hidden, s.hidden), "normal")], f"{p}/v_proj/MatMul")
    q = _rope(g, _heads(g, q, f"{p}/q", "shape_q_heads"), f"{p}/q_rotary", cos, sin)
    k = _rope(g, _heads(g, k, f"{p}/k", "shape_q_heads"), f"{p}/k_rotary", cos, sin)
    v = _heads(g, v, f"{p}/v", "shape_q_heads")
    kt = g.node("Transpose", [k], f"{p}/Transpose_kt", perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, kt], f"{p}/MatMul")
    scaled = g.node("Mul", [scores, "const_scale"], f"{p}/Mul")
    masked = g.node("Add", [scaled, mask], f"{p}/Add")
    probs = g.node("Softmax", [masked], f"{p}/Softmax", axis=-1)
    ctx = g.node("MatMul", [probs, v], f"{p}/MatMul_1")
    ctx = g.node("Transpose", [ctx], f"{p}/Transpose", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, "shape_hidden"], f"{p}/Reshape")
    return g.node("MatMul", [ctx, g.weight(f"{w}.o_proj.weight", (s.hidden, s.hidden), "normal")],
                  f"{p}/o_proj/MatMul")


def _mlp(g: _Graph, x: str, i: int) -> str:
    """SiLU-gated MLP: down(silu(gate(x)) * up(x)) (6 nodes)."""
    s, p, w = g.spec, f"/model/layers.{i}/mlp", f"model.layers.{i}.mlp"
    gate = g.node("MatMul", [x, g.weight(f"{w}.gate_proj.weight", (s.hidden, s.ffn), "normal")],
                  f"{p}/gate_proj/MatMul")
    sig = g.node("Sigmoid", [gate], f"{p}/act_fn/Sigmoid")
    silu = g.node("Mul", [gate, sig], f"{p}/act_fn/Mul")
    up = g.node("MatMul", [x, g.weight(f"{w}.up_proj.weight", (s.hidden, s.ffn), "normal")], f"{p}/up_proj/MatMul")
    both = g.node("Mul", [silu, up], f"{p}/Mul")
    return g.node("MatMul", [both, g.weight(f"{w}.down_proj.weight", (s.ffn, s.hidden), "normal")],
                  f"{p}/down_proj/MatMul")


def _layer(g: _Graph, x: str, i: int, cos: str, sin: str, mask: str) -> str:
    """One decoder layer (56 nodes): norm, attention, residual, norm, MLP, residual."""
    s, p = g.spec, f"/model/layers.{i}"
    n1 = _rms_norm(g, x, f"{p}/input_layernorm",
                   g.weight(f"model.layers.{i}.input_layernorm.weight", (s.hidden,), "ones"))
    h = g.node("Add", [x, _attention(g, n1, i, cos, sin, mask)], f"{p}/Add")
    n2 = _rms_norm(g, h, f"{p}/post_attention_layernorm",
                   g.weight(f"model.layers.{i}.post_attention_layernorm.weight", (s.hidden,), "ones"))
    return g.node("Add", [h, _mlp(g, n2, i)], f"{p}/Add_1")


def _constants(g: _Graph) -> None:
    """The small shared constants: exponents, epsilon, slice bounds, reshape targets."""
    s = g.spec
    g.const("const_two", [2.0], TensorProto.FLOAT)
    g.const("const_eps", [1e-6], TensorProto.FLOAT)
    g.const("const_scale", [1.0 / math.sqrt(s.head_dim)], TensorProto.FLOAT)
    g.const("const_zero_f", [0.0], TensorProto.FLOAT)
    g.const("const_neg_inf", [-np.inf], TensorProto.FLOAT)
    for name, values in {"const_axis1": [1], "const_axis2": [2], "const_zero": [0], "const_half": [s.head_dim // 2],
                         "const_big": [2**62], "const_axis_last": [-1], "shape_hidden": [0, 0, s.hidden],
                         "shape_q_heads": [0, 0, s.heads, s.head_dim]}.items():
        g.const(name, values, TensorProto.INT64)


def build_graph(spec: DecoderSpec) -> _Graph:
    """Nodes and weight declarations of the whole decoder (no values yet)."""
    if spec.hidden % spec.heads or spec.head_dim % 2:
        raise ValueError("hidden must split into heads of even width")
    g = _Graph(spec)
    _constants(g)
    x = g.node("Gather", [g.weight("model.embed_tokens.weight", (spec.vocab, spec.hidden), "normal"), "input_ids"],
               "/model/embed_tokens/Gather", axis=0)
    cos = g.node("Gather", [g.weight("model.rotary_emb.cos_cached", (spec.max_positions, spec.head_dim), "cos"),
                            "position_ids"], "/model/rotary_emb/Gather", axis=0)
    sin = g.node("Gather", [g.weight("model.rotary_emb.sin_cached", (spec.max_positions, spec.head_dim), "sin"),
                            "position_ids"], "/model/rotary_emb/Gather_1", axis=0)
    # Causal mask from positions: key position <= query position -> 0, else -inf; [B, 1, S, S].
    q_pos = g.node("Unsqueeze", ["position_ids", "const_axis2"], "/model/mask/Unsqueeze")
    k_pos = g.node("Unsqueeze", ["position_ids", "const_axis1"], "/model/mask/Unsqueeze_1")
    allowed = g.node("LessOrEqual", [k_pos, q_pos], "/model/mask/LessOrEqual")
    bias = g.node("Where", [allowed, "const_zero_f", "const_neg_inf"], "/model/mask/Where")
    mask = g.node("Unsqueeze", [bias, "const_axis1"], "/model/mask/Unsqueeze_2")
    for i in range(spec.layers):
        x = _layer(g, x, i, cos, sin, mask)
    x = _rms_norm(g, x, "/model/norm", g.weight("model.norm.weight", (spec.hidden,), "ones"))
    lm_head = g.weight("lm_head.weight", (spec.hidden, spec.vocab), "normal")
    g.nodes.append(helper.make_node("MatMul", [x, lm_head], ["logits"], name="/lm_head/MatMul"))
    if spec.split_tensors:
        _split(g, spec.split_tensors)
    return g


def _split(g: _Graph, total: int) -> None:
    """Cut weights into row blocks (about ``total`` tensors), proportional to their sizes."""
    capacity = sum(w.shape[0] for w in g.weights)
    if total > capacity:
        raise ValueError(f"--split-tensors {total} exceeds the {capacity} weight rows of this model")
    sizes = [math.prod(w.shape) for w in g.weights]
    whole = sum(sizes)
    for w, size in zip(g.weights, sizes, strict=True):
        w.pieces = max(1, min(w.shape[0], (total * size) // whole))
    missing = total - sum(w.pieces for w in g.weights)
    for w in sorted(g.weights, key=lambda w: -math.prod(w.shape)):  # hand out the rounding remainder
        if missing <= 0:
            break
        extra = min(missing, w.shape[0] - w.pieces)
        w.pieces += extra
        missing -= extra
    joined = {w.name: f"{w.name}/joined" for w in g.weights if w.pieces > 1}
    for node in g.nodes:  # consumers read the Concat instead of the weight
        if any(name in joined for name in node.input):
            node.input[:] = [joined.get(name, name) for name in node.input]
    concats = [helper.make_node("Concat", [f"{w.name}.part{j}" for j in range(w.pieces)], [joined[w.name]],
                                name=f"/{w.name}/Concat", axis=0) for w in g.weights if w.pieces > 1]
    g.nodes[:0] = concats  # first, so the graph stays topologically sorted


def _row_blocks(rows: int, pieces: int) -> Iterator[tuple[int, int]]:
    """``pieces`` contiguous row ranges covering ``rows``."""
    base, extra = divmod(rows, pieces)
    start = 0
    for j in range(pieces):
        stop = start + base + (1 if j < extra else 0)
        yield start, stop
        start = stop


def _values(w: _Weight, rng: np.random.Generator, start: int, stop: int) -> np.ndarray:
    """Float32 values of rows ``start:stop`` of weight ``w``."""
    shape = (stop - start, *w.shape[1:])
    if w.kind == "ones":
        return np.ones(shape, np.float32)
    if w.kind in ("cos", "sin"):
        dim = w.shape[1]
        inv = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
        angles = np.outer(np.arange(start, stop, dtype=np.float64), inv)
        angles = np.concatenate([angles, angles], axis=-1)
        return (np.cos(angles) if w.kind == "cos" else np.sin(angles)).astype(np.float32)
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype(np.float32, copy=False)


def _tensor(name: str, shape: Sequence[int]) -> onnx.TensorProto:
    """An empty float32 TensorProto header."""
    t = onnx.TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend(shape)
    return t


def _external(t: onnx.TensorProto, location: str, offset: int, length: int) -> onnx.TensorProto:
    """Point ``t`` at ``length`` bytes at ``offset`` of ``location``."""
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _write_dense(fh: BinaryIO, w: _Weight, rng: np.random.Generator, offset: int) -> None:
    """Write weight ``w`` at ``offset`` in chunks of at most 64 MiB."""
    row = math.prod(w.shape[1:]) if len(w.shape) > 1 else 1
    step = max(1, _CHUNK_ELEMS // row)
    for start in range(0, w.shape[0], step):
        stop = min(w.shape[0], start + step)
        os.pwrite(fh.fileno(), _values(w, rng, start, stop).tobytes(), offset + start * row * 4)


def _initializers(g: _Graph, path: Path) -> tuple[list[onnx.TensorProto], list[onnx.ValueInfoProto]]:
    """Weight TensorProtos (writing the external data file when needed), or graph inputs for ``none``."""
    spec, rng = g.spec, np.random.default_rng(g.spec.seed)
    if spec.data == "none":
        return [], [helper.make_tensor_value_info(w.name, TensorProto.FLOAT, list(w.shape)) for w in g.weights]
    tensors: list[onnx.TensorProto] = []
    location = path.name + ".data"
    data_path = path.with_name(location)
    offset = 0
    external = spec.data in ("dense", "sparse")
    with open(data_path, "wb") if external else contextlib.nullcontext() as fh:
        for w in g.weights:
            row = math.prod(w.shape[1:]) if len(w.shape) > 1 else 1
            if spec.data == "inline":
                values = _values(w, rng, 0, w.shape[0])
            elif spec.data == "dense" and fh is not None:
                _write_dense(fh, w, rng, offset)
            for j, (start, stop) in enumerate(_row_blocks(w.shape[0], w.pieces)):
                name = w.name if w.pieces == 1 else f"{w.name}.part{j}"
                t = _tensor(name, (stop - start, *w.shape[1:]))
                if spec.data == "inline":
                    t.raw_data = values[start:stop].tobytes()
                else:
                    _external(t, location, offset + start * row * 4, (stop - start) * row * 4)
                tensors.append(t)
            offset += -(-math.prod(w.shape) * 4 // _ALIGN) * _ALIGN
        if spec.data == "sparse" and fh is not None:
            fh.truncate(offset)
    return tensors, []


def _dim(value: str | int) -> str | int:
    """A fixed dimension stays an int; anything else is a symbolic name."""
    return int(value) if isinstance(value, int) or str(value).isdigit() else str(value)


def write_decoder(path: Path, spec: DecoderSpec) -> Path:
    """Write the decoder described by ``spec`` to ``path`` (and ``path.data`` for external weights).

    The ``.onnx`` file is written last, through a temporary name, so its presence means the pair is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = build_graph(spec)
    tensors, weight_inputs = _initializers(g, path)
    batch, seq = _dim(spec.batch), _dim(spec.seq)
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, [batch, seq]), *weight_inputs]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, seq, spec.vocab])]
    graph = helper.make_graph(g.nodes, "decoder", inputs, outputs, initializer=[*g.consts, *tensors])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="make_decoder")
    model.ir_version = 8
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)
    return path


def count_params(spec: DecoderSpec) -> int:
    """Number of weight values (initializers besides the small shared constants)."""
    return sum(math.prod(w.shape) for w in build_graph(replace(spec, split_tensors=0)).weights)


def spec_from_args(args: argparse.Namespace) -> DecoderSpec:
    """The spec a command line asks for: a preset (or its quick variant), overridden by explicit flags."""
    base = DecoderSpec()
    if args.preset:
        preset = PRESETS[args.preset]
        base = preset.quick if args.quick else preset.spec
    overrides = {key: getattr(args, key) for key in ("layers", "hidden", "ffn", "vocab", "heads", "seq", "batch",
                                                     "max_positions", "data", "split_tensors", "seed")
                 if getattr(args, key) is not None}
    return replace(base, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write one decoder and print its size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("output", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--quick", action="store_true", help="the preset's reduced variant")
    for name in ("layers", "hidden", "ffn", "vocab", "heads", "max-positions", "split-tensors", "seed"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--seq", help="sequence length: a number, or a symbolic name (default 'sequence')")
    parser.add_argument("--batch", help="batch size: a number (default 1) or a symbolic name")
    parser.add_argument("--data", choices=DATA_MODES)
    args = parser.parse_args(argv)
    spec = spec_from_args(args)
    path = write_decoder(args.output, spec)
    data = path.with_name(path.name + ".data")
    extra = f", data {data.stat().st_size / 2**30:.2f} GiB ({spec.data})" if data.exists() else ""
    print(f"{path}: {len(build_graph(spec).nodes):,} nodes, {count_params(spec):,} parameters, "
          f"{path.stat().st_size / 2**20:.1f} MiB graph{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
