"""The classic listing must be Keras 2's ``model.summary()`` byte for byte.

The two reference listings ``tests/golden/*_keras2_summary.txt`` were printed by Keras 2
(``model.summary()`` of TensorFlow 2.x-era Keras, copied from the seed document; every
table line padded to full width): they are references, never regenerated.  Here the
same models are built with today's Keras, saved as ``.keras`` and ``.h5``, read back
by the static loaders and printed by the ``classic`` reporter.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import inspector

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


@pytest.fixture(scope="module")
def seed_cnn_files(tmp_path_factory):
    # the very builder that makes samples/seed_cnn.*
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "samples" / "make_samples.py")
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    model = make_samples.seed_cnn_model()
    out = tmp_path_factory.mktemp("seed_cnn")
    paths = {"keras": out / "m.keras", "h5": out / "m.h5"}
    for p in paths.values():
        model.save(p)
    return paths


@pytest.fixture(scope="module")
def resnet50_files(tmp_path_factory):
    import keras

    # The golden listing's input layer is called input_2; name ours the same.
    model = keras.applications.ResNet50(weights=None, input_tensor=keras.Input((224, 224, 3), name="input_2"))
    out = tmp_path_factory.mktemp("resnet50")
    paths = {"keras": out / "resnet50.keras", "h5": out / "resnet50.h5"}
    for p in paths.values():
        model.save(p)
    return paths


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_sequential_listing_is_byte_exact(seed_cnn_files, fmt):
    text = inspector.summarize(inspector.load(seed_cnn_files[fmt]))
    assert text == golden("sequential_keras2_summary.txt")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_resnet50_listing_is_byte_exact(resnet50_files, fmt):
    text = inspector.summarize(inspector.load(resnet50_files[fmt]))
    expected = golden("resnet50_keras2_summary.txt")
    # Compare line by line first, for a readable failure, then as a whole.
    for i, (got, want) in enumerate(zip(text.splitlines(), expected.splitlines(), strict=False)):
        assert got == want, f"line {i + 1} differs"
    assert text == expected


def test_cli_prints_the_listing(seed_cnn_files, cli):
    code, out, _ = cli("summary", seed_cnn_files["keras"])
    assert code == 0 and out == golden("sequential_keras2_summary.txt")


def test_line_length_and_positions_as_in_keras(seed_cnn_files):
    graph = inspector.load(seed_cnn_files["keras"])
    text = inspector.summarize(graph, line_length=80, positions=[0.5, 0.8, 1.0])
    lines = text.splitlines()
    header = lines[2]
    assert len(header) == 80
    assert header.index("Output Shape") == 40 and header.index("Param #") == 64
    # absolute positions work too
    text2 = inspector.summarize(graph, line_length=80, positions=[40, 64, 80])
    assert text2 == text
