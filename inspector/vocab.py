"""The one vocabulary of layer families: which layer types are convolutions, dense layers,
normalizers, dropouts, activations, poolings, merges … in Keras and in ONNX.

Analysers, rules and loaders ask "is this layer a …?" through these constants, so a
new layer class (or an exporter's alias) is taught to the whole tool in one place.
Small sets are building blocks; the sets a module needs are unions of them, named
for what they mean.  A set that means something narrower in one place (e.g. the
shape-preserving augmentation layers) is built here from the blocks and documented.

Keras names are class names as they appear in saved configs (aliases included);
ONNX names are operator types (a non-default domain is spelled ``domain.Op``).
"""

from __future__ import annotations

# -- convolutions and dense layers -----------------------------------------------------------

KERAS_CONV = frozenset({"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D"})
"""Keras (non-transposed, non-separable, non-depthwise) convolutions."""

KERAS_CONV_TRANSPOSE = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                                  "Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose"})
"""Keras transposed convolutions (class name and its ``Convolution…`` alias)."""

KERAS_DECONVOLUTION = frozenset({"Deconvolution2D", "Deconvolution3D", "Deconv2D", "Deconv3D"})
"""Keras 1/2 aliases of the transposed convolutions."""

KERAS_DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
KERAS_SEPARABLE = frozenset({"SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
                             "SeparableConvolution2D"})
KERAS_LOCALLY_CONNECTED = frozenset({"LocallyConnected1D", "LocallyConnected2D"})
KERAS_DENSE = frozenset({"Dense", "EinsumDense"})

KERAS_KERNEL_LAYERS = (KERAS_DENSE | KERAS_CONV | KERAS_CONV_TRANSPOSE | KERAS_SEPARABLE
                       | KERAS_LOCALLY_CONNECTED)
"""Keras layers with a ``kernel_initializer`` for one kernel matrix (depthwise layers name
theirs ``depthwise_initializer``)."""

ONNX_CONV = frozenset({"Conv", "QLinearConv", "ConvInteger"})
ONNX_CONV_TRANSPOSE = frozenset({"ConvTranspose"})
ONNX_MATMUL = frozenset({"MatMul", "MatMulInteger", "QLinearMatMul"})
ONNX_KERNEL_OPS = ONNX_CONV | ONNX_CONV_TRANSPOSE | ONNX_MATMUL | {"Gemm"}
"""ONNX operators that multiply by a weight matrix (their learned operand is the kernel)."""

ONNX_WEIGHTED_OPS = ONNX_KERNEL_OPS | {"LSTM", "GRU", "RNN", "Einsum"}
"""ONNX operators that are weighted layers when one of their operands is an initializer."""

KERNEL_ROLES = frozenset({"kernel", "pointwise_kernel", "depthwise_kernel"})
"""Keras roles that name a weight matrix.  Biases, gamma/beta, moving statistics,
embeddings and recurrent kernels are not kernels for the symmetry rules."""

WEIGHTED_ROLES = KERNEL_ROLES | {"recurrent_kernel", "weight", "W", "embeddings"}
"""Weight roles whose presence makes a layer a *weighted* layer (it multiplies by learned weights)."""

# -- recurrent layers -------------------------------------------------------------------------

KERAS_RNN = frozenset({"SimpleRNN", "LSTM", "GRU"})
"""Keras recurrent layers (the ONNX operators ``LSTM``/``GRU``/``RNN`` share two of the names)."""
KERAS_RNN_LEGACY = frozenset({"LSTMV1", "LSTMV2", "GRUV1", "GRUV2"})
CUDNN_RNN = frozenset({"CuDNNLSTM", "CuDNNGRU"})
RNN_WRAPPERS = frozenset({"RNN", "Bidirectional"})
"""Layers that run a cell (or another recurrent layer) over time."""
KERAS_CONV_RNN = frozenset({"ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"})
KERAS_RNN_CELLS = frozenset({"SimpleRNNCell", "LSTMCell", "GRUCell"})
KERAS_CONV_RNN_CELLS = frozenset({"ConvLSTMCell", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"})
RNN_CELL_CLASSES = KERAS_RNN_CELLS | KERAS_CONV_RNN_CELLS | {"PeepholeLSTMCell"}
"""Keras RNN cell classes (the layer inside ``RNN``/``LSTM``… that owns the weights)."""
ONNX_LOOPS = frozenset({"Scan", "Loop"})

RECURRENT = KERAS_RNN | CUDNN_RNN | RNN_WRAPPERS | KERAS_CONV_RNN | ONNX_LOOPS | {"TimeDistributed"}
"""Layers whose ``activation``/``recurrent_activation`` are internal gates and cell
non-linearities, not trunk activations."""

RECURRENT_KERNEL_LAYERS = (KERAS_RNN | KERAS_CONV_RNN | RNN_WRAPPERS | KERAS_RNN_CELLS | CUDNN_RNN
                           | {"LSTM_ONNX", "Scan"})
"""Layers whose kernels stack per-gate blocks (their columns are not independent units)."""

# -- normalization --------------------------------------------------------------------------

BATCHNORM = frozenset({"BatchNormalization", "SyncBatchNormalization"})
BATCHNORM_LEGACY = frozenset({"BatchNormalizationV1", "BatchNormalizationV2"})
"""TF 1/2 internal class names of BatchNormalization found in old saved models."""

KERAS_NORMALIZATION = frozenset({"LayerNormalization", "GroupNormalization", "UnitNormalization",
                                 "RMSNormalization"})
"""Keras normalizations other than batch normalization."""

NORMALIZERS = BATCHNORM | KERAS_NORMALIZATION | {"InstanceNormalization", "LayerNorm",
                                                 "SimplifiedLayerNormalization", "SkipLayerNormalization"}
"""Layers that re-standardize activations (a stack of saturating layers is broken by them)."""

# -- regularization, noise and augmentation --------------------------------------------------

DROPOUT = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                     "GaussianDropout", "AlphaDropout"})
"""Dropout layers (they have a ``rate``)."""

INFERENCE_IDENTITY = DROPOUT | {"GaussianNoise", "ActivityRegularization"}
"""Keras regularization layers that are the identity at inference."""

NOISE = frozenset({"GaussianNoise", "ActivityRegularization", "StochasticDepth", "DropPath"})
"""Regularizing layers other than dropout: noise, activity penalties, stochastic depth."""

DROPOUT_LIKE = INFERENCE_IDENTITY | {"Identity", "Cast"}
"""Layers that pass values through unchanged at inference."""

KERAS_AUGMENTATION = frozenset({
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop", "RandomContrast",
    "RandomBrightness", "RandomHeight", "RandomWidth", "RandAugment", "MixUp", "CutMix", "AugMix",
    "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness", "RandomShear",
    "RandomColorJitter", "RandomColorDegeneration", "RandomPerspective", "RandomErasing",
    "RandomGaussianBlur", "RandomElasticTransform", "RandomInvert", "RandomPosterization", "Solarization",
})
"""Keras data-augmentation layers (random at training, the identity at inference)."""

AUGMENTATION_PIPELINES = frozenset({"RandomChoice", "RandomAugmentationPipeline"})
"""KerasCV layers that apply other augmentation layers."""

RESIZING_AUGMENTATION = frozenset({"RandomCrop", "RandomHeight", "RandomWidth"})
"""Augmentation layers that change the spatial shape."""

KERAS_IMAGE_ADJUST = frozenset({"AutoContrast", "Equalization"})
"""Deterministic Keras image-adjustment layers (shape-preserving, weight-free)."""

KERAS_LOOKUP = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
"""Keras preprocessing layers that map tokens to indices through a vocabulary."""

KERAS_STATEFUL_PREPROCESSING = KERAS_LOOKUP | {"Normalization", "Discretization", "Hashing", "CategoryEncoding",
                                               "HashedCrossing"}
"""Keras preprocessing layers whose stored state (if any) is never trained."""

# -- activations ----------------------------------------------------------------------------

KERAS_ACTIVATION_LAYERS = frozenset({"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU",
                                     "Softmax"})
"""Keras layer classes whose whole job is a non-linearity."""

ACTIVATION_TYPES = {
    "Relu": "relu", "ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "HardSigmoid": "hard_sigmoid", "Softsign": "softsign", "Softplus": "softplus",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "Elu": "elu", "ELU": "elu", "Selu": "selu",
    "LeakyRelu": "leaky_relu", "LeakyReLU": "leaky_relu", "PRelu": "prelu", "PReLU": "prelu",
    "Gelu": "gelu", "HardSwish": "hard_swish", "HardSilu": "hard_silu", "Silu": "silu",
    "Mish": "mish", "Celu": "celu", "ThresholdedRelu": "thresholded_relu",
    "ThresholdedReLU": "thresholded_relu", "Relu6": "relu6", "Swish": "silu",
}
"""Activation layers (Keras layer classes, Keras 3 op layers, ONNX operators) → canonical activation name."""

ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu", "leakyrelu": "leaky_relu",
                      "logsoftmax": "log_softmax", "hardsigmoid": "hard_sigmoid", "softmax_v2": "softmax"}
"""Serialized activation names → the canonical name."""

SATURATING = frozenset({"sigmoid", "tanh", "hard_sigmoid", "softsign"})
"""Activations whose derivative vanishes for large |x| (saturation: Glorot & Bengio 2010)."""

# -- pooling, merging, layout ---------------------------------------------------------------

KERAS_POOLING = frozenset({"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
                           "AveragePooling2D", "AveragePooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
                           "AvgPool1D", "AvgPool2D", "AvgPool3D"})
"""Keras windowed poolings (class names and their short aliases)."""

KERAS_GLOBAL_POOLING = frozenset({"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                                  "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"})
KERAS_GLOBAL_POOLING_ALIASES = frozenset({"GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
                                          "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D"})
ONNX_GLOBAL_POOLING = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
GLOBAL_POOLING = KERAS_GLOBAL_POOLING | ONNX_GLOBAL_POOLING
"""Poolings over every spatial position (Keras class names and ONNX operators)."""

KERAS_MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"})
"""Keras merge layers (residual sums, products, concatenations)."""

MULTIPLY = frozenset({"Multiply", "Mul", "multiply"})
"""Element-wise products (Keras layer, ONNX operator, Keras 3 op layer)."""

KERAS_PADDING = frozenset({"ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"})
KERAS_CROPPING = frozenset({"Cropping1D", "Cropping2D", "Cropping3D"})
KERAS_UPSAMPLING = frozenset({"UpSampling1D", "UpSampling2D", "UpSampling3D"})

PASSTHROUGH = DROPOUT_LIKE | KERAS_PADDING | KERAS_CROPPING | {
    "Reshape", "Flatten", "Permute", "Masking", "Squeeze", "Unsqueeze", "Transpose", "Pad",
}
"""Layers that only move, pad, drop or reshape values."""

# -- Keras 2 TensorFlow-op layers ------------------------------------------------------------------

TF_UNARY_OPS = frozenset({
    "nn.relu", "nn.relu6", "nn.elu", "nn.selu", "nn.gelu", "nn.silu", "nn.swish", "nn.sigmoid",
    "nn.tanh", "nn.softplus", "nn.softsign", "nn.leaky_relu", "nn.softmax", "nn.log_softmax",
    "math.sigmoid", "math.tanh", "math.exp", "math.log", "math.sqrt", "math.rsqrt", "math.square",
    "math.abs", "math.negative", "math.reciprocal", "math.sin", "math.cos", "math.erf",
    "math.softplus", "math.log_sigmoid", "math.round", "math.floor", "math.ceil", "math.sign",
    "identity", "stop_gradient", "compat.v1.nn.relu", "compat.v1.nn.relu6", "math.l2_normalize",
    "nn.l2_normalize", "linalg.l2_normalize",
})
"""Element-wise TensorFlow functions of one tensor that a Keras 2 ``TFOpLambda`` layer calls
(its config's ``function``): the output has the input's shape and costs no multiply-accumulate."""

TF_BINARY_OPS = frozenset({
    "__operators__.add", "__operators__.sub", "__operators__.mul", "__operators__.truediv",
    "math.add", "math.subtract", "math.multiply", "math.truediv", "math.divide", "math.divide_no_nan",
    "math.maximum", "math.minimum", "math.pow", "math.squared_difference", "math.floordiv",
})
"""Element-wise TensorFlow functions of two operands (broadcast) a ``TFOpLambda`` calls
(MobileNetV3's hard-swish ``x + 3``, ``x * …``): no multiply-accumulate."""

# -- symbolic dims of Keras models ---------------------------------------------------------------

SEQ_DIM = "seq"
"""The symbol of the sequence length of a Keras token model saved whole without wiring (a keras_hub
``Backbone``: token inputs ``[batch, seq]``); ``--dim seq=N`` binds it."""

BOUND_DIMS = "bound_dims"
"""``ModelGraph.metadata`` key: the symbolic dims ``--dim`` bound where no shape holds them (``{"seq": N}``)."""
