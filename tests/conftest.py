"""Shared pytest setup.  Keras model builders live in ``keras_models.py``: use its
functions directly (``from keras_models import saved_app``) or these fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def saved_app():
    """``saved_app(name, fmt) -> Path``: a ``keras.applications`` model (weights=None)
    saved as ``.keras`` or ``.h5``, built and saved once per session."""
    from keras_models import saved_app as build

    return build


@pytest.fixture(scope="session")
def saved_model():
    """``saved_model(key, fmt) -> Path`` for the small models in ``keras_models.BUILDERS``."""
    from keras_models import saved_model as build

    return build
