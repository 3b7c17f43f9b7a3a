"""Small Hugging Face models exported to ONNX the way people ship them today, with PyTorch's ground truth.

Issues 11 (exact parameters and MACs) and 12 (lint precision) are measured on models nobody here wrote.
This module builds tiny versions of them FROM A CONFIG with random weights (nothing is downloaded:
``HF_HUB_OFFLINE=1``, no ``from_pretrained``), exports each with ``torch.onnx.export`` through the
TorchScript exporter (``dynamo=False``) and the dynamo exporter (``dynamo=True``), with static shapes or
dynamic axes, and returns next to the file what PyTorch itself says about the model:

* ``trainable``: ``sum(p.numel() for p in model.parameters())``;
* ``non_trainable``: the BatchNorm running statistics (``running_mean`` and ``running_var``);
* ``macs``: ``torch.utils.flop_counter.FlopCounterMode`` total FLOPs / 2 for the exported input shapes.

Choices that keep the comparison honest: attention is ``eager`` (explicit MatMul/Softmax in every export,
and FlopCounterMode has no formula for the CPU kernel of ``scaled_dot_product_attention``); BatchNorm gets
trained-like statistics (a fresh one is the identity, and its folded biases would all be equal); the text
models take an ``attention_mask`` as exported LLMs do; dynamic-axes exports are traced with
:data:`DYNAMIC_BATCH` rows (``torch.export`` specialises an axis traced at size 1), so their truth is for
those shapes; ``fold=False`` exports without the exporter's optimisations (BatchNorm kept as a layer).
Models are wrapped so that they take their inputs positionally and return a tuple of tensors: initializer
names of the TorchScript exports therefore start with ``model.``.

Exports are cached in one folder (``INSPECTOR_EXPORT_CACHE`` or a folder under the temp directory named
after the torch and transformers versions), so a test session or a benchmark pays each export once.
``torch`` and ``transformers`` are imported lazily: importing this module costs nothing, and
:func:`available` tells whether the exporters can run at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXPORTERS",
    "MODEL_NAMES",
    "ExportedModel",
    "TorchTruth",
    "available",
    "cache_folder",
    "export",
    "export_all",
    "torch_truth",
]

#: the two ``torch.onnx.export`` code paths: ``dynamo=False`` and ``dynamo=True``
EXPORTERS: tuple[str, ...] = ("torchscript", "dynamo")
OPSET = 18
TEXT_SHAPE = (1, 16)
IMAGE_SHAPE = (1, 3, 32, 32)
SEED = 0
#: rows of the example inputs of dynamic-axes exports (the ground truth is for these shapes)
DYNAMIC_BATCH = 2


@dataclass(frozen=True)
class TorchTruth:
    """What PyTorch counts for one model at the exported input shapes."""

    trainable: int
    non_trainable: int
    macs: int


@dataclass(frozen=True)
class ExportedModel:
    """One ONNX file written by ``torch.onnx.export`` and the ground truth it is checked against."""

    name: str
    exporter: str
    dynamic: bool
    fold: bool
    path: Path
    truth: TorchTruth
    input_shapes: dict[str, tuple[int, ...]]
    dynamic_axes: dict[str, dict[int, str]]
    export_seconds: float

    @property
    def label(self) -> str:
        """``name/exporter/static|dynamic[/unfolded]``, the export's name in tables and test ids."""
        return f"{self.name}/{self.exporter}/{self.axes}{'' if self.fold else '/unfolded'}"

    @property
    def axes(self) -> str:
        """``dynamic`` for a dynamic-axes export, else ``static``."""
        return "dynamic" if self.dynamic else "static"


@dataclass(frozen=True)
class _Built:
    """A model in eval mode, example inputs by name, and the symbolic axes of each input."""

    module: torch.nn.Module
    inputs: dict[str, torch.Tensor]
    axes: dict[str, dict[int, str]]


def available() -> bool:
    """True when ``torch``, ``transformers`` and ``onnxscript`` (the dynamo exporter) are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "onnxscript"))


#: eager attention: explicit MatMul/Softmax in every export, and FlopCounterMode counts them (it has no
#: formula for the CPU flash kernel scaled_dot_product_attention dispatches to)
_EAGER: dict[str, Any] = {"attn_implementation": "eager"}


def _text(module: torch.nn.Module) -> _Built:
    """A text model fed ``input_ids`` and an all-ones ``attention_mask`` of :data:`TEXT_SHAPE`, axes batch/seq.

    With a mask, as exported LLMs take one; without it, transformers also looks for packed sequences with
    ``aten::diff``, which the TorchScript exporter cannot convert.
    """
    import torch

    generator = torch.Generator().manual_seed(SEED)
    inputs = {
        "input_ids": torch.randint(0, 100, TEXT_SHAPE, generator=generator),
        "attention_mask": torch.ones(TEXT_SHAPE, dtype=torch.int64),
    }
    axes = {name: {0: "batch", 1: "seq"} for name in inputs}
    return _Built(module, inputs, axes)


def _image(module: torch.nn.Module) -> _Built:
    """An image model fed ``pixel_values`` of :data:`IMAGE_SHAPE`, batch axis symbolic."""
    import torch

    pixels = torch.randn(IMAGE_SHAPE, generator=torch.Generator().manual_seed(SEED))
    return _Built(module, {"pixel_values": pixels}, {"pixel_values": {0: "batch"}})


def _bert() -> _Built:
    """BERT base-style encoder with its pooler: 2 layers, hidden 64, 4 heads."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, **_EAGER)
    return _text(BertModel(config, add_pooling_layer=True))


def _gpt2() -> _Built:
    """GPT-2 with its language-model head (tied to the token embedding): 2 layers, hidden 64."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=64, use_cache=False,
                        **_EAGER)
    return _text(GPT2LMHeadModel(config))  # LM head tied to the token embedding (issue 11.6)


def _llama() -> _Built:
    """Llama causal LM (RMSNorm, RoPE, SwiGLU, grouped-query attention 4/2 heads): 2 layers, hidden 64."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         use_cache=False, tie_word_embeddings=False, **_EAGER)
    return _text(LlamaForCausalLM(config))


def _t5_encoder() -> _Built:
    """T5 encoder (relative position buckets, RMS-style layer norm): 2 layers, d_model 64."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=1000, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                      use_cache=False, **_EAGER)
    return _text(T5EncoderModel(config))


def _whisper_encoder() -> _Built:
    """Whisper audio encoder (two Conv1d, sinusoidal positions): 2 layers, 16 mel bins, 64 frames."""
    import torch
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(vocab_size=1000, d_model=64, encoder_layers=2, encoder_attention_heads=4,
                           encoder_ffn_dim=128, decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=128,
                           num_mel_bins=16, max_source_positions=32, max_target_positions=32, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, **_EAGER)
    encoder = WhisperModel(config).get_encoder()
    # The encoder insists on exactly 2 * max_source_positions frames: only the batch is dynamic.
    features = torch.randn((1, 16, 64), generator=torch.Generator().manual_seed(SEED))
    return _Built(encoder, {"input_features": features}, {"input_features": {0: "batch"}})


def _vit() -> _Built:
    """ViT image encoder: 32x32 pixels in 8x8 patches, 2 layers, hidden 64, with its pooler."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=128, **_EAGER)
    return _image(ViTModel(config))


def _resnet() -> _Built:
    """ResNet with bottleneck blocks and BatchNorm: 2 stages of 1 block."""
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1], layer_type="bottleneck")
    return _image(ResNetModel(config))


def _resnet_zero_init() -> _Built:
    """The ResNet of :func:`_resnet` with the last BatchNorm gamma of each residual block zeroed.

    timm's ``zero_init_last`` (and torchvision's ``zero_init_residual``): every block starts as the identity.
    Exporters fold the zero gamma into the convolution, leaving all-zero kernels on residual branches
    (issue 12's INIT002 false alarm); the shortcut convolutions and the stem stay non-zero.
    """
    import torch
    from transformers.models.resnet.modeling_resnet import ResNetBottleNeckLayer

    built = _resnet()
    with torch.no_grad():
        for block in built.module.modules():
            norm = block.layer[-1].normalization if isinstance(block, ResNetBottleNeckLayer) else None
            if isinstance(norm, torch.nn.BatchNorm2d):
                norm.weight.zero_()
    return built


def _convnext() -> _Built:
    """ConvNeXt (depthwise 7x7, LayerNorm, layer scale): 2 stages of 1 block."""
    from transformers import ConvNextConfig, ConvNextModel

    config = ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], image_size=32)
    return _image(ConvNextModel(config))


def _efficientnet() -> _Built:
    """EfficientNet (MBConv: depthwise convolutions, squeeze-and-excitation, swish): 3 stages of 1 block.

    ``hidden_dim`` is the width of the top convolution, ``round_filters(1280)`` at width coefficient 0.5.
    Width 0.5 keeps each linear projection a bottleneck (16 -> 8 -> 48), as in EfficientNet-B0 (32 -> 16 -> 96);
    at 0.25 the channel rounding gives 8 -> 8 -> 48, where the projection and the next expansion really are
    one linear map (ACT005 rightly warns).
    """
    from transformers import EfficientNetConfig, EfficientNetModel

    config = EfficientNetConfig(image_size=32, width_coefficient=0.5, depth_coefficient=0.5, kernel_sizes=[3, 3, 5],
                                in_channels=[32, 16, 24], out_channels=[16, 24, 40], strides=[1, 2, 2],
                                num_block_repeats=[1, 1, 1], expand_ratios=[1, 6, 6], hidden_dim=640)
    return _image(EfficientNetModel(config))


def _mobilenet_v2() -> _Built:
    """MobileNetV2 (inverted residuals, depthwise convolutions, ReLU6, TensorFlow padding) at width 0.35."""
    from transformers import MobileNetV2Config, MobileNetV2Model

    config = MobileNetV2Config(image_size=32, depth_multiplier=0.35)
    return _image(MobileNetV2Model(config))


def _trained(base: Callable[[], _Built]) -> Callable[[], _Built]:
    """The builder ``base`` with trained-like weights: every floating parameter moved away from its initialisation.

    Seeded Gaussian noise of each parameter's own scale (its standard deviation; a tenth of its mean magnitude
    for a constant tensor such as a LayerNorm gamma of ones; 0.02 for an all-zero bias) is added, so that no
    weight keeps the regular values of a fresh initialisation (constant gammas, zero biases).  BatchNorm
    statistics are seeded afterwards by :func:`_build` as for every model.
    """

    def build() -> _Built:
        import torch

        built = base()
        generator = torch.Generator().manual_seed(SEED + 1)
        with torch.no_grad():
            for parameter in built.module.parameters():
                if not parameter.is_floating_point():
                    continue
                scale = float(parameter.std()) if parameter.numel() > 1 else 0.0
                scale = scale or 0.1 * float(parameter.abs().mean()) or 0.02
                parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
        return built

    build.__doc__ = f"{(base.__doc__ or '').splitlines()[0]} With trained-like (perturbed) weights."
    return build


_BUILDERS: dict[str, Callable[[], _Built]] = {
    "bert": _bert,
    "gpt2": _gpt2,
    "llama": _llama,
    "t5-encoder": _t5_encoder,
    "whisper-encoder": _whisper_encoder,
    "vit": _vit,
    "resnet": _resnet,
    "resnet-zero-init": _resnet_zero_init,
    "convnext": _convnext,
    "efficientnet": _efficientnet,
    "mobilenet-v2": _mobilenet_v2,
    "bert-trained": _trained(_bert),
    "llama-trained": _trained(_llama),
    "resnet-trained": _trained(_resnet),
    "efficientnet-trained": _trained(_efficientnet),
}
#: every model this module builds, in table order
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


@functools.cache
def _tuple_outputs_class() -> type[torch.nn.Module]:
    """A wrapper module class returning a model's outputs as a plain tuple (created once torch is imported)."""
    import torch

    class TupleOutputs(torch.nn.Module):
        """Calls the wrapped Hugging Face model and returns ``ModelOutput.to_tuple()``: tensors only."""

        def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
            super().__init__()
            self.model = model
            self.names = names

        def forward(self, *tensors: torch.Tensor) -> tuple[Any, ...]:
            outputs = self.model(**dict(zip(self.names, tensors, strict=True)))
            return tuple(outputs.to_tuple()) if hasattr(outputs, "to_tuple") else tuple(outputs)

    return TupleOutputs


def _tuple_outputs(model: torch.nn.Module, names: tuple[str, ...]) -> torch.nn.Module:
    """``model`` taking ``names`` positionally and returning a tuple of tensors, as both exporters like it."""
    return _tuple_outputs_class()(model, names)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints and deprecation warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _build(name: str, *, batch: int = 1) -> _Built:
    """The model ``name`` with seeded random weights, in eval mode, nothing downloaded, inputs of ``batch`` rows."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    torch.manual_seed(SEED)
    built = _BUILDERS[name]()
    _trained_like_batchnorm(built.module)
    built.module.eval()
    inputs = {k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in built.inputs.items()}
    return _Built(_tuple_outputs(built.module, tuple(inputs)), inputs, built.axes)


def _trained_like_batchnorm(module: torch.nn.Module) -> None:
    """Give every BatchNorm seeded non-trivial statistics and affine weights, as training leaves them.

    Fresh BatchNorm is the identity (mean 0, variance 1, gamma 1, beta 0); folded into a convolution it
    leaves all-equal biases that the TorchScript exporter merges into one tensor.  Trained-like values
    keep every folded tensor distinct, as in the files people ship.
    """
    import torch

    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for layer in module.modules():
            if not isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                continue
            mean, var = layer.running_mean, layer.running_var
            if mean is not None and var is not None:
                size = var.shape
                mean.copy_(torch.randn(size, generator=generator) * 0.1)
                var.copy_(torch.rand(size, generator=generator) + 0.5)
                if layer.affine:
                    if bool(layer.weight.any()):  # a zero gamma is a deliberate zero-init residual: kept
                        layer.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                    layer.bias.copy_(torch.randn(size, generator=generator) * 0.1)


def torch_truth(module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> TorchTruth:
    """PyTorch's parameter counts and ``FlopCounterMode`` MACs (FLOPs / 2) of ``module`` on ``inputs``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    trainable = sum(p.numel() for p in module.parameters())
    running = sum(buffer.numel() for name, buffer in module.named_buffers()
                  if name.rsplit(".", 1)[-1] in ("running_mean", "running_var"))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs.values())
    return TorchTruth(trainable=trainable, non_trainable=running, macs=counter.get_total_flops() // 2)


def cache_folder() -> Path:
    """The folder exports are cached in: ``INSPECTOR_EXPORT_CACHE``, else one per torch/transformers version."""
    configured = os.environ.get("INSPECTOR_EXPORT_CACHE")
    if configured:
        folder = Path(configured)
    else:
        import torch
        import transformers

        tag = f"torch{torch.__version__}-transformers{transformers.__version__}".replace("+", "_")
        folder = Path(tempfile.gettempdir()) / f"inspector-exports-{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_onnx(built: _Built, path: Path, *, dynamo: bool, dynamic: bool, fold: bool) -> None:
    """Run ``torch.onnx.export`` on ``built`` into ``path`` (a temporary name first, renamed when done).

    ``fold=False`` turns the exporter's graph optimisation off (TorchScript ``do_constant_folding``, dynamo
    ``optimize``): BatchNorm stays a layer of its own instead of being folded into the convolution before it.
    """
    import torch

    names = list(built.inputs)
    partial = path.with_suffix(f".{os.getpid()}.partial.onnx")  # pytest-xdist workers may export at once
    options: dict[str, Any] = {"input_names": names, "opset_version": OPSET, "dynamo": dynamo}
    options["optimize" if dynamo else "do_constant_folding"] = fold
    if dynamic and dynamo:
        # names, not Dim objects: the exporter then writes them as the inputs' dim_params
        per_input = tuple(dict(built.axes.get(name, {})) for name in names)
        options["dynamic_shapes"] = (per_input,)  # one entry: the wrapper's ``*tensors``
    elif dynamic:
        options["dynamic_axes"] = built.axes
    if dynamo:
        options["external_data"] = False
    with _quiet(), torch.no_grad():
        torch.onnx.export(built.module, tuple(built.inputs.values()), str(partial), **options)
    partial.replace(path)


def export(name: str, exporter: str, *, dynamic: bool = False, fold: bool = True,
           folder: Path | None = None) -> ExportedModel:
    """The ONNX export of model ``name`` by ``exporter`` (``torchscript`` or ``dynamo``), cached in ``folder``.

    ``dynamic`` marks the axes of each input named in its builder (``batch``, ``seq``) symbolic; ``fold=False``
    exports without the exporter's optimisations (BatchNorm kept).  A cached export is reused when its file
    and its ``.json`` sidecar (truth, shapes, export time) exist.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, not {exporter!r}")
    folder = folder or cache_folder()
    stem = f"{name}-{exporter}-{'dynamic' if dynamic else 'static'}{'' if fold else '-unfolded'}"
    path, sidecar = folder / f"{stem}.onnx", folder / f"{stem}.json"
    if path.exists() and sidecar.exists():
        return _from_sidecar(name, exporter, path, json.loads(sidecar.read_text()))
    # A dynamic axis traced at size 1 is specialised to 1 by torch.export: dynamic exports trace 2 rows.
    built = _build(name, batch=DYNAMIC_BATCH if dynamic else 1)
    truth = torch_truth(built.module, built.inputs)
    start = time.perf_counter()
    _write_onnx(built, path, dynamo=exporter == "dynamo", dynamic=dynamic, fold=fold)
    seconds = round(time.perf_counter() - start, 2)
    record = {
        "dynamic": dynamic,
        "fold": fold,
        "truth": dataclasses.asdict(truth),
        "input_shapes": {k: list(v.shape) for k, v in built.inputs.items()},
        "dynamic_axes": built.axes if dynamic else {},
        "export_seconds": seconds,
    }
    partial_sidecar = sidecar.with_suffix(f".{os.getpid()}.partial.json")
    partial_sidecar.write_text(json.dumps(record, indent=1))
    partial_sidecar.replace(sidecar)
    return _from_sidecar(name, exporter, path, record)


def _from_sidecar(name: str, exporter: str, path: Path, record: dict[str, Any]) -> ExportedModel:
    """An :class:`ExportedModel` from the JSON record :func:`export` writes beside each file."""
    return ExportedModel(
        name=name,
        exporter=exporter,
        dynamic=bool(record["dynamic"]),
        fold=bool(record["fold"]),
        path=path,
        truth=TorchTruth(**record["truth"]),
        input_shapes={k: tuple(v) for k, v in record["input_shapes"].items()},
        dynamic_axes={k: {int(a): s for a, s in v.items()} for k, v in record["dynamic_axes"].items()},
        export_seconds=float(record["export_seconds"]),
    )


@functools.cache
def export_all(*, dynamic: bool = False, folder: Path | None = None) -> tuple[ExportedModel, ...]:
    """Every model of :data:`MODEL_NAMES` by both exporters (memoised for the process; files cached on disk)."""
    return tuple(export(name, exporter, dynamic=dynamic, folder=folder)
                 for name in MODEL_NAMES for exporter in EXPORTERS)
