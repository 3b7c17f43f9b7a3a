"""HIST: training history — what the learning curves say about a training run.

These rules read a training log (Keras ``CSVLogger`` CSV, ``History.history``
JSON, TensorBoard events; see :mod:`inspector.analysis.history_logs`), not the model
file: ``inspector history LOG`` runs them alone and ``inspector lint MODEL
--history LOG`` next to the model's rules.  Each finding's location is the
epoch where the problem starts (``LOG:epoch 12``), numbered as the log numbers
epochs (Keras: from 0).

The idea behind most of them: a model that keeps getting better on its
training data while getting worse, or erratic, on data it has not seen is
memorizing instead of generalizing.  The remedies are more (or augmented)
data, regularization (dropout, L1/L2 weight penalties) and stopping at the best
validation epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from ..analysis.curves import find_instability, find_nonfinite, find_overfitting, find_plateau, find_validation_better
from ..analysis.history_logs import History
from ..findings import LOG_FORMAT, Finding, Severity
from .engine import Context, Hit
from .registry import FORMATS, rule

if TYPE_CHECKING:  # pragma: no cover
    from ..config import LintConfig

HISTORY_FORMATS = FORMATS + (LOG_FORMAT,)
"""History rules run on every model format and on a log alone (a ``history`` pseudo-model)."""


def _v(x: float) -> str:
    """A metric value for a message: 4 significant digits."""
    return f"{x:.4g}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def epoch_location(epoch: int) -> str:
    """Where a history finding points: ``epoch 12`` (printed as ``LOG:epoch 12``)."""
    return f"epoch {epoch}"


@rule("HIST001", "overfitting", Severity.WARNING, formats=HISTORY_FORMATS, needs=("history",),
      options={"patience": 5, "min-rise": 0.05, "min-train-improvement": 0.01})
def overfitting(ctx: Context) -> Iterator[Hit]:
    """The validation curve gets worse for a sustained window while the training curve keeps improving.

    ## What it does
    Smooths the validation and training curves of each metric pair
    (``val_loss``/``loss`` first, then accuracy-like metrics as error rates)
    with a 3-epoch running median, finds the epoch with the best validation
    value, and reports overfitting when, for at least ``patience`` epochs
    after it (default 5), the validation value stays worse than that best by
    more than ``min-rise`` (5 % of it, and at least three times the curve's
    own epoch-to-epoch noise) while the training value keeps improving (by more
    than ``min-train-improvement``, 1 %) and the gap between the two widens.
    The finding points at the first epoch after the best one; a single bad
    epoch, or a dip the curve recovers from, is not reported.  The values the
    message quotes are the smoothed ones the rule compared, and it says so:
    they can differ from the raw log (a raw minimum one epoch later, say).

    ## Why is this bad?
    From that epoch on the model fits details of its training data that do
    not hold for new data: every further epoch makes it worse at its job.
    Stop at the best epoch (``EarlyStopping(monitor="val_loss", patience=...,
    restore_best_weights=True)``), and to let it learn longer without
    memorizing, give it more varied data (data augmentation: random flips,
    rotations, zooms, crops), dropout, or L1/L2 weight penalties.

    Sources: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 7.8 (early stopping); Srivastava et al.
    (2014), "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting", JMLR 15; Shorten & Khoshgoftaar (2019), "A survey on Image
    Data Augmentation for Deep Learning", Journal of Big Data 6.

    ## Example
    ```text
    epoch,loss,val_loss
    ...
    11,0.21,0.35    <- best validation loss
    12,0.18,0.36    <- HIST001 points here
    ...
    30,0.02,0.71    training still improving, validation far worse
    ```
    """
    h = ctx.training_log
    found = find_overfitting(h, patience=int(ctx.option("patience")), min_rise=float(ctx.option("min-rise")),
                             min_train_improvement=float(ctx.option("min-train-improvement")))
    if found is None:
        return
    what = f"{found.val} (as an error rate)" if found.error_rate else found.val
    yield Hit(f"overfitting: {what}, smoothed over 3 epochs (running median), was best at epoch "
              f"{found.best_epoch} ({_v(found.val_best)}) and got worse for the {found.epochs_after} epochs "
              f"after it (to {_v(found.val_end)}) while {found.train} kept improving ({_v(found.train_at_best)} "
              f"-> {_v(found.train_end)}; values smoothed the same way); the gap grew from "
              f"{_v(found.gap_at_best)} to {_v(found.gap_end)}. Stop at epoch {found.best_epoch} (EarlyStopping "
              "with restore_best_weights=True) and regularize: data augmentation, dropout, L1/L2 penalties",
              layer=epoch_location(found.start_epoch))


@rule("HIST002", "unstable-validation", Severity.WARNING, formats=HISTORY_FORMATS, needs=("history",),
      options={"min-swing": 0.15, "min-accuracy-swing": 0.05, "noise-ratio": 4.0, "min-swings": 3})
def unstable_validation(ctx: Context) -> Iterator[Hit]:
    """The validation curve spikes or oscillates far more than the training curve.

    ## What it does
    Counts the separate spikes and dips of each validation curve: epochs whose
    value stands out from the curve's centered 7-epoch running median by
    more than a threshold — at least ``min-swing`` (15 %) of the local level
    for losses or ``min-accuracy-swing`` (5 points) for accuracy-like
    metrics, and ``noise-ratio`` (4) times the training curve's robust
    epoch-to-epoch noise on the same scale.  A monotone curve has no spike
    however steep it is, and adjacent outlying epochs count once.  Reported
    when there are at least ``min-swings`` (3), at the epoch of the first.

    ## Why is this bad?
    Training accuracy that climbs smoothly while validation accuracy jumps up
    and down means the validation result depends on chance: the model fits
    its few training examples and each epoch's version generalizes
    differently (too little data, a tiny validation set, or a learning rate
    too high for the data).  Get more data or augment it (random flips,
    rotations, zooms, crops), add dropout, use a larger validation set, or
    lower the learning rate.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 8 (optimization for training deep models).

    ## Example
    ```text
    epoch,accuracy,val_accuracy
    4,0.81,0.62
    5,0.84,0.79    <- spike
    6,0.86,0.58    <- dip
    7,0.88,0.80    <- spike: HIST002 from epoch 5
    ```
    """
    h = ctx.training_log
    found = find_instability(h, min_swing=float(ctx.option("min-swing")),
                             min_accuracy_swing=float(ctx.option("min-accuracy-swing")),
                             noise_ratio=float(ctx.option("noise-ratio")),
                             min_swings=int(ctx.option("min-swings")))
    if found is None:
        return
    where = ", ".join(str(e) for e in found.epochs[:6]) + (" …" if len(found.epochs) > 6 else "")
    size = _pct(found.largest) if found.relative else _v(found.largest)
    noise = ""
    if found.train_noise is not None:
        tn = _pct(found.train_noise) if found.relative else _v(found.train_noise)
        noise = f"; the training curve's epoch-to-epoch noise is only {tn}"
    also = f" ({', '.join(found.also)} swing{'s' if len(found.also) == 1 else ''} too)" if found.also else ""
    yield Hit(f"unstable validation curve: {found.metric} swings {found.swings} times (epochs {where}) by up to "
              f"{size}{noise}{also}. The model generalizes by chance: add data or data augmentation, "
              "dropout, a larger validation set, or a lower learning rate",
              layer=epoch_location(found.start_epoch))


@rule("HIST003", "non-finite-loss", Severity.ERROR, formats=HISTORY_FORMATS, needs=("history",))
def non_finite_loss(ctx: Context) -> Iterator[Hit]:
    """The loss (or another metric) became NaN or infinite.

    ## What it does
    Reports the first epoch where a logged metric is ``nan`` or ``inf``
    (missing values such as ``NA`` cells of epochs without validation are
    not non-finite), naming every metric that broke there and its last
    finite value.  The other ``HIST`` rules only look at the epochs before.

    ## Why is this bad?
    Once the loss is NaN the weights are NaN too and training is over: every
    later epoch is wasted.  Floating point is approximate, and very large or
    very small intermediate values break it: a learning rate too high makes
    weights explode, ``log(0)`` or a division by a variance of 0 produce
    ``inf``, float16 overflows at 65504.  Lower the learning rate, clip
    gradients (``clipnorm=1.0``), add an epsilon where you divide or take
    logs, use a numerically stable loss (``from_logits=True``), check the
    inputs for NaN, and use loss scaling with mixed precision.

    Source: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 4 (numerical computation).

    ## Example
    ```text
    epoch,loss,val_loss
    6,0.93,1.02
    7,4.1e+08,inf
    8,nan,nan      <- HIST003 at epoch 7 (val_loss infinite)
    ```
    """
    h = ctx.training_log
    found = find_nonfinite(h)
    if found is None:
        return
    parts = []
    for name in found.metrics:
        last = found.last_finite.get(name)
        parts.append(name + (f" (last finite value {_v(last)})" if last is not None else ""))
    yield Hit(f"{', '.join(parts)} became NaN/Inf at epoch {found.epoch}: training diverged. Lower the learning "
              "rate, clip gradients (clipnorm), add an epsilon to divisions and logs, use from_logits=True "
              "losses, and check the inputs for NaN/Inf", layer=epoch_location(found.epoch))


@rule("HIST004", "plateau", Severity.WARNING, formats=HISTORY_FORMATS, needs=("history",),
      options={"window": 5, "min-improvement": 0.01})
def plateau(ctx: Context) -> Iterator[Hit]:
    """The training loss does not improve from the start.

    ## What it does
    Compares the training loss of the first logged epoch with the best of
    the next ``window`` epochs (default 5) and reports when it improved by
    less than ``min-improvement`` (1 %, relative): the network is not
    learning.  Not reported when a training accuracy already reaches 95 %
    in those epochs (a model that fit its data within the first epoch).
    When the loss improves later in the run the finding is downgraded to
    info: learning started, but late.

    ## Why is this bad?
    A loss stuck at its first value means the gradient does not reach the
    weights or does not move them usefully: a learning rate far too low (or
    so high that every step overshoots), symmetric or badly scaled
    initialization, unnormalized inputs, saturated sigmoid/tanh units or
    dead ReLUs (``inspector lint --probe`` measures both), or a loss that
    does not match the labels.

    Sources: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 8 (optimization for training deep models);
    Glorot & Bengio (2010), "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS.

    ## Example
    ```text
    epoch,loss
    0,2.3026
    1,2.3025
    ...
    5,2.3024     <- HIST004 at epoch 0: ln(10), a 10-class model guessing
    ```
    """
    h = ctx.training_log
    window = max(int(ctx.option("window")), 1)
    found = find_plateau(h, window=window, min_improvement=float(ctx.option("min-improvement")))
    if found is None:
        return
    later = (f"; it improved only from epoch {found.recovered_epoch} on" if found.recovered_epoch is not None
             else "")
    yield Hit(f"plateau from the start: {found.metric} went from {_v(found.first)} to at best {_v(found.best)} "
              f"over the first {found.window} epochs after the first ({_pct(max(found.improvement, 0.0))} "
              f"better){later}. Check the learning rate, the initialization, input normalization, saturated or "
              "dead units (inspector lint --probe) and that the loss matches the labels",
              layer=epoch_location(found.start_epoch),
              severity=Severity.INFO if found.recovered_epoch is not None else None)


@rule("HIST005", "validation-better-than-training", Severity.INFO, formats=HISTORY_FORMATS,
      needs=("history",), options={"min-gap": 0.10, "min-accuracy-gap": 0.05, "min-share": 0.8})
def validation_better(ctx: Context) -> Iterator[Hit]:
    """The validation curve is consistently better than the training curve by a wide margin.

    ## What it does
    From the second logged epoch on, compares each validation value with the
    training value of the same epoch (loss first, else accuracy-like
    metrics) and reports when validation is better by more than ``min-gap``
    (10 % of the training loss) or ``min-accuracy-gap`` (5 points) in at
    least ``min-share`` (80 %) of the epochs.  The first epoch is left out:
    its training value averages over a model that was still learning.

    ## Why is this bad?
    Often it is not: dropout, noise and augmentation act only during
    training, and regularization penalties inflate the training loss, so a
    heavily regularized model scores better on validation.  Otherwise it is
    a warning sign that the validation data is easier than, or overlaps
    with, the training data (duplicates, leakage through preprocessing
    fitted on all data, a split by sample instead of by subject), and the
    validation score overstates how the model will do on new data.

    Sources: Goodfellow, Bengio & Courville (2016), *Deep Learning*, MIT Press
    (deeplearningbook.org), ch. 7 (regularization); Srivastava et al. (2014),
    "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR
    15.

    ## Example
    ```text
    epoch,loss,val_loss
    1,0.80,0.52
    2,0.71,0.45     <- validation 35 % better, epoch after epoch
    ```
    """
    h = ctx.training_log
    found = find_validation_better(h, min_gap=float(ctx.option("min-gap")),
                                   min_accuracy_gap=float(ctx.option("min-accuracy-gap")),
                                   min_share=float(ctx.option("min-share")))
    if found is None:
        return
    gap = f"{_pct(found.mean_gap)} lower" if found.relative else f"{100 * found.mean_gap:.1f} points higher"
    yield Hit(f"{found.val} is better than {found.train} in {found.epochs_better} of {found.epochs_compared} "
              f"epochs (on average {gap}): expected with strong dropout, augmentation or weight penalties; "
              "otherwise check the validation data for leakage or overlap with the training data",
              layer=epoch_location(found.start_epoch))


def check_history(history: History, *, config: LintConfig | None = None, select: Iterable[str] | None = None,
                  ignore: Iterable[str] | None = None, debug: bool = False) -> list[Finding]:
    """Run the enabled ``HIST`` rules on a training log alone.

    The log stands in for a model: a ``history`` pseudo-graph without layers,
    whose path is the log's, so ``per-file-ignores`` and baselines match the log.
    """
    from ..ir import ModelGraph
    from .engine import resolve, run_rules
    from .registry import all_rules

    graph = ModelGraph(name=Path(history.path).name, format=LOG_FORMAT, kind="history", path=history.path)
    selection = resolve(config, select=select, ignore=ignore, path=history.path)
    rules = [r for r in all_rules() if r.code in selection.enabled and "history" in r.needs]
    return run_rules(graph, rules, selection=selection, history=history, path=history.path, debug=debug)
