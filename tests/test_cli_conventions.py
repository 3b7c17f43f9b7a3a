"""One command-line convention (issue 16.3): the format option under both spellings, ``-o/--output``
on every command that writes output (never over one of its inputs), ``--debug`` with the documented
exit codes, and ``--version`` naming the optional engines found (issue 16.2)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import one_error_line
from helpers.logs import overfitting_log
from inspector.reporters.catalog import plain_text

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
KERAS = SAMPLES / "seed_cnn.keras"
ONNX = SAMPLES / "lint_deep_sigmoid.onnx"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from inspector.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _option(p: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return p._option_string_actions.get(flag)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_command_takes_both_format_spellings_and_output(command):
    p = _subparsers()[command]
    fmt = _option(p, "-f")
    assert fmt is not None, f"{command}: no -f"
    assert fmt is _option(p, "--format") is _option(p, "--output-format"), f"{command}: the spellings differ"
    assert fmt.dest == "format"
    out = _option(p, "-o")
    assert out is not None and out is _option(p, "--output") and out.dest == "output", f"{command}: no -o"


def _history_log(tmp_path: Path) -> Path:
    return overfitting_log(tmp_path / "training.csv")


# (command line before the format option, a format that is not the default)
SPELLINGS = [
    ("summary", ["summary", str(KERAS)], "json"),
    ("info", ["info", str(KERAS)], "json"),
    ("graph", ["graph", str(KERAS)], "mermaid"),
    ("diff", ["diff", str(KERAS), str(KERAS), "--no-lint"], "json"),
    ("lint", ["lint", str(ONNX)], "json"),
    ("rules", ["rules", "--select", "BN"], "json"),
    ("rule", ["rule", "INIT001"], "json"),
    ("report", ["report", str(KERAS), "--no-charts", "--no-lint"], "markdown"),
]


@pytest.mark.parametrize("name,argv,fmt", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_both_spellings_give_the_same_output(cli, name, argv, fmt):
    short = cli(*argv, "-f", fmt)
    assert short.code in (0, 1), short.err
    default = cli(*argv)
    assert short.out != default.out, "the format option changed nothing"
    assert cli(*argv, "--format", fmt) == short
    assert cli(*argv, "--output-format", fmt) == short


def test_history_takes_both_spellings(cli, tmp_path):
    log = _history_log(tmp_path)
    short = cli("history", log, "-f", "json")
    assert json.loads(short.out)["schema"] == "inspector.lint/1"
    assert cli("history", log, "--format", "json") == short == cli("history", log, "--output-format", "json")


@pytest.mark.parametrize("argv", [["info", str(KERAS)], ["lint", str(ONNX)], ["rules"], ["rule", "INIT001"],
                                  ["graph", str(KERAS)], ["diff", str(KERAS), str(KERAS)]],
                         ids=lambda argv: argv[0])
def test_unknown_format_is_one_line_and_exit_2(cli, argv):
    for flag in ("-f", "--output-format"):
        code, out, err = cli(*argv, flag, "nope")
        assert code == 2 and out == ""
        assert err.startswith("inspector: error: ") and "nope" in err and len(err.splitlines()) == 1, err


def test_rule_page_as_json(cli):
    code, out, _ = cli("rule", "INIT001", "-f", "json")
    page = json.loads(out)
    assert code == 0 and page["code"] == "INIT001" and page["severity"] in ("error", "warning", "info")
    (listed,) = json.loads(cli("rules", "-f", "json", "--select", "INIT001").out)
    assert {k: v for k, v in page.items() if k != "doc"} == listed
    # The text page shows the same documentation as plain text (no reStructuredText literals).
    assert page["doc"].strip() and plain_text(page["doc"], code="`").strip() in cli("rule", "INIT001").out


# (command line, whether the command exits 0 on it)
WRITERS = [
    ["summary", str(KERAS)],
    ["summary", str(KERAS), str(ONNX), "-f", "json"],
    ["info", str(KERAS), str(ONNX)],
    ["info", str(KERAS), str(ONNX), "-f", "json"],
    ["graph", str(KERAS), "-f", "dot"],
    ["diff", str(KERAS), str(ONNX), "--no-lint"],
    ["lint", str(ONNX)],
    ["rules"],
    ["rule", "BN001"],
    ["report", str(KERAS), "--no-charts", "--no-lint", "-f", "markdown"],
]


@pytest.mark.parametrize("argv", WRITERS, ids=lambda argv: "-".join(a for a in argv if not a.startswith("/")))
def test_output_file_holds_what_stdout_shows(cli, tmp_path, argv):
    shown = cli(*argv)
    target = tmp_path / "out.txt"
    written = cli(*argv, "-o", target)
    assert written.code == shown.code and written.out == "" and written.err == shown.err
    assert target.read_text(encoding="utf-8") == shown.out and shown.out


def test_history_output_file(cli, tmp_path):
    log = _history_log(tmp_path)
    shown = cli("history", log)
    target = tmp_path / "findings.txt"
    assert cli("history", log, "-o", target).out == ""
    assert target.read_text() == shown.out and "HIST001" in shown.out


def test_output_file_keeps_going_past_a_bad_model(cli, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    target = tmp_path / "summary.txt"
    code, out, err = cli("summary", bad, KERAS, "-o", target)
    assert code == 2 and out == ""
    one_error_line(err, bad)
    assert 'Model: "sequential_3"' in target.read_text()


def test_probe_output_file(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    shown = cli("probe", ONNX, "-f", "json")
    assert shown.code == 0, shown.err
    target = tmp_path / "probe.json"
    written = cli("probe", ONNX, "-f", "json", "-o", target)
    assert written.code == 0 and written.out == ""
    timeless = {k: v for k, v in json.loads(shown.out).items() if k != "seconds"}
    assert {k: v for k, v in json.loads(target.read_text()).items() if k != "seconds"} == timeless


@pytest.mark.parametrize("command", ["summary", "info", "graph", "lint", "report", "probe", "diff"])
def test_output_never_overwrites_an_input_model(cli, tmp_path, command):
    model = tmp_path / "model.onnx"
    shutil.copy(ONNX, model)
    before = model.read_bytes()
    argv = [command, model, model] if command == "diff" else [command, model]
    code, out, err = cli(*argv, "-o", model)
    assert code == 2 and out == ""
    assert "refusing to write the output over an input file" in one_error_line(err, model)
    assert model.read_bytes() == before
    # the same file by another spelling of its path
    code, _, err = cli(command, model, "-o", tmp_path / "." / "model.onnx") if command != "diff" else \
        cli(command, ONNX, model, "-o", tmp_path / "." / "model.onnx")
    assert code == 2 and "refusing" in err and model.read_bytes() == before


def test_output_never_overwrites_a_training_log(cli, tmp_path):
    log = _history_log(tmp_path)
    before = log.read_text()
    code, _, err = cli("history", log, "-o", log)
    assert code == 2 and "refusing" in err and log.read_text() == before
    code, _, err = cli("lint", ONNX, "--history", log, "-o", log)
    assert code == 2 and "refusing" in err and log.read_text() == before


def _run(*argv: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd)


def test_debug_keeps_the_documented_exit_code(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    # an unreadable model, before or after the command name; a format name the command itself refuses
    for argv in (["--debug", "summary", bad], ["lint", "--debug", bad], ["--debug", "history", tmp_path / "nope.csv"],
                 ["--debug", "summary", KERAS, "-f", "nope"]):
        proc = _run(*argv)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" in proc.stderr, argv
        assert proc.stderr.strip().splitlines()[-1].startswith("inspector: error: "), proc.stderr
    # argparse's own errors have no traceback to show: exit 2 either way
    proc = _run("--debug", "info", KERAS, "-f", "nope")
    assert proc.returncode == 2 and proc.stderr.startswith("inspector: error: ")


def test_without_debug_no_traceback(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    proc = _run("summary", bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    one_error_line(proc.stderr, bad)


VERSION = re.compile(r"^inspector \d+\.\d+\.\d+\S* \((?P<engines>[^;()]+)(?:; (?P<extras>[^;()]+))?\)$")


def test_version_names_the_engines_found(cli):
    from importlib import metadata

    import inspector

    code, out, _ = cli("--version")
    assert code == 0
    m = VERSION.match(out.strip())
    assert m, out
    assert out.startswith(f"inspector {inspector.__version__} (onnx {metadata.version('onnx')}")
    named = dict(item.split(" ") for item in m["engines"].split(", "))
    for dist in ("tensorflow", "keras", "onnxruntime"):
        try:
            assert named[dist] == metadata.version(dist)
        except metadata.PackageNotFoundError:
            assert dist not in named
    if m["extras"]:
        assert m["extras"] == f"matplotlib {metadata.version('matplotlib')}"


def test_version_leaves_out_engines_not_installed(cli, monkeypatch):
    from importlib import metadata

    real = metadata.version

    def without_tensorflow(name: str) -> str:
        if name.startswith(("tensorflow", "tf-", "matplotlib")):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", without_tensorflow)
    out = cli("--version").out
    assert "tensorflow" not in out and "matplotlib" not in out and ";" not in out
    assert out.startswith("inspector ") and "onnx " in out


def test_version_imports_no_engine():
    code = ("import sys; from inspector.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    rc = e.code\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'matplotlib', 'onnx') if m in sys.modules]\n"
            "print(rc, heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_version_has_one_source():
    """pyproject reads the version from inspector.__version__ (setuptools dynamic), and the
    distribution is dl-inspector while the import package and the command stay inspector."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "dl-inspector"
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "inspector.__version__"}
    assert project["project"]["scripts"] == {"inspector": "inspector.cli:main"}
    assert project["project"]["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    extras = project["project"]["optional-dependencies"]
    assert all(not d.startswith("inspector[") for deps in extras.values() for d in deps)
