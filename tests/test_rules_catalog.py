"""The rule catalog: codes, names, documentation, registration, and test coverage."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from inspector.findings import Severity
from inspector.rules.registry import CODE_RE, DOC_HEADINGS, REGISTRY, all_rules, get_rule

TESTS = Path(__file__).resolve().parent


def _covered() -> dict[str, list[tuple[str, str]]]:
    """Every ``COVERED`` table of tests/test_rules_*.py: code -> [(module, test name)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(TESTS.glob("test_rules_*.py")):
        mod = importlib.import_module(path.stem)
        for code, names in getattr(mod, "COVERED", {}).items():
            for name in names:
                out.setdefault(code, []).append((path.stem, name))
    return out


def test_codes_and_names():
    rules = all_rules()
    codes = [r.code for r in rules]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[A-Z]+\d{3}", c) for c in codes) and CODE_RE.pattern == r"^[A-Z]+\d{3}$"
    names = [r.name for r in rules]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", n) for n in names)
    assert all(isinstance(r.severity, Severity) for r in rules)
    # the first catalog (issue 4) is all there
    expected = {"INIT001", "INIT002", "INIT003", "INIT004", "ACT001", "ACT002", "ACT005", "ACT006",
                "BN001", "BN002", "BN003", "BN004", "BN005", "BN006", "NUM001", "NUM002", "NUM003",
                "NUM004", "NORM001", "NORM002", "NORM003", "REG001", "REG002", "REG003", "GRAPH001",
                "GRAPH002"}
    assert expected <= set(codes)
    # the issue fixes these severities
    for code in ("BN003", "BN004", "NORM001", "REG001", "REG003"):
        assert get_rule(code).severity is Severity.INFO


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_documentation(rule):
    doc = rule.doc
    positions = []
    for heading in DOC_HEADINGS:
        m = re.search(rf"^## {re.escape(heading)}$", doc, re.M)
        assert m, f"{rule.code} lacks the heading {heading!r}"
        positions.append(m.start())
        body = doc[m.end():].split("\n## ", 1)[0].strip()
        assert len(body) > 40, f"{rule.code}: section {heading!r} is empty"
    assert positions == sorted(positions)
    assert rule.summary and not rule.summary.startswith("#")
    # registered once, under its own code, by the function that carries the docstring
    assert REGISTRY[rule.code] is rule and rule.check.rule_code == rule.code
    assert inspect.getmodule(rule.check).__name__.startswith("inspector.rules.")


def test_every_rule_has_a_firing_and_a_near_miss_test():
    covered = _covered()
    missing = [r.code for r in all_rules() if r.code not in covered]
    assert not missing, f"rules without tests: {missing}"
    for code, entries in covered.items():
        assert code in REGISTRY, f"COVERED names unknown rule {code}"
        assert len(entries) >= 2, f"{code} needs a test where it fires and one where it must not"
        for module, name in entries:
            fn = getattr(importlib.import_module(module), name, None)
            assert callable(fn) and name.startswith("test_"), f"{module}.{name} does not exist"


def test_unknown_rule_is_a_usage_error():
    from inspector.errors import UsageError

    with pytest.raises(UsageError, match="inspector rules"):
        get_rule("NOPE001")


def test_get_rule_by_code_or_kebab_name_case_insensitive():
    from inspector.errors import UsageError

    for r in all_rules():
        assert get_rule(r.code) is get_rule(r.code.lower()) is get_rule(r.name) is get_rule(r.name.upper()) is r
    with pytest.raises(UsageError, match="unknown rule 'no-such-rule'"):
        get_rule("no-such-rule")
