"""``summary -f keras3``: Keras 3's own ``model.summary()`` table, byte for byte.

The oracle is Keras itself: each model's table is printed by Keras 3 (``print_fn``
captures rich's plain-text rendering, ``COLUMNS`` is set wide so rich crops nothing, the
line length is given so the terminal does not matter) and must equal what inspector
prints from the saved file without Keras.  The golden files pin the output of
Keras 3.15 for the small CNN in ``samples/`` and ResNet50.  The one difference allowed:
inspector adds its security warning under the totals for a file that carries code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import inspector
from helpers.golden import check_golden

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def keras_summary(model, line_length: int, monkeypatch) -> str:
    """What ``model.summary(line_length=…)`` prints, captured as plain text."""
    monkeypatch.setenv("COLUMNS", "300")
    out: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: out.append(text), line_length=line_length)
    return "".join(out)


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory):
    import keras

    model = keras.applications.ResNet50(weights=None, input_tensor=keras.Input((224, 224, 3), name="input_layer"))
    path = tmp_path_factory.mktemp("resnet50_k3") / "resnet50.keras"
    model.save(path)
    return model, path


@pytest.mark.parametrize("sample", ["seed_cnn.keras", "seed_cnn.h5"])
def test_seed_cnn_table_is_keras3_byte_for_byte(sample, monkeypatch):
    import keras

    ours = inspector.summarize(inspector.load(SAMPLES / sample), fmt="keras3")
    theirs = keras_summary(keras.models.load_model(SAMPLES / "seed_cnn.keras"), 88, monkeypatch)
    assert ours == theirs
    check_golden("summary_seed_cnn_keras3.txt", ours)


def test_resnet50_table_is_keras3_byte_for_byte(resnet50, monkeypatch):
    model, path = resnet50
    ours = inspector.summarize(inspector.load(path), fmt="keras3")
    theirs = keras_summary(model, 108, monkeypatch)
    for i, (got, want) in enumerate(zip(ours.splitlines(), theirs.splitlines(), strict=False)):
        assert got == want, f"line {i + 1} differs"
    assert ours == theirs
    check_golden("resnet50_keras3_summary.txt", ours)


@pytest.mark.parametrize("length", [60, 130])
def test_other_line_lengths_wrap_and_cut_cells_as_keras3(resnet50, monkeypatch, length):
    model, path = resnet50
    ours = inspector.summarize(inspector.load(path), fmt="keras3", line_length=length)
    assert ours == keras_summary(model, length, monkeypatch)
    assert {len(line) for line in ours.splitlines()[1:-3]} == {length}


def _long_names():
    import keras

    inp = keras.Input((8, 8, 3), name="an_input_with_a_rather_long_name_longer_than_any_cell")
    a = keras.layers.Conv2D(4, 3, name="averyveryverylonglayernamewithoutanyspaceinsideatall")(inp)
    b = keras.layers.Conv2D(4, 3, name="short")(inp)
    return keras.Model(inp, keras.layers.Add(name="add")([a, b]), name="long_names")


@pytest.mark.parametrize("key", ["long_names", "shared_twice", "nested_functional", "compiled_fitted",
                                 "layer_zoo", "embedding_seq", "with_lambda"])
@pytest.mark.parametrize("length", [None, 50])
def test_small_models_match_keras3(key, length, tmp_path, monkeypatch):
    from helpers.keras_models import keras_model

    model = _long_names() if key == "long_names" else keras_model(key)
    path = tmp_path / f"{key}.keras"
    model.save(path)
    sequential_like = "Connected to" not in keras_summary(model, 200, monkeypatch)
    theirs = keras_summary(model, length or (88 if sequential_like else 108), monkeypatch)
    ours = inspector.summarize(inspector.load(path), fmt="keras3", line_length=length)
    if key == "with_lambda":  # the allowed difference: inspector's security warning line
        warning = ours.splitlines()[-1]
        assert warning.startswith("Warning: 1 security problem") and "SEC001" in warning
        ours = ours[: -len(warning) - 1]
    assert ours == theirs


def test_keras3_is_not_the_classic_listing_and_is_registered(cli):
    from inspector.reporters.summary import RENDERERS, formats

    assert "keras3" in RENDERERS and "keras3" in formats()
    code, out, _ = cli("summary", SAMPLES / "seed_cnn.keras", "-f", "keras3")
    assert code == 0 and out.splitlines()[1].startswith("┏━") and "Total params: 15,750 (61.52 KB)" in out
    _, classic, _ = cli("summary", SAMPLES / "seed_cnn.keras")
    assert classic != out and "┏" not in classic


def test_keras3_with_macs_adds_a_column_and_a_total(cli):
    code, out, _ = cli("summary", SAMPLES / "seed_cnn.keras", "-f", "keras3", "--macs")
    lines = out.splitlines()
    assert code == 0 and "MACs ┃" in lines[2]
    assert "│         24,300 │" in out and lines[-1] == " Total MACs: 54,092"
    assert len(lines[1]) == 88 + 14 + 3


def test_keras3_positions_must_fit(cli):
    code, _, err = cli("summary", SAMPLES / "seed_cnn.keras", "-f", "keras3", "--positions", "0.5,1.0")
    assert code == 2 and "--positions needs 3 values" in err
    code, _, err = cli("summary", SAMPLES / "seed_cnn.keras", "-f", "keras3", "--line-length", "10")
    assert code == 2 and "narrower than 4" in err


def test_probe_draws_keras3_as_a_box_drawn_table(cli):
    code, out, _ = cli("probe", SAMPLES / "lint_deep_sigmoid.onnx", "-f", "keras3")
    assert code == 0 and out.startswith("┍━") and "│ sigmoid_1/sigmoid" in out
    _, simple, _ = cli("probe", SAMPLES / "lint_deep_sigmoid.onnx", "-f", "simple")
    assert "┍" not in simple
