"""Output safety: hostile names in every output format, clean errors instead of tracebacks,
and no result written over (or into) what a command reads (issue 13 items 6, 7 and 10)."""

from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import one_error_line
from helpers.golden import check_golden
from helpers.hostile import functional_config, keras_archive, layer_entry, onnx_with_external
from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info
from inspector.textsafe import UNSAFE, csv_cell, json_text, scrub, visible

# -- the text-safety functions ----------------------------------------------------------------------

PAYLOADS = ("\n::error::x", "\x1b]8;;http://e\x07", "=cmd|' /C calc'!A0", "\u202e")
HOSTILE = "evil" + "".join(PAYLOADS)


def test_visible_escapes_controls_and_bidi():
    assert visible(HOSTILE) == "evil\\n::error::x\\x1b]8;;http://e\\x07=cmd|' /C calc'!A0\\u202e"
    assert visible("a\r\tb\x9b\x7f\u2066\ud800") == "a\\r\\tb\\x9b\\x7f\\u2066\\ud800"
    assert visible("a\nb", keep="\n") == "a\nb"


def test_visible_keeps_clean_text_as_is():
    for clean in ("dense_1", "conv/BiasAdd:0", "Ñandú · 层 · ×", ""):
        assert visible(clean) is clean


def test_scrub_copies_only_what_changes():
    from inspector.findings import Finding, ModelReport, Severity

    clean = ModelReport(path="m.onnx", findings=(Finding("X001", "x", Severity.INFO, "fine", layer="a"),))
    assert scrub([clean])[0] is clean
    dirty = ModelReport(path="m.onnx", findings=(Finding("X001", "x", Severity.INFO, "m\x1b[2J", layer="a\nb"),))
    [out] = scrub((dirty,))
    assert out.findings[0].message == "m\\x1b[2J" and out.findings[0].layer == "a\\nb"
    assert dirty.findings[0].layer == "a\nb"  # the original is untouched


def test_scrub_survives_deep_nesting():
    doc: dict = {}
    inner = doc
    for _ in range(900):
        inner["k"] = {}
        inner = inner["k"]
    inner["k"] = "a\x1b"
    out = scrub({"doc": doc, "name": "b\n"})
    assert out["name"] == "b\\n"
    while isinstance(out, dict):
        out = out.get("doc") or out["k"]
    assert out == "(nested too deeply to show)"
    assert scrub({"doc": {"k": {"k": "clean"}}}) == {"doc": {"k": {"k": "clean"}}}


def test_csv_cell_defuses_formulas_only():
    for cell in ("=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(cell) == "'" + cell
    for cell in ("-1.5", "+3", "dense", "1e-3", ""):
        assert csv_cell(cell) == cell


def test_json_text_escapes_inside_strings_only():
    doc = json.dumps({"a\u202eb": ["x\x9by"]}, indent=2, ensure_ascii=False)
    safe = json_text(doc)
    assert not UNSAFE.search(safe.replace("\n", ""))
    assert json.loads(safe) == {"a\u202eb": ["x\x9by"]}


# -- one hostile-named model through every format ---------------------------------------------------


@pytest.fixture
def hostile_onnx(tmp_path: Path) -> Path:
    """A MatMul, a Relu named like a spreadsheet formula and a dead node; an unused initializer
    (GRAPH001 names it); graph, node and tensor names carry every payload."""
    from onnx import helper

    nodes = [helper.make_node("MatMul", ["x", "w" + HOSTILE], ["h" + HOSTILE], name=HOSTILE),
             helper.make_node("Relu", ["h" + HOSTILE], ["y"], name=PAYLOADS[2]),
             helper.make_node("Relu", ["x"], ["dead" + HOSTILE], name="dead" + HOSTILE)]
    model = onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])],
                       [tensor("w" + HOSTILE, np.ones((4, 4), np.float32)),
                        tensor("unused" + HOSTILE, np.ones((4,), np.float32))])
    model.graph.name = HOSTILE
    helper.set_model_props(model, {"author" + HOSTILE: "v" + HOSTILE})
    return save_onnx(model, tmp_path / "hostile.onnx")


def _no_raw_control(text: str, *, what: str) -> None:
    """Only line breaks may be raw; no line may start the name's workflow command."""
    bad = {repr(ch) for ch in UNSAFE.findall(text) if ch != "\n"}
    assert not bad, f"{what}: raw {sorted(bad)}"
    for line in text.splitlines():
        assert not line.lstrip(" |\"'").startswith("::error::x"), f"{what}: {line!r}"


SUMMARY_FORMATS = ("classic", "keras3", "csv", "json", "github", "grid", "plain", "html")


@pytest.mark.parametrize("fmt", SUMMARY_FORMATS)
def test_summary_formats_neutralise_names(cli, hostile_onnx, fmt):
    code, out, err = cli("summary", hostile_onnx, "-f", fmt)
    assert code == 0, err
    _no_raw_control(out, what=fmt)
    if fmt == "json":
        doc = json.loads(out)
        assert HOSTILE in {layer["name"] for layer in doc["layers"]}  # JSON keeps the real name, escaped
    if fmt == "classic":
        assert "evil\\n::error::x\\x1b]8;;" in out


def test_summary_csv_cells_cannot_run(cli, hostile_onnx):
    rows = list(csv.reader(io.StringIO(cli("summary", hostile_onnx, "-f", "csv").out)))
    cells = [c for row in rows for c in row]
    assert "'" + PAYLOADS[2] in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:].isdigit())]


@pytest.mark.parametrize("fmt", ("jsonl", "csv"))
def test_scan_inventory_neutralises_names(cli, hostile_onnx, fmt):
    code, out, err = cli("scan", hostile_onnx, "-f", fmt, "--isolated", "--no-cache", "--jobs", "1")
    assert code == 0, err
    _no_raw_control(out, what=fmt)
    if fmt == "csv":
        cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:].isdigit())]
    else:
        assert "::error::x" in json.loads(out)["name"] + json.dumps(json.loads(out)["inputs"])


@pytest.mark.parametrize("fmt", ("text", "json", "sarif", "junit", "github"))
def test_lint_formats_neutralise_names(cli, hostile_onnx, fmt):
    code, out, err = cli("lint", hostile_onnx, "--output-format", fmt)
    assert code in (0, 1), err
    _no_raw_control(out, what=fmt)
    if fmt == "junit":
        root = ET.fromstring(out)
        assert root.tag == "testsuites" and int(root.get("tests") or 0) >= 2
    if fmt == "github":
        lines = out.splitlines()
        assert lines and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    if fmt == "json":
        assert any(HOSTILE in (f.get("layer") or "") for r in json.loads(out)["results"] for f in r["findings"])


def test_github_properties_escape_colon_and_comma(cli, tmp_path, hostile_onnx):
    odd = tmp_path / "a,b:c.onnx"
    odd.write_bytes(hostile_onnx.read_bytes())
    out = cli("lint", odd, "--output-format", "github").out
    assert "a%2Cb%3Ac.onnx" in out and "a,b:c.onnx" not in out


@pytest.mark.parametrize("fmt", ("text", "json"))
def test_info_neutralises_names(cli, hostile_onnx, fmt):
    code, out, err = cli("info", hostile_onnx, "-f", fmt)
    assert code == 0, err
    _no_raw_control(out, what=fmt)


def test_info_shows_external_locations_escaped(cli, tmp_path):
    model = onnx_with_external(tmp_path / "ext.onnx", "w\x1b[31m\u202e.bin")
    code, out, err = cli("info", model)
    _no_raw_control(out + err, what="info")
    assert "w\\x1b[31m\\u202e.bin" in out


@pytest.mark.parametrize("fmt", ("graphml", "json", "dot", "mermaid"))
def test_graph_formats_neutralise_names(cli, hostile_onnx, fmt):
    code, out, err = cli("graph", hostile_onnx, "-f", fmt)
    assert code == 0, err
    _no_raw_control(out, what=fmt)
    if fmt == "graphml":
        ET.fromstring(out)


@pytest.mark.parametrize("fmt", ("text", "json", "markdown"))
def test_diff_formats_neutralise_names(cli, tmp_path, hostile_onnx, fmt):
    from onnx import helper

    clean = save_onnx(onnx_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [value_info("x", [1, 4])],
                                 [value_info("y", [1, 4])]), tmp_path / "clean.onnx")
    code, out, err = cli("diff", clean, hostile_onnx, "-f", fmt)
    assert code in (0, 1), err
    _no_raw_control(out, what=fmt)


@pytest.mark.parametrize("fmt", ("classic", "csv", "json", "github"))
def test_probe_formats_neutralise_names(cli, hostile_onnx, fmt):
    pytest.importorskip("onnxruntime")
    code, out, err = cli("probe", hostile_onnx, "-f", fmt, "--batch-size", "2")
    assert code in (0, 1), err
    _no_raw_control(out, what=fmt)
    if fmt == "csv":
        assert "'" + PAYLOADS[2] in [c for row in csv.reader(io.StringIO(out)) for c in row]


@pytest.mark.parametrize("suffix", ("html", "md"))
def test_report_neutralises_names(cli, tmp_path, hostile_onnx, suffix):
    out_file = tmp_path / f"r.{suffix}"
    code, _out, err = cli("report", hostile_onnx, "-o", out_file, "--no-charts")
    assert code == 0, err
    _no_raw_control(out_file.read_text(), what=suffix)


def test_history_neutralises_metric_names(cli, tmp_path):
    log = tmp_path / "history.json"
    name = "loss\n::error::x\x1b]8;;http://e\x07\u202e"
    curves = {name: [1 / (i + 1) for i in range(30)], "val_" + name: [0.5 + i / 10 for i in range(30)]}
    log.write_text(json.dumps(curves))
    for fmt in ("text", "github", "junit", "sarif"):
        code, out, err = cli("history", log, "--output-format", fmt)
        assert code in (0, 1), err
        _no_raw_control(out, what=fmt)
        assert "HIST001" in out


def test_error_lines_stay_one_line(cli, tmp_path):
    """A model's name can reach an error message: the error stays one line."""
    bad = tmp_path / "bad\n::error::x\x1b[2J.onnx"
    bad.write_bytes(b"\x08\x07 not protobuf \xff\xff")
    code, _out, err = cli("summary", bad)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err, err


def test_golden_hostile_classic_summary(cli, hostile_onnx):
    check_golden("output_safety/hostile_classic.txt", cli("summary", hostile_onnx).out)


def test_golden_hostile_lint_github(cli, hostile_onnx):
    out = cli("lint", hostile_onnx, "--output-format", "github").out.replace(str(hostile_onnx), "hostile.onnx")
    check_golden("output_safety/hostile_lint_github.txt", out)


# -- tracebacks become one error line -------------------------------------------------------------


def _huge_dims_model(path: Path) -> Path:
    from onnx import helper

    big = 2**40
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="r"), helper.make_node("Conv", ["h", "w"], ["y"], name="c")]
    return save_onnx(onnx_model(nodes, [value_info("x", [1, 1, big, big])], [value_info("y", [1, 1, big, big])],
                                [tensor("w", np.ones((1, 1, 1, 1), np.float32))]), path)


def _constant_of_shape_model(path: Path) -> Path:
    from onnx import TensorProto, helper

    shape = helper.make_tensor("s", TensorProto.INT64, [1], [2**62])
    value = helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], name="fill", value=value),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    return save_onnx(onnx_model(nodes, [value_info("x", [1])], [value_info("y", [None])], [shape]), path)


@pytest.mark.parametrize("build", (_huge_dims_model, _constant_of_shape_model), ids=("dims-2^40", "fill-2^62"))
@pytest.mark.parametrize("suffix", ("html", "md"))
def test_report_with_huge_counts(cli, tmp_path, build, suffix):
    pytest.importorskip("matplotlib")
    model = build(tmp_path / "m.onnx")
    code, _out, err = cli("report", model, "-o", tmp_path / f"r.{suffix}")
    assert code == 0, err
    assert (tmp_path / f"r.{suffix}").stat().st_size > 0


def test_chart_floats_cap_huge_counts():
    from inspector.reporters.charts import floats

    assert floats([2**80, 3, -(10**400)]) == [float(2**80), 3.0, -1e300]


def _h5_kernel(path: Path, dtype: str) -> Path:
    from helpers.hostile import _replace_seed_kernel

    def put(f, kernel, shape, _dtype):
        if dtype == "compound":
            f.create_dataset(kernel, shape=shape, dtype=np.dtype([("a", "<f4"), ("b", "<i4")]))
        else:
            f.create_dataset(kernel, data=np.zeros(shape, dtype="V4"))

    return _replace_seed_kernel(path, put)


@pytest.mark.parametrize("dtype", ("compound", "opaque"))
def test_report_on_hdf5_kernels_that_are_no_numbers(cli, tmp_path, dtype):
    model = _h5_kernel(tmp_path / "m.h5", dtype)
    code, _out, err = cli("report", model, "-o", tmp_path / "r.md", "--no-charts")
    assert code == 0, err
    # the loader refuses a kernel that is not numbers before reading it; the report says so
    assert "not as numbers: its values are not read" in (tmp_path / "r.md").read_text()


def _deep_toml(path: Path, depth: int = 50_000) -> Path:
    path.write_text("[tool.inspector]\nselect = " + "[" * depth + "]" * depth + "\n")
    return path


def test_config_nested_too_deeply(cli, tmp_path):
    from helpers.onnx_models import tied_model

    model = save_onnx(tied_model(copies=False), tmp_path / "m.onnx")
    config = _deep_toml(tmp_path / "deep.toml")
    code, _out, err = cli("lint", model, "--config", config)
    assert code == 2
    assert "nested too deeply" in one_error_line(err, config)


def test_found_pyproject_nested_too_deeply(cli, tmp_path, monkeypatch):
    from helpers.onnx_models import tied_model

    save_onnx(tied_model(copies=False), tmp_path / "m.onnx")
    _deep_toml(tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    code, _out, err = cli("lint", "m.onnx")
    assert code == 2 and "nested too deeply" in err and len(err.strip().splitlines()) == 1, err


def test_config_nested_moderately_still_reads(tmp_path):
    from inspector.config import read_toml

    assert read_toml(_deep_toml(tmp_path / "ok.toml", depth=20))["tool"]["inspector"]["select"]


def test_limit_with_thousands_of_digits(cli, tmp_path, monkeypatch):
    from helpers.onnx_models import tied_model

    model = save_onnx(tied_model(copies=False), tmp_path / "m.onnx")
    monkeypatch.setenv("INSPECTOR_MAX_JSON_BYTES", "9" * 5000)
    code, _out, err = cli("summary", model)
    assert code == 2 and "too large" in err and len(err.strip().splitlines()) == 1 and len(err) < 300, err


def test_limit_with_many_digits_but_in_range():
    from inspector.limits import parse_size

    assert parse_size("000000000000000000000064M") == 64 << 20
    with pytest.raises(Exception, match="too large"):
        parse_size("1" * 19)


def test_summary_of_keras_wired_to_missing_layer(cli, tmp_path):
    model = keras_archive(tmp_path / "ghost.keras", functional_config(layer_entry("ReLU", "r", "ghost")))
    for fmt in ("classic", "keras3", "json", "csv", "github"):
        code, out, err = cli("summary", model, "-f", fmt)
        assert code == 0, err
        assert "r" in out
    assert "ghost" in cli("summary", model).out  # the loader's note names it, as lint's run sees it
    assert cli("lint", model).code in (0, 1)


# -- never write over an input ----------------------------------------------------------------------


@pytest.fixture
def model(tmp_path: Path) -> Path:
    from helpers.onnx_models import tied_model

    return save_onnx(tied_model(copies=False), tmp_path / "m.onnx")


def _refused(cli, target: Path, *argv: object, what: str = "over an input file") -> None:
    before = target.read_bytes() if target.is_file() else None
    code, _out, err = cli(*argv)
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("inspector: error: ") and "refusing to write" in line and what in line, err
    if before is not None:
        assert target.read_bytes() == before


@pytest.mark.parametrize("argv", (
    ("graph", "{m}", "-o", "{m}"),
    ("lint", "{m}", "--output", "{m}"),
    ("lint", "{m}", "--write-baseline", "{m}"),
    ("summary", "{m}", "-o", "{m}"),
    ("info", "{m}", "-o", "{m}"),
    ("diff", "{m}", "{m}", "-o", "{m}"),
    ("report", "{m}", "-o", "{m}"),
    ("probe", "{m}", "-o", "{m}"),
), ids=lambda a: "-".join(a[:1] + a[2:3]))
def test_every_command_refuses_to_write_over_its_model(cli, model, argv):
    _refused(cli, model, *(str(model) if a == "{m}" else a for a in argv))


def test_history_refuses_to_write_over_its_log(cli, tmp_path):
    from helpers.logs import overfitting_log

    log = overfitting_log(tmp_path / "log.csv")
    _refused(cli, log, "history", log, "-o", log)


def test_refuses_symbolic_and_hard_links(cli, tmp_path, model):
    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    _refused(cli, model, "graph", model, "-o", link)
    hard = tmp_path / "hard.onnx"
    os.link(model, hard)
    _refused(cli, model, "lint", model, "-o", hard)
    _refused(cli, model, "summary", model, "-o", tmp_path / "sub" / ".." / "m.onnx")


def test_refuses_output_inside_an_input_folder(cli, tmp_path):
    folder = tmp_path / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    _refused(cli, folder, "summary", folder, "-o", folder / "summary.txt", what="inside the input folder")
    _refused(cli, folder, "lint", folder, "-o", folder / "variables" / "x", what="inside the input folder")
    assert sorted(p.name for p in folder.rglob("*")) == ["saved_model.pb", "variables"]
    code, _out, err = cli("summary", folder, "-o", tmp_path / "summary.txt")
    assert "refusing" not in err  # beside the folder is fine (this folder is just not a real SavedModel)


def test_report_chart_images_never_go_into_the_input_folder(cli, tmp_path):
    folder = tmp_path / "m_files"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"")
    _refused(cli, folder, "report", folder, "-o", tmp_path / "m.md", what="inside the input folder")
    assert [p.name for p in folder.iterdir()] == ["saved_model.pb"]


def test_refuses_to_overwrite_external_data(cli, tmp_path):
    model = onnx_with_external(tmp_path / "ext.onnx", "weights.bin")
    data = tmp_path / "weights.bin"
    data.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    _refused(cli, data, "summary", model, "-o", data, what="over an external data file of")
    _refused(cli, data, "graph", model, "-o", data, what="over an external data file of")
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    os.link(data, elsewhere / "result.txt")
    _refused(cli, data, "lint", model, "-o", elsewhere / "result.txt", what="over an external data file of")


def test_writes_other_existing_files_next_to_the_model(cli, tmp_path):
    model = onnx_with_external(tmp_path / "ext.onnx", "weights.bin")
    (tmp_path / "weights.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    out = tmp_path / "summary.txt"
    out.write_text("old")
    code, _out, err = cli("summary", model, "-o", out)
    assert code == 0, err
    assert "Total params" in out.read_text()
    assert cli("summary", model, "-o", out).code == 0  # a second run overwrites its own result
