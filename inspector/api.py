"""The Python API: load, summarize, lint, count MACs and write reports from a notebook or a script.

Every function takes a *source*: a path (``str`` or :class:`os.PathLike`), a
:class:`~inspector.ir.ModelGraph` already loaded, or a model in memory — a
``keras.Model`` or an ``onnx.ModelProto``.  An in-memory model is written to a
private temporary file (``model.save(...)`` for Keras, the serialized protobuf for
ONNX), read statically like any other file, and the file is deleted afterwards;
keras and onnx are never imported by ``import inspector``.

    >>> import inspector
    >>> result = inspector.lint("model.keras", select=["INIT", "BN"])
    >>> result.to_dict()["schema"]
    'inspector.lint/1'

Results are frozen dataclasses with ``to_dict()`` (the ``inspector.summary/1`` and
``inspector.lint/1`` JSON documents, built by the JSON reporters) and
``_repr_html_`` (a table in Jupyter).  Errors are :class:`~inspector.errors.InspectorError`
subclasses whose ``path`` names the file (``str(err)``: ``x.onnx: is not an ONNX model (…)``).

``dims`` (``load``, ``summary``, ``count_macs``, ``lint``, ``write_report``) binds symbolic dims
to numbers before shapes and MACs are computed, as ``--dim NAME=VALUE`` does:
``inspector.count_macs("llama.onnx", dims={"batch": 1, "seq": 128})``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Union

from .errors import FileError, InspectorError, ModelLoadError, UsageError
from .fileio import is_remote
from .ir import ModelGraph

if TYPE_CHECKING:  # pragma: no cover
    from .analysis.macs import MacsReport
    from .analysis.summary import Summary
    from .config import LintConfig
    from .findings import Finding, ModelReport

Source = Union[str, "os.PathLike[str]", ModelGraph, Any]
"""A path, a loaded :class:`ModelGraph`, a ``keras.Model`` or an ``onnx.ModelProto``."""
ConfigSource = Union["LintConfig", str, "os.PathLike[str]", None]
"""A :class:`~inspector.config.LintConfig`, a TOML file to read one from, or ``None`` (the defaults)."""

__all__ = ["LintResult", "ModelSummary", "count_macs", "lint", "load", "summary", "write_report"]


# -- sources ---------------------------------------------------------------------------------

def _is_onnx_proto(obj: object) -> bool:
    return type(obj).__name__ == "ModelProto" and hasattr(obj, "SerializeToString") and hasattr(obj, "graph")


def _is_keras_model(obj: object) -> bool:
    module = type(obj).__module__.split(".")[0]
    return module in ("keras", "tf_keras", "tensorflow") and hasattr(obj, "save") and hasattr(obj, "layers")


@contextmanager
def _tagged(path: str) -> Iterator[None]:
    """Give an :class:`InspectorError` raised inside the file it is about (``err.path``);
    a :class:`UsageError` is about the call's options, not the file, and stays as it is."""
    try:
        yield
    except (FileError, UsageError):
        raise
    except InspectorError as exc:
        if exc.path is None:
            exc.path = path
        raise


def in_memory_name(model: Any) -> str:
    """How errors and reports name an in-memory model: ``<keras.Model cnn>``, ``<onnx.ModelProto main>``."""
    if _is_onnx_proto(model):
        return f"<onnx.ModelProto {getattr(model.graph, 'name', '') or 'model'}>"
    return f"<keras.Model {getattr(model, 'name', '') or 'model'}>"


def _save_in_memory(model: Any, folder: Path) -> Path:
    """Write an in-memory model into ``folder`` and return the file."""
    if _is_onnx_proto(model):
        path = folder / "model.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    path = folder / "model.keras"
    try:
        model.save(str(path))
    except Exception as exc:  # noqa: BLE001 - whatever keras raises, the user gets one line naming the model
        raise ModelLoadError(f"keras could not save the model to read it ({type(exc).__name__}: {exc})") from exc
    return path


def _checked_dims(dims: Mapping[str, int] | None) -> dict[str, int] | None:
    """``dims`` as a dict, or a :class:`UsageError` for a name that is not text or a value that
    is not a positive whole number."""
    from .loaders.bind import MAX_DIM

    if not dims:
        return None
    out: dict[str, int] = {}
    for name, value in dims.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"dims: a symbol name must be a non-empty str, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
            raise UsageError(f"dims: {name}: expected a whole number from 1 to {MAX_DIM:,}, got {value!r}")
        out[name] = value
    return out


@contextmanager
def opened(source: Source, *, dims: Mapping[str, int] | None = None) -> Iterator[ModelGraph]:
    """The graph of ``source`` while its file exists (the temporary copy of an in-memory model
    is deleted on exit, so read weight values inside the ``with`` block); ``dims`` binds
    symbolic dims while reading (not possible for a graph already loaded)."""
    bound = _checked_dims(dims)
    if isinstance(source, ModelGraph):
        if bound:
            raise UsageError("dims are bound while a model is read: pass the path or the model itself, "
                             "or call inspector.load(path, dims=...)")
        yield source
        return
    if isinstance(source, (str, os.PathLike)):
        from .loaders import load as load_file

        path = os.fspath(source)
        with _tagged(path):
            graph = _load_remote(path, dims=bound) if is_remote(path) else load_file(Path(path), dims=bound)
        graph.path = path
        yield graph
        return
    if not (_is_onnx_proto(source) or _is_keras_model(source)):
        raise UsageError(f"cannot read a {type(source).__name__}: pass a path, a ModelGraph, "
                         "a keras.Model or an onnx.ModelProto")
    from .loaders import load as load_file

    folder = Path(tempfile.mkdtemp(prefix="inspector-"))
    try:
        with _tagged(in_memory_name(source)):
            graph = load_file(_save_in_memory(source, folder), dims=bound)
        graph.path = None
        yield graph
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load_remote(url: str, *, dims: Mapping[str, int] | None = None) -> ModelGraph:
    """A model in remote storage (``s3://``, ``gs://``, ``https://``): its metadata by byte ranges,
    the rest when a tensor is read."""
    from . import remote

    graph: ModelGraph = remote.load(url, dims=dims)
    return graph


def _detach(graph: ModelGraph) -> None:
    """Weights of a deleted temporary copy cannot be read: say so instead of failing on a missing file."""
    def gone() -> Any:
        raise ModelLoadError("the weight values of an in-memory model are read while inspector works on it: "
                             "pass the model itself to inspector.lint or inspector.write_report")

    for weight in graph.iter_weights():
        weight.reader = gone


def load(source: Source, *, dims: Mapping[str, int] | None = None) -> ModelGraph:
    """Read ``source`` into a :class:`ModelGraph`, statically (nothing in the file is executed);
    ``dims`` binds symbolic dims (``{"seq": 128}``) before shapes are computed.

    For an in-memory model the graph describes it fully (layers, shapes, parameters,
    MACs), but its weight values stay with the model: lint it by passing the model itself."""
    in_memory = not isinstance(source, (str, os.PathLike, ModelGraph))
    with opened(source, dims=dims) as graph:
        if in_memory:
            _detach(graph)
        return graph


# -- summary ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSummary:
    """What ``inspector summary`` prints, as data: ``to_dict()`` is the ``inspector.summary/1``
    document, ``str()`` the classic Keras 2 listing, and Jupyter shows a table."""

    summary: Summary

    def to_dict(self) -> dict[str, Any]:
        from .reporters.summary_json import as_dict

        return as_dict(self.summary)

    def __str__(self) -> str:
        from .reporters.classic import render

        return render(self.summary)

    def _repr_html_(self) -> str:
        from .reporters.notebook import summary_html

        return summary_html(self.summary)


def summary(source: Source, *, dims: Mapping[str, int] | None = None) -> ModelSummary:
    """The summary of ``source`` with MACs (see :func:`inspector.summarize` for the text formats);
    ``dims`` binds symbolic dims first, else MACs that depend on them are a formula."""
    from .analysis.summary import summarize as build

    with opened(source, dims=dims) as graph:
        return ModelSummary(build(graph, macs=True, duplicates=True))


def count_macs(source: Source, *, dims: Mapping[str, int] | None = None) -> MacsReport:
    """Multiply-accumulates of one sample through every layer (:class:`~inspector.analysis.macs.MacsReport`);
    ``dims`` binds symbolic dims first (``{"seq": 128}``), else ``MacsReport.formula`` is the total
    as a formula in them."""
    from .analysis.macs import count_macs as count

    with opened(source, dims=dims) as graph:
        return count(graph)


# -- lint ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LintResult:
    """The findings of one model: iterate it (or read ``findings``); ``to_dict()`` is the
    ``inspector.lint/1`` document with this model as its one result; Jupyter shows a table."""

    report: ModelReport

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.report.findings

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.report.findings)

    def __len__(self) -> int:
        return len(self.report.findings)

    def to_dict(self) -> dict[str, Any]:
        from .reporters.lint_json import document

        return document([self.report])

    def __str__(self) -> str:
        from .reporters.lint_text import render

        return render([self.report])

    def _repr_html_(self) -> str:
        from .reporters.notebook import lint_html

        return lint_html(self.report)


def resolve_config(config: ConfigSource) -> LintConfig | None:
    """``config`` as a :class:`~inspector.config.LintConfig` (a path is read; ``None`` stays ``None``)."""
    if config is None:
        return None
    if isinstance(config, (str, os.PathLike)):
        from .config import load_config

        return load_config(config)
    return config


def split_codes(codes: str | Iterable[str] | None) -> list[str] | None:
    """``"INIT,BN"`` or ``["INIT", "BN"]`` as a list of codes."""
    if codes is None:
        return None
    items = [codes] if isinstance(codes, str) else list(codes)
    return [c.strip() for item in items for c in item.split(",") if c.strip()]


def lint(source: Source, *, select: str | Iterable[str] | None = None, ignore: str | Iterable[str] | None = None,
         config: ConfigSource = None, dims: Mapping[str, int] | None = None) -> LintResult:
    """Lint ``source``: ``select``/``ignore`` are rule codes or prefixes (``"INIT"``, ``["BN001"]``,
    ``"INIT,BN"``), ``config`` a :class:`~inspector.config.LintConfig` or a ``pyproject.toml``
    to read ``[tool.inspector]`` from (``None``: the defaults, no file is searched for)."""
    from .findings import ModelReport
    from .rules import lint as run

    cfg = resolve_config(config)
    with opened(source, dims=dims) as graph:
        where = _where(source, graph)
        with _tagged(where):
            findings = run(graph, config=cfg, select=split_codes(select), ignore=split_codes(ignore))
    return LintResult(ModelReport(path=where, name=graph.name, format=graph.format, findings=tuple(findings)))


def _where(source: Source, graph: ModelGraph) -> str:
    """The file a result is about, or how an in-memory model is named."""
    if graph.path:
        return graph.path
    return f"<{graph.name}>" if isinstance(source, ModelGraph) else in_memory_name(source)


# -- report ----------------------------------------------------------------------------------

_REPORT_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


def write_report(source: Source, output: str | os.PathLike[str], *, fmt: str | None = None,
                 select: str | Iterable[str] | None = None, ignore: str | Iterable[str] | None = None,
                 config: ConfigSource = None, lint: bool = True, charts: bool = True,
                 dims: Mapping[str, int] | None = None) -> Path:
    """Write the report ``inspector report`` writes (HTML or Markdown, from ``output``'s suffix
    unless ``fmt`` says) and return its path.  Charts need matplotlib (else they are left out);
    Markdown charts go to ``OUTPUT_STEM_files/`` beside the report."""
    from .analysis.report import collect
    from .fileio import write_atomic
    from .reporters.charts import available, dynamic_charts, model_charts

    out = Path(output)
    fmt = fmt or _REPORT_SUFFIX.get(out.suffix.lower())
    if fmt not in ("html", "markdown"):
        raise UsageError(f"cannot tell the report format from {str(out)!r}: name it .html or .md, "
                         "or pass fmt='html' or 'markdown'")
    if isinstance(source, (str, os.PathLike)):
        from .outputguard import clash

        problem = clash(str(out), os.fspath(source))
        if problem:
            raise UsageError(f"{out}: refusing to write the report {problem}")
    findings = rules = None
    with opened(source, dims=dims) as graph:
        if lint:
            with _tagged(_where(source, graph)):
                findings = _lint_graph(graph, select=select, ignore=ignore, config=config)
            rules = _rules_of(findings)
        data = collect(graph, file_size=_size(graph.path), file_name=Path(_where(source, graph)).name,
                       findings=findings, rules=rules or ())
        want = charts and available()
        image = "svg" if fmt == "html" else "png"
        drawn = model_charts(data, fmt=image) + dynamic_charts(data, fmt=image) if want else []
        if fmt == "html":
            from .reporters.html import render as render_html

            text = render_html(data, graph=graph, charts=drawn)
        else:
            from .reporters.markdown import render as render_markdown

            folder = f"{out.stem}_files" if drawn else None
            if folder:
                (out.parent / folder).mkdir(parents=True, exist_ok=True)
                for chart in drawn:
                    write_atomic(out.parent / folder / f"{chart.key}.{chart.fmt}", chart.data)
            text = render_markdown(data, graph=graph, charts=drawn, image_dir=folder)
    write_atomic(out, text)
    return out


def _lint_graph(graph: ModelGraph, *, select: str | Iterable[str] | None, ignore: str | Iterable[str] | None,
                config: ConfigSource) -> list[Finding]:
    from .rules import lint as run

    return run(graph, config=resolve_config(config), select=split_codes(select), ignore=split_codes(ignore))


def _rules_of(findings: Iterable[Finding]) -> list[Any]:
    from .rules.registry import get_rule

    return [get_rule(code) for code in sorted({f.code for f in findings})]


def _size(path: str | None) -> int | None:
    try:
        return os.path.getsize(path) if path and os.path.isfile(path) else None
    except OSError:
        return None
