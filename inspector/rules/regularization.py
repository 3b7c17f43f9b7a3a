"""REG: regularization — constraining a model so it generalizes instead of memorizing.

Regularization adds a penalty or noise that keeps the model from fitting the
training data too closely: early stopping, noisy inputs, dropout, pruning and
feature selection, ensembles, L1/L2 weight penalties (Lasso/Ridge), and data
augmentation, which shows the model more varied data than it was given.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..analysis.params import count_params
from ..findings import Severity
from ..vocab import AUGMENTATION_PIPELINES, DROPOUT, KERAS_AUGMENTATION, NOISE
from .engine import Context, Hit
from .registry import rule

AUGMENTATION_LAYERS = KERAS_AUGMENTATION | AUGMENTATION_PIPELINES
REGULARIZER_KEYS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                    "depthwise_regularizer", "pointwise_regularizer", "embeddings_regularizer",
                    "recurrent_regularizer", "gamma_regularizer", "beta_regularizer")


def _config_dropout(cfg: dict[str, Any]) -> bool:
    """A layer's own config drops activations: a positive ``dropout``, ``*_dropout`` or
    ``dropout_rate`` key, as composite layers (keras_hub backbones, attention, recurrent
    layers) record the dropout they apply inside."""
    for key, value in cfg.items():
        if key == "dropout" or key.endswith("_dropout") or key == "dropout_rate":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return True
    return False


def _weight_decay(ctx: Context) -> bool:
    compile_cfg = ctx.model.metadata.get("compile_config")
    if not isinstance(compile_cfg, dict):
        return False
    opt = compile_cfg.get("optimizer")
    cfg = opt.get("config") if isinstance(opt, dict) else None
    if not isinstance(cfg, dict):
        return False
    wd = cfg.get("weight_decay")
    return isinstance(wd, (int, float)) and wd > 0


@rule("REG001", "no-regularization", Severity.INFO, formats=("keras",),
      options={"min-params": 1_000_000})
def no_regularization(ctx: Context) -> Iterator[Hit]:
    """A large model has no regularization of any kind.

    ## What it does
    For a Keras model with at least ``min-params`` parameters (default one
    million), reports when no layer drops or perturbs activations
    (Dropout and its variants, GaussianNoise), no layer has a weight or
    activity regularizer (L1/L2), the compiled optimizer has no weight
    decay, and no augmentation layer is present.  A layer whose own
    config has a positive ``dropout``, ``*_dropout`` or ``dropout_rate``
    (a keras_hub backbone, ``MultiHeadAttention``, an LSTM's
    ``recurrent_dropout``) counts as dropout.  Informational: early
    stopping, augmentation in the data pipeline and batch normalization
    also regularize, and none of them shows in the file.

    Not flagged: models below ``min-params``, ONNX and other formats (an
    inference export drops its dropout), and composite layers that
    declare their dropout in their config, even when the file does not
    show the Dropout layers inside them.

    ## Why is this bad?
    A model with millions of parameters can memorize its training set:
    training accuracy keeps rising while validation accuracy stalls or
    swings.  Regularization constrains the model so it fits what
    generalizes: dropout, L1/L2 penalties (Lasso/Ridge), noisy inputs,
    data augmentation, early stopping, ensembles.

    Sources: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 7 (regularization); Srivastava et al. (2014),
    "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR
    15; Shorten & Khoshgoftaar (2019), "A survey on Image Data Augmentation
    for Deep Learning", Journal of Big Data 6.

    ## Example
    ```python
    x = layers.Dense(4096, activation="relu")(x)
    x = layers.Dropout(0.5)(x)                                  # one way
    layers.Dense(4096, kernel_regularizer=keras.regularizers.L2(1e-4))  # another
    ```
    """
    graph = ctx.model
    params = count_params(graph).totals.params
    if params < int(ctx.option("min-params")):
        return
    for _, lay in graph.walk():
        if lay.type in DROPOUT or lay.type in NOISE or lay.type in AUGMENTATION_LAYERS:
            return
        cfg = lay.config or {}
        if any(cfg.get(k) for k in REGULARIZER_KEYS) or _config_dropout(cfg):
            return
    if _weight_decay(ctx):
        return
    yield Hit(f"{params:,} parameters and no dropout, L1/L2 regularizer, weight decay or augmentation "
              "layer; if validation accuracy lags training accuracy, add some (dropout, "
              "kernel_regularizer, augmentation)")


RATE_KEYS = ("rate", "ratio")


@rule("REG002", "dropout-rate", Severity.WARNING, types=DROPOUT, options={"max-rate": 0.8})
def dropout_rate(ctx: Context) -> Iterator[Hit]:
    """A dropout rate of 0 (does nothing) or so high that little signal gets through.

    ## What it does
    Flags Dropout layers (and SpatialDropout, GaussianDropout,
    AlphaDropout, ONNX ``Dropout``) with a rate of 0, or at least
    ``max-rate`` (default 0.8).

    ## Why is this bad?
    Dropout zeroes a random fraction ``rate`` of the activations in each
    training step, so units cannot rely on each other.  A rate of 0 is a
    no-op that looks like regularization in a review; a rate of 0.8 or more
    keeps a fifth of the signal or less, so the layers after it see mostly
    noise and the model underfits.  Typical rates are 0.1–0.5.

    Source: Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting", JMLR 15.

    ## Example
    ```python
    layers.Dropout(0.9)   # REG002
    layers.Dropout(0.5)   # fine
    ```
    """
    cfg = ctx.current.config or {}
    rate = None
    for key in RATE_KEYS:
        if key in cfg:
            rate = cfg[key]
            break
    if rate is None and ctx.weights is not None:
        # ONNX opset 12+: the ratio is a (constant) input rather than an attribute.
        for w in ctx.current.weights:
            stats = ctx.weights.of(w)
            if stats is not None and stats.size == 1 and stats.numeric and stats.finite \
                    and stats.dtype.startswith("float"):
                rate = stats.minimum
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        return
    max_rate = float(ctx.option("max-rate"))
    if rate == 0:
        yield Hit("rate is 0: this dropout layer does nothing; remove it or set a rate such as 0.2")
    elif rate >= max_rate:
        yield Hit(f"rate {rate:g} drops {rate:.0%} of the activations in every step; the layers after it "
                  "see mostly noise; typical rates are 0.1-0.5")


@rule("REG003", "augmentation-in-model", Severity.INFO, types=AUGMENTATION_LAYERS, formats=("keras",))
def augmentation_in_model(ctx: Context) -> Iterator[Hit]:
    """Data augmentation layers are part of the saved model.

    ## What it does
    Reports random augmentation layers (``RandomFlip``,
    ``RandomRotation``, ``RandomZoom``, ``RandomCrop`` …) found inside the
    model.  Informational.

    ## Why is this bad?
    Augmentation (random flips, rotations, crops of the training images)
    is the standard remedy for too little data: the model sees a new
    variant of each example every epoch and cannot memorize them.  Keras
    turns these layers off at inference, so the model predicts
    correctly.  But the layers ship with the inference model: converters
    (TFLite, ONNX, TF Serving signatures) may reject them or bake them in,
    and they cost time in every call.  Consider augmenting in the input
    pipeline (``dataset.map``), or strip them before export.

    Source: Shorten & Khoshgoftaar (2019), "A survey on Image Data
    Augmentation for Deep Learning", Journal of Big Data 6.

    ## Example
    ```python
    model = keras.Sequential([layers.RandomFlip(), layers.Conv2D(32, 3), ...])   # REG003
    ```
    """
    yield Hit(f"{ctx.current.type} is inactive at inference but ships with the model; converters may "
              "reject or bake it in; consider augmenting in the input pipeline")
