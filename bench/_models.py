"""Models the benchmark scripts share, built once per folder (``weights=None``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def build_resnet50(folder: Path, suffix: str = ".keras") -> Path:
    """``folder/resnet50.keras`` (or ``suffix``: ``.h5``), saved by Keras in a subprocess unless already there."""
    path = folder / f"resnet50{suffix}"
    if not path.exists():
        code = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras; "
                "keras.applications.ResNet50(weights=None).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return path
