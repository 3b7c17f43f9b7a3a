"""One module per CLI subcommand: ``configure(parser)`` and ``run(args) -> int``.

Commands only wire: they declare options (the shared ones are in
:mod:`._options`), call a library function (``inspector.lint_run``,
``inspector.probe_run``, analysis, reporters) and write the result.  Errors are
raised as InspectorError and printed by ``inspector.cli``.
"""
