"""The Python API (inspector/api.py): sources (paths, graphs, in-memory Keras and ONNX models),
results with ``to_dict()`` equal to the CLI's JSON, HTML in Jupyter, errors that name the file,
and ``import inspector`` staying light."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import inspector
from helpers.keras_models import keras_file
from helpers.onnx_models import onnx_model, tensor, value_info
from inspector.errors import FileError, InspectorError, ModelLoadError, UsageError
from inspector.findings import Finding, ModelReport, Severity

ROOT = Path(__file__).resolve().parents[1]


def _deep_sigmoid_keras():
    """Five sigmoid layers in a row: ACT002 (vanishing gradients) in every format."""
    import keras

    inputs = keras.Input((16,), name="x")
    h = inputs
    for i in range(5):
        h = keras.layers.Dense(8, activation="sigmoid", name=f"sigmoid_{i + 1}")(h)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(h), name="deep_sigmoid")


def _deep_sigmoid_onnx():
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(5):
        w = f"w{i}"
        inits.append(tensor(w, rng.normal(size=(8, 8)).astype("float32")))
        nodes.append(_node("MatMul", [x, w], [f"m{i}"], f"dense_{i}"))
        nodes.append(_node("Sigmoid", [f"m{i}"], [f"s{i}"], f"sigmoid_{i}"))
        x = f"s{i}"
    return onnx_model(nodes, [value_info("x", [1, 8])], [value_info(x, [1, 8])], inits)


def _node(op, inputs, outputs, name):
    from onnx import helper

    return helper.make_node(op, inputs, outputs, name=name)


@pytest.fixture(scope="module")
def sigmoid_model():
    return _deep_sigmoid_keras()


@pytest.fixture(scope="module")
def sigmoid_file(sigmoid_model):
    return keras_file("api_deep_sigmoid", lambda: sigmoid_model)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The temporary folder in-memory models are written to, to see that nothing is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# -- import inspector stays light ------------------------------------------------------------

def test_import_inspector_imports_no_framework_and_not_the_api():
    code = ("import sys, inspector; heavy = ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'numpy', 'h5py', "
            "'matplotlib', 'networkx', 'inspector.api', 'inspector.keras', 'inspector.rules'); "
            "print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.stdout.strip() == "[]"


def test_api_names_resolve_on_first_use():
    assert inspector.lint is inspector.api.lint
    assert inspector.summary is inspector.api.summary and inspector.load is inspector.api.load
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        inspector.nope  # noqa: B018


# -- lint --------------------------------------------------------------------------------------

def test_lint_takes_a_path_and_matches_the_cli_json(sigmoid_file, cli):
    result = inspector.lint(str(sigmoid_file))  # raised AttributeError: 'str' object has no attribute 'path'
    assert "ACT002" in [f.code for f in result]
    code, out, _ = cli("lint", sigmoid_file, "--output-format", "json", "--isolated")
    assert code in (0, 1)
    assert result.to_dict() == json.loads(out)
    assert str(result) == cli("lint", sigmoid_file, "--isolated").out
    assert all(isinstance(f, Finding) for f in result.findings) and len(result) == len(result.findings)


def test_lint_select_and_ignore(sigmoid_file):
    assert {f.code for f in inspector.lint(sigmoid_file, select="ACT")} == {"ACT002"}
    assert {f.code for f in inspector.lint(sigmoid_file, select=["ACT002", "MODEL"])} >= {"ACT002"}
    assert "ACT002" not in {f.code for f in inspector.lint(sigmoid_file, ignore="ACT,MODEL")}


def test_lint_reads_a_config_file(sigmoid_file, tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.inspector]\nignore = ["ACT002"]\n')
    assert "ACT002" not in {f.code for f in inspector.lint(sigmoid_file, config=toml)}
    assert "ACT002" in {f.code for f in inspector.lint(sigmoid_file)}


def test_lint_of_a_graph_equals_lint_of_its_file(sigmoid_file):
    graph = inspector.load(sigmoid_file)
    assert inspector.lint(graph).to_dict() == inspector.lint(sigmoid_file).to_dict()


# -- in-memory models --------------------------------------------------------------------------

def test_an_in_memory_keras_model_reads_as_its_saved_file(sigmoid_model, sigmoid_file, private_tmp):
    from_memory = inspector.summary(sigmoid_model).to_dict()
    from_file = inspector.summary(sigmoid_file).to_dict()
    assert from_memory["model"]["path"] is None and from_file["model"]["path"] == str(sigmoid_file)
    assert from_memory["layers"] == from_file["layers"] and from_memory["totals"] == from_file["totals"]
    result = inspector.lint(sigmoid_model)
    assert [(f.code, f.layer, f.message) for f in result] == \
        [(f.code, f.layer, f.message) for f in inspector.lint(sigmoid_file)]
    assert result.report.path == "<keras.Model deep_sigmoid>"
    assert list(private_tmp.iterdir()) == []  # the temporary copy is gone


def test_an_in_memory_onnx_model(private_tmp):
    proto = _deep_sigmoid_onnx()
    assert "ACT002" in {f.code for f in inspector.lint(proto)}
    graph = inspector.load(proto)
    assert graph.format == "onnx" and graph.path is None and len(graph.layers) == 11
    assert inspector.count_macs(proto).total == 5 * 8 * 8
    assert list(private_tmp.iterdir()) == []


def test_weights_of_a_loaded_in_memory_model_say_where_to_go(sigmoid_model):
    graph = inspector.load(sigmoid_model)
    weight = next(graph.iter_weights())
    with pytest.raises(ModelLoadError, match="pass the model itself to inspector.lint"):
        weight.read()


def test_an_object_that_is_no_model_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot read a dict: pass a path"):
        inspector.summary({"layers": []})


# -- summary, MACs, report ---------------------------------------------------------------------

def test_summary_matches_the_cli(sigmoid_file, cli):
    result = inspector.summary(sigmoid_file)
    assert result.to_dict() == json.loads(cli("summary", sigmoid_file, "-f", "json").out)
    assert str(result) == cli("summary", sigmoid_file).out == inspector.summarize(sigmoid_file)
    assert inspector.count_macs(sigmoid_file).total == result.to_dict()["totals"]["macs"] == 16 * 8 + 4 * 64 + 16


def test_results_are_frozen(sigmoid_file):
    result = inspector.lint(sigmoid_file)
    with pytest.raises(AttributeError):
        result.report = None  # type: ignore[misc]


def test_write_report_html_and_markdown(sigmoid_file, tmp_path):
    html = inspector.write_report(sigmoid_file, tmp_path / "r.html", charts=False)
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and "deep_sigmoid" in text and "ACT002" in text
    md = inspector.write_report(sigmoid_file, tmp_path / "r.md", lint=False, charts=False).read_text()
    assert md.startswith("#") and "ACT002" not in md
    with pytest.raises(UsageError, match="cannot tell the report format"):
        inspector.write_report(sigmoid_file, tmp_path / "r.txt")


def test_write_report_never_writes_over_its_input(sigmoid_file, tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(Path(sigmoid_file).read_bytes())
    (tmp_path / "m.html").symlink_to(model)
    before = model.read_bytes()
    with pytest.raises(UsageError, match="refusing to write the report over an input file"):
        inspector.write_report(model, tmp_path / "m.html", charts=False)
    assert model.read_bytes() == before


# -- Jupyter -----------------------------------------------------------------------------------

def test_summary_renders_as_an_html_table(sigmoid_file):
    page = inspector.summary(sigmoid_file)._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 1 + 7  # head + 7 layers
    assert "<td>sigmoid_3</td><td>Dense</td><td>(None, 8)</td><td>72</td><td>64</td>" in page
    assert "Total params: 442 (1.73 KB)" in page and "MACs: 400" in page


def test_lint_html_escapes_what_the_file_says():
    evil = Finding("SEC001", "lambda", Severity.ERROR, "runs <script>alert(1)</script>", layer="a&b")
    page = inspector.LintResult(ModelReport(path="m.keras", name="<m>", findings=(evil,)))._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>a&amp;b</td>" in page and "&lt;m&gt;: 1 finding" in page
    empty = inspector.LintResult(ModelReport(path="m.keras", name="m"))._repr_html_()
    assert "m: no findings" in empty and empty.count("<tr>") == 1


# -- errors carry the file ---------------------------------------------------------------------

@pytest.fixture
def not_onnx(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x08\x07 this is not protobuf \xff\xff")
    return bad


def test_api_errors_name_the_file(not_onnx):
    with pytest.raises(ModelLoadError) as info:
        inspector.lint(str(not_onnx))
    assert info.value.path == str(not_onnx)
    assert str(info.value).startswith(f"{not_onnx}: is not an ONNX model")
    assert str(info.value).count(str(not_onnx)) == 1


def test_a_bad_option_is_not_blamed_on_the_file(sigmoid_file):
    with pytest.raises(UsageError) as info:
        inspector.lint(sigmoid_file, select="NOPE123")
    assert info.value.path is None and str(sigmoid_file) not in str(info.value)


def test_the_cli_prints_the_same_line_as_before(not_onnx, cli):
    from inspector.loaders import load

    with pytest.raises(ModelLoadError) as info:
        load(not_onnx)  # below the API: no path, as the CLI composes its own line
    assert info.value.path is None and not str(info.value).startswith(str(not_onnx))
    _, _, err = cli("summary", not_onnx)
    assert err == f"inspector: error: {not_onnx}: {info.value}\n"


def test_file_error_and_pickled_errors_keep_their_text():
    assert str(FileError("a.onnx", ModelLoadError("is empty"))) == "a.onnx: is empty"
    tagged = ModelLoadError("is empty")
    tagged.path = "b.onnx"
    again = pickle.loads(pickle.dumps(tagged))
    assert str(again) == "b.onnx: is empty" and isinstance(again, InspectorError)
    assert str(ModelLoadError("is empty")) == "is empty"
