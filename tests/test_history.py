"""Reading training logs (CSVLogger, History JSON, TensorBoard) and ``inspector history``.

The oracle is Keras itself: one real training run (a few seconds on synthetic
data) is logged by ``CSVLogger`` and ``TensorBoard`` at once, and whatever
inspector reads from either file must equal ``History.history``.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from inspector.analysis.history_logs import History, read_history
from inspector.errors import LimitExceeded, MissingDependency, ModelLoadError, UsageError
from inspector.rules.history import check_history


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """A small Keras model memorizing random labels: training loss falls, validation
    loss rises from the first epochs on (overfitting by construction)."""
    import keras

    folder = tmp_path_factory.mktemp("history")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 20)).astype("float32")
    y = rng.integers(0, 2, 96).astype("float32")
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", metrics=["accuracy"])
    csv_path, tb_path = folder / "training.csv", folder / "tb"
    history = model.fit(x, y, validation_split=0.33, epochs=20, batch_size=32, verbose=0,
                        callbacks=[keras.callbacks.CSVLogger(str(csv_path)),
                                   keras.callbacks.TensorBoard(str(tb_path))])
    json_path = folder / "history.json"
    json_path.write_text(json.dumps(history.history))
    model_path = folder / "model.keras"
    model.save(model_path)
    return {"history": history.history, "csv": csv_path, "tb": tb_path, "json": json_path, "model": model_path}


def _same(h: History, oracle: dict[str, list[float]]) -> None:
    assert set(h.metrics) == set(oracle)
    for k, values in oracle.items():
        assert h.metrics[k] == pytest.approx(values, rel=1e-6), k
    assert h.epochs == tuple(range(len(next(iter(oracle.values())))))


def test_csvlogger_file_reads_as_keras_history(real_run):
    h = read_history(real_run["csv"])
    assert h.format == "csv"
    _same(h, real_run["history"])


def test_history_json_reads_as_keras_history(real_run, tmp_path):
    _same(read_history(real_run["json"]), real_run["history"])
    oracle = real_run["history"]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"history": oracle, "params": {"epochs": 20}}))
    _same(read_history(wrapped), oracle)
    per_epoch = tmp_path / "epochs.json"
    n = len(oracle["loss"])
    per_epoch.write_text(json.dumps([{"epoch": i, **{k: v[i] for k, v in oracle.items()}} for i in range(n)]))
    _same(read_history(per_epoch), oracle)


def test_tensorboard_events_read_as_keras_history(real_run):
    h = read_history(real_run["tb"])
    assert h.format == "tensorboard"
    _same(h, real_run["history"])
    one_file = next((real_run["tb"] / "validation").glob("events.out.tfevents*"))
    hv = read_history(one_file)  # a single validation event file: val_ metrics only
    assert set(hv.metrics) == {k for k in real_run["history"] if k.startswith("val_")}


def test_tensorboard_without_the_tensorboard_package(real_run, monkeypatch):
    # tensorflow's summary iterator reads the same events ...
    for name in ("tensorboard", "tensorboard.backend", "tensorboard.backend.event_processing",
                 "tensorboard.backend.event_processing.event_accumulator", "tensorboard.util"):
        monkeypatch.setitem(sys.modules, name, None)
    _same(read_history(real_run["tb"]), real_run["history"])
    # ... and with neither, one line naming what to install
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependency, match=r"tensorboard.*inspector\[tensorflow\]"):
        read_history(real_run["tb"])


def test_a_real_overfitting_run_is_diagnosed(real_run):
    findings = check_history(read_history(real_run["csv"]))
    assert [f.code for f in findings] == ["HIST001"]
    loss, val = real_run["history"]["loss"], real_run["history"]["val_loss"]
    best = int(np.argmin(val))
    start = int(findings[0].layer.split()[-1])
    assert best < start <= best + 2  # named where validation loss stops improving
    assert loss[-1] < loss[best] and val[-1] > val[best]


def test_csv_details(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text("epoch;loss;val_loss\n0;1.0;NA\n1;0.5;nan\n2;0.25;0.3\n")
    h = read_history(p)
    assert h.metrics["loss"] == (1.0, 0.5, 0.25)
    assert h.metrics["val_loss"][0] is None and math.isnan(h.metrics["val_loss"][1])
    appended = tmp_path / "appended.csv"  # CSVLogger(append=True) over two runs
    appended.write_text("epoch,loss\n0,2.0\n1,1.5\nepoch,loss\n0,1.0\n1,0.9\n2,0.8\n".replace("epoch,loss\n0,1.0",
                                                                                           "0,1.0"))
    h = read_history(appended)
    assert h.metrics["loss"] == (1.0, 0.9, 0.8) and h.epochs == (0, 1, 2)
    assert "2 runs" in h.notes[0]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01\x02binary", "binary"),
    (b"{not json", "invalid JSON"),
    (b"[" * 100_000, "invalid JSON"),
    (b'{"loss": 3}', "dict of lists"),
    (b'{"loss": ["a", "b"]}', "not a number"),
    (b"1,2,3\n4,5,6\n", "no header"),
    (b"epoch,loss\n0,1.0,7\n", "line 2 has 3 fields"),
    (b"epoch,loss\nx,1.0\n", "not a number"),
    (b"epoch,loss\n0.5,1.0\n", "whole numbers"),
])
def test_broken_logs_are_one_line_errors(tmp_path, content, message):
    p = tmp_path / "log.csv"
    p.write_bytes(content)
    with pytest.raises((ModelLoadError, UsageError), match=message):
        read_history(p)


def test_log_size_and_folder_limits(tmp_path, monkeypatch):
    p = tmp_path / "big.csv"
    p.write_text("epoch,loss\n" + "".join(f"{i},1.0\n" for i in range(2000)))
    monkeypatch.setenv("INSPECTOR_MAX_JSON_BYTES", "1KiB")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_JSON_BYTES"):
        read_history(p)
    monkeypatch.delenv("INSPECTOR_MAX_JSON_BYTES")
    with pytest.raises(ModelLoadError, match="no TensorBoard event file"):
        read_history(tmp_path)
    with pytest.raises(UsageError, match="no such file"):
        read_history(tmp_path / "missing.csv")


def test_a_folder_of_several_tensorboard_runs_is_refused(real_run, tmp_path):
    import shutil

    for run in ("run1", "run2"):
        shutil.copytree(real_run["tb"], tmp_path / run)
    with pytest.raises(UsageError, match="2 TensorBoard runs"):
        read_history(tmp_path)


# -- command line -------------------------------------------------------------------------------


def test_history_command_text_and_exit_codes(cli, real_run):
    log = str(real_run["csv"])
    code, out, err = cli("history", log)
    assert code == 0 and err == ""  # HIST001 is a warning; --fail-on defaults to error
    first = out.splitlines()[0]
    assert first.startswith(f"{log}:epoch ") and ": HIST001 [warning] overfitting:" in first
    assert out.rstrip().endswith("Found 1 finding (1 warning) in 1 training log.")  # a log, not a model
    code, _, _ = cli("history", log, "--fail-on", "warning")
    assert code == 1
    code, out, _ = cli("history", log, "--ignore", "HIST001")
    assert code == 0 and out == "All checks passed (1 training log).\n"


def test_history_command_machine_formats(cli, real_run):
    log = str(real_run["csv"])
    code, out, _ = cli("history", log, "--output-format", "json")
    doc = json.loads(out)
    assert doc["schema"] == "inspector.lint/1"
    (result,) = doc["results"]
    assert result["model"] == {"name": "training.csv", "format": "history", "path": log}
    assert [f["code"] for f in result["findings"]] == ["HIST001"]
    assert result["findings"][0]["layer"].startswith("epoch ")
    code, out, _ = cli("history", log, "--output-format", "sarif")
    sarif = json.loads(out)
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == {"HIST001", "HIST002", "HIST003", "HIST004", "HIST005"}
    code, out, _ = cli("history", log, "--output-format", "github")
    assert out.startswith("::warning ")


def test_history_command_bad_log_is_exit_2(cli, tmp_path, real_run):
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    code, out, err = cli("history", str(bad), str(real_run["csv"]))
    assert code == 2
    assert err.startswith(f"inspector: error: {bad}: not a training log") and err.count("\n") == 1
    assert "HIST001" in out  # the good log is still reported
    assert out.rstrip().endswith("in 1 training log; 1 file could not be read.")
    code, out, _ = cli("history", str(bad))
    assert code == 2 and out == "No training log was linted; 1 file could not be read.\n"


def test_lint_with_history_reports_both(cli, real_run):
    code, out, _ = cli("lint", str(real_run["model"]), "--history", str(real_run["csv"]),
                        "--output-format", "json")
    doc = json.loads(out)
    assert [r["model"]["format"] for r in doc["results"]] == ["keras", "history"]
    assert [f["code"] for f in doc["results"][1]["findings"]] == ["HIST001"]
    assert all(not f["code"].startswith("HIST") for f in doc["results"][0]["findings"])
    code, out, _ = cli("lint", str(real_run["model"]), "--history", str(real_run["csv"]))
    assert f"{real_run['csv']}:epoch " in out
    assert out.rstrip().endswith(" in 1 model and 1 training log.")  # each counted as what it is
