"""HIST001–HIST005 on synthetic training curves with a known story, and their near misses.

Each curve is built from a formula whose turning points are known (a validation
loss that bottoms out at epoch 15, a loss that turns NaN at epoch 7 …) plus
seeded noise, written as a Keras ``CSVLogger`` file and read back the way
``inspector history`` reads it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from inspector.analysis.history_logs import read_history
from inspector.rules.history import check_history

COVERED = {
    "HIST001": ["test_hist001_flags_overfitting_at_the_turning_epoch", "test_hist001_on_accuracy_only_logs",
                "test_hist001_near_misses", "test_healthy_noisy_runs_flag_nothing",
                "test_thresholds_are_configurable"],
    "HIST002": ["test_hist002_flags_a_zigzag_validation_curve", "test_hist002_near_misses",
                "test_healthy_noisy_runs_flag_nothing"],
    "HIST003": ["test_hist003_flags_the_first_nan_epoch", "test_hist003_near_miss_missing_values"],
    "HIST004": ["test_hist004_flags_a_flat_start", "test_hist004_near_misses"],
    "HIST005": ["test_hist005_flags_validation_consistently_better", "test_hist005_near_misses"],
}

N = 40


def write_csv(path: Path, columns: dict[str, list], *, epochs: list[int] | None = None) -> Path:
    """A CSVLogger-style file (``epoch`` first, ``NA`` for None)."""
    n = len(next(iter(columns.values())))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", *columns])
        for i in range(n):
            w.writerow([(epochs or list(range(n)))[i],
                        *("NA" if columns[c][i] is None else repr(float(columns[c][i])) for c in columns)])
    return path


def diagnose(path: Path, *, config=None):
    return check_history(read_history(path), config=config)


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def only(findings, code: str):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, findings
    return found[0]


def healthy(seed: int, n: int = N) -> dict[str, list[float]]:
    """Train and validation curves that fall together with realistic epoch noise
    (1 % on training, 3 % on validation, 1 point of validation accuracy)."""
    rng = np.random.default_rng(seed)
    e = np.arange(n)
    base = 1.8 * np.exp(-e / 8)
    loss = (0.20 + base) * (1 + rng.normal(0, 0.01, n))
    val_loss = (0.26 + base) * (1 + rng.normal(0, 0.03, n))
    acc = np.clip(0.95 - 0.45 * np.exp(-e / 8) + rng.normal(0, 0.003, n), 0, 1)
    val_acc = np.clip(0.92 - 0.45 * np.exp(-e / 8) + rng.normal(0, 0.01, n), 0, 1)
    return {"accuracy": list(acc), "loss": list(loss), "val_accuracy": list(val_acc), "val_loss": list(val_loss)}


@pytest.mark.parametrize("seed", range(20))
def test_healthy_noisy_runs_flag_nothing(tmp_path, seed):
    assert diagnose(write_csv(tmp_path / "log.csv", healthy(seed))) == []


# -- HIST001 ------------------------------------------------------------------------------


def overfit(seed: int, turn: int = 15, n: int = N) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    e = np.arange(n)
    loss = (0.05 + 2.0 * np.exp(-e / 6)) * (1 + rng.normal(0, 0.01, n))
    val_loss = (0.6 + 0.05 * np.abs(e - turn)) * (1 + rng.normal(0, 0.01, n))
    return {"loss": list(loss), "val_loss": list(val_loss)}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("turn", [8, 15, 25])
def test_hist001_flags_overfitting_at_the_turning_epoch(tmp_path, seed, turn):
    findings = diagnose(write_csv(tmp_path / "log.csv", overfit(seed, turn)))
    f = only(findings, "HIST001")
    start = int(f.layer.split()[-1])
    assert turn <= start <= turn + 2, f.layer  # the first epoch after the best one
    assert f.layer == f"epoch {start}" and f"best at epoch {start - 1}" in f.message
    assert "EarlyStopping" in f.message and "augmentation" in f.message and "dropout" in f.message
    assert codes(findings) == ["HIST001"]


def test_hist001_on_accuracy_only_logs(tmp_path):
    e = np.arange(N)
    acc = 0.99 - 0.5 * np.exp(-e / 6)
    val_acc = np.where(e <= 12, 0.55 + 0.025 * e, 0.85 - 0.01 * (e - 12))
    findings = diagnose(write_csv(tmp_path / "log.csv", {"accuracy": list(acc), "val_accuracy": list(val_acc)}))
    f = only(findings, "HIST001")
    assert f.layer in ("epoch 12", "epoch 13", "epoch 14") and "val_accuracy (as an error rate)" in f.message


def test_hist001_near_misses(tmp_path):
    e = np.arange(N)
    loss = list(0.05 + 2.0 * np.exp(-e / 6))
    # 1. validation rises for a while, then recovers to a new best (double descent)
    recover = 0.6 + np.where(e < 15, 0.05 * (15 - e), np.where(e < 22, 0.03 * (e - 15), 0.21 - 0.03 * (e - 22)))
    # 2. a rise shorter than the patience window at the very end
    short = 0.6 + np.where(e < 36, 0.05 * (36 - e) / 4, 0.05 * (e - 36))
    # 3. training gets worse too: divergence, not overfitting
    diverge = 0.6 + 0.05 * np.abs(e - 15)
    worse_train = list(np.where(e < 15, 0.05 + 2.0 * np.exp(-e / 6), 0.05 + 2.0 * np.exp(-15 / 6) + 0.04 * (e - 15)))
    # 4. a rise of less than 5 % of the best value
    small = 0.6 + np.where(e < 15, 0.05 * (15 - e), 0.02 * (e - 15) / (N - 15))
    for name, (train, val) in {"recover": (loss, recover), "short": (loss, short),
                               "diverge": (worse_train, diverge), "small": (loss, small)}.items():
        path = write_csv(tmp_path / f"{name}.csv", {"loss": train, "val_loss": list(val)})
        assert "HIST001" not in codes(diagnose(path)), name


def test_thresholds_are_configurable(tmp_path):
    from inspector.config import from_table

    path = write_csv(tmp_path / "log.csv", overfit(0))
    assert codes(diagnose(path)) == ["HIST001"]
    patient = from_table({"rules": {"HIST001": {"patience": 30}}})
    assert diagnose(path, config=patient) == []
    ignored = from_table({"ignore": ["HIST"]})
    assert diagnose(path, config=ignored) == []


# -- HIST002 -------------------------------------------------------------------------------------


def test_hist002_flags_a_zigzag_validation_curve(tmp_path):
    # The seed's picture: training accuracy climbs smoothly, validation accuracy jumps up and down.
    e = np.arange(N)
    acc = 0.98 - 0.45 * np.exp(-e / 8)
    swing = np.where((e >= 6) & (e % 2 == 0), 0.09, np.where(e >= 6, -0.09, 0.0))
    val_acc = 0.85 - 0.4 * np.exp(-e / 8) + swing
    loss = 0.1 + 1.5 * np.exp(-e / 8)
    val_loss = 0.3 + 1.5 * np.exp(-e / 8)
    findings = diagnose(write_csv(tmp_path / "log.csv", {"accuracy": list(acc), "loss": list(loss),
                                                          "val_accuracy": list(val_acc),
                                                          "val_loss": list(val_loss)}))
    f = only(findings, "HIST002")
    assert f.layer in ("epoch 6", "epoch 7") and "val_accuracy swings" in f.message
    assert "augmentation" in f.message
    # a loss that oscillates by 30 %
    val_loss_osc = (0.3 + 1.5 * np.exp(-e / 8)) * np.where(e % 3 == 0, 1.3, 1.0)
    findings = diagnose(write_csv(tmp_path / "osc.csv", {"loss": list(loss), "val_loss": list(val_loss_osc)}))
    assert only(findings, "HIST002").layer == "epoch 3"


def test_hist002_near_misses(tmp_path):
    e = np.arange(N)
    loss = 0.1 + 1.5 * np.exp(-e / 8)
    smooth = 0.3 + 1.5 * np.exp(-e / 8)
    one_spike = smooth.copy()
    one_spike[20] *= 1.6  # a single bad epoch
    two_spikes = smooth.copy()
    two_spikes[[12, 25]] *= 1.5
    small = smooth * np.where(e % 2 == 0, 1.06, 0.94)  # 6 % wiggle: within the 15 % floor
    steep = 0.3 + 5.0 * np.exp(-e / 2)  # steep but monotone
    for name, val in {"one": one_spike, "two": two_spikes, "small": small, "steep": steep}.items():
        path = write_csv(tmp_path / f"{name}.csv", {"loss": list(loss), "val_loss": list(val)})
        assert "HIST002" not in codes(diagnose(path)), name
    # validation noise that only matches a noisy training curve is not flagged either
    rng = np.random.default_rng(0)
    noisy_train = loss * (1 + rng.normal(0, 0.08, N))
    noisy_val = smooth * (1 + rng.normal(0, 0.08, N))
    path = write_csv(tmp_path / "both.csv", {"loss": list(noisy_train), "val_loss": list(noisy_val)})
    assert "HIST002" not in codes(diagnose(path))


# -- HIST003 ------------------------------------------------------------------------------------


def test_hist003_flags_the_first_nan_epoch(tmp_path):
    e = np.arange(12)
    loss = list(0.5 + np.exp(-e / 4))
    val_loss = list(0.6 + np.exp(-e / 4))
    loss[6], val_loss[6] = 3.0e8, math.inf
    loss[7:] = [math.nan] * 5
    val_loss[7:] = [math.nan] * 5
    f = only(diagnose(write_csv(tmp_path / "log.csv", {"loss": loss, "val_loss": val_loss})), "HIST003")
    assert f.layer == "epoch 6" and f.severity.value == "error"
    assert f.message.startswith("val_loss (last finite value")
    assert "learning rate" in f.message and "clip" in f.message


def test_hist003_near_miss_missing_values(tmp_path):
    # validation every other epoch: CSVLogger writes NA, which is missing, not NaN
    data = healthy(0)
    data["val_loss"] = [v if i % 2 == 0 else None for i, v in enumerate(data["val_loss"])]
    data["val_accuracy"] = [v if i % 2 == 0 else None for i, v in enumerate(data["val_accuracy"])]
    path = write_csv(tmp_path / "log.csv", data)
    history = read_history(path)
    assert history.metrics["val_loss"][1] is None
    assert diagnose(path) == []


# -- HIST004 -------------------------------------------------------------------------------------


def test_hist004_flags_a_flat_start(tmp_path):
    rng = np.random.default_rng(0)
    stuck = list(math.log(10) + rng.normal(0, 1e-4, 12))  # a 10-class model guessing
    f = only(diagnose(write_csv(tmp_path / "stuck.csv", {"loss": stuck})), "HIST004")
    assert f.layer == "epoch 0" and f.severity.value == "warning" and "learning rate" in f.message
    late = stuck[:8] + list(math.log(10) * np.array([0.8, 0.6, 0.5, 0.45]))
    f = only(diagnose(write_csv(tmp_path / "late.csv", {"loss": late})), "HIST004")
    assert f.severity.value == "info" and "from epoch 8 on" in f.message


def test_hist004_near_misses(tmp_path):
    e = np.arange(12)
    slow = list(2.0 * (1 - 0.006 * e))  # 3 % better within five epochs: slow, but learning
    fitted_loss = list(0.01 + 1e-5 * np.random.default_rng(0).normal(size=12))
    fitted_acc = [0.999] * 12  # converged within the first epoch
    short = [2.30, 2.30, 2.30]  # too few epochs to judge
    for name, cols in {"slow": {"loss": slow}, "fitted": {"accuracy": fitted_acc, "loss": fitted_loss},
                       "short": {"loss": short}}.items():
        assert "HIST004" not in codes(diagnose(write_csv(tmp_path / f"{name}.csv", cols))), name


# -- HIST005 ---------------------------------------------------------------------------------------


def test_hist005_flags_validation_consistently_better(tmp_path):
    e = np.arange(20)
    loss = 0.4 + np.exp(-e / 5)
    f = only(diagnose(write_csv(tmp_path / "log.csv", {"loss": list(loss), "val_loss": list(0.7 * loss)})),
             "HIST005")
    assert f.severity.value == "info" and f.layer == "epoch 1"
    assert "19 of 19 epochs" in f.message and "30% lower" in f.message and "leakage" in f.message


def test_hist005_near_misses(tmp_path):
    e = np.arange(20)
    loss = 0.4 + np.exp(-e / 5)
    slightly = 0.95 * loss  # 5 %: dropout-sized, below the 10 % margin
    early_only = np.where(e < 4, 0.7 * loss, 1.1 * loss)  # better only while learning fast
    for name, val in {"slightly": slightly, "early": early_only}.items():
        path = write_csv(tmp_path / f"{name}.csv", {"loss": list(loss), "val_loss": list(val)})
        assert "HIST005" not in codes(diagnose(path)), name


def test_hist001_quotes_the_smoothed_values_it_compared_and_says_so(tmp_path):
    # A one-epoch dip at epoch 9 is the raw minimum; the 3-epoch running median ignores it.
    import re

    from inspector.analysis.curves import median3

    val = [1.0, 0.9, 0.8, 0.75, 0.7, 0.66, 0.63, 0.6, 0.57, 0.52, 0.6, 0.64, 0.68, 0.72, 0.76, 0.8, 0.84, 0.88,
           0.92, 0.96]
    loss = [2.0 * 0.85 ** e for e in range(len(val))]
    f = only(diagnose(write_csv(tmp_path / "log.csv", {"loss": loss, "val_loss": val})), "HIST001")
    m = re.search(r"val_loss, smoothed over 3 epochs \(running median\), was best at epoch (\d+) \(([\d.]+)\)",
                  f.message)
    assert m, f.message
    best, quoted = int(m.group(1)), float(m.group(2))
    smoothed = median3(val)
    assert quoted == pytest.approx(smoothed[best], abs=5e-4)
    assert quoted != pytest.approx(min(val), abs=5e-4)  # not the raw minimum (0.52 at epoch 9) …
    assert "values smoothed the same way" in f.message  # … and the message says which values it quotes
