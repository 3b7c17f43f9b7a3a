"""Shared pytest setup: the command-line runner fixture ``cli`` and the Keras model fixtures.

Helpers the tests import live in the ``tests/helpers/`` package; Keras model builders
are in ``helpers/keras_models.py`` (use its functions directly or the fixtures below).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from helpers.cli import CliResult, run_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Commands run in this process and without the result cache unless a test asks for them (their own
# tests do): tests monkeypatch inspector's functions, which worker processes would not see.
os.environ.setdefault("INSPECTOR_JOBS", "1")
os.environ.setdefault("INSPECTOR_NO_CACHE", "1")


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """``cli(*argv) -> CliResult``: run ``inspector`` in-process (see ``helpers.cli.run_cli``)."""
    return run_cli


@pytest.fixture(scope="session")
def saved_app():
    """``saved_app(name, fmt) -> Path``: a ``keras.applications`` model (weights=None)
    saved as ``.keras`` or ``.h5``, built and saved once per session."""
    from helpers.keras_models import saved_app as build

    return build


@pytest.fixture(scope="session")
def saved_model():
    """``saved_model(key, fmt) -> Path`` for the small models in ``keras_models.BUILDERS``."""
    from helpers.keras_models import saved_model as build

    return build
