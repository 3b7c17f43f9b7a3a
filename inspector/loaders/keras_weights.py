"""Weight roles and trainability of Keras layers, shared by the Keras loaders.

Weight *roles* (``kernel``, ``gamma`` …) follow each class's variable creation
order (:func:`ordered_roles`), because a ``.keras`` weights file stores a layer's
variables as ``vars/0``, ``vars/1`` … without names.  Trainability follows Keras's
``trainable_weights``: :func:`role_trainable` plus every enclosing ``trainable:
false`` (which :mod:`~inspector.loaders.keras_graph` folds into ``Layer.trainable``).
:func:`subobject` and :func:`container_item` name the sub-objects (RNN cells, wrapped
layers) whose variables a layer saves under its own.
"""

from __future__ import annotations

from typing import Any

from ..vocab import (
    BATCHNORM,
    BATCHNORM_LEGACY,
    KERAS_CONV,
    KERAS_CONV_TRANSPOSE,
    KERAS_DEPTHWISE,
    KERAS_LOCALLY_CONNECTED,
    KERAS_SEPARABLE,
    KERAS_STATEFUL_PREPROCESSING,
    RNN_CELL_CLASSES,
)
from .keras_config import quantization_mode

_CONV = KERAS_CONV | KERAS_CONV_TRANSPOSE | KERAS_DEPTHWISE | KERAS_LOCALLY_CONNECTED
"""Layers whose variables are ``kernel`` then ``bias``."""
RNN_CELL_OF = {
    "SimpleRNN": "SimpleRNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell", "LSTMV1": "LSTMCell",
    "LSTMV2": "LSTMCell", "GRUV1": "GRUCell", "GRUV2": "GRUCell", "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell",
}

NON_TRAINABLE_ROLES = frozenset({
    "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev",
    "renorm_mean_weight", "renorm_stddev_weight", "num_batches_tracked",
})

QUANTIZATION_ROLES = frozenset({
    "kernel_scale", "kernel_zero", "embeddings_scale", "embeddings_zero", "g_idx",
    "inputs_scale", "inputs_amax_history", "kernel_amax_history", "outputs_grad_scale",
    "outputs_grad_amax_history", "scale_inv",
})
"""Quantization scales and bookkeeping: reported apart from parameters."""

_QUANT_SPECS = {
    "dense": {
        "int8": ["kernel", "bias", "kernel_scale"],
        "int4": ["kernel", "bias", "kernel_scale", "kernel_zero", "g_idx"],
        "float8": ["kernel", "bias", "inputs_scale", "inputs_amax_history", "kernel_scale",
                   "kernel_amax_history", "outputs_grad_scale", "outputs_grad_amax_history"],
        "gptq": ["bias", "quantized_kernel", "kernel_scale", "kernel_zero", "g_idx"],
    },
    "embedding": {
        "int8": ["embeddings", "embeddings_scale"],
        "int4": ["embeddings", "embeddings_scale", "embeddings_zero", "g_idx"],
    },
}
_OPTIONAL_QUANT = ("g_idx", "kernel_zero", "embeddings_zero", "bias")


def _fit(candidates: list[str], n: int, *, optional: tuple[str, ...] = ()) -> list[str] | None:
    roles = list(candidates)
    for opt in optional:
        if len(roles) <= n:
            break
        if opt in roles:
            roles.remove(opt)
    return roles if len(roles) == n else None


def ordered_roles(cls: str, config: dict[str, Any], n: int) -> list[str] | None:  # noqa: C901 - one branch per layer family
    """Roles of a layer's own variables in the order Keras saves them (trainable ones
    first, each group in creation order), or None when the class is not known or the
    count does not match what the config implies."""
    if n == 0:
        return []
    cfg = config if isinstance(config, dict) else {}
    use_bias = cfg.get("use_bias", True) is not False
    mode = quantization_mode(cfg)
    if cls in ("Dense", "EinsumDense"):
        if mode in _QUANT_SPECS["dense"]:
            return _fit(_QUANT_SPECS["dense"][mode], n, optional=_OPTIONAL_QUANT)
        return _fit(["kernel", "bias"], n, optional=("bias",))
    if cls in ("Embedding", "ReversibleEmbedding"):
        if mode in _QUANT_SPECS["embedding"]:
            return _fit(_QUANT_SPECS["embedding"][mode], n, optional=_OPTIONAL_QUANT)
        if cls == "ReversibleEmbedding":
            return _fit(["embeddings", "reverse_embeddings"], n, optional=("reverse_embeddings",))
        return _fit(["embeddings"], n)
    if cls in _CONV:
        return _fit(["kernel", "bias"] if use_bias else ["kernel"], n, optional=("bias",))
    if cls in KERAS_SEPARABLE:
        return _fit(["depthwise_kernel", "pointwise_kernel", "bias"], n, optional=("bias",))
    if cls in BATCHNORM | BATCHNORM_LEGACY:
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        roles += ["moving_mean", "moving_variance"]
        if cfg.get("renorm"):
            roles += ["renorm_mean", "renorm_stddev"]
        return _fit(roles, n)
    if cls == "LayerNormalization":
        if cfg.get("rms_scaling"):
            return _fit(["gamma"], n)
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        return _fit(roles, n)
    if cls == "GroupNormalization":
        roles = (["gamma"] if cfg.get("scale", True) is not False else []) \
            + (["beta"] if cfg.get("center", True) is not False else [])
        return _fit(roles, n)
    if cls == "RMSNormalization":
        return _fit(["scale"], n)
    if cls == "PReLU":
        return _fit(["alpha"], n)
    if cls == "Normalization":
        return _fit(["mean", "variance", "count"], n)
    if cls in RNN_CELL_CLASSES:
        return _fit(["kernel", "recurrent_kernel", "bias"], n, optional=("bias",))
    if cls == "Attention":
        roles = (["scale"] if cfg.get("use_scale") else []) \
            + (["concat_score_weight"] if cfg.get("score_mode") == "concat" else [])
        return _fit(roles, n)
    if cls == "AdditiveAttention":
        return _fit(["scale"], n)
    if cls == "SpectralNormalization":
        return _fit(["vector_u"], n)
    return None


def normalize_role(cls: str, role: str) -> str:
    """Role names differ between Keras versions for the same tensor; use Keras 3's."""
    if cls in ("DepthwiseConv1D", "DepthwiseConv2D") and role == "depthwise_kernel":
        return "kernel"
    return role


_QUANTIZED_STORAGE_MODES = frozenset({"int8", "int4", "gptq", "awq"})


def role_trainable(cls: str, role: str, config: dict[str, Any] | None = None) -> bool:
    """Whether Keras creates the variable with this role as trainable."""
    if cls in KERAS_STATEFUL_PREPROCESSING:  # preprocessing state is never trained
        return False
    if role in ("kernel", "embeddings", "quantized_kernel") and isinstance(config, dict) \
            and quantization_mode(config) in _QUANTIZED_STORAGE_MODES:
        return False  # integer storage of a quantized layer is frozen
    if role in NON_TRAINABLE_ROLES or role in QUANTIZATION_ROLES:
        return False
    if cls == "SpectralNormalization" and role == "vector_u":
        return False
    return True


def subobject(cls: str, config: dict[str, Any], child: str) -> tuple[str, dict[str, Any]] | None:
    """(class, config) of a sub-object a layer saves under the attribute ``child``
    (an RNN's ``cell``, a wrapper's ``layer``, Bidirectional's ``forward_layer`` …)."""
    cfg = config if isinstance(config, dict) else {}

    def entry(value: Any) -> tuple[str, dict[str, Any]] | None:
        if isinstance(value, dict) and isinstance(value.get("class_name"), str):
            conf = value.get("config")
            return value["class_name"], conf if isinstance(conf, dict) else {}
        return None

    if child == "cell":
        if cls in RNN_CELL_OF:
            return RNN_CELL_OF[cls], cfg
        cell = cfg.get("cell")
        if isinstance(cell, list):
            return "StackedRNNCells", {"cells": cell}
        return entry(cell)
    if cls == "Bidirectional" and child in ("forward_layer", "backward_layer"):
        if child == "backward_layer" and isinstance(cfg.get("backward_layer"), dict):
            return entry(cfg["backward_layer"])
        return entry(cfg.get("layer"))
    if child == "layer" and "layer" in cfg:
        return entry(cfg.get("layer"))
    if child.endswith("_dense") or child in ("query", "key", "value", "attention_output"):
        return "EinsumDense", {}
    return None


def container_item(config: dict[str, Any], child: str, position: int) -> tuple[str, dict[str, Any]] | None:
    """The entry of a list-valued config (StackedRNNCells ``cells``) for the
    ``position``-th saved item of a container."""
    for key in ("cells", "layers"):
        items = config.get(key) if isinstance(config, dict) else None
        if isinstance(items, list) and position < len(items):
            item = items[position]
            if isinstance(item, dict) and isinstance(item.get("class_name"), str):
                conf = item.get("config")
                return item["class_name"], conf if isinstance(conf, dict) else {}
    return None

