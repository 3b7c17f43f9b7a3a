"""The code checks CI runs with the suite: ruff, strict mypy, and the layout rules of
``docs/architecture.md`` (which package may import which, how long a function may be).

Each check reads the source tree as it is, so a change that breaks a rule fails here
with the file and line to look at.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inspector"
MAX_FUNCTION_LINES = 60
"""Lines of a function, its docstring not counted.  A longer function needs a
``# long: <reason>`` comment on the line above its ``def`` (or above its decorators)."""


def _modules() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))))
    return out


def _imports(module: str, path: Path, tree: ast.Module) -> list[tuple[int, str]]:
    """Every ``inspector.*`` module imported anywhere in ``tree`` (also inside functions),
    with its line: relative imports resolved against ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "inspector"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "inspector":
                continue
            # `from . import x` / `from .pkg import mod`: name the module when it is one.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (ROOT / Path(*candidate.split("."))).is_dir()
                found.append((node.lineno, candidate if is_module else target))
    return found


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_static_checker_passes(tool):
    if tool == "ruff":
        exe = shutil.which("ruff")
        assert exe, "ruff is a test dependency: pip install -e '.[test]'"
        cmd = [exe, "check", "--no-cache", str(ROOT)]
    else:
        cmd = [sys.executable, "-m", "mypy", "--no-incremental"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{tool} found problems:\n{proc.stdout}{proc.stderr}"


# Which package may import which (docs/architecture.md, "The flow").
FORBIDDEN = {
    "inspector.ir": ("inspector.loaders", "inspector.analysis", "inspector.rules", "inspector.reporters",
                     "inspector.commands"),
    "inspector.graphquery": ("inspector.loaders", "inspector.analysis", "inspector.rules", "inspector.reporters",
                             "inspector.commands"),
    "inspector.vocab": ("inspector",),
    "inspector.findings": ("inspector.rules", "inspector.reporters", "inspector.commands", "inspector.analysis"),
    "inspector.loaders": ("inspector.analysis", "inspector.rules", "inspector.reporters", "inspector.commands"),
    "inspector.analysis": ("inspector.rules", "inspector.reporters", "inspector.commands"),
    "inspector.rules": ("inspector.reporters", "inspector.commands"),
    "inspector.reporters": ("inspector.commands", "inspector.rules.engine", "inspector.loaders"),
    "inspector.baseline": ("inspector.rules", "inspector.reporters", "inspector.commands"),
}


def _owner(module: str) -> str | None:
    for prefix in sorted(FORBIDDEN, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def _within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_data_flows_one_way():
    bad = set()
    for module, path, tree in _modules():
        owner = _owner(module)
        if owner is None:
            continue
        for line, target in _imports(module, path, tree):
            if any(_within(target, banned) for banned in FORBIDDEN[owner]):
                bad.add(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not bad, "imports against the flow (see docs/architecture.md):\n" + "\n".join(sorted(bad))


def test_commands_do_not_import_each_other():
    bad = []
    for module, path, tree in _modules():
        if not module.startswith("inspector.commands."):
            continue
        for line, target in _imports(module, path, tree):
            if target.startswith("inspector.commands.") and target != "inspector.commands._options":
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not bad, "a command imports another command (shared code goes to a library module or " \
                    "commands/_options.py):\n" + "\n".join(bad)


def test_long_functions_say_why():
    lines_of = {}
    bad = []
    for _, path, tree in _modules():
        source = lines_of.setdefault(path, path.read_text(encoding="utf-8").splitlines())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            doc = node.body[0] if node.body else None
            if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                length -= (doc.end_lineno or doc.lineno) - doc.lineno + 1  # a rule's docstring is its documentation
            if length <= MAX_FUNCTION_LINES:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            above = source[first - 2].strip() if first >= 2 else ""
            if not above.startswith("# long:") or len(above) < len("# long: ") + 10:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} has {length} lines")
    assert not bad, (f"functions over {MAX_FUNCTION_LINES} lines need a '# long: <reason>' comment above "
                     "them (or a split into named steps):\n" + "\n".join(bad))


def test_the_checks_see_the_package():
    """Guard against a vacuous pass: the walkers above really read modules and imports."""
    modules = _modules()
    assert len(modules) > 50
    names = {m for m, _, _ in modules}
    assert {"inspector.ir", "inspector.analysis.macs", "inspector.commands.lint"} <= names
    lint = next((p, t) for m, p, t in modules if m == "inspector.commands.lint")
    assert any(t == "inspector.commands._options" for _, t in _imports("inspector.commands.lint", *lint))
