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
from typing import TYPE_CHECKING, Callable, Sequence

from ..batch import load_graph, model_paths
from ..errors import FileError, InspectorError, UsageError
from ..fileio import size_on_disk
from ..textsafe import visible
from ._options import (
    add_config_options,
    add_dim_option,
    add_format_option,
    add_probe_arguments,
    check_output,
    dims_option,
    load_config_option,
    probe_options,
    split_codes,
    write_output,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.history_logs import History
    from ..analysis.probe import ProbeReport
    from ..analysis.report import ProbeView, ReportData
    from ..config import LintConfig
    from ..findings import Finding
    from ..ir import ModelGraph
    from ..reporters.charts import Chart
    from ..rules.registry import Rule

_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, a SavedModel folder, or a folder holding one model")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE (.html or .md; atomically); Markdown charts go to "
                        "FILE_STEM_files/ beside it")
    add_format_option(p, choices=FORMATS, default=None,
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
    add_config_options(lint, config_help="read [tool.inspector] options from FILE")
    dyn = p.add_argument_group("dynamic analysis")
    dyn.add_argument("--probe", action="store_true",
                     help="run the model on a batch and add activation saturation and dead units "
                          "(needs the tensorflow or runtime extra; refused for unsafe files unless --trust)")
    add_probe_arguments(dyn)
    add_dim_option(p)
    dyn.add_argument("--history", metavar="LOG",
                     help="add the training curves of LOG (CSVLogger .csv, History .json, TensorBoard events)")


def one_model(path: str, config: LintConfig) -> str:
    """``path``, or the one model a folder ``path`` holds (a report is about one model)."""
    found = model_paths([path], discovery=config.discovery)
    if len(found) != 1:
        raise UsageError(f"{path}: a report is about one model, and this folder holds {len(found)} "
                         f"({', '.join(found[:3])}{', …' if len(found) > 3 else ''}): name one")
    return found[0]


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        fmt = _SUFFIX.get(Path(args.output).suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the report format from {args.output!r}: name it .html or .md, "
                             "or pass --format html|markdown")
        return fmt
    return "html"


def _lint(graph: ModelGraph, args: argparse.Namespace, config: LintConfig, *, probe: ProbeReport | None = None,
          history: History | None = None) -> tuple[list[Finding] | None, str | None]:
    """(findings, why lint failed): a failing rule must not cost the whole report."""
    from ..rules import lint

    if args.no_lint:
        return None, None
    try:
        return lint(graph, config=config, select=split_codes(args.select), ignore=split_codes(args.ignore),
                    probe=probe, history=history, debug=bool(getattr(args, "debug", False))), None
    except UsageError:
        raise
    except InspectorError as exc:
        return None, f"lint could not run: {exc}"


def _rules_of(findings: Sequence[Finding] | None) -> list[Rule]:
    """The rule of every code in ``findings``, sorted by code (the report documents them)."""
    from ..rules.registry import get_rule

    rules: list[Rule] = []
    for code in sorted({f.code for f in findings or ()}):
        try:
            rules.append(get_rule(code))
        except InspectorError:
            continue
    return rules


def run_probe(graph: ModelGraph, args: argparse.Namespace) -> tuple[ProbeReport | None, ProbeView]:
    """(the probe's report for lint, its view for the page) for ``graph``.  A file
    with security findings is not run (unless ``--trust``): the report says why,
    as ``lint --probe`` does, and the probe rules get nothing."""
    from ..analysis.report import ProbeView, probe_view
    from ..errors import UnsafeModel
    from ..probe_run import run_probe as probe_model

    try:
        report = probe_model(graph, args.model, probe_options(args))
    except UnsafeModel as exc:
        print(f"inspector: warning: {args.model}: probe skipped: {visible(str(exc))}", file=sys.stderr)
        return None, ProbeView((), (f"The model was not run: {exc}.",))
    return report, probe_view(report)


def run_history(path: str) -> History:
    """The training log at ``path`` (CSVLogger, History JSON or TensorBoard events)."""
    from ..analysis.history_logs import read_history

    try:
        return read_history(path)
    except FileError:
        raise
    except InspectorError as exc:
        raise FileError(path, exc) from exc


def write_images(folder: Path, charts: Sequence[Chart]) -> None:
    """Write every chart into ``folder`` as ``KEY.FMT`` (each file atomically)."""
    from ..fileio import write_atomic

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create the folder for the charts: {exc.strerror or exc}") from None
    for chart in charts:
        write_atomic(folder / f"{chart.key}.{chart.fmt}", chart.data)


def _charts(data: ReportData, fmt: str) -> list[Chart]:
    from ..reporters.charts import dynamic_charts, model_charts

    return model_charts(data, fmt=fmt) + dynamic_charts(data, fmt=fmt)


def _html(data: ReportData, graph: ModelGraph, args: argparse.Namespace, want_charts: bool) -> str:
    """The HTML page: charts inline as SVG."""
    from ..reporters.html import render

    return render(data, graph=graph, charts=_charts(data, "svg") if want_charts else [])


def _markdown(data: ReportData, graph: ModelGraph, args: argparse.Namespace, want_charts: bool) -> str:
    """The Markdown report: charts are files in ``FILE_STEM_files/`` beside ``-o FILE`` (none on stdout)."""
    from ..reporters.markdown import render

    charts: list[Chart] = []
    folder = None
    if want_charts and args.output:
        charts = _charts(data, args.image_format)
        out = Path(args.output)
        folder = f"{out.stem}_files"
        write_images(out.parent / folder, charts)
    return render(data, graph=graph, charts=charts, image_dir=folder, max_nodes=args.max_nodes or None)


RENDERERS: dict[str, Callable[[ReportData, ModelGraph, argparse.Namespace, bool], str]] = {
    "html": _html, "markdown": _markdown}
"""Report formats by name: each renders the collected data (and writes its side files)."""
FORMATS = tuple(RENDERERS)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import collect

    check_output(args.output, [args.model, args.history, args.inputs])
    fmt = output_format(args)
    if fmt == "markdown" and args.output:  # the chart images go to FILE_STEM_files/ beside it
        out = Path(args.output)
        check_output(str(out.parent / f"{out.stem}_files" / "chart.svg"), [args.model, args.history, args.inputs],
                     what="the chart images")
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.output and not Path(args.output).parent.is_dir() and str(Path(args.output).parent):
        raise UsageError(f"{args.output}: cannot write: folder {str(Path(args.output).parent)!r} does not exist")
    from ..analysis.report import history_view

    config = load_config_option(args)
    args.model = one_model(args.model, config)
    history = run_history(args.history) if args.history else None  # a bad log fails before the model loads
    graph = load_graph(args.model, dims=dims_option(args))
    graph.path = args.model
    probe, probe_page = run_probe(graph, args) if args.probe else (None, None)
    findings, lint_error = _lint(graph, args, config, probe=probe, history=history)
    data = collect(graph, file_size=size_on_disk(args.model), file_name=Path(args.model).name, findings=findings,
                   rules=_rules_of(findings), lint_error=lint_error, probe=probe_page,
                   history=history_view(history, options=config.rule_options) if history is not None else None,
                   top=args.top)
    want_charts = not args.no_charts
    if want_charts:
        from ..reporters.charts import available

        if not available():
            print("inspector: warning: matplotlib is not installed, so the report has no charts "
                  "(pip install 'dl-inspector[report]')", file=sys.stderr)
            want_charts = False
    text = RENDERERS[fmt](data, graph, args, want_charts)
    write_output(text, args.output)  # a file atomically, or standard output (a full disk: one error line)
    return 0
