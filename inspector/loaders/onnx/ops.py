"""Tables about ONNX operators the builder needs: which operands are shapes or
indices (never parameters), which are quantization scales, which ops fold."""

from __future__ import annotations

SMALL_VALUE = 4096
"""Constants with at most this many elements are evaluated (shape operands, trip counts)."""
CONFIG_VALUE = 64
"""Constant operand values with at most this many elements are kept in ``Operand.value``."""

DEFAULT_DOMAINS = ("", "ai.onnx")

# Operands that are shapes, axes, indices, counts or thresholds: never parameters.
NON_DATA: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4}, "Squeeze": {1},
    "Unsqueeze": {1}, "Pad": {1, 2, 3}, "Resize": {1, 2, 3}, "Upsample": {1}, "Gather": {1},
    "GatherElements": {1}, "GatherND": {1}, "ScatterND": {1}, "ScatterElements": {1}, "Scatter": {1},
    "TopK": {1}, "Split": {1}, "ConstantOfShape": {0}, "Range": {0, 1, 2}, "OneHot": {0, 1, 2},
    "CumSum": {1}, "Trilu": {1}, "NonMaxSuppression": {2, 3, 4}, "Clip": {1, 2}, "Dropout": {1, 2},
    "Loop": {0, 1}, "If": {0}, "RoiAlign": {2}, "MaxUnpool": {2}, "CenterCropPad": {1},
    "Col2Im": {1, 2}, "AffineGrid": {1}, "STFT": {1, 3}, "DFT": {1, 2}, "ReverseSequence": {1},
    "Compress": {1}, "Shape": {0}, "Size": {0}, "EyeLike": {0}, "SequenceAt": {1},
    "SequenceInsert": {2}, "SequenceErase": {1}, "SplitToSequence": {1}, "ReduceSum": {1},
    "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1}, "ReduceL1": {1},
    "ReduceL2": {1}, "ReduceLogSum": {1}, "ReduceLogSumExp": {1}, "ReduceSumSquare": {1},
    "BlackmanWindow": {0}, "HannWindow": {0}, "HammingWindow": {0}, "MelWeightMatrix": {0, 1, 2, 3, 4},
    "LSTM": {4}, "GRU": {4}, "RNN": {4}, "RotaryEmbedding": {3}, "RandomNormalLike": {0},
    "RandomUniformLike": {0}, "Bernoulli": {0}, "Multinomial": {0}, "TensorScatter": {2},
    "MatMulNBits": {4}, "GatherBlockQuantized": {1}, "DynamicQuantizeLSTM": {4},
}.items()}

# Operands that are quantization scales and zero points (reported apart).
QUANT: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in {
    "QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "DynamicQuantizeLinear": set(),
    "QLinearConv": {1, 2, 4, 5, 6, 7}, "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "MatMulInteger": {2, 3}, "ConvInteger": {2, 3},
    # com.microsoft contrib ops
    "QLinearAdd": {1, 2, 4, 5, 6, 7}, "QLinearMul": {1, 2, 4, 5, 6, 7},
    "QLinearSigmoid": {1, 2, 3, 4}, "QLinearLeakyRelu": {1, 2, 3, 4}, "QLinearSoftmax": {1, 2, 3, 4},
    "QLinearAveragePool": {1, 2, 3, 4}, "QLinearGlobalAveragePool": {1, 2, 3, 4},
    "QGemm": {1, 2, 4, 5, 7, 8}, "DynamicQuantizeMatMul": {2, 3}, "MatMulIntegerToFloat": {2, 3, 4, 5},
    "MatMulNBits": {2, 3}, "GatherBlockQuantized": {2, 3}, "QAttention": {3, 4, 6, 7},
    "DynamicQuantizeLSTM": {8, 9, 10, 11},
    "QLinearConcat": {0, 1},  # and each input's scale and zero point: quant_positions
}.items()}


def quant_positions(op: str, n: int) -> frozenset[int]:
    """The quantization operands of ``op`` called with ``n`` inputs: :data:`QUANT`'s, and for the variadic
    ``QLinearConcat`` (``Y_scale, Y_zero_point``, then ``X, X_scale, X_zero_point`` per input) every input's
    scale and zero point as well."""
    if op == "QLinearConcat":
        return frozenset({0, 1} | {i for i in range(2, n) if (i - 2) % 3})
    return QUANT.get(op, _NONE)


_NONE: frozenset[int] = frozenset()

BN_STATS = {"BatchNormalization": frozenset({3, 4})}
NOT_FOLDABLE = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "If", "Loop", "Scan",
})
FOLDABLE_OTHER_DOMAIN = frozenset({("com.microsoft", "DequantizeLinear"), ("com.microsoft", "QuantizeLinear")})
