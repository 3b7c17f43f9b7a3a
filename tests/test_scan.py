"""``inspector scan``: one inventory row per model as JSON Lines, CSV or Parquet."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from helpers.cli import one_error_line
from helpers.folders import mlp_onnx, model_folder
from helpers.golden import check_golden
from inspector.inventory import COLUMNS, ScanOptions, row_from_record, scan_model

NAMES = [name for name, _, _ in COLUMNS]


@pytest.fixture
def fixed_folder(tmp_path, monkeypatch):
    """``models/`` (relative: the golden files hold relative paths) in a fresh working folder."""
    model_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    return "models"


def test_scan_jsonl_golden(fixed_folder, cli):
    result = cli("scan", fixed_folder, "--isolated")
    assert result.code == 2  # models/broken.onnx is a row with its error, and one stderr line
    one_error_line(result.err, "models/broken.onnx")
    check_golden("scan/models.jsonl", result.out)
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [list(r) for r in rows] == [NAMES] * 6
    assert [r["path"] for r in rows] == ["models/a.onnx", "models/b.onnx", "models/broken.onnx",
                                         "models/team/deep/c.onnx", "models/team/z.onnx", "models/zz/last.onnx"]
    a = rows[0]
    assert (a["format"], a["params"], a["trainable"], a["param_bytes"], a["macs"], a["macs_complete"]) == \
        ("onnx", 16 * 4 + 4, 16 * 4 + 4, (16 * 4 + 4) * 4, 16 * 4, True)
    assert a["inputs"] == [{"name": "x", "shape": ["N", 16], "dtype": "float32"}]
    assert rows[2]["error"] and rows[2]["params"] is None and rows[2]["file_size"] == 0


def test_scan_csv_golden_and_file_output(fixed_folder, cli, tmp_path):
    result = cli("scan", fixed_folder, "--isolated", "-f", "csv")
    check_golden("scan/models.csv", result.out)
    table = list(csv.reader(io.StringIO(result.out)))
    assert table[0] == NAMES and len(table) == 7
    out = tmp_path / "inventory.csv"
    assert cli("scan", fixed_folder, "--isolated", "-o", out).code == 2
    assert out.read_text() == result.out


def test_scan_parquet_holds_the_same_rows(fixed_folder, cli, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "inventory.parquet"
    assert cli("scan", fixed_folder, "--isolated", "-o", out).code == 2
    table = pq.read_table(out)
    assert table.column_names == NAMES
    jsonl = [json.loads(line) for line in cli("scan", fixed_folder, "--isolated").out.splitlines()]
    nested = {name for name, kind, _ in COLUMNS if kind in ("object", "array")}
    got = [{k: json.loads(v) if k in nested else v for k, v in row.items()} for row in table.to_pylist()]
    assert got == jsonl


def test_parquet_without_pyarrow_is_one_clear_error(fixed_folder, cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "inventory.parquet"
    result = cli("scan", fixed_folder, "--isolated", "-o", out)
    assert result.code == 2 and not out.exists()
    assert result.err.strip().splitlines()[-1] == (
        "inspector: error: writing Parquet needs pyarrow: install it with pip install 'dl-inspector[parquet]'")


def test_scan_format_errors(fixed_folder, cli, tmp_path):
    result = cli("scan", fixed_folder, "-o", tmp_path / "inventory.txt")
    assert result.code == 2 and "cannot tell the inventory format from" in result.err
    result = cli("scan", fixed_folder, "-f", "parquet")
    assert result.code == 2 and "pass -o FILE.parquet" in result.err


def test_scan_counts_findings_and_security_codes(tmp_path, cli):
    from helpers.keras_models import keras_file

    def with_lambda():
        import keras
        from keras import layers

        inp = keras.Input((4,))
        return keras.Model(inp, layers.Dense(2)(layers.Lambda(lambda t: t * 2)(inp)))

    path = keras_file("scan_lambda", with_lambda)
    [row] = [json.loads(line) for line in cli("scan", path, "--isolated").out.splitlines()]
    assert row["format"] == "keras" and row["params"] == 10 and row["state"] in ("trained", "untrained", "unknown")
    assert "SEC001" in row["sec_codes"] and row["findings_by_code"]["SEC001"] == 1
    assert row["errors"] + row["warnings"] + row["infos"] == sum(row["findings_by_code"].values())
    [row] = [json.loads(line) for line in cli("scan", path, "--isolated", "--ignore", "SEC").out.splitlines()]
    assert row["sec_codes"] == [] and "SEC001" not in row["findings_by_code"]


def test_scan_jobs_and_cache_give_the_same_rows(fixed_folder, cli, tmp_path, monkeypatch):
    serial = cli("scan", fixed_folder, "--isolated", "--jobs", "1")
    assert cli("scan", fixed_folder, "--isolated", "--jobs", "2").out == serial.out
    monkeypatch.delenv("INSPECTOR_NO_CACHE", raising=False)
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))
    assert cli("scan", fixed_folder, "--isolated").out == serial.out
    assert len(list((tmp_path / "cache").glob("scan/*/*.json"))) == 5
    assert cli("scan", fixed_folder, "--isolated").out == serial.out


def test_scan_model_is_pure_and_rows_round_trip(tmp_path):
    model = str(mlp_onnx(tmp_path / "m.onnx", seed=3))
    row = scan_model(model, ScanOptions())
    assert scan_model(model, ScanOptions()) == row
    assert row_from_record(model, row.as_record()) == row
    with pytest.raises(ValueError):
        row_from_record("other.onnx", row.as_record())
    broken = scan_model(str(tmp_path / "missing.onnx"), ScanOptions())
    assert broken.error and broken.params is None and broken.file_size is None
