"""``inspector.keras.InspectorCallback``: static lint when training starts, HIST rules on the
live logs after every epoch, ``stop_on``.  The HIST part is fed synthetic logs (curves of known
shape); two real ``fit`` runs on random data check the wiring into Keras."""

from __future__ import annotations

import logging
import math
import re
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from inspector.keras import InspectorCallback, history_of  # noqa: E402


def _overfitting_logs(epochs: int = 30, best: int = 12):
    """Training loss falls all along; validation loss is lowest at ``best`` and rises after it."""
    for e in range(epochs):
        loss = 1.5 * math.exp(-e / 8) + 0.05
        val = 1.2 * math.exp(-e / 8) + 0.3 + (0.03 * (e - best) if e > best else 0.0)
        yield e, {"loss": np.float32(loss), "val_loss": val, "learning_rate": 0.001}


def _healthy_logs(epochs: int = 30):
    for e in range(epochs):
        loss = 1.5 * math.exp(-e / 8) + 0.05
        yield e, {"loss": loss, "val_loss": loss * 1.1 + 0.02}


@pytest.fixture(scope="module")
def tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)],
                             name="tiny")
    model.compile(optimizer="adam", loss="mse")
    return model


def _feed(callback, model, logs):
    """Run the epoch-end hook on ``logs``; the epochs at which ``model.stop_training`` was set."""
    callback.set_model(model)
    model.stop_training = False
    stopped = []
    for epoch, row in logs:
        callback.on_epoch_end(epoch, row)
        if model.stop_training:
            stopped.append(epoch)
            break
    return stopped


def _hist_records(caplog):
    """The findings logged (not the line saying that training stops)."""
    return [r for r in caplog.records if r.name == "inspector" and re.search(r"HIST\d{3} \[", r.getMessage())]


def test_overfitting_is_warned_once_at_the_epoch_it_shows(tiny_model, caplog):
    callback = InspectorCallback(lint_model=False)
    with caplog.at_level(logging.INFO, logger="inspector"):
        assert _feed(callback, tiny_model, _overfitting_logs()) == []
    records = _hist_records(caplog)
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    text = records[0].getMessage()
    assert text.startswith("fit:epoch 13: HIST001 [warning] overfitting: val_loss, smoothed over 3 epochs "
                           "(running median), was best at epoch 12")
    for advice in ("data augmentation", "dropout", "L1/L2", "EarlyStopping"):
        assert advice in text
    assert [f.code for f in callback.findings] == ["HIST001"]
    assert tiny_model.stop_training is False


def test_the_warning_comes_at_the_first_epoch_the_rule_can_see_it(tiny_model):
    """Fed one epoch at a time, HIST001 appears exactly when the log so far first shows it."""
    from inspector.rules.history import check_history

    rows = list(_overfitting_logs())
    first = next(n for n in range(1, len(rows) + 1)
                 if any(f.code == "HIST001" for f in check_history(history_of(*zip(*rows[:n], strict=True)))))
    callback = InspectorCallback(lint_model=False, stop_on=("HIST001",))
    assert _feed(callback, tiny_model, rows) == [first - 1]  # the epoch whose logs completed it
    assert callback.stopped_by is not None and callback.stopped_by.code == "HIST001"


def test_stop_on_takes_a_prefix_and_ignores_other_codes(tiny_model):
    assert _feed(InspectorCallback(lint_model=False, stop_on=("HIST",)), tiny_model, _overfitting_logs()) != []
    assert _feed(InspectorCallback(lint_model=False, stop_on=("HIST003",)), tiny_model, _overfitting_logs()) == []


def test_healthy_curves_log_nothing(tiny_model, caplog):
    callback = InspectorCallback(lint_model=False, stop_on=("HIST",))
    with caplog.at_level(logging.DEBUG, logger="inspector"):
        assert _feed(callback, tiny_model, _healthy_logs()) == []
    assert [r for r in caplog.records if r.name == "inspector"] == [] and callback.findings == []


def test_ignore_and_non_finite_losses(tiny_model, caplog):
    assert InspectorCallback(lint_model=False, ignore="HIST001").findings == []
    ignored = InspectorCallback(lint_model=False, ignore="HIST001")
    _feed(ignored, tiny_model, _overfitting_logs())
    assert ignored.findings == []
    broken = InspectorCallback(lint_model=False, stop_on=("HIST003",))
    rows = [(0, {"loss": 1.0}), (1, {"loss": 0.9}), (2, {"loss": float("nan")})]
    with caplog.at_level(logging.INFO, logger="inspector"):
        assert _feed(broken, tiny_model, rows) == [2]
    assert [r.levelno for r in _hist_records(caplog)] == [logging.ERROR]
    assert caplog.records[-1].getMessage() == "stopping training at epoch 2: HIST003 was reported"


def test_history_of_aligns_metrics_and_skips_what_is_not_one():
    h = history_of([0, 1], [{"loss": np.float32(0.5), "lr": 0.1, "note": "x"}, {"loss": 0.4, "val_loss": 0.6}])
    assert h.epochs == (0, 1) and dict(h.metrics) == {"loss": (0.5, 0.4), "val_loss": (None, 0.6)}


def _sigmoid_chain():
    inputs = keras.Input((6,))
    h = inputs
    for i in range(5):
        h = keras.layers.Dense(6, activation="sigmoid", name=f"sigmoid_{i + 1}")(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h), name="chain")
    model.compile(optimizer="adam", loss="mse")
    return model


def test_fit_lints_the_model_once_when_training_starts(caplog):
    keras.utils.set_random_seed(0)
    model = _sigmoid_chain()
    x, y = np.random.rand(32, 6).astype("float32"), np.random.rand(32, 1).astype("float32")
    callback = InspectorCallback()
    with caplog.at_level(logging.INFO, logger="inspector"):
        model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[callback])
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])  # a second fit does not lint again
    act = [r.getMessage() for r in caplog.records if "ACT002" in r.getMessage()]
    assert len(act) == 1 and act[0].startswith("<keras.Model chain>:sigmoid_5: ACT002 [warning]")
    assert "ACT002" in [f.code for f in callback.findings]


def test_fit_of_a_healthy_model_warns_about_nothing(caplog):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
    with caplog.at_level(logging.WARNING, logger="inspector"):
        model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[InspectorCallback(stop_on=("HIST",))])
    assert [r.getMessage() for r in caplog.records if r.name == "inspector"] == []
    assert model.stop_training is False


def test_import_inspector_does_not_import_the_callback():
    import inspector  # noqa: F401

    assert "inspector.keras" in sys.modules  # imported by this test module …
    import subprocess

    code = "import sys, inspector; print('inspector.keras' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(__import__('pathlib').Path(__file__).resolve().parents[1])})
    assert out.stdout.split() == ["False", "False"]  # … but not by `import inspector`
