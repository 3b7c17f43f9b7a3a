"""``[tool.inspector]`` configuration: which rules run, how strictly, with which thresholds.

inspector looks for a ``pyproject.toml`` with a ``[tool.inspector]`` table in the
working directory and then in each parent directory, and uses the first one it
finds (``--config FILE`` names one explicitly; ``--isolated`` ignores them all).
A file found that way cannot turn the ``SEC`` rules off (:func:`keep_security`).
Command-line flags override the file: ``--select`` replaces ``select``,
``--ignore`` adds to ``ignore``.

.. code-block:: toml

    [tool.inspector]
    select = ["ALL"]                 # codes or prefixes: "INIT", "BN00", "NUM001"
    ignore = ["REG001"]
    fail-on = "warning"              # error (default) | warning | info | never
    output-format = "text"           # text | json | sarif | junit | github
    baseline = "inspector-baseline.json"

    [tool.inspector.per-file-ignores]
    "samples/*.keras" = ["INIT", "ACT"]

    [tool.inspector.rules.INIT004]   # per-rule thresholds (see `inspector rule CODE`)
    max-ratio = 8.0
    [tool.inspector.rules.REG001]
    severity = "warning"             # any rule's severity can be changed

Folders given on the command line are walked for models (:mod:`inspector.discover`):
``include`` (file patterns taken, default ``*.keras``, ``*.h5``, ``*.hdf5``, ``*.onnx``,
``*.onnxtxt``), ``exclude`` (replaces the default skipped names: ``.git``, ``.venv``,
``__pycache__``, ``node_modules``, ``.inspector_cache`` …), ``extend-exclude`` (added to
them) and ``respect-gitignore`` (default true), gitignore-style patterns like ruff's.

Keys may be written kebab-case (as above) or snake_case.  A file that is not
valid TOML, an unknown key or a value of the wrong type is a usage error (exit 2)
naming the file, so a typo never silently turns a check off.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, cast

from .discover import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, Discovery
from .errors import UsageError
from .findings import FAIL_ON
from .reporters import lint as lint_formats

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    # tomli is the 3.10 back-port of tomllib; the type-check environment may lack it.
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]



@dataclass(frozen=True)
class LintConfig:
    """A resolved ``[tool.inspector]`` table."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    fail_on: str = "error"
    output_format: str = "text"
    baseline: str | None = None
    """Path of the baseline file (relative paths are relative to the config file)."""
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rule_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None
    """The file this configuration came from (``None``: defaults)."""
    security_kept: tuple[str, ...] = ()
    """Settings of an automatically found file that would have turned SEC rules off or
    down and were not applied (see :func:`keep_security`); empty otherwise."""
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True

    @property
    def discovery(self) -> Discovery:
        """What a folder walk takes (:mod:`inspector.discover`)."""
        return Discovery(include=self.include, exclude=self.exclude, extend_exclude=self.extend_exclude,
                         respect_gitignore=self.respect_gitignore)

    @property
    def root(self) -> Path:
        """Directory that relative paths in the configuration are relative to."""
        return Path(self.source).resolve().parent if self.source else Path.cwd()

    def ignores_for(self, path: str | os.PathLike[str]) -> list[str]:
        """Selectors ``per-file-ignores`` adds for the model at ``path``."""
        if not self.per_file_ignores:
            return []
        p = Path(path)
        candidates = {p.as_posix(), p.name}
        try:
            candidates.add(p.resolve().relative_to(self.root).as_posix())
        except ValueError:
            pass
        out: list[str] = []
        for pattern, codes in self.per_file_ignores:
            if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
                out.extend(codes)
        return out


def _key(raw: str) -> str:
    return raw.replace("_", "-")


def _codes(value: Any, *, where: str) -> tuple[str, ...]:
    """A list of rule selectors (a list, or a comma-separated string)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of rule codes or prefixes, e.g. [\"INIT\", \"BN001\"]")
    return tuple(part.strip().upper() for v in value for part in v.split(",") if part.strip())


def _choice(value: Any, choices: Iterable[str], *, where: str) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        raise UsageError(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    return value.lower()


def _baseline(value: Any, *, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where} must be a file path")
    return value


def _patterns(value: Any, *, where: str) -> tuple[str, ...]:
    """A list of gitignore-style path patterns."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of path patterns, e.g. [\"*.onnx\", \"legacy/\"]")
    return tuple(value)


def _flag(value: Any, *, where: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where} must be true or false")
    return value


def _per_file_ignores(value: Any, *, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{where} must be a table of pattern = [codes]")
    return tuple((str(pattern), _codes(codes, where=f"{where}[{pattern!r}]"))
                 for pattern, codes in sorted(value.items()))


def _rule_options(value: Any, *, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise UsageError(f"{where} must hold one table per rule, e.g. [tool.inspector.rules.INIT004]")
    return {str(code).upper(): {_key(str(k)): v for k, v in opts.items()} for code, opts in value.items()}


_FIELDS: dict[str, tuple[str, Callable[..., Any]]] = {
    "select": ("select", _codes),
    "ignore": ("ignore", _codes),
    "fail-on": ("fail_on", lambda value, where: _choice(value, FAIL_ON, where=where)),
    "output-format": ("output_format", lambda value, where: _choice(value, lint_formats.FORMATS, where=where)),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "baseline": ("baseline", _baseline),
    "rules": ("rule_options", _rule_options),
    "include": ("include", _patterns),
    "exclude": ("exclude", _patterns),
    "extend-exclude": ("extend_exclude", _patterns),
    "respect-gitignore": ("respect_gitignore", _flag),
}
"""Each ``[tool.inspector]`` key: the :class:`LintConfig` field it sets and how its value is checked
(in this order, so the bad key named first is stable)."""
KNOWN_KEYS = tuple(_FIELDS)


def from_table(table: Mapping[str, Any], *, source: str | None = None) -> LintConfig:
    """Build a :class:`LintConfig` from a ``[tool.inspector]`` table."""
    where = source or "the configuration"
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: [tool.inspector] must be a table")
    values: dict[str, Any] = {}
    for raw, value in table.items():
        key = _key(str(raw))
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(KNOWN_KEYS)})"
            raise UsageError(f"{where}: unknown option {raw!r} in [tool.inspector]{hint}")
        values[key] = value
    kwargs: dict[str, Any] = {"source": source}
    for key, (name, parse) in _FIELDS.items():
        if key in values:
            kwargs[name] = parse(values[key], where=f"{where}: {key}")
    return LintConfig(**kwargs)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except FileNotFoundError:
        raise UsageError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise UsageError(f"{path}: invalid TOML: arrays or inline tables nested too deeply") from None


def _tool_table(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tool = doc.get("tool")
    if isinstance(tool, Mapping) and "inspector" in tool:
        return cast("Mapping[str, Any]", tool["inspector"])  # from_table checks that it is a table
    return None


def find_pyproject(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.inspector]`` table, walking up
    from ``start`` (default: the working directory)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _tool_table(read_toml(candidate)) is not None:
            return candidate
    return None


def load_config(path: str | os.PathLike[str] | None = None, *, isolated: bool = False,
                start: str | os.PathLike[str] | None = None) -> LintConfig:
    """The configuration in force: ``path`` if given (its ``[tool.inspector]`` table,
    or the whole file when it has none), else the nearest ``pyproject.toml`` with a
    ``[tool.inspector]`` table, else the defaults."""
    if isolated:
        return LintConfig()
    if path is not None:
        p = Path(path)
        doc = read_toml(p)
        table = _tool_table(doc)
        return from_table(table if table is not None else doc, source=str(p))
    found = find_pyproject(start)
    if found is None:
        return LintConfig()
    return keep_security(from_table(_tool_table(read_toml(found)) or {}, source=str(found)))


def _touches(selector: str, codes: Iterable[str]) -> bool:
    sel = selector.upper()
    return sel == "ALL" or any(code.startswith(sel) for code in codes)


def keep_security(config: LintConfig) -> LintConfig:
    """``config`` (found automatically, not named with ``--config``) without what would
    turn the SEC rules off or lower their severity: a ``pyproject.toml`` in the working
    folder or above may come with the models it lints (a cloned model repository), and
    must not silence the scan for the files it ships.  ``select`` always keeps ``SEC``;
    ``ignore`` and ``per-file-ignores`` selectors that match a SEC rule (``SEC``,
    ``SEC001``, ``ALL`` …) and SEC severities are dropped.  What was dropped is listed
    in ``security_kept`` for a warning; ``--config FILE`` applies the file as written."""
    from .rules.registry import all_rules, load_families

    load_families()
    sec = [r.code for r in all_rules() if r.family == "SEC"]
    kept: list[str] = []
    select = config.select
    if not all(any(code.startswith(sel.upper()) or sel.upper() == "ALL" for sel in select) for code in sec):
        select = (*select, "SEC")
        kept.append(f"select = {list(config.select)}")
    ignore = tuple(sel for sel in config.ignore if not _touches(sel, sec))
    kept += [f"ignore {sel!r}" for sel in config.ignore if sel not in ignore]
    per_file: list[tuple[str, tuple[str, ...]]] = []
    for pattern, codes in config.per_file_ignores:
        kept += [f"per-file-ignores {pattern!r} {c!r}" for c in codes if _touches(c, sec)]
        per_file.append((pattern, tuple(c for c in codes if not _touches(c, sec))))
    options = {code: dict(opts) for code, opts in config.rule_options.items()}
    for code, opts in options.items():
        if code.upper() in sec and "severity" in opts:
            kept.append(f"rules.{code} severity {opts.pop('severity')!r}")
    if not kept:
        return config
    from dataclasses import replace

    return replace(config, select=select, ignore=ignore, per_file_ignores=tuple(per_file), rule_options=options,
                   security_kept=tuple(kept))


def security_warning(config: LintConfig) -> str | None:
    """One line saying which settings of an automatically found file were not applied to the SEC rules."""
    if not config.security_kept:
        return None
    return (f"{config.source}: {len(config.security_kept)} setting(s) that would turn security (SEC) rules off "
            f"were not applied ({'; '.join(config.security_kept)}): a configuration found automatically may not "
            "silence them; name it with --config to apply it as written")
