"""The command line: exit codes, one-line errors, entry points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.cli import one_error_line

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "seed_cnn.keras"
SAMPLE_H5 = ROOT / "samples" / "seed_cnn.h5"


def test_samples_summarize(cli):
    for sample in (SAMPLE, SAMPLE_H5):
        code, out, err = cli("summary", str(sample))
        assert code == 0 and err == ""
        assert out.startswith('Model: "sequential_3"')
        assert "Total params: 15,750" in out  # the seed document's own figure


def test_missing_file(cli, tmp_path):
    path = tmp_path / "nope.keras"
    code, out, err = cli("summary", str(path))
    assert code == 2 and out == ""
    assert "no such file" in one_error_line(err, path)


BROKEN_FILES = [
    ("empty.keras", b""),
    ("empty.h5", b""),
    ("random.keras", os.urandom(4096)),
    ("random.h5", os.urandom(4096)),
    ("random.onnx", b"\x00\xff" * 100),
    ("model.txt", b"hello"),
]


# ids by name: random bytes in a test id would differ between pytest-xdist workers
@pytest.mark.parametrize("name,content", BROKEN_FILES, ids=[name for name, _ in BROKEN_FILES])
def test_broken_files_give_one_line_and_exit_2(cli, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = cli("summary", str(path))
    assert code == 2 and out == ""
    one_error_line(err, path)


@pytest.mark.parametrize("sample,keep", [(SAMPLE, 1 / 2), (SAMPLE_H5, 1 / 3)])
def test_truncated_files(cli, tmp_path, sample, keep):
    data = sample.read_bytes()
    path = tmp_path / f"truncated{sample.suffix}"
    path.write_bytes(data[: int(len(data) * keep)])
    code, _, err = cli("summary", str(path))
    assert code == 2
    one_error_line(err, path)


def test_zip_without_config(cli, tmp_path):
    path = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
    code, _, err = cli("summary", str(path))
    assert code == 2
    assert "config.json" in one_error_line(err, path)


def test_json_that_is_not_a_model(cli, tmp_path):
    path = tmp_path / "notamodel.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", '{"hello": [1, 2, 3]}')
    code, _, err = cli("summary", str(path))
    assert code == 2
    one_error_line(err, path)


def test_unknown_format_is_a_usage_error(cli):
    code, out, err = cli("summary", str(SAMPLE), "--format", "nope")
    assert code == 2 and out == ""
    assert err.startswith("inspector: error: unknown format 'nope'") and len(err.splitlines()) == 1


def test_several_files_keep_going_and_report_the_worst(cli, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    code, out, err = cli("summary", str(bad), str(SAMPLE))
    assert code == 2
    assert 'Model: "sequential_3"' in out
    one_error_line(err, bad)


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    proc = subprocess.run([sys.executable, "-m", "inspector", "--debug", "summary", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2  # the documented exit code, traceback or not
    assert "Traceback" in proc.stderr


def test_python_dash_m_and_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "inspector", "summary", str(SAMPLE)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Total params: 15,750" in proc.stdout
    script = shutil.which("inspector")
    assert script, "the inspector console script is not installed (pip install -e .)"
    proc = subprocess.run([script, "summary", str(SAMPLE), "--format", "github"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| conv2d_6" in proc.stdout


def test_import_inspector_stays_light():
    code = ("import sys, inspector; heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'matplotlib', "
            "'torch', 'networkx') if m in sys.modules]; print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == ""


def test_summary_does_not_import_tensorflow(tmp_path):
    code = ("import sys; from inspector.cli import main; rc = main(['summary', %r]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'framework imported'; "
            "sys.exit(rc)") % str(SAMPLE)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_summary_warns_on_one_line_about_unsafe_content(cli, tmp_path):
    import keras

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2, name="doubler")(inp)
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    code, out_text, err = cli("summary", str(path))
    assert code == 0, err
    warnings = [ln for ln in out_text.splitlines() if ln.startswith("Warning:")]
    assert len(warnings) == 1 and "SEC001" in warnings[0]
    assert "doubler (Lambda)" in out_text
    # a clean model prints no such line
    code, out_text, _ = cli("summary", str(SAMPLE))
    assert "Warning:" not in out_text
