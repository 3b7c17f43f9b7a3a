"""Startup of ``inspector summary`` (issue 14): what a fresh process imports, and the numpy-free reading of
constant operand values (:mod:`inspector.loaders.onnx.plainvalue`) giving what the numpy path gives.

No timed tests: ``bench/bench_extremes.py --cases startup`` measures the time itself.  Each module kept off the
summary path has a fresh-process test that it is not imported, and one that a command which needs it still
imports it (so the watch would see it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import ROOT
from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info

# Imported after the interpreter started (modules ``site`` already imported do not count), then the command.
_FRESH = """
import json, sys
before = set(sys.modules)
from inspector.cli import main
watch = json.loads(sys.argv[1])
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print(json.dumps({"code": code, "imported": sorted(m for m in watch if m in sys.modules and m not in before)}),
      file=sys.stderr)
"""

NOT_ON_SUMMARY = (
    "numpy",                     # ~0.1 s of CPU: numpy and its BLAS start (constant operand values: plainvalue.py)
    "tabulate",                  # only for tabulate's formats (wcwidth, ~10 ms)
    "importlib.metadata",        # only for --version (email, zipfile …)
    "tomllib",                   # [tool.inspector]: lint, scan, folders
    "tomli",                     # (its name before Python 3.11)
    "inspector.config",
    "inspector.findings",
    "inspector.reporters.lint",
    "inspector.probe_run",
    "inspector.loaders.bind",    # only with --dim
    "onnx",                      # onnx/__init__ and ml_dtypes (test_onnx_speed.py checks those too)
    "ml_dtypes",
)


def _fresh(*argv: object, cwd: Path) -> tuple[int, str, list[str]]:
    """``inspector ARGV`` in a new interpreter: exit code, stdout, and the watched modules it imported."""
    done = subprocess.run([sys.executable, "-c", _FRESH, json.dumps(NOT_ON_SUMMARY), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_NO_CACHE": "1"})
    report = json.loads(done.stderr.rstrip("\n").split("\n")[-1])
    return report["code"], done.stdout, report["imported"]


def _operand_model(*, rank2_indices: bool = False):
    """Constant operands of every plain kind: an int64 ``Reshape`` shape in ``raw_data``, ``Unsqueeze`` axes in
    ``int64_data``, int32 ``Slice`` bounds, float32 ``Resize`` scales, a scalar ``Gather`` index, a bool
    ``Where`` condition; with ``rank2_indices`` the ``Gather`` index is a 2-D tensor (the numpy path)."""
    from onnx import TensorProto, helper

    index = np.array([[0, 1], [1, 0]], np.int64) if rank2_indices else np.array(1, np.int64)
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Unsqueeze", ["r", "axes"], ["u"], name="unsqueeze"),
        helper.make_node("Slice", ["u", "starts", "ends"], ["s"], name="slice"),
        helper.make_node("Resize", ["s", "", "scales"], ["z"], name="resize", mode="nearest"),
        helper.make_node("Gather", ["z", "index"], ["g"], name="gather", axis=1),
        helper.make_node("Where", ["cond", "g", "g"], ["y"], name="where"),
    ]
    inits = [
        tensor("shape", np.array([2, 3, 4], np.int64)),
        helper.make_tensor("axes", TensorProto.INT64, [1], [0]),  # int64_data, not raw_data
        tensor("starts", np.array([0, 0, 0, 0], np.int32)),
        tensor("ends", np.array([1, 2, 3, 4], np.int32)),
        tensor("scales", np.array([1.0, 1.0, 2.0, 0.5], np.float32)),
        tensor("index", index),
        tensor("cond", np.array([True], np.bool_)),
    ]
    out = [1, 2, 2, 6, 2] if rank2_indices else [1, 6, 2]
    return onnx_model(nodes, [value_info("x", [6, 4])], [value_info("y", out)], inits, opset=17)


@pytest.fixture(scope="module")
def plain_file(tmp_path_factory) -> Path:
    return save_onnx(_operand_model(), tmp_path_factory.mktemp("startup") / "plain.onnx")


@pytest.fixture(scope="module")
def rank2_file(tmp_path_factory) -> Path:
    return save_onnx(_operand_model(rank2_indices=True), tmp_path_factory.mktemp("startup") / "rank2.onnx")


# -- what a fresh `inspector summary` imports -----------------------------------------------------------------
def test_onnx_summary_imports_none_of_the_modules_it_does_not_need(plain_file, tmp_path):
    code, out, imported = _fresh("summary", plain_file, cwd=tmp_path)
    assert code == 0 and "Total params" in out
    assert imported == []


def test_a_decoder_summary_imports_none_of_them_either(tmp_path):
    """The bench's small decoder, in small (``bench/make_decoder.py``): RMSNorm, rotary slices, attention."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_decoder", ROOT / "bench" / "make_decoder.py")
    assert spec is not None and spec.loader is not None
    md = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_decoder", md)
    spec.loader.exec_module(md)
    path = md.write_decoder(tmp_path / "decoder.onnx",
                            md.DecoderSpec(layers=1, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32))
    code, out, imported = _fresh("summary", path, cwd=tmp_path)
    assert code == 0 and "Total params" in out
    assert imported == []


def test_the_watch_sees_the_modules_where_they_are_needed(plain_file, rank2_file, tmp_path):
    """The same fresh-process watch finds each module where a command needs it: a 2-D constant operand
    (numpy), a tabulate format, --version, lint (configuration, findings, lint formats), --dim."""
    assert "numpy" in _fresh("summary", rank2_file, cwd=tmp_path)[2]
    assert "tabulate" in _fresh("summary", "-f", "github", plain_file, cwd=tmp_path)[2]
    code, out, imported = _fresh("--version", cwd=tmp_path)
    assert code == 0 and out.startswith("inspector ") and "importlib.metadata" in imported
    imported = _fresh("lint", plain_file, cwd=tmp_path)[2]
    toml = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    assert {toml, "inspector.config", "inspector.findings", "inspector.reporters.lint"} <= set(imported)
    assert "inspector.loaders.bind" in _fresh("summary", "--dim", "n=2", plain_file, cwd=tmp_path)[2]


def test_fresh_summary_prints_what_the_in_process_one_does(plain_file, rank2_file, cli, tmp_path):
    for path in (plain_file, rank2_file):
        for fmt in ("classic", "json", "github"):
            code, out, _ = _fresh("summary", "-f", fmt, path, cwd=tmp_path)
            assert code == 0 and out == cli("summary", "-f", fmt, path).out


# -- plainvalue: the same values as the numpy path ------------------------------------------------------------
def _cases():
    from onnx import TensorProto, helper, numpy_helper

    arrays = [np.array(v, dtype=d) for d in ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16",
                                             "int32", "uint32", "int64", "uint64", "bool")
              for v in (7, [], [1], [0, 1, 2, 3], list(range(64)))]
    arrays.append(np.array([np.nan, np.inf, -0.0, 1e-40, 3.4e38], np.float32))
    arrays.append(np.array([2**62, -(2**63)], np.int64))
    cases = [(f"raw-{a.dtype}-{a.shape}", numpy_helper.from_array(a, "t")) for a in arrays]
    for code, values in ((TensorProto.INT64, [5, -7, 2**40]), (TensorProto.INT32, [1, -2, 3]),
                         (TensorProto.FLOAT, [0.1, 2.5, -1e-3]), (TensorProto.DOUBLE, [0.1, 1e300])):
        cases.append((f"typed-{code}", helper.make_tensor("t", code, [len(values)], values)))
        cases.append((f"typed-scalar-{code}", helper.make_tensor("t", code, [], values[:1])))
    odd_bool = helper.make_tensor("t", TensorProto.BOOL, [3], b"\x00\x02\xff", raw=True)  # bytes other than 0/1
    cases.append(("raw-bool-bytes", odd_bool))
    return cases


@pytest.mark.parametrize("name,t", _cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_plain_list_is_the_numpy_value_as_a_list(name, t):
    from inspector.loaders.onnx.plainvalue import UNDECODED, plain_list
    from inspector.loaders.onnx.protos import small_value

    expected = small_value(t)
    got = plain_list(t, limit=64)
    assert got is not UNDECODED
    want = expected.tolist() if expected is not None else None
    assert json.dumps(got) == json.dumps(want) and type(got) is type(want)
    if isinstance(want, list) and want:
        assert [type(v) for v in got] == [type(v) for v in want]
    assert plain_list(t, limit=max(0, expected.size - 1) if expected is not None else 0) in (None, want)


def test_plain_list_gives_none_where_the_numpy_path_gives_none():
    from onnx import TensorProto, helper

    from inspector.loaders.onnx.plainvalue import plain_list
    from inspector.loaders.onnx.protos import small_value

    def raw(code: int, dims: list[int], data: bytes) -> TensorProto:
        t = TensorProto(name="t", data_type=code, dims=dims)
        t.raw_data = data
        return t

    short = TensorProto(name="t", data_type=TensorProto.INT64, dims=[3])
    short.int64_data.extend([1, 2])
    bad = [raw(TensorProto.INT64, [3], b"\x01" * 16),  # 16 bytes for 3 int64
           raw(TensorProto.INT64, [3], b"\x01" * 7),   # not a multiple of 8
           raw(TensorProto.BOOL, [], b""),             # no element for a scalar
           short,                                      # 2 values for 3
           helper.make_tensor("t", TensorProto.STRING, [1], [b"a"])]
    external = helper.make_tensor("t", TensorProto.INT64, [1], [1])
    external.data_location = TensorProto.EXTERNAL
    for t in [*bad, external]:
        assert small_value(t) is None and plain_list(t, limit=64) is None
    big = helper.make_tensor("t", TensorProto.INT64, [65], list(range(65)))
    assert small_value(big).size == 65 and plain_list(big, limit=64) is None  # over CONFIG_VALUE: no value


def test_plain_list_leaves_other_tensors_to_numpy():
    from onnx import TensorProto, helper, numpy_helper

    from inspector.loaders.onnx.plainvalue import UNDECODED, plain_list

    left = [numpy_helper.from_array(np.ones((2, 2), np.int64), "t"),                   # rank 2
            helper.make_tensor("t", TensorProto.BFLOAT16, [2], [1.0, 2.0]),            # not a numpy dtype
            helper.make_tensor("t", TensorProto.BOOL, [2], [True, False]),             # bool in int32_data
            helper.make_tensor("t", TensorProto.UINT8, [2], [1, 2])]                   # uint8 in int32_data
    negative = helper.make_tensor("t", TensorProto.INT64, [2], [1, 2])
    negative.dims[0] = -1
    for t in [*left, negative]:
        assert plain_list(t, limit=64) is UNDECODED


def _operands(path: Path) -> list[tuple[str, list[tuple[str, str, str, object]]]]:
    from inspector.loaders import load

    return [(lay.name, [(op.name, op.tensor, op.kind, op.value) for op in lay.operands])
            for lay in load(path).layers]


def test_the_builder_gives_the_same_operand_values_with_and_without_numpy(plain_file, rank2_file, monkeypatch):
    """Both paths on one model: the operand values (and the summaries) are the same when every tensor takes
    the numpy path; the 2-D index takes it either way."""
    from inspector.loaders.onnx import builder, plainvalue
    from inspector.reporters.summary import render

    plain = {p: (_operands(p), render(_load(p), fmt="json")) for p in (plain_file, rank2_file)}
    calls: list[object] = []

    def numpy_only(t, *, limit):
        calls.append(t.name)
        return plainvalue.UNDECODED

    monkeypatch.setattr(builder, "plain_list", numpy_only)
    for path, (operands, summary) in plain.items():
        assert _operands(path) == operands
        assert render(_load(path), fmt="json") == summary
    assert {"shape", "axes", "starts", "ends", "scales", "index", "cond"} <= set(calls)
    values = dict((name, ops) for name, ops in plain[plain_file][0])
    assert [op[3] for op in values["reshape"]] == [None, [2, 3, 4]]
    assert [op[3] for op in values["unsqueeze"]] == [None, [0]]
    assert [op[3] for op in values["resize"]] == [None, None, [1.0, 1.0, 2.0, 0.5]]
    assert [op[3] for op in values["gather"]] == [None, 1]
    assert [op[3] for op in dict(plain[rank2_file][0])["gather"]] == [None, [[0, 1], [1, 0]]]


def _load(path: Path):
    from inspector.loaders import load

    return load(path)


# -- the onnx extension without `import onnx`, and the exit ----------------------------------------------------
def _python(code: str, *args: object, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_NO_CACHE": "1", **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_lite_loads_the_extension_file_the_import_system_would(tmp_path):
    code = ("import importlib.machinery, sys\nfrom inspector.loaders.onnx import lite\n"
            "lite.get_schema('Relu', 14, '')\next = sys.modules['onnx.onnx_cpp2py_export'].__file__\n"
            "print('onnx' in sys.modules, ext.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)))")
    assert _python(code, cwd=tmp_path) == "False True"


def test_lite_falls_back_to_import_onnx_without_the_extension_file(tmp_path):
    code = ("import importlib.machinery, sys\nimportlib.machinery.EXTENSION_SUFFIXES[:] = ['.no-such-suffix']\n"
            "from inspector.loaders.onnx import lite\nimport onnx\nproto = lite.model_proto()\n"
            "print('onnx' in sys.modules, type(proto) is onnx.ModelProto, lite.get_schema('Relu', 14, '').name)")
    assert _python(code, cwd=tmp_path) == "True True Relu"


_ENDS = ("import atexit, gc, os, sys, weakref\nfrom inspector.cli import main\n"
         "class Box: pass\nbox = Box()\n"
         "weakref.finalize(box, print, 'finalized', file=sys.stderr)\n"
         "atexit.register(print, 'exit handler ran', file=sys.stderr)\n"
         "rc = main(sys.argv[1:]) if os.environ.get('AS_LIBRARY') else main()\n"
         "print('returned', rc, gc.isenabled(), file=sys.stderr)\n")
"""A program whose ``main`` call is the program (``main()``) or a library call (``main(argv)``, with AS_LIBRARY)."""


def _ends(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _ENDS, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_NO_CACHE": "1", **(env or {})})


def test_the_program_ends_itself_once_its_output_and_exit_handlers_are_done(plain_file, tmp_path):
    """``main()`` as the program (no ``argv``: ``inspector``, ``python -m inspector``) does not return: it ends
    the process with the command's exit code once standard output is flushed and the exit handlers and
    ``weakref.finalize`` clean-ups have run.  ``main(argv)`` (library use, tests) returns the code, with the
    collector as it was, and the interpreter exits as usual."""
    library = _ends("summary", plain_file, cwd=tmp_path, env={"AS_LIBRARY": "1"})
    program = _ends("summary", plain_file, cwd=tmp_path)
    assert library.returncode == 0 and library.stdout.startswith("Model:")
    assert program.returncode == 0 and program.stdout == library.stdout  # nothing lost in the buffer
    assert library.stderr.split("\n") == ["returned 0 True", "exit handler ran", "finalized", ""]
    assert program.stderr.split("\n") == ["exit handler ran", "finalized", ""]
    missing = _ends("summary", tmp_path / "missing.onnx", cwd=tmp_path)  # an error keeps its code and line
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("inspector: error: ") and missing.stderr.count("\n") == 3


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", [["summary", "{model}"], ["info", "{model}"], ["rules"], ["--version"],
                                     ["--help"], ["summary", "--help"],
                                     ["report", "{model}", "-f", "markdown", "--no-charts"]],
                         ids=["summary", "info", "rules", "version", "help", "summary-help", "report"])
def test_the_program_says_in_one_line_when_its_output_cannot_be_written(plain_file, tmp_path, command, buffered):
    """Standard output on a full disk: one line and exit code 2, not Python's "Exception ignored" and 120, a
    traceback (``--version``, ``report``), silence and 0 (argparse drops a failed write of ``--help``), or the
    line twice (the text a command failed to write is still in the buffer when the program flushes it at its end)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(PYTHONPATH=str(ROOT), INSPECTOR_NO_CACHE="1", **({} if buffered else {"PYTHONUNBUFFERED": "1"}))
    argv = [word.format(model=plain_file) for word in command]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "inspector", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("inspector: error: could not write the output: ") and done.stderr.count("\n") == 1


def test_help_and_version_still_reach_a_pipe_that_closes_early(tmp_path):
    """``--version`` and ``--help`` read by a consumer that stops early (``| head``) end quietly with 0."""
    for argv in (["--version"], ["--help"]):
        proc = subprocess.Popen([sys.executable, "-m", "inspector", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_NO_CACHE": "1"})
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.read(9)
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait() == 0 and err == b""
        assert first in (b"inspector", b"usage: in")


def test_long_ascii_output_goes_in_chunks_that_add_up_to_it(monkeypatch):
    """ASCII text longer than a chunk is written a chunk at a time, the same text; other text goes whole."""
    from types import SimpleNamespace

    from inspector.commands import _options

    text = "".join(f"line {i}\n" for i in range(60_000))
    assert len(text) > 2 * _options.WRITE_CHUNK
    written: list[str] = []
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(write=written.append, flush=lambda: None))
    _options.write_output(text, None, flush=True)
    assert "".join(written) == text and len(written) > 2 and max(map(len, written)) == _options.WRITE_CHUNK
    written.clear()
    _options.write_output("Ñ" + text, None)
    assert written == ["Ñ" + text]


def test_a_chunk_that_cannot_be_written_is_an_output_error(monkeypatch):
    from types import SimpleNamespace

    from inspector.commands import _options
    from inspector.errors import OutputError

    written: list[str] = []

    def write(part: str) -> None:
        if written:
            raise OSError(28, "No space left on device")
        written.append(part)

    monkeypatch.setattr(sys, "stdout", SimpleNamespace(write=write, flush=lambda: None))
    with pytest.raises(OutputError, match="No space left on device"):
        _options.write_output("x" * (3 * _options.WRITE_CHUNK), None, flush=True)
    assert written == ["x" * _options.WRITE_CHUNK]


def test_the_program_keeps_only_the_last_model_loaded(plain_file, rank2_file, monkeypatch):
    """In the program, :func:`~inspector.batch.load_graph` keeps the last graph alive (the process ends without
    freeing it), and the ONNX builder its working tables (:mod:`inspector.lifetime`); both are let go before the
    next load starts.  In library use nothing is kept."""
    from inspector import batch, lifetime, loaders
    from inspector.loaders.onnx.scope import Scope

    assert lifetime.held() is None
    batch.load_graph(str(plain_file))
    assert lifetime.held() is None  # library use
    monkeypatch.setattr(lifetime, "_held", None)
    lifetime.keep_for_the_run()
    first = batch.load_graph(str(plain_file))
    held = lifetime.held()
    assert held is not None and held[-1] is first
    assert any(isinstance(kept, Scope) for kept in held)  # the speculative build's tables
    held_at_load: list[object] = []
    load = loaders.load

    def watched(*args: object, **kwargs: object) -> object:
        held_at_load.append(list(lifetime.held() or ()))
        return load(*args, **kwargs)

    monkeypatch.setattr(loaders, "load", watched)
    second = batch.load_graph(str(rank2_file))
    assert held_at_load == [[]]  # the first model's were let go before the second was read
    held = lifetime.held()
    assert held is not None and held[-1] is second and first not in held


# -- standard-library modules a start without this workplace's site hooks would pay for -------------------------
def _fresh_without_site(*argv: object, watch: tuple[str, ...], cwd: Path) -> tuple[int, list[str]]:
    """``inspector ARGV`` under ``python -S``: here ``site`` runs ``.pth`` hooks that import ``tempfile``,
    ``zipfile`` and more at every start, which would hide them; the packages come through ``PYTHONPATH``."""
    path = os.pathsep.join([str(ROOT), *(p for p in sys.path if p and os.path.isdir(p))])
    done = subprocess.run([sys.executable, "-S", "-c", _FRESH, json.dumps(watch), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": path, "INSPECTOR_NO_CACHE": "1"})
    report = json.loads(done.stderr.rstrip("\n").split("\n")[-1])
    return report["code"], report["imported"]


def test_a_summary_without_site_hooks_imports_no_tempfile_or_zipfile(plain_file, tmp_path):
    """``tempfile`` only for ``-o FILE`` (the atomic write), ``zipfile`` only for a file that holds a zip
    archive (the polyglot scan); a plain summary to standard output needs neither."""
    watch = ("tempfile", "zipfile")
    assert _fresh_without_site("summary", plain_file, watch=watch, cwd=tmp_path) == (0, [])
    assert _fresh_without_site("summary", "-o", tmp_path / "out.txt", plain_file, watch=watch,
                               cwd=tmp_path) == (0, ["tempfile"])
    assert (tmp_path / "out.txt").read_text().startswith("Model:")
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
    model = _operand_model()
    model.graph.initializer.append(tensor("blob", np.frombuffer(archive.getvalue(), np.uint8)))  # a zip inside
    polyglot = save_onnx(model, tmp_path / "with-zip.onnx")
    code, imported = _fresh_without_site("summary", polyglot, watch=watch, cwd=tmp_path)
    assert code == 0 and "zipfile" in imported
