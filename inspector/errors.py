"""The one error hierarchy: every problem a user can act on is an InspectorError.

The CLI prints ``inspector: error: FILE: message`` on one line and exits 2; the
message is a sentence that says what is wrong and, where possible, what to do.
"""

from __future__ import annotations


class InspectorError(Exception):
    """Base of every error inspector reports to a user (exit code 2).

    ``path`` is the file the error is about when the code that raised or re-raised it
    knows it (the Python API, :mod:`inspector.api`, sets it); ``str()`` then starts
    with it (``x.onnx: is not an ONNX model (…)``).  The CLI names the file itself.
    """

    exit_code = 2
    path: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.path}: {text}" if self.path else text


def error_line(message: str) -> str:
    """The one line an error is told in on standard error: ``inspector: error: MESSAGE``, with what a terminal
    must not see in it (controls, bidi overrides a file name may hold) made visible."""
    from .textsafe import visible

    return f"inspector: error: {visible(message)}"


class UsageError(InspectorError):
    """Wrong command-line usage (unknown format, bad option value)."""


class OutputError(InspectorError):
    """The output cannot be written (standard output on a full disk): the run stops, whatever file is next."""

    def __init__(self, error: OSError) -> None:
        super().__init__(f"could not write the output: {error}")


class ModelLoadError(InspectorError):
    """The file exists but is not a readable model (corrupt, truncated, not a model)."""


class UnsupportedFormat(ModelLoadError):
    """The file is of a kind inspector does not read."""


class MissingDependency(InspectorError):
    """An optional extra is needed (``pip install 'dl-inspector[tensorflow]'``)."""

    def __init__(self, what: str, *, extra: str, package: str) -> None:
        super().__init__(
            f"{what} needs {package}: install it with pip install 'dl-inspector[{extra}]'"
        )
        self.extra = extra
        self.package = package


class UnsafeModel(InspectorError):
    """The model would have to run untrusted code to be loaded (see SEC rules)."""


class LimitExceeded(ModelLoadError):
    """A size, count or depth limit protecting against hostile files was hit."""


class FileError(InspectorError):
    """An InspectorError tied to the file it happened on (prints ``FILE: message``)."""

    def __init__(self, path: str, error: InspectorError) -> None:
        super().__init__(str(error))
        self.path = path
        self.error = error
        self.exit_code = error.exit_code
