"""The security guarantees of issue 5, each with a test that could catch it broken:

* no code from a model runs during ``summary``, ``info``, ``lint`` (a Lambda that
  would create a marker file, in ``.keras``, legacy ``.h5`` and a SavedModel);
* no file outside the model's folder is opened because of what the model says
  (HDF5 links, virtual and external datasets, ONNX external data);
* bombs end in one clear error, in seconds, with bounded memory;
* broken input gives exit code 2 and one line, and several files keep going;
* the limits are documented, configurable, and enforced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import numpy as np
import pytest

import inspector
from helpers import hostile as H
from helpers.cli import one_error_line
from inspector.cli import COMMANDS
from inspector.errors import LimitExceeded, UnsafeModel
from inspector.limits import DEFAULTS, Limits, current, parse_size

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


# -- 1. nothing from the model runs ------------------------------------------------------------

def _marker_lambda(marker: Path):
    # Our own test code (not a model's): a function that leaves a trace when it runs.
    return eval(f"lambda t: (open({str(marker)!r}, 'a').close(), t * 2.0)[1]")  # noqa: S307


@pytest.fixture(scope="module")
def marker_models(tmp_path_factory):
    """A Lambda that creates ``marker`` when it runs, at the top level and inside a
    nested model, saved by Keras 3 (.keras, .h5) and by tf_keras (SavedModel, .h5)."""
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("marker")
    marker = folder / "lambda-ran"
    paths = {}

    x = keras.Input((4,), name="x")
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Lambda(_marker_lambda(marker), name="inner_touch")(inner_in),
                        name="inner")
    y = keras.layers.Lambda(_marker_lambda(marker), name="touch")(inner(x))
    model = keras.Model(x, keras.layers.Dense(2, name="d")(y))
    for fmt in ("keras", "h5"):
        paths[f"keras3.{fmt}"] = folder / f"keras3.{fmt}"
        model.save(paths[f"keras3.{fmt}"])

    k2x = tf_keras.Input((4,), name="x")
    k2 = tf_keras.Model(k2x, tf_keras.layers.Dense(2, name="d")(
        tf_keras.layers.Lambda(_marker_lambda(marker), name="touch")(k2x)))
    paths["keras2.h5"] = folder / "keras2.h5"
    k2.save(paths["keras2.h5"])
    paths["savedmodel"] = folder / "savedmodel"
    k2.save(paths["savedmodel"], save_format="tf")
    assert marker.exists(), "building and saving the models ran the Lambda: the marker works"
    marker.unlink()
    return marker, paths


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector", *argv], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=600)


def test_no_model_code_runs_in_the_cli(marker_models, tmp_path):
    marker, paths = marker_models
    files = [str(p) for p in paths.values()]
    for command in ("summary", "info", "lint"):
        proc = _cli(command, *files, cwd=tmp_path)
        assert not marker.exists(), f"`inspector {command}` ran a Lambda layer"
        assert "Traceback" not in proc.stderr, proc.stderr
        if command == "lint":
            assert proc.returncode == 1, proc.stderr
            for name, path in paths.items():
                expected = ["touch"] if name.startswith("keras2") or name == "savedmodel" else ["inner/inner_touch",
                                                                                                 "touch"]
                found = sorted(re.findall(rf"^{re.escape(str(path))}:(\S+): SEC001 ", proc.stdout, re.M))
                assert found == expected, (name, proc.stdout)
        else:
            assert proc.returncode == 0, proc.stderr
    commands = {name for name, _, _ in COMMANDS}
    if "report" in commands:  # the HTML report, asked to probe too: the trust gate must hold
        for i, path in enumerate(files):
            proc = _cli("report", path, "-o", str(tmp_path / f"r{i}.html"), "--probe", cwd=tmp_path)
            assert not marker.exists(), f"`inspector report --probe {path}` ran a Lambda layer"
            assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
            assert (tmp_path / f"r{i}.html").stat().st_size > 0
    if "probe" in commands:  # running a model is refused while a SEC finding stands
        proc = _cli("probe", *files, cwd=tmp_path)
        assert not marker.exists(), "`inspector probe` ran a Lambda layer without --trust"
        assert proc.returncode == 2 and proc.stderr.count("--trust") == len(files), proc.stderr


def test_a_folder_of_hostile_models_is_reported_never_run(marker_models, tmp_path):
    """The same files found by walking their folder, linted by worker processes (--jobs 2) and scanned:
    each reported (SEC001), none run."""
    marker, paths = marker_models
    folder = paths["savedmodel"].parent
    proc = _cli("lint", str(folder), "--jobs", "2", "--no-cache", cwd=tmp_path)
    assert not marker.exists(), "`inspector lint FOLDER --jobs 2` ran a Lambda layer"
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    reported = set(re.findall(r"^(\S+?):\S+: SEC001 ", proc.stdout, re.M))
    assert reported == {str(p) for p in paths.values()}, proc.stdout
    proc = _cli("scan", str(folder), "--jobs", "2", "--no-cache", cwd=tmp_path)
    assert not marker.exists(), "`inspector scan FOLDER --jobs 2` ran a Lambda layer"
    assert proc.returncode == 0 and all('"SEC001"' in line for line in proc.stdout.splitlines()), proc.stdout


def test_the_marker_files_really_carry_code(marker_models):
    """The oracle: loading the same files with the frameworks (unsafely) runs the
    Lambda — so the test above would notice if inspector did."""
    import keras
    import tf_keras

    marker, paths = marker_models
    keras.config.enable_unsafe_deserialization()
    try:
        keras.saving.load_model(paths["keras3.keras"], safe_mode=False)
    finally:
        keras.config.disable_unsafe_deserialization() if hasattr(keras.config, "disable_unsafe_deserialization") \
            else None
    assert marker.exists()
    marker.unlink()
    tf_keras.models.load_model(paths["savedmodel"])
    assert marker.exists()
    marker.unlink()


# -- 2. nothing outside the model's folder is opened ------------------------------------------------

@pytest.fixture
def outside(tmp_path):
    """A model folder and, next to it, a FIFO called ``secret`` that records any open."""
    return H.outside_folder(tmp_path)


def _all_commands(cli, path: Path) -> dict[str, int]:
    codes = {}
    for command in ("summary", "info", "lint"):
        codes[command], _, err = cli(command, str(path))
        assert "Traceback" not in err
    return codes


def _read_without_opening(cli, watch: H.OpenWatch, models: list[Path]) -> None:
    """Every command reads every model (lint flags it) while ``watch`` records no open."""
    with watch.active():
        for path in models:
            codes = _all_commands(cli, path)
            assert codes == {"summary": 0, "info": 0, "lint": 1}, (path.name, codes)
    assert watch.opened == []


def test_hdf5_links_and_external_datasets_are_never_followed(cli, outside):
    folder, secret, watch = outside
    builders = [H.h5_with_external_link, H.h5_with_virtual_kernel, H.h5_with_external_storage]
    models = [build(folder / f"{build.__name__}_{i}.h5", target)
              for build in builders for i, target in enumerate(["../secret", str(secret)])]
    _read_without_opening(cli, watch, models)


def test_the_open_watch_catches_h5py_following_links(outside):
    """The watcher itself works: h5py reading through each link opens the FIFO."""
    import h5py

    folder, secret, watch = outside
    models = [H.h5_with_external_link(folder / "a.h5", str(secret)),
              H.h5_with_virtual_kernel(folder / "b.h5", str(secret)),
              H.h5_with_external_storage(folder / "c.h5", str(secret))]
    for path in models:
        watch.report.unlink(missing_ok=True)
        with watch.active():
            with pytest.raises(Exception), h5py.File(path, "r") as f:  # noqa: B017 - HDF5's own error types
                f[H.seed_kernel()][()]
        assert watch.opened, path.name


def test_onnx_external_data_outside_the_folder_is_never_opened(cli, outside):
    folder, secret, watch = outside
    os.symlink("../secret", folder / "link.bin")
    H.make_fifo(folder / "fifo.bin")
    watch = H.OpenWatch([secret, folder / "fifo.bin"], watch.report)
    locations = ["../secret", str(secret), "link.bin", "fifo.bin", "sub/../../secret", "./../secret"]
    models = [H.onnx_with_external(folder / f"m{i}.onnx", loc) for i, loc in enumerate(locations)]
    _read_without_opening(cli, watch, models)


def test_python_level_opens_are_recorded(outside):
    """The watcher also sees Python opens (ONNX external data is read in Python)."""
    folder, secret, watch = outside
    plain = folder.parent / "plain"
    plain.write_bytes(b"x")
    watch = H.OpenWatch([plain], watch.report)
    with watch.active():
        Path(plain).read_bytes()
    assert watch.opened == [f"python:{plain}"]


def test_savedmodel_variables_outside_the_folder_are_not_read(tmp_path):
    H.affine_saved_model(tmp_path / "sm")
    (tmp_path / "sm" / "variables").rename(tmp_path / "elsewhere")
    os.symlink("../elsewhere", tmp_path / "sm" / "variables")
    graph = inspector.load(tmp_path / "sm")
    [weight] = list(graph.iter_weights())
    with pytest.raises(UnsafeModel, match="symbolic link"):
        weight.read()


def test_symlinked_files_inside_model_folders_are_refused(tmp_path, cli):
    (tmp_path / "real.json").write_text(json.dumps(H.functional_config(H.layer_entry("Dense", "d", "x", units=2))))
    folder = tmp_path / "unzipped"
    folder.mkdir()
    os.symlink("../real.json", folder / "config.json")
    code, _, err = cli("summary", str(folder))
    assert code == 2 and "symbolic link" in one_error_line(err, folder)


# -- 3. bombs: a clear error, in seconds, with bounded memory ---------------------------------------

def _bombs(folder: Path) -> dict[str, tuple[Path, str, dict[str, str]]]:
    """name -> (path, command, extra environment)."""
    bombs: dict[str, tuple[Path, str, dict[str, str]]] = {}
    cfg = H.functional_config(H.layer_entry("Dense", "d", "x", units=2))

    # a compressed weights member whose header claims 4 GB (the expansion is never attempted)
    p = H.keras_archive(folder / "zip_bomb.keras", cfg, extra={"model.weights.h5": b"\0" * 10_000},
                        compression=zipfile.ZIP_DEFLATED)
    bombs["zip_bomb"] = (H.patch_member_size(p, "model.weights.h5", 4_000_000_000), "summary", {})
    # a config that really expands to more than the JSON limit (deflate: ~1000x)
    bombs["config_bomb"] = (H.keras_archive(folder / "config_bomb.keras", b" " * (DEFAULTS.json_bytes + 1),
                                            compression=zipfile.ZIP_DEFLATED), "summary", {})
    # central directory claiming 65535 entries in 1 GB
    p = H.keras_archive(folder / "many_entries.keras", cfg)
    bombs["claimed_entries"] = (H.patch_entry_count(p, 0xFFFF, cd_size=1 << 30), "summary", {})
    bombs["real_entries"] = (H.many_members_archive(folder / "real_entries.keras", 2_000), "summary",
                             {"INSPECTOR_MAX_ZIP_MEMBERS": "1000"})
    bombs["deep_json"] = (H.keras_archive(folder / "deep.keras", "[" * 200_000 + "]" * 200_000), "summary", {})
    bombs["nested_models"] = (H.keras_archive(folder / "nested.keras", H.nested_models_config(80)), "summary", {})
    bombs["huge_dataset"] = (H.h5_with_huge_kernel(folder / "huge.h5"), "lint", {})
    bombs["many_objects"] = (H.h5_with_many_groups(folder / "objects.h5", 300), "summary",
                             {"INSPECTOR_MAX_HDF5_OBJECTS": "200"})
    deep = folder / "deep_graph.onnx"
    deep.write_bytes(H.onnx_deeply_nested_bytes(2000))
    bombs["deep_onnx"] = (deep, "lint", {})
    bombs["nested_ifs"] = (H.onnx_nested_ifs(folder / "ifs.onnx", 30), "lint", {"INSPECTOR_MAX_ONNX_GRAPH_DEPTH": "10"})
    bombs["huge_proto"] = (H.onnx_huge_initializer(folder / "huge.onnx"), "summary", {})
    return bombs


EXPECTED_BOMB_EXIT = {"huge_dataset": 0, "huge_proto": 0}
"""Bombs inspector can read safely (it refuses to expand them); every other one is refused."""

BOMB_SCRIPT = textwrap.dedent("""
    import json, os, resource, sys, time, io, contextlib
    from inspector.cli import main

    def peak_mib():
        # VmHWM belongs to this process image; ru_maxrss would include the pytest
        # process this one was forked from before exec.
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    results = {}
    for name, path, command, env in json.loads(sys.argv[1]):
        os.environ.update(env)
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([command, path])
        results[name] = {"code": code, "seconds": time.perf_counter() - start, "stderr": err.getvalue(),
                         "stdout": out.getvalue(),
                         "maxrss_mib": peak_mib()}
        for key in env:
            del os.environ[key]
    print(json.dumps(results))
""")


def test_bombs_end_in_seconds_with_bounded_memory(tmp_path):
    bombs = _bombs(tmp_path)
    spec = [[name, str(path), command, env] for name, (path, command, env) in bombs.items()]
    proc = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, json.dumps(spec)], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    for name, (path, _, env) in bombs.items():
        r = results[name]
        assert r["seconds"] < 10, (name, r["seconds"])
        # peak memory of the process so far (bombs run in order): the first one past 1 GiB is to blame
        assert r["maxrss_mib"] < 1024, f"{name} made inspector's peak memory reach {r['maxrss_mib']:.0f} MiB"
        assert "Traceback" not in r["stderr"] and "Recursion" not in r["stderr"], (name, r["stderr"])
        if name in EXPECTED_BOMB_EXIT:
            assert r["code"] == EXPECTED_BOMB_EXIT[name], (name, r["stderr"])
            continue
        assert r["code"] == 2, (name, r)
        line = one_error_line(r["stderr"], path)
        for var in env:  # a limit error says how to raise the limit
            assert var in line, line
    assert "declares 4,398,046,511,104 bytes" in results["huge_dataset"]["stdout"]


def test_lint_of_a_2gib_inline_initializer(tmp_path, cli, monkeypatch):
    """A protobuf past 2 GiB loads; its one big tensor is refused by the tensor
    limit (lowered here to keep the test light) instead of crashing the linter."""
    path = H.onnx_huge_initializer(tmp_path / "huge.onnx")
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", "256MiB")
    code, out, err = cli("lint", str(path))
    assert code in (0, 1) and err == "", err
    assert "Traceback" not in out


def test_onnx_limits_come_from_the_environment(monkeypatch):
    assert inspector.load(H.SEED_ONNX).layers
    monkeypatch.setenv("INSPECTOR_MAX_ONNX_NODES", "2")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_ONNX_NODES"):
        inspector.load(H.SEED_ONNX)


def test_a_file_that_hangs_the_hdf5_library_ends_in_an_error(tmp_path, monkeypatch, cli):
    """HDF5 1.14 loops forever on a global heap whose free-space object has size 0
    (found by the fuzzer); inspector reads HDF5 metadata in a time-limited child."""
    import time

    path = H.h5_with_looping_global_heap(tmp_path / "loop.h5")
    monkeypatch.setenv("INSPECTOR_MAX_HDF5_SECONDS", "2")
    start = time.monotonic()
    code, _, err = cli("summary", str(path))
    assert time.monotonic() - start < 10
    assert code == 2 and "INSPECTOR_MAX_HDF5_SECONDS" in one_error_line(err, path)
    code, _, _ = cli("summary", str(H.SEED_H5))
    assert code == 0  # the seed itself reads fine through the same path


def test_a_crash_of_the_hdf5_library_is_one_error(monkeypatch, cli):
    """The HDF5 metadata walk runs in a child process: if the C library dies there,
    inspector reports the file instead of dying with it."""
    import signal

    from inspector.loaders import h5index

    if not h5index._ISOLATE:
        pytest.skip("HDF5 isolation is Linux-only")

    def crash(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # in the child: what a segfault in HDF5 looks like

    monkeypatch.setattr(h5index, "_walk", crash)
    code, out, err = cli("summary", str(H.SEED_H5))
    assert code == 2 and out == ""
    assert "crashed the HDF5 library" in one_error_line(err, H.SEED_H5)


def test_huge_declared_dataset_is_never_read(tmp_path):
    graph = inspector.load(H.h5_with_huge_kernel(tmp_path / "huge.h5"))
    [weight] = [w for w in graph.iter_weights() if w.size == 1 << 40]
    with pytest.raises(LimitExceeded, match="never read"):
        weight.read()


def test_tensor_size_limit(tmp_path, monkeypatch):
    graph = inspector.load(H.SEED_H5)
    weight = max(graph.iter_weights(), key=lambda w: w.nbytes)
    assert weight.read().nbytes == weight.nbytes
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", str(weight.nbytes - 1))
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_TENSOR_BYTES"):
        weight.read()


# -- 4. broken input: exit 2, one line, keep going -----------------------------------------------------

def _broken(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    onnx_bytes = H.SEED_ONNX.read_bytes()
    files = {
        "empty.onnx": b"", "empty.pb": b"", "empty.hdf5": b"",
        "random.onnx": rng.bytes(4096), "random.pb": rng.bytes(4096), "random.hdf5": rng.bytes(4096),
        "random_no_suffix": b"\x01" + rng.bytes(4095),
        "truncated.onnx": onnx_bytes[: len(onnx_bytes) // 2],
        "truncated_header.onnx": onnx_bytes[:7],
        "config.json": json.dumps(H.functional_config(H.layer_entry("Dense", "d", "x", units=2))).encode(),
        "not_a_model.keras": b'{"hello": "world"}',
        "model.pt": b"\x80\x04\x95 pickle bytes that must never be unpickled",
        "weights.pkl": b"\x80\x04K\x01.",
        "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    (folder / "empty_dir").mkdir()
    out["empty_dir"] = folder / "empty_dir"
    (folder / "bad_savedmodel").mkdir()
    (folder / "bad_savedmodel" / "saved_model.pb").write_bytes(rng.bytes(512))
    out["bad_savedmodel"] = folder / "bad_savedmodel"
    (folder / "empty_savedmodel").mkdir()
    (folder / "empty_savedmodel" / "saved_model.pb").write_bytes(b"")
    out["empty_savedmodel"] = folder / "empty_savedmodel"
    return out


def test_broken_input_is_one_line_and_exit_2(tmp_path, cli):
    for name, path in _broken(tmp_path).items():
        for command in ("summary", "info", "lint"):
            code, out, err = cli(command, str(path))
            assert code == 2, (name, command, err)
            one_error_line(err, path)
            if command != "lint":
                assert out == "", (name, command)


def test_broken_input_messages_say_what_is_wrong(tmp_path, cli):
    broken = _broken(tmp_path)

    def message(name: str) -> str:
        _, _, err = cli("summary", str(broken[name]))
        return one_error_line(err, broken[name]).split(": ", 3)[-1]

    assert "empty" in message("empty.onnx")
    assert "saved_model.pb" in message("empty_dir")
    assert "unknown model format" in message("model.pt")
    assert "not a model file" in message("config.json")  # text with a non-model suffix (issue 16)
    assert "saved_model.pb" in message("bad_savedmodel")


def test_several_files_are_all_reported_and_the_worst_exit_wins(tmp_path, cli):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5 at all")
    lambda_model = H.keras_archive(tmp_path / "lambda.keras", H.functional_config(
        H.layer_entry("Lambda", "lam", "x", function={"class_name": "__lambda__", "config": {"code": "AA=="}})))
    clean = H.SEED_KERAS
    code, out, err = cli("lint", str(broken), str(lambda_model), str(clean))
    assert code == 2
    one_error_line(err, broken)
    assert f"{lambda_model}:lam: SEC001" in out
    code, out, err = cli("lint", str(clean), str(lambda_model))
    assert code == 1 and err == "" and "SEC001" in out
    code, out, err = cli("summary", str(broken), str(clean), str(broken))
    assert code == 2 and out.count('Model: "sequential_3"') == 1
    assert len(err.strip().splitlines()) == 2


# -- 5. limits ----------------------------------------------------------------------------------------

def test_limits_are_a_frozen_dataclass_with_documented_defaults():
    limits = current()
    assert limits == DEFAULTS == Limits()
    with pytest.raises(FrozenInstanceError):
        limits.json_depth = 1  # type: ignore[misc]
    security_md = (ROOT / "SECURITY.md").read_text()
    for f in fields(Limits):
        env = Limits.env_name(f.name)
        row = next((line for line in security_md.splitlines() if f"`{env}`" in line), None)
        assert row is not None, f"SECURITY.md does not document {env}"
        default = getattr(DEFAULTS, f.name)
        shown = {f"{default:,}", str(default)} | _binary(default)
        assert any(s in row for s in shown), (env, row)


def _binary(n: int) -> set[str]:
    out = set()
    for unit, size in (("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)):
        if n % size == 0:
            out.add(f"{n // size} {unit}")
    return out


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("INSPECTOR_MAX_JSON_BYTES", "2MiB")
    monkeypatch.setenv("INSPECTOR_MAX_LAYERS", "1_000")
    assert current().json_bytes == 2 << 20 and current().layers == 1000
    monkeypatch.delenv("INSPECTOR_MAX_JSON_BYTES")
    assert current().json_bytes == DEFAULTS.json_bytes
    assert parse_size("3 G") == 3 << 30 and parse_size("64KiB") == 64 << 10


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5", "12 parsecs"])
def test_bad_limit_values_are_a_one_line_error(value, monkeypatch, cli):
    monkeypatch.setenv("INSPECTOR_MAX_JSON_DEPTH", value)
    code, _, err = cli("summary", str(H.SEED_KERAS))
    assert code == 2 and "INSPECTOR_MAX_JSON_DEPTH" in one_error_line(err, H.SEED_KERAS)


LIMIT_CASES = {
    # env var, value, model file: each limit is enforced and named in the error
    "json_bytes": ("INSPECTOR_MAX_JSON_BYTES", "1000", H.SEED_KERAS),
    "json_depth": ("INSPECTOR_MAX_JSON_DEPTH", "4", H.SEED_H5),
    "layers": ("INSPECTOR_MAX_LAYERS", "3", H.SEED_KERAS),
    "zip_members": ("INSPECTOR_MAX_ZIP_MEMBERS", "2", H.SEED_KERAS),
    "hdf5_objects": ("INSPECTOR_MAX_HDF5_OBJECTS", "5", H.SEED_H5),
    "hdf5_attribute_bytes": ("INSPECTOR_MAX_HDF5_ATTRIBUTE_BYTES", "100", H.SEED_H5),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_each_limit_is_enforced_and_named(case, monkeypatch, cli):
    env, value, path = LIMIT_CASES[case]
    code, _, _ = cli("summary", str(path))
    assert code == 0  # within the defaults
    monkeypatch.setenv(env, value)
    code, _, err = cli("summary", str(path))
    assert code == 2 and env in one_error_line(err, path)


def test_model_nesting_limit(tmp_path, monkeypatch):
    path = H.keras_archive(tmp_path / "nested.keras", H.nested_models_config(5))
    assert inspector.load(path).layers
    monkeypatch.setenv("INSPECTOR_MAX_MODEL_NESTING", "3")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_MODEL_NESTING"):
        inspector.load(path)


def test_zip_member_size_limit(tmp_path, monkeypatch):
    source = H.SEED_KERAS
    target = tmp_path / "deflated.keras"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert inspector.load(target).layers
    monkeypatch.setenv("INSPECTOR_MAX_ZIP_MEMBER_BYTES", "1000")
    with pytest.raises(LimitExceeded, match="INSPECTOR_MAX_ZIP_MEMBER_BYTES"):
        inspector.load(target)


# -- 6. trust -------------------------------------------------------------------------------------------

def test_running_a_model_needs_trust_when_it_holds_security_facts(tmp_path):
    from inspector.trust import facts_by_code, require_trust

    clean = inspector.load(H.SEED_KERAS)
    require_trust(clean, trust=False)
    risky = inspector.load(H.h5_with_external_link(tmp_path / "l.h5", "/etc/passwd"))
    assert facts_by_code(risky) == {"SEC004": 1}
    with pytest.raises(UnsafeModel, match="SEC004.*--trust"):
        require_trust(risky, trust=False, action="probe the model")
    require_trust(risky, trust=True)
