"""Precision: healthy real architectures raise no warning and no error (infos allowed).

Every ``keras.applications`` model built with ``weights=None`` must pass; the suite
checks one or more models of each architecture family (all of them:
``python bench/lint_precision.py``), plus every model of the onnx package's
``backend/test/data/light`` folder.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from helpers.lint import hits, lint_path, problems

LIGHT = sorted((Path(onnx.__file__).parent / "backend" / "test" / "data" / "light").glob("*.onnx"))

FAMILIES = ("ResNet50", "ResNet50V2", "MobileNet", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0",
            "EfficientNetV2B0", "DenseNet121", "InceptionV3", "Xception", "NASNetMobile", "ConvNeXtTiny")


def test_light_models_exist():
    assert len(LIGHT) >= 9


@pytest.mark.parametrize("path", LIGHT, ids=lambda p: p.stem)
def test_onnx_light_models_are_clean(path):
    findings = lint_path(path)
    assert not problems(findings), [(f.layer, f.code, f.message) for f in problems(findings)]
    # their kernels are ConstantOfShape fills: reported as placeholders, not as INIT002
    assert "placeholders" in hits(findings, "MODEL001")[0].message


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_keras_applications_are_clean(saved_app, name):
    findings = lint_path(saved_app(name, "keras"))
    assert not problems(findings), [(f.layer, f.code, f.message) for f in problems(findings)]
    [state] = hits(findings, "MODEL001")
    assert state.message.startswith("model looks untrained")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_keras_applications_h5_are_clean(saved_app, name):
    findings = lint_path(saved_app(name, "h5"))
    assert not problems(findings), [(f.layer, f.code, f.message) for f in problems(findings)]
