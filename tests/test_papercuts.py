"""Newcomer papercuts of issue 16: each one a behaviour with a positive and a negative case.

``history`` names a missing log once, a text file with a non-model suffix is "not a model
file", ``info`` text uses human labels (JSON keeps its keys), ``rules`` prints plain text,
``summary --macs`` widens the line instead of cutting names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import inspector
from helpers.cli import one_error_line

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "samples" / "seed_cnn.keras"


# -- history names a missing log once ------------------------------------------------------------


def test_history_missing_log_names_the_path_once(cli, tmp_path):
    path = tmp_path / "nope.csv"
    code, _, err = cli("history", path)
    assert code == 2
    line = one_error_line(err, path)
    assert line == f"inspector: error: {path}: no such file or folder"
    assert line.count(str(path)) == 1


def test_report_missing_history_names_the_path_once(cli, tmp_path):
    path = tmp_path / "nope.csv"
    code, _, err = cli("report", SEED, "--history", path, "-o", tmp_path / "r.html")
    assert code == 2
    assert one_error_line(err, path).count(str(path)) == 1


# -- a file that is no model ----------------------------------------------------------------------


@pytest.mark.parametrize("name,content", [
    ("make_samples.py", b'"""Build the sample models."""\nimport keras\n'),
    ("notes.txt", b"these are my notes\n"),
    ("training.csv", b"epoch,loss\n0,1.0\n"),
    ("README", b":3 colons first\n"),
    ("notes.md", "\ufeff# Überblick: été\n".encode()),
])
def test_a_text_file_is_not_a_model_file(cli, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = cli("lint", path)
    assert code == 2
    line = one_error_line(err, path)
    assert "not a model file" in line and "ONNX" not in line and "protobuf" not in line


def test_a_model_with_an_unknown_suffix_still_loads(tmp_path):
    onnx_bytes = (ROOT / "samples" / "lint_deep_sigmoid.onnx").read_bytes()
    path = tmp_path / "model.bin"
    path.write_bytes(onnx_bytes)
    assert inspector.load(path).format == "onnx"


def test_a_text_file_with_a_model_suffix_keeps_its_own_message(cli, tmp_path):
    for name, expected in (("m.onnx", "ONNX"), ("m.keras", "zip")):
        path = tmp_path / name
        path.write_text("not really a model\n")
        code, _, err = cli("summary", path)
        line = one_error_line(err, path)
        assert code == 2 and expected in line and "not a model file" not in line


# -- info labels ----------------------------------------------------------------------------------


def test_info_text_uses_human_labels_and_json_keeps_keys(cli):
    _, out, _ = cli("info", SEED)
    assert "Config style    keras3" in out and "Weights format  h5" in out
    assert "config_style" not in out and "weights_format" not in out
    _, out, _ = cli("info", SEED, "--format", "json")
    meta = json.loads(out)["metadata"]
    assert meta["config_style"] == "keras3" and meta["weights_format"] == "h5"


# -- rules without reStructuredText -----------------------------------------------------------------


def test_rules_catalog_and_rule_page_show_no_rst_markup(cli):
    _, out, _ = cli("rules")
    assert "``" not in out and ":class:`" not in out
    assert "A Normalization layer was never adapted to the data." in out
    _, page, _ = cli("rule", "NORM002")
    assert "``" not in page.split("```")[0]
    assert "A `Normalization` layer was never adapted" in page
    _, out, _ = cli("rules", "--output-format", "json")  # the JSON contract keeps the docstring's text
    norm = next(r for r in json.loads(out) if r["code"] == "NORM002")
    assert norm["summary"] == "A ``Normalization`` layer was never adapted to the data."


def test_plain_text_undoes_roles_and_literals_but_not_code_blocks():
    from inspector.reporters.catalog import plain_text

    assert plain_text(":class:`~inspector.findings.Finding` and :func:`lint` and ``x``") == "Finding and lint and x"
    assert plain_text("``a``\n```python\nb = ``c``\n```\n", code="`") == "`a`\n```python\nb = ``c``\n```\n"
    assert plain_text("no markup at all") == "no markup at all"


# -- summary --macs never cuts a name ---------------------------------------------------------------


def _functional_with_long_names():
    import keras

    inp = keras.Input((8, 8, 3), name="an_input_with_a_rather_long_name")
    a = keras.layers.Conv2D(4, 3, name="first_convolution_with_a_long_name")(inp)
    b = keras.layers.Conv2D(4, 3, name="second_convolution_with_a_long_name")(inp)
    out = keras.layers.Add(name="the_sum_of_both_convolution_branches")([a, b])
    return keras.Model(inp, out, name="long_names")


def test_summary_macs_widens_the_line_instead_of_cutting_names(tmp_path):
    seed = inspector.summarize(inspector.load(SEED), macs=True)
    assert "batch_normalization_6 (BatchNormalization)" in seed
    path = tmp_path / "long.keras"
    _functional_with_long_names().save(path)
    text = inspector.summarize(inspector.load(path), macs=True)
    for name in ("first_convolution_with_a_long_name (Conv2D)", "the_sum_of_both_convolution_branches (Add)",
                 "second_convolution_with_a_long_name", "an_input_with_a_rather_long_name (InputLayer)"):
        assert name in text
    lines = text.splitlines()
    width = len(lines[1])
    assert width > 98 and all(len(line) == width for line in lines[1:4])
    # without --macs the listing stays Keras's own: fixed 98 columns, names cut
    plain = inspector.summarize(inspector.load(path)).splitlines()
    assert len(plain[1]) == 98 and "first_convolution_with_a_long_name (Conv2D)" not in "\n".join(plain)


# -- lint --probe without the runtime extra ---------------------------------------------------------


def _static_lint(cli, path):
    code, out, _ = cli("lint", path, "--output-format", "json")
    return code, [f["code"] for r in json.loads(out)["results"] for f in r["findings"]]


def test_lint_probe_without_onnxruntime_keeps_the_static_findings(cli, monkeypatch):
    import sys

    path = ROOT / "samples" / "lint_deep_sigmoid.onnx"
    static_code, static = _static_lint(cli, path)
    assert "ACT002" in static
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the runtime extra were not installed
    code, out, err = cli("lint", "--probe", path, "--output-format", "json")
    assert code == static_code
    assert [f["code"] for r in json.loads(out)["results"] for f in r["findings"]] == static
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"inspector: warning: {path}: probe unavailable")
    assert "[runtime]" in lines[0] and "onnxruntime" in lines[0]
    code, out, _ = cli("lint", "--probe", path)
    assert "No model was linted" not in out and "ACT002" in out


def test_lint_probe_with_onnxruntime_measures(cli, monkeypatch):
    import inspector.probe_run as probe_run

    path = ROOT / "samples" / "lint_deep_sigmoid.onnx"
    reports = []
    real = probe_run.run_probe
    monkeypatch.setattr(probe_run, "run_probe", lambda *a: reports.append(real(*a)) or reports[-1])
    code, out, err = cli("lint", "--probe", path, "--output-format", "json")
    assert "probe unavailable" not in err
    assert len(reports) == 1 and reports[0] is not None  # the model ran


# -- a cross-format diff matches the same finding ----------------------------------------------------


@pytest.mark.parametrize("a,b", [("lint_deep_sigmoid.keras", "lint_deep_sigmoid.onnx"),
                                 ("lint_deep_sigmoid.onnx", "lint_deep_sigmoid.keras")])
def test_cross_format_diff_reports_an_exported_finding_as_unchanged(cli, a, b):
    code, out, _ = cli("diff", ROOT / "samples" / a, ROOT / "samples" / b, "--format", "json", "--isolated")
    findings = json.loads(out)["findings"]
    assert findings["new"] == [] and findings["fixed"] == []
    assert findings["unchanged"] >= 1
    _, text, _ = cli("diff", ROOT / "samples" / a, ROOT / "samples" / b, "--isolated")
    assert "Findings: 0 new, 0 fixed, 2 unchanged" in text


def test_cross_format_diff_still_reports_a_really_new_finding(cli):
    code, out, _ = cli("diff", SEED, ROOT / "samples" / "lint_deep_sigmoid.onnx", "--format", "json", "--isolated")
    findings = json.loads(out)["findings"]
    assert [f["code"] for f in findings["new"]] == ["ACT002"]
    assert {f["code"] for f in findings["fixed"]} >= {"BN003"}
