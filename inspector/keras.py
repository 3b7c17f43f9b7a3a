"""``InspectorCallback``: inspector's lint inside ``model.fit`` (needs the tensorflow extra).

    from inspector.keras import InspectorCallback
    model.fit(x, y, validation_split=0.2, epochs=50, callbacks=[InspectorCallback(stop_on=("HIST001",))])

* When training starts, the model is linted statically, as ``inspector lint`` would
  lint the saved file (through :func:`inspector.api.lint` on the in-memory model),
  and each finding is logged once.
* At the end of every epoch the epoch's ``logs`` are added to an in-memory training
  log (:class:`~inspector.analysis.history_logs.History`) and the ``HIST`` rules run
  on it: a finding is logged once, at the epoch a rule first reports it.  HIST001
  (overfitting) fires at the epoch where the validation loss has kept rising for
  ``patience`` epochs while the training loss kept falling, and suggests what to do
  (data augmentation, dropout, L2 penalties, early stopping at the best epoch).
* ``stop_on`` lists rule codes or prefixes (``("HIST001",)``, ``("HIST",)``): when a
  finding of one of them is reported, ``model.stop_training`` is set.

Findings go to the Python :mod:`logging` logger ``"inspector"`` (errors as
``ERROR``, warnings as ``WARNING``, infos as ``INFO``) and are kept in
:attr:`InspectorCallback.findings`.  Python shows warnings without any logging
set-up; ``logging.basicConfig(level=logging.INFO)`` shows the rest.  Importing this
module imports keras; ``import inspector`` does not import this module.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .errors import InspectorError, MissingDependency

try:
    import keras
except ImportError as exc:  # pragma: no cover - the tensorflow extra is missing
    raise MissingDependency("inspector.keras.InspectorCallback", extra="tensorflow",
                            package="TensorFlow (Keras)") from exc

if TYPE_CHECKING:  # pragma: no cover
    from .analysis.history_logs import History
    from .api import ConfigSource
    from .findings import Finding

__all__ = ["InspectorCallback"]

logger = logging.getLogger("inspector")

LOG_NAME = "fit"
"""The name the in-memory training log goes by (finding locations read ``fit:epoch 12``)."""

_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


def _number(value: Any) -> float | None:
    """A logged metric value as a float (numpy and tensor scalars too), ``None`` when it is not one."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def history_of(epochs: Iterable[int], rows: Iterable[Mapping[str, Any]]) -> History:
    """An in-memory training log: one row of ``logs`` per epoch, metrics aligned on the epochs
    (``None`` where an epoch did not log a metric, e.g. ``validation_freq``)."""
    from .analysis.history_logs import IGNORED, History

    epochs, rows = tuple(epochs), list(rows)
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names and k.lower() not in IGNORED]
    metrics = {name: tuple(_number(row.get(name)) for row in rows) for name in names}
    metrics = {k: v for k, v in metrics.items() if any(x is not None for x in v)}
    return History(path=LOG_NAME, format="keras", epochs=epochs, metrics=metrics)


def _matches(code: str, patterns: Iterable[str]) -> bool:
    return any(code == p or code.startswith(p) for p in patterns)


class InspectorCallback(keras.callbacks.Callback):  # type: ignore[misc]  # keras is untyped
    """Lint the model when training starts and its training curves after every epoch.

    ``select``/``ignore``/``config`` choose the rules (as for :func:`inspector.lint`);
    ``lint_model=False`` skips the static lint, ``history=False`` the HIST rules;
    ``stop_on`` lists codes or prefixes that stop training when reported.
    """

    def __init__(self, *, select: str | Iterable[str] | None = None, ignore: str | Iterable[str] | None = None,
                 config: ConfigSource = None, lint_model: bool = True, history: bool = True,
                 stop_on: Iterable[str] = (), log: logging.Logger | None = None) -> None:
        super().__init__()
        self.select, self.ignore, self.config = select, ignore, config
        self.lint_model, self.check_history = lint_model, history
        self.stop_on = tuple(stop_on)
        self.log = log or logger
        self.findings: list[Finding] = []
        """Every finding logged so far: the static ones, then the HIST ones in the order they appeared."""
        self.stopped_by: Finding | None = None
        """The finding that stopped training (``stop_on``), if one did."""
        self._epochs: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._linted = False

    def _report(self, finding: Finding, where: str) -> None:
        self.findings.append(finding)
        location = f"{where}:{finding.layer}" if finding.layer else where
        self.log.log(_LEVELS.get(finding.severity.value, logging.WARNING), "%s: %s [%s] %s",
                     location, finding.code, finding.severity.value, finding.message)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Lint the model once (a second ``fit`` on the same callback does not repeat it)."""
        self._epochs, self._rows, self._seen = [], [], set()
        if not self.lint_model or self._linted:
            return
        self._linted = True
        from .api import in_memory_name, lint

        try:
            result = lint(self.model, select=self.select, ignore=self.ignore, config=self.config)
        except InspectorError as exc:
            self.log.warning("the model could not be linted: %s", exc)
            return
        for finding in result:
            self._report(finding, in_memory_name(self.model))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Add ``logs`` to the training log, run the HIST rules, log each new finding once."""
        if not self.check_history:
            return
        self._epochs.append(int(epoch))
        self._rows.append(dict(logs or {}))
        history = history_of(self._epochs, self._rows)
        if not history.metrics:
            return
        from .api import resolve_config, split_codes
        from .rules.history import check_history

        try:
            found = check_history(history, config=resolve_config(self.config), select=split_codes(self.select),
                                  ignore=split_codes(self.ignore))
        except InspectorError as exc:
            self.log.warning("the training curves could not be checked: %s", exc)
            self.check_history = False
            return
        for finding in found:
            if finding.code in self._seen:
                continue
            self._seen.add(finding.code)
            self._report(finding, LOG_NAME)
            if _matches(finding.code, self.stop_on) and self.stopped_by is None:
                self.stopped_by = finding
                self.model.stop_training = True
                self.log.warning("stopping training at epoch %d: %s was reported", epoch, finding.code)
