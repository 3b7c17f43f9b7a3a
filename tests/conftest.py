"""Shared pytest setup: the CLI runner fixture ``cli`` and the Keras model fixtures.

Helpers the tests import live in the ``tests/helpers/`` package; Keras model builders
are in ``helpers/keras_models.py`` (use its functions directly or the fixtures below).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class CliResult:
    """What one ``inspector`` command line returned: exit code, standard output, standard error."""

    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``cli(*argv) -> CliResult``: run ``inspector.cli.main`` in-process (arguments may be paths)."""
    from inspector.cli import main

    def run(*argv: object) -> CliResult:
        capsys.readouterr()  # drop what earlier code printed
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


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
