"""``inspector report MODEL -o report.html|report.md``: a report people read.

The format follows the output file's suffix (``.html``/``.htm`` → HTML,
``.md``/``.markdown`` → Markdown) unless ``--format`` says otherwise; without
``-o`` the report goes to standard output (Markdown then carries no chart
images, e.g. ``inspector report m.keras -f markdown >> "$GITHUB_STEP_SUMMARY"``).

Exit code: 0 when the report was written (whatever it found), 2 when the model
cannot be read or the command line is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InspectorError, UsageError
from . import load_graph

FORMATS = ("html", "markdown")
_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=".keras, .h5 or .onnx file, or a SavedModel folder")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE (.html or .md; atomically); Markdown charts go to "
                        "FILE_STEM_files/ beside it")
    p.add_argument("-f", "--format", choices=FORMATS, default=None,
                   help="html or markdown (default: from the suffix of -o, else html)")
    p.add_argument("--no-charts", action="store_true", help="leave out the charts (no matplotlib needed)")
    p.add_argument("--image-format", choices=("png", "svg"), default="png",
                   help="Markdown: format of the chart files (default png)")
    p.add_argument("--top", type=int, default=15, metavar="N",
                   help="layers named in the by-layer charts (default 15; the rest is one bar)")
    p.add_argument("--max-nodes", type=int, default=60, metavar="N",
                   help="Markdown: collapse the Mermaid architecture diagram to at most N blocks (default 60)")
    lint = p.add_argument_group("lint")
    lint.add_argument("--no-lint", action="store_true", help="leave out the lint findings")
    lint.add_argument("--select", action="append", metavar="CODES", help="rule codes or prefixes to enable")
    lint.add_argument("--ignore", action="append", metavar="CODES", help="rule codes or prefixes to disable")
    lint.add_argument("--config", metavar="FILE", help="read [tool.inspector] options from FILE")
    lint.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    dyn = p.add_argument_group("dynamic analysis")
    dyn.add_argument("--probe", action="store_true",
                     help="run the model on a batch and add activation saturation and dead units "
                          "(needs the tensorflow or runtime extra; refused for unsafe files unless --trust)")
    from .probe import add_probe_arguments

    add_probe_arguments(dyn)
    dyn.add_argument("--history", metavar="LOG",
                     help="add the training curves of LOG (CSVLogger .csv, History .json, TensorBoard events)")


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output:
        fmt = _SUFFIX.get(Path(args.output).suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the report format from {args.output!r}: name it .html or .md, "
                             "or pass --format html|markdown")
        return fmt
    return "html"


def _file_size(path: str) -> int | None:
    from .info import _size

    return _size(path)


def _lint(graph, args: argparse.Namespace, config, *, probe=None, history=None) -> tuple[list | None, str | None]:
    """(findings, why lint failed): a failing rule must not cost the whole report."""
    from ..rules import lint

    if args.no_lint:
        return None, None
    try:
        return lint(graph, config=config, select=_split(args.select), ignore=_split(args.ignore), probe=probe,
                    history=history, debug=bool(getattr(args, "debug", False))), None
    except UsageError:
        raise
    except InspectorError as exc:
        return None, f"lint could not run: {exc}"


def run_probe(graph, args: argparse.Namespace):
    """(the probe's report for lint, its view for the page) for ``graph``.  A file
    with security findings is not run (unless ``--trust``): the report says why,
    as ``lint --probe`` does, and the probe rules get nothing."""
    from ..analysis.report import ProbeView, probe_view
    from ..errors import UnsafeModel
    from .probe import run_probe as probe_model

    try:
        report = probe_model(graph, args.model, args)
    except UnsafeModel as exc:
        print(f"inspector: warning: {args.model}: probe skipped: {exc}", file=sys.stderr)
        return None, ProbeView((), (f"The model was not run: {exc}.",))
    return report, probe_view(report)


def run_history(path: str):
    """The training log at ``path`` (CSVLogger, History JSON or TensorBoard events)."""
    from ..analysis.history_logs import read_history

    return read_history(path)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import collect
    from ..fileio import write_atomic

    fmt = output_format(args)
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.output and not Path(args.output).parent.is_dir() and str(Path(args.output).parent):
        raise UsageError(f"{args.output}: cannot write: folder {str(Path(args.output).parent)!r} does not exist")
    from ..analysis.report import history_view
    from ..config import load_config

    config = load_config(args.config, isolated=args.isolated)
    history = run_history(args.history) if args.history else None  # a bad log fails before the model loads
    graph = load_graph(args.model)
    graph.path = args.model
    probe, probe_page = run_probe(graph, args) if args.probe else (None, None)
    findings, lint_error = _lint(graph, args, config, probe=probe, history=history)
    data = collect(graph, file_size=_file_size(args.model), file_name=Path(args.model).name, findings=findings,
                   lint_error=lint_error, probe=probe_page,
                   history=history_view(history, options=config.rule_options) if history is not None else None,
                   top=args.top)
    want_charts = not args.no_charts
    if want_charts:
        from ..reporters.charts import available

        if not available():
            print("inspector: warning: matplotlib is not installed, so the report has no charts "
                  "(pip install 'inspector[report]')", file=sys.stderr)
            want_charts = False
    if fmt == "html":
        from ..reporters.charts import dynamic_charts, model_charts
        from ..reporters.html import render

        charts = (model_charts(data, fmt="svg") + dynamic_charts(data, fmt="svg")) if want_charts else []
        text = render(data, graph=graph, charts=charts)
        if args.output:
            write_atomic(args.output, text)
        else:
            sys.stdout.write(text)
        return 0
    from ..reporters.markdown import render as render_md
    from ..reporters.markdown import write_images

    charts = []
    folder = None
    if want_charts and args.output:
        from ..reporters.charts import dynamic_charts, model_charts

        charts = model_charts(data, fmt=args.image_format) + dynamic_charts(data, fmt=args.image_format)
        out = Path(args.output)
        folder = f"{out.stem}_files"
        write_images(out.parent / folder, charts)
    text = render_md(data, graph=graph, charts=charts, image_dir=folder, max_nodes=args.max_nodes or None)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0

