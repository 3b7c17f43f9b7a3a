"""Hostile files of issue 13 on the Keras, HDF5 and SavedModel side: each a file or
folder built here, each with a near miss.  FIFOs are created in ``tmp_path``; a test
that would hang without its fix is protected by the fix (no timeouts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import inspector
from helpers import hostile as H
from inspector import isolation
from inspector.errors import LimitExceeded, ModelLoadError, UnsafeModel

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def saved_module(tmp_path_factory) -> Path:
    """A SavedModel written by TensorFlow: one variable, a serving signature."""
    return H.affine_saved_model(tmp_path_factory.mktemp("sm") / "affine")


def _fifo_variant(src: Path, dst: Path, case: str) -> Path:
    shutil.copytree(src, dst)
    variables = dst / "variables"
    if case == "index":
        (variables / "variables.index").unlink()
        os.mkfifo(variables / "variables.index")
    elif case == "data":
        [shard] = variables.glob("variables.data-*")
        shard.unlink()
        os.mkfifo(shard)
    else:  # a TF1 checkpoint: TensorFlow opens variables/variables when there is no index
        for f in list(variables.iterdir()):
            f.unlink()
        os.mkfifo(variables / "variables")
    return dst


@pytest.mark.parametrize("case", ["index", "data", "v1"])
def test_savedmodel_variables_that_are_fifos_are_never_opened(case, saved_module, tmp_path):
    folder = _fifo_variant(saved_module, tmp_path / case, case)
    graph = inspector.load(folder)
    [weight] = list(graph.iter_weights())
    with pytest.raises(UnsafeModel, match="not a regular file"):
        weight.read()
    proc = subprocess.run([sys.executable, "-m", "inspector", "lint", str(folder)], capture_output=True, text=True,
                          env=ENV, cwd=tmp_path)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr


def test_savedmodel_variables_near_miss(saved_module):
    """The intact folder reads its variable (through the time-limited first read)."""
    [weight] = list(inspector.load(saved_module).iter_weights())
    assert weight.read().tolist() == [[1.0, 1.0]] * 3
    assert weight.read().shape == (3, 2)  # later reads in-process


def test_a_savedmodel_error_is_one_line_without_tensorflow_chatter(tmp_path):
    """TensorFlow prints start-up lines to stderr even with TF_CPP_MIN_LOG_LEVEL=3;
    an error about a SavedModel is still exactly one line."""
    broken = H.savedmodel_proto(tmp_path / "broken", main=[("Identity", "i")])
    (broken / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    env = dict(ENV)
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    proc = subprocess.run([sys.executable, "-m", "inspector", "summary", str(broken)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("inspector: error: "), \
        proc.stderr
    good = H.savedmodel_proto(tmp_path / "good", main=[("Identity", "i")])
    proc = subprocess.run([sys.executable, "-m", "inspector", "summary", str(good)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# -- blow-ups from small HDF5 and zip files ------------------------------------------------------

@pytest.mark.skipif(not isolation.ISOLATE, reason="the memory budget needs a forked child process")
def test_shared_variable_length_strings_do_not_blow_up(tmp_path):
    """1,500 strings pointing at one 1 MiB string: refused within the child's memory budget."""
    path = H.h5_with_shared_vlen_strings(tmp_path / "names.h5")
    assert path.stat().st_size < 2 << 20
    with pytest.raises(LimitExceeded, match="variable-length string"):
        inspector.load(path)
    near = H.h5_with_shared_vlen_strings(tmp_path / "near.h5", count=50, size=1 << 10)
    with pytest.raises(ModelLoadError, match="weights only|model_config"):  # read, then judged as a model
        inspector.load(near)


def test_vlen_string_attributes_are_read_bounded():
    """Normal variable-length string attributes (Keras 3's layer names) read as before."""
    import h5py

    from inspector.loaders.h5index import read_attrs

    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        f.attrs.create("layer_names", data=["dense", "dense_1" * 100], dtype=h5py.string_dtype())
        f.attrs.create("model_config", data="{" + "x" * 5000 + "}", dtype=h5py.string_dtype())
        assert read_attrs(f.id, ["layer_names", "model_config"], where="") == {
            "layer_names": ["dense", "dense_1" * 100], "model_config": "{" + "x" * 5000 + "}"}


def test_a_string_kernel_is_refused_before_its_values_are_read(tmp_path):
    graph = inspector.load(H.h5_with_string_kernel(tmp_path / "strings.h5"))
    kernel = next(w for w in graph.iter_weights() if w.dtype == "string")
    with pytest.raises(ModelLoadError, match="stored as string, not as numbers"):
        kernel.read()
    numeric = [w for w in graph.iter_weights() if w.dtype != "string"]
    assert numeric and all(w.read().dtype.kind == "f" for w in numeric)  # the near miss: numbers read


def test_a_faked_compress_size_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    path = H.keras_with_lying_compress_size(tmp_path / "bomb.keras")
    assert path.stat().st_size < 2 << 20
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(LimitExceeded, match="zip bomb"):
        inspector.load(path)
    assert list(scratch.iterdir()) == []
    honest = H.keras_with_lying_compress_size(tmp_path / "honest.keras", size=2 << 20, ratio=None)
    with pytest.raises(ModelLoadError, match="HDF5"):  # not refused as a bomb: read, and zeros are no HDF5
        inspector.load(honest)


def test_an_unknown_hdf5_filter_does_not_load_plugins(tmp_path):
    """HDF5 looks for a filter it does not know in its plugin folders and loads every
    library there: inspector empties that search path first (the plugin is a FIFO the
    watch opens for writing, so a reader would be seen, and never hangs)."""
    path = H.h5_with_unknown_filter(tmp_path / "filtered.h5")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugin = H.make_fifo(plugins / "libh5evil.so")
    env = dict(ENV, HDF5_PLUGIN_PATH=str(plugins))
    watch = H.OpenWatch([plugin], tmp_path / "opened.txt")
    with watch.active():
        proc = subprocess.run([sys.executable, "-m", "inspector", "lint", str(path)], capture_output=True,
                              text=True, env=env, cwd=tmp_path)
    assert watch.opened == [], watch.opened
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    import h5py

    from inspector.loaders.h5index import disable_plugins

    h5py.h5pl.append(str(plugins).encode())
    assert h5py.h5pl.size() >= 1
    disable_plugins()
    assert h5py.h5pl.size() == 0


# -- a configuration that comes with the models may not silence the security scan ---------------

LAMBDA3 = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None, "closure": None}}


@pytest.mark.parametrize("table", [
    'ignore = ["SEC"]', 'select = ["INIT"]', 'ignore = ["ALL"]',
    '[tool.inspector.per-file-ignores]\n"*.keras" = ["SEC001", "INIT"]',
    '[tool.inspector.rules.SEC001]\nseverity = "info"'])
def test_an_auto_found_pyproject_cannot_silence_sec_rules(table, tmp_path, cli, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    H.keras_archive(repo / "m.keras", H.functional_config(H.layer_entry("Lambda", "lam", "x", function=LAMBDA3)))
    (repo / "pyproject.toml").write_text(f"[tool.inspector]\n{table}\n")
    monkeypatch.chdir(repo)
    code, out, err = cli("lint", "m.keras")
    assert code == 1 and "SEC001 [error]" in out, out
    assert err.startswith("inspector: warning: ") and "pyproject.toml" in err and "--config" in err, err
    assert len(err.splitlines()) == 1
    # named explicitly, the file applies as written
    code, out, err = cli("lint", "m.keras", "--config", "pyproject.toml")
    assert "SEC001 [error]" not in out and err == "", (out, err)


def test_an_auto_found_pyproject_still_applies_everything_else(tmp_path, cli, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    H.keras_archive(repo / "m.keras", H.functional_config(H.layer_entry("Lambda", "lam", "x", function=LAMBDA3)))
    (repo / "pyproject.toml").write_text('[tool.inspector]\nignore = ["MODEL", "INIT"]\nfail-on = "never"\n')
    monkeypatch.chdir(repo)
    code, out, err = cli("lint", "m.keras")
    assert code == 0 and err == "" and "SEC001 [error]" in out and "MODEL001" not in out
