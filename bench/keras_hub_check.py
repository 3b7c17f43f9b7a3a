"""keras_hub backbones saved whole against the same architectures in PyTorch and exported to ONNX (issue 11.7).

    python bench/keras_hub_check.py             # seq 16
    python bench/keras_hub_check.py --seq 128
    python bench/keras_hub_check.py --exporter torchscript

Needs ``keras_hub`` (not a project dependency), ``torch`` and ``transformers``.  Builds small keras_hub
backbones from their constructors (random weights: no presets, nothing downloaded) and saves each as
``.keras``; builds the Hugging Face model with the same configuration, measures it with
``FlopCounterMode`` (FLOPs / 2, eager attention) on ``[1, seq]`` token ids and exports it to ONNX
(``--exporter``: dynamo, the default, or TorchScript; static ``[1, seq]``).  Then runs the CURRENT
``inspector summary --format json`` (this checkout first on ``PYTHONPATH``) on the ``.keras`` file with
``--dim seq=N`` and without (the formula), and on the ONNX file.  Prints one row per model.
Exits 0: a measurement, not a gate.

Conventions (the MACs of the two sides agree when these are the only differences):
* BERT: both sides count the pooler (one token); neither has an LM head.
* GPT-2, Llama, Gemma: the backbone (``GPT2Model``, ``LlamaModel``, ``GemmaModel``): hidden states out, no LM
  head, so the tied ``ReversibleEmbedding`` is a lookup (0) on both sides.
* Llama: keras_hub's ``LlamaBackbone`` stores the untied LM head (``token_embedding/reverse_embeddings``,
  vocabulary × hidden) although it outputs hidden states; ``LlamaModel`` leaves it to ``LlamaForCausalLM``.
  So the parameters differ by vocabulary × hidden; the MACs do not (the backbone does not apply the head).
* Rotary embeddings: the frequency table costs no MACs on either side.
* LayerNorm/RMSNorm, softmax, activations, biases and embedding scaling cost 0 everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
VOCAB, LAYERS, HIDDEN = 1000, 2, 64


@dataclass(frozen=True)
class Pair:
    """One architecture: its keras_hub backbone and its Hugging Face twin."""

    name: str
    keras: Callable[[], Any]
    torch: Callable[[], Any]


def _pairs() -> list[Pair]:
    import keras_hub
    import transformers as tf

    eager: dict[str, Any] = {"attn_implementation": "eager"}
    return [
        Pair("bert", lambda: keras_hub.models.BertBackbone(
            vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=2, hidden_dim=HIDDEN, intermediate_dim=128,
            max_sequence_length=512),
            lambda: tf.BertModel(tf.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                               num_attention_heads=2, intermediate_size=128,
                                               max_position_embeddings=512, **eager), add_pooling_layer=True)),
        Pair("gpt2", lambda: keras_hub.models.GPT2Backbone(
            vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=2, hidden_dim=HIDDEN, intermediate_dim=128,
            max_sequence_length=512),
            lambda: tf.GPT2Model(tf.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=2,
                                               n_inner=128, n_positions=512, use_cache=False, **eager))),
        Pair("llama", lambda: keras_hub.models.LlamaBackbone(
            vocabulary_size=VOCAB, num_layers=LAYERS, num_query_heads=4, num_key_value_heads=2, hidden_dim=HIDDEN,
            intermediate_dim=128),
            lambda: tf.LlamaModel(tf.LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=128,
                                                 num_hidden_layers=LAYERS, num_attention_heads=4,
                                                 num_key_value_heads=2, use_cache=False, **eager))),
        Pair("gemma", lambda: keras_hub.models.GemmaBackbone(  # keras_hub halves intermediate_dim
            vocabulary_size=VOCAB, num_layers=LAYERS, num_query_heads=4, num_key_value_heads=1, hidden_dim=HIDDEN,
            intermediate_dim=256, head_dim=16),
            lambda: tf.GemmaModel(tf.GemmaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=128,
                                                 num_hidden_layers=LAYERS, num_attention_heads=4,
                                                 num_key_value_heads=1, head_dim=16, use_cache=False, **eager))),
    ]


def _summary(path: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "inspector", "summary", str(path), "-f", "json", *args],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "inspector failed")
    return dict(json.loads(done.stdout))


def _torch_side(pair: Pair, seq: int, onnx_path: Path, *, dynamo: bool) -> tuple[int, int]:
    """(parameters, FlopCounterMode MACs) of the Hugging Face model, which is exported to ``onnx_path``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(ROOT))
    from tests.helpers.exporters import _tuple_outputs  # positional inputs, tuple outputs: exportable

    torch.manual_seed(0)
    model = _tuple_outputs(pair.torch().eval(), ("input_ids", "attention_mask"))
    inputs = (torch.randint(0, VOCAB, (1, seq)), torch.ones((1, seq), dtype=torch.int64))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(onnx_path), input_names=["input_ids", "attention_mask"], dynamo=dynamo,
                          opset_version=18)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, default=16, help="sequence length the MACs are compared at")
    parser.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo")
    args = parser.parse_args()
    seq, dynamo = args.seq, args.exporter == "dynamo"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    head = (f"{'model':<6} {'keras params':>12} {'torch params':>12} {'keras MACs':>11} {'torch MACs':>11} "
            f"{'onnx MACs':>11}  {'agree':>5}  keras formula (per sample)")
    rows = [head, "-" * len(head)]
    with tempfile.TemporaryDirectory() as tmp:
        for pair in _pairs():
            kpath, opath = Path(tmp) / f"{pair.name}.keras", Path(tmp) / f"{pair.name}.onnx"
            pair.keras().save(str(kpath))
            tparams, tmacs = _torch_side(pair, seq, opath, dynamo=dynamo)
            bound = _summary(kpath, "--dim", f"seq={seq}")["totals"]
            formula = _summary(kpath)["totals"].get("macs_formula", {}).get("text", "?")
            onnx = _summary(opath)["totals"]
            kmacs = bound["macs"] if bound["macs_complete"] else None
            agree = kmacs == tmacs and onnx["macs"] == kmacs and bool(onnx["macs_complete"])
            shown = "?" if kmacs is None else f"{kmacs:,}"
            lower = " " if onnx["macs_complete"] else "+"
            rows.append(f"{pair.name:<6} {bound['params']:>12,} {tparams:>12,} {shown:>11} {tmacs:>11,} "
                        f"{onnx['macs']:>11,}{lower} {'yes' if agree else 'NO':>4}  {formula}")
    print(f"seq = {seq}, batch 1; keras MACs with --dim seq={seq}; onnx: {args.exporter} export, static [1, {seq}]; "
          "+ = the ONNX figure is a lower bound")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
