"""Regenerate the sample models shipped in ``samples/``.

    python samples/make_samples.py            # every sample
    python samples/make_samples.py seed_cnn   # only some

Needs the ``tensorflow`` extra (Keras 3).  Each builder writes its files into
this folder and returns their names.  Weights are drawn with fixed seeds, so
the models are the same every time (the .keras archives still record the date
they were saved).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
SAMPLES: dict[str, Callable[[Path], list[str]]] = {}


def sample(fn: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """Register a builder under its function name."""
    SAMPLES[fn.__name__] = fn
    return fn


@sample
def seed_cnn(out: Path) -> list[str]:
    """The small CNN of the seed document, with the layer names of its listing."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(1, 3, name="conv2d_6"),
            layers.BatchNormalization(name="batch_normalization_6"),
            layers.ReLU(name="re_lu_6"),
            layers.Conv2D(2, 3, name="conv2d_7"),
            layers.BatchNormalization(name="batch_normalization_7"),
            layers.ReLU(name="re_lu_7"),
            layers.Flatten(name="flatten_3"),
            layers.Dense(10, name="dense_3"),
        ],
        name="sequential_3",
    )
    model.save(out / "seed_cnn.keras")
    model.save(out / "seed_cnn.h5")
    return ["seed_cnn.keras", "seed_cnn.h5"]


# Further samples register themselves below with @sample.


def main(argv: list[str]) -> int:
    names = argv or list(SAMPLES)
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        print(f"unknown sample(s): {', '.join(unknown)}; known: {', '.join(SAMPLES)}", file=sys.stderr)
        return 2
    for name in names:
        for written in SAMPLES[name](HERE):
            print(f"wrote samples/{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
