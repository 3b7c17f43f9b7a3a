"""``inspector lint`` / ``rules`` / ``rule``: exit codes, selection, configuration,
baselines, output formats (text, json, sarif, junit, github) and golden files.

Golden files live in ``tests/golden/lint_*``; regenerate them after an intended
output change with ``INSPECTOR_REGEN_GOLDEN=1 python -m pytest tests/test_lint_cli.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from helpers.cli import one_error_line
from helpers.golden import check_golden
from helpers.keras_models import keras_file
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

ROOT = Path(__file__).resolve().parents[1]
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"


def faulty_onnx():
    """A small MLP with known faults, built deterministically (no random numbers):
    a constant kernel (INIT002), a hidden sigmoid (ACT001), two linear Gemms in a
    row (ACT005), a dead node and an unused initializer (GRAPH001)."""
    w1 = np.full((8, 16), 0.25, np.float32)
    w2 = ((np.arange(16 * 16).reshape(16, 16) * 37) % 101 - 50).astype(np.float32) / 100
    w3 = ((np.arange(16 * 4).reshape(16, 4) * 37) % 101 - 50).astype(np.float32) / 100
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h1"], name="fc1"),
             helper.make_node("Sigmoid", ["h1"], ["s1"], name="sigmoid1"),
             helper.make_node("Gemm", ["s1", "w2"], ["h2"], name="fc2"),
             helper.make_node("Gemm", ["h2", "w3"], ["y"], name="fc3"),
             helper.make_node("Neg", ["h1"], ["unused"], name="dead_neg")]
    return onnx_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                      [tensor("w1", w1), tensor("w2", w2), tensor("w3", w3),
                       tensor("stale", np.zeros(3, np.float32))])


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """The faulty ONNX model copied into its own folder (output paths stay relative)."""
    folder = tmp_path_factory.mktemp("lint_cli")
    shutil.copy(onnx_file("faulty", faulty_onnx), folder / "faulty.onnx")
    return folder


def _clean():
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,), name="features")
        x = layers.Dense(16, activation="relu", name="hidden")(inp)
        return keras.Model(inp, layers.Dense(1, activation="sigmoid", name="prob")(x))

    return keras_file("cli_clean", build)


@pytest.fixture
def in_dir(monkeypatch):
    def chdir(path):
        monkeypatch.chdir(path)
        return path

    return chdir


# -- exit codes ---------------------------------------------------------------------------

def test_exit_codes_follow_fail_on(cli, faulty, in_dir):
    in_dir(faulty)
    code, out, err = cli("lint", "faulty.onnx")
    assert code == 1 and err == ""
    assert "faulty.onnx:fc1: INIT002 [error]" in out
    assert cli("lint", "faulty.onnx", "--fail-on", "never")[0] == 0
    assert cli("lint", "faulty.onnx", "--select", "ACT", "--fail-on", "error")[0] == 0  # warnings only
    assert cli("lint", "faulty.onnx", "--select", "ACT", "--fail-on", "warning")[0] == 1
    assert cli("lint", "faulty.onnx", "--select", "MODEL", "--fail-on", "info")[0] == 1
    code, out, _ = cli("lint", str(_clean()))
    assert code == 0 and out.rstrip().endswith("(1 info) in 1 model.")


def test_broken_file_reports_one_line_and_keeps_going(cli, faulty, in_dir, tmp_path):
    in_dir(faulty)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip at all")
    code, out, err = cli("lint", str(broken), "faulty.onnx")
    assert code == 2
    one_error_line(err, broken)
    assert "faulty.onnx:fc1: INIT002" in out and "1 file could not be read" in out


def test_subprocess_entry_point(faulty):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "inspector", "lint", "faulty.onnx", "--output-format", "json"],
                          cwd=faulty, capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stderr == ""
    assert json.loads(proc.stdout)["counts"]["error"] == 1


# -- selection --------------------------------------------------------------------------------

def test_select_and_ignore(cli, faulty, in_dir):
    in_dir(faulty)
    _, out, _ = cli("lint", "faulty.onnx", "--select", "INIT,GRAPH001", "--output-format", "json")
    codes = {f["code"] for f in json.loads(out)["results"][0]["findings"]}
    assert codes == {"INIT002", "GRAPH001"}
    _, out, _ = cli("lint", "faulty.onnx", "--ignore", "INIT", "--ignore", "GRAPH",
                    "--output-format", "json")
    codes = {f["code"] for f in json.loads(out)["results"][0]["findings"]}
    assert codes == {"ACT001", "ACT005", "MODEL001"}
    # the most specific selector wins
    _, out, _ = cli("lint", "faulty.onnx", "--ignore", "ACT", "--select", "ACT005",
                    "--output-format", "json")
    assert [f["code"] for f in json.loads(out)["results"][0]["findings"]] == ["ACT005"]
    code, out, err = cli("lint", "faulty.onnx", "--select", "NOPE")
    assert code == 2 and out == "" and err.startswith("inspector: error: unknown rule selector 'NOPE'")


# -- configuration --------------------------------------------------------------------------------

def _project(tmp_path: Path, faulty: Path, toml: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(toml)
    sub = tmp_path / "models" / "deep"
    sub.mkdir(parents=True)
    shutil.copy(faulty / "faulty.onnx", sub / "faulty.onnx")
    return sub


def test_pyproject_is_found_walking_up(cli, faulty, in_dir, tmp_path):
    sub = _project(tmp_path, faulty, '[tool.inspector]\nignore = ["INIT002"]\nfail-on = "warning"\n'
                                     'output-format = "json"\n')
    in_dir(sub)
    code, out, _ = cli("lint", "faulty.onnx")
    doc = json.loads(out)
    assert "INIT002" not in {f["code"] for f in doc["results"][0]["findings"]}
    assert code == 1  # warnings fail under fail-on = "warning"
    # flags override the file; --isolated ignores it
    assert cli("lint", "faulty.onnx", "--fail-on", "error")[0] == 0
    code, out, _ = cli("lint", "faulty.onnx", "--isolated")
    assert code == 1 and "INIT002" in out and not out.startswith("{")


def test_config_file_rule_options_and_per_file_ignores(cli, faulty, in_dir, tmp_path):
    cfg = tmp_path / "lint.toml"
    cfg.write_text('select = ["ACT", "GRAPH"]\n'
                   '[per-file-ignores]\n"faulty.*" = ["ACT001"]\n'
                   '[rules.GRAPH001]\nmin-bytes = 0\n[rules.ACT005]\nseverity = "error"\n')
    in_dir(faulty)
    code, out, _ = cli("lint", "faulty.onnx", "--config", str(cfg), "--output-format", "json")
    found = sorted((f["code"], f["severity"], f["layer"] or "") for f in json.loads(out)["results"][0]["findings"])
    # ACT001 ignored for this file; with min-bytes = 0 any unused initializer is a warning
    assert found == [("ACT005", "error", "fc2"), ("GRAPH001", "warning", ""), ("GRAPH001", "warning", "dead_neg")]
    assert code == 1


@pytest.mark.parametrize("toml,message", [
    ('[tool.inspector]\nignroe = ["X"]\n', "unknown option 'ignroe' in [tool.inspector] (did you mean 'ignore'?)"),
    ('[tool.inspector]\nfail-on = "sometimes"\n', "fail-on must be one of error, warning, info, never"),
    ('[tool.inspector.rules.INIT004]\nmax-ratoi = 2.0\n', "rule INIT004 has no option 'max-ratoi'"),
    ('[tool.inspector.rules.INIT004]\nmax-ratio = "big"\n', "option 'max-ratio' of rule INIT004 must be a float"),
    ('[tool.inspector\n', "invalid TOML"),
])
def test_bad_configuration_is_a_usage_error(cli, faulty, in_dir, tmp_path, toml, message):
    sub = _project(tmp_path, faulty, toml)
    in_dir(sub)
    code, out, err = cli("lint", "faulty.onnx")
    assert code == 2 and out == ""
    assert err.startswith("inspector: error: ") and message in err and len(err.strip().splitlines()) == 1


# -- baseline --------------------------------------------------------------------------------------

def test_baseline_accepts_known_findings(cli, faulty, in_dir, tmp_path):
    in_dir(faulty)
    base = tmp_path / "baseline.json"
    code, _, err = cli("lint", "faulty.onnx", "--write-baseline", str(base))
    assert code == 0 and "wrote" in err
    doc = json.loads(base.read_text())
    assert doc["schema"] == "inspector.baseline/1"
    assert {e["path"] for e in doc["findings"]} == {os.path.relpath(faulty / "faulty.onnx", tmp_path)}
    code, out, _ = cli("lint", "faulty.onnx", "--baseline", str(base))
    assert code == 0 and "All checks passed" in out and "suppressed by the baseline" in out
    # a finding the baseline does not know still fails
    trimmed = dict(doc, findings=[e for e in doc["findings"] if e["code"] != "INIT002"])
    base.write_text(json.dumps(trimmed))
    code, out, _ = cli("lint", "faulty.onnx", "--baseline", str(base))
    assert code == 1 and "INIT002" in out and out.count("\n") == 3


# -- outputs ----------------------------------------------------------------------------------------

def test_output_file_is_written_atomically(cli, faulty, in_dir, tmp_path):
    in_dir(faulty)
    target = tmp_path / "report.json"
    target.write_text("old")
    code, out, _ = cli("lint", "faulty.onnx", "--output-format", "json", "-o", str(target))
    assert code == 1 and out == ""
    assert json.loads(target.read_text())["schema"] == "inspector.lint/1"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left behind
    code, _, err = cli("lint", "faulty.onnx", "-o", str(tmp_path / "missing" / "r.txt"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "missing").exists()


def test_json_contract(cli, faulty, in_dir):
    in_dir(faulty)
    _, out, _ = cli("lint", "faulty.onnx", str(_clean()), "--output-format", "json")
    doc = json.loads(out)
    assert set(doc) == {"schema", "results", "counts"} and doc["schema"] == "inspector.lint/1"
    first = doc["results"][0]
    assert first["model"] == {"name": "g", "format": "onnx", "path": "faulty.onnx"}
    for f in first["findings"]:
        assert set(f) == {"code", "name", "severity", "layer", "message"}
    n = {s: sum(f["severity"] == s for r in doc["results"] for f in r["findings"])
         for s in ("error", "warning", "info")}
    assert doc["counts"] == n and n["error"] == 1


def test_sarif_is_valid_2_1_0(cli, faulty, in_dir, tmp_path):
    import jsonschema

    in_dir(faulty)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    _, out, _ = cli("lint", "faulty.onnx", str(broken), "--output-format", "sarif")
    doc = json.loads(out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(doc, schema)
    run_ = doc["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    from inspector.rules.registry import get_rule

    for r in rules:
        assert r["help"]["text"] == get_rule(r["id"]).doc and "## Why is this bad?" in r["help"]["text"]
    for res in run_["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    assert {res["level"] for res in run_["results"]} <= {"error", "warning", "note"}
    assert run_["invocations"][0]["executionSuccessful"] is False  # the broken file


def test_junit_is_well_formed(cli, faulty, in_dir):
    in_dir(faulty)
    _, out, _ = cli("lint", "faulty.onnx", str(_clean()), "--output-format", "junit")
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    total = sum(int(s.get("tests")) for s in suites)
    assert int(root.get("tests")) == total == sum(len(s.findall("testcase")) for s in suites)
    failures = root.findall(".//failure")
    assert int(root.get("failures")) == len(failures) == 1 and failures[0].get("type") == "INIT002"


def test_github_annotations(cli, faulty, in_dir):
    in_dir(faulty)
    _, out, _ = cli("lint", "faulty.onnx", "--output-format", "github")
    lines = out.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    assert "::error file=faulty.onnx,title=INIT002 constant-kernel::fc1: " in out


def test_statistics(cli, faulty, in_dir):
    in_dir(faulty)
    _, out, _ = cli("lint", "faulty.onnx", "--statistics")
    assert "    1  INIT002   [error] constant-kernel" in out


GOLDEN_RULES = "INIT,ACT001,ACT002,ACT005,ACT006,GRAPH,MODEL"


@pytest.mark.parametrize("fmt,golden", [("text", "lint_faulty.txt"), ("sarif", "lint_faulty.sarif"),
                                        ("junit", "lint_faulty.junit.xml"), ("github", "lint_faulty.github.txt"),
                                        ("json", "lint_faulty.json")])
def test_golden_outputs(cli, faulty, in_dir, fmt, golden):
    in_dir(faulty)
    # an explicit selection: rules added later (SARIF lists every rule that ran) leave the files alone
    _, out, _ = cli("lint", "faulty.onnx", "--output-format", fmt, "--select", GOLDEN_RULES)
    check_golden(golden, out)


# -- rules / rule ---------------------------------------------------------------------------------

def test_rules_and_rule_commands(cli):
    from inspector.rules.registry import all_rules

    code, out, _ = cli("rules")
    assert code == 0
    for r in all_rules():
        assert f"{r.code}" in out and r.name in out
    code, out, _ = cli("rules", "--output-format", "json", "--select", "BN")
    assert code == 0 and {r["code"] for r in json.loads(out)} == {r.code for r in all_rules()
                                                                  if r.code.startswith("BN")}
    code, out, _ = cli("rule", "init002")
    assert code == 0 and out.startswith("INIT002 (constant-kernel)") and "## Why is this bad?" in out
    code, out, err = cli("rule", "XYZ123")
    assert code == 2 and "unknown rule 'XYZ123'" in err


# -- samples and pre-commit ---------------------------------------------------------------------------

SAMPLES = ROOT / "samples"


@pytest.mark.parametrize("name,expected", [
    ("lint_zero_mlp.keras", {("hidden_1", "INIT002"), ("hidden_2", "INIT002")}),
    ("lint_deep_sigmoid.keras", {("sigmoid_5", "ACT002")}),
    ("lint_deep_sigmoid.onnx", {("sigmoid_5/sigmoid", "ACT002")}),
    ("lint_bn_cnn.keras", {("bn", "BN001"), ("standardize", "NORM002")}),
])
def test_fault_samples(cli, name, expected):
    code, out, _ = cli("lint", str(SAMPLES / name), "--output-format", "json")
    findings = json.loads(out)["results"][0]["findings"]
    problems = {(f["layer"], f["code"]) for f in findings if f["severity"] != "info"}
    assert problems == expected
    assert code == (1 if any(f["severity"] == "error" for f in findings) else 0)


def test_seed_sample_has_no_problem(cli):
    code, out, _ = cli("lint", str(SAMPLES / "seed_cnn.keras"), str(SAMPLES / "seed_cnn.h5"),
                       "--fail-on", "warning")
    assert code == 0, out


def test_pre_commit_hook_definition():
    import re

    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    fields = dict(re.findall(r"^\s*-?\s*(id|entry|language|files):\s*(.+)$", text, re.M))
    assert fields["id"] == "inspector-lint" and fields["entry"] == "inspector lint"
    assert fields["language"] == "python"
    pattern = re.compile(fields["files"])
    assert all(pattern.search(f) for f in ("m.keras", "a/b.h5", "x.onnx", "y.hdf5"))
    assert not any(pattern.search(f) for f in ("model.py", "keras.txt", "onnx.md"))


def test_a_crashing_rule_is_one_line_not_a_traceback(cli, faulty, in_dir, monkeypatch):
    import dataclasses

    from inspector.rules.registry import REGISTRY, get_rule

    def boom(ctx):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setitem(REGISTRY, "ACT006", dataclasses.replace(get_rule("ACT006"), check=boom))
    in_dir(faulty)
    code, out, err = cli("lint", "faulty.onnx", "faulty.onnx", "--select", "ACT006")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith("inspector: error: faulty.onnx: rule ACT006 failed") and "simulated bug" in lines[0]
