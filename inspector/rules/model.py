"""MODEL: facts about the whole model that the other rules depend on."""

from __future__ import annotations

from typing import Iterator

from ..findings import Severity
from .engine import Context, Hit
from .registry import rule


@rule("MODEL001", "model-state", Severity.INFO, needs=("weights",))
def model_state(ctx: Context) -> Iterator[Hit]:
    """Whether the saved weights look trained, untrained, or cannot tell.

    ## What it does
    Reports once per model what the weights say about its history (see
    :mod:`inspector.analysis.state`): *untrained* when BatchNormalization
    statistics are still exactly mean 0 / variance 1 and biases exactly
    their initial value (a model saved right after it was built),
    *trained* when some of them moved or the stored optimizer has taken
    steps, *unknown* otherwise.  Rules that only make sense for trained
    models (BN005) or for fresh weights (INIT004's measurement) use it.

    ## Why is this bad?
    It is not; it is context.  A "trained" model that reads as untrained
    was probably saved before ``fit()`` or from the wrong object, and an
    untrained model in a release artifact is worth a second look.

    ## Example
    ```text
    m.keras: MODEL001 [info] model looks untrained: 53 BatchNormalization layer(s) still hold
    their initial moving statistics (mean 0, variance 1)
    ```
    """
    st = ctx.state
    if st is None:
        return
    verdict = {"trained": "model looks trained", "untrained": "model looks untrained",
               "unknown": "cannot tell whether the model is trained"}[st.state]
    yield Hit(f"{verdict}: " + "; ".join(st.reasons))
