"""Resource limits that protect inspector from hostile model files.

A model file decides how much inspector reads, allocates and walks: the number
of archive members, the size a compressed member expands to, how deeply its JSON
and graphs nest, how large a tensor it declares.  Every such quantity has a
limit here.  A file past a limit ends in one
:class:`~inspector.errors.LimitExceeded` error (exit code 2) that names the limit
and the environment variable that raises it, in seconds and with bounded memory.

The defaults are far above what real models need (a ResNet50 config is ~200 KiB
and 10 levels deep; the largest real Keras configs are a few MiB) and far below
what exhausts a CI machine.  Each one can be changed with an environment variable
``INSPECTOR_MAX_<FIELD>`` (``INSPECTOR_MAX_JSON_BYTES=256MiB``); values are
positive integers with optional ``_`` separators and an optional binary size
suffix (``K``/``KiB``, ``M``/``MiB``, ``G``/``GiB``, ``T``/``TiB``).

    >>> from inspector.limits import current
    >>> current().json_depth
    500

Loaders call :func:`current` when they start reading a file, so a changed
environment applies to the next file.  SECURITY.md documents every limit.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Iterator, Mapping

from .errors import UsageError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

ENV_PREFIX = "INSPECTOR_MAX_"


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit, with its default.  Field ``x`` is set by ``INSPECTOR_MAX_X``."""

    # -- .keras archives ------------------------------------------------------------------
    zip_members: int = 10_000
    """Entries a ``.keras`` archive may list (a Keras archive has three to a few hundred).
    The archive's central directory is checked before it is parsed: it may take at
    most ``zip_members`` KiB."""
    zip_member_bytes: int = 16 * GiB
    """Largest size a *compressed* archive member may expand to (a recompressed
    weights member is extracted to a temporary file).  Stored members, as Keras
    writes them, are read in place and are not limited by this."""
    compression_ratio: int = 100
    """Largest expansion accepted for data bigger than 256 MiB: a compressed zip
    member that expands more is refused as a zip bomb, and an HDF5 dataset that
    declares more than this times what it stores is reported (SEC004) and never
    read into memory."""

    # -- JSON configs ---------------------------------------------------------------------
    json_bytes: int = 32 * MiB
    """Largest model config read (``config.json``, the ``model_config`` attribute,
    one ``keras_metadata.pb`` entry)."""
    json_depth: int = 500
    """Deepest JSON nesting accepted (a real Keras config stays under ~60)."""
    model_nesting: int = 64
    """Deepest chain of models used as layers inside models."""
    layers: int = 500_000
    """Most layer entries in one config, nested models included."""

    # -- HDF5 -----------------------------------------------------------------------------
    hdf5_objects: int = 1_000_000
    """Most links (groups and datasets) an HDF5 file may hold."""
    hdf5_attribute_bytes: int = 64 * MiB
    """Largest HDF5 attribute read (``model_config`` of a big model is a few MiB)."""
    hdf5_seconds: int = 60
    """Longest the HDF5 library may take to read a file's metadata.  On Linux it
    reads in a separate process, so a damaged file that sends the library into an
    endless loop (or crashes it) ends in an error instead of a hung CI job."""
    tensor_bytes: int = 16 * GiB
    """Largest tensor (by its declared size) read into memory, by ``lint``'s weight
    checks; a summary reads no tensor at all."""

    # -- protobuf: SavedModel and ONNX ----------------------------------------------------
    proto_bytes: int = 1 * GiB
    """Largest ``saved_model.pb`` / ``keras_metadata.pb`` parsed, and largest ONNX graph
    structure (weights excluded) parsed; protobuf itself stops at 2 GiB."""
    proto_depth: int = 200
    """Deepest nesting of protobuf messages walked in an ONNX file."""
    onnx_nodes: int = 500_000
    """Nodes in all graphs, sub-graphs and functions of one ONNX file: counted in the wire-format pass,
    before protobuf parses the graph (building costs about 5 KiB of memory per node; 162k nodes
    take about 1 GiB, so a million would take 5)."""
    onnx_graph_depth: int = 48
    """Nesting of ONNX sub-graphs (``If``/``Loop``/``Scan`` bodies, function calls)."""
    onnx_expanded_layers: int = 5_000_000
    """Layers a full walk of an ONNX graph may visit (shared function bodies counted per call)."""

    @staticmethod
    def env_name(field_name: str) -> str:
        """``INSPECTOR_MAX_JSON_BYTES`` for ``json_bytes``."""
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by ``INSPECTOR_MAX_*`` variables of ``environ``
        (``os.environ`` by default).  A malformed value is a :class:`UsageError`."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(cls.env_name(f.name))
            if raw is not None and raw.strip():
                values[f.name] = parse_size(raw, name=cls.env_name(f.name))
        return cls(**values)


DEFAULTS = Limits()
"""The documented defaults (what :func:`current` returns with a clean environment)."""

MAX_DIGITS = 18
"""Digits a limit value may have (10^18 bytes is far beyond any machine; Python's ``int`` refuses
to parse more than 4,300 digits with an error of its own)."""
_SIZE = re.compile(r"^\s*(\d[\d_,]*)\s*([KMGT]?)(?:I?B)?\s*$", re.I)
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1024 * GiB}


def parse_size(raw: str, *, name: str = "value") -> int:
    """``"64MiB"`` → 67108864; ``"1_000"`` → 1000.  Positive integers only."""
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    m = _SIZE.match(raw)
    if not m:
        raise UsageError(f"{name}={shown!r} is not a positive integer (optionally with a K/M/G/T size suffix)")
    digits = m.group(1).replace("_", "").replace(",", "").lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise UsageError(f"{name}={shown!r} is too large ({len(digits)} digits; at most {MAX_DIGITS})")
    number = int(digits)
    value = number * _UNITS[m.group(2).upper()]
    if value <= 0:
        raise UsageError(f"{name}={shown!r} must be greater than 0")
    return value


_cache: tuple[tuple[str | None, ...], Limits] | None = None
_ENV_NAMES = tuple(Limits.env_name(f.name) for f in fields(Limits))


_held: ContextVar[Limits | None] = ContextVar("inspector_held_limits", default=None)


def current() -> Limits:
    """The limits in force: defaults plus ``INSPECTOR_MAX_*`` overrides (re-read when
    the environment changes, cached otherwise), or those :func:`held` fixed."""
    fixed = _held.get()
    if fixed is not None:
        return fixed
    global _cache
    key = tuple(map(os.environ.get, _ENV_NAMES))  # called per tensor read: no per-call field or name building
    if _cache is None or _cache[0] != key:
        _cache = (key, Limits.from_env())
    return _cache[1]


@contextmanager
def held() -> Iterator[Limits]:
    """Within the block, :func:`current` returns the limits in force when it began, without looking at the
    environment again (one lint reads 100,000s of tensors; each read checks ``tensor_bytes``)."""
    fixed = current()
    token = _held.set(fixed)
    try:
        yield fixed
    finally:
        _held.reset(token)


def hint(field_name: str) -> str:
    """The phrase loaders append to a limit error: how to raise that limit."""
    return f"set {Limits.env_name(field_name)} to raise the limit"
