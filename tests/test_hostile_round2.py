"""Hostile files of issue 13 on the Keras, HDF5 and SavedModel side: each a file or
folder built here, each with a near miss.  FIFOs are created in ``tmp_path``; a test
that would hang without its fix is protected by the fix (no timeouts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import inspector
from helpers import hostile as H
from inspector.errors import UnsafeModel

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def saved_module(tmp_path_factory) -> Path:
    """A SavedModel written by TensorFlow: one variable, a serving signature."""
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones((3, 2)), name="w")

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w)

    path = tmp_path_factory.mktemp("sm") / "affine"
    tf.saved_model.save(Affine(), str(path))
    return path


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
