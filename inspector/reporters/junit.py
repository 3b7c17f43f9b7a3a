"""JUnit XML: one test suite per model, one test case per finding.

Findings at or above ``--fail-on`` are ``<failure>``s, the others pass with the
message in ``<system-out>``; a model with no finding gets one passing ``lint``
case; a file that cannot be read gets an ``<error>``.  The output has no
timestamps or durations, so it is stable for diffs and golden tests, and it
follows the common Jenkins/Surefire schema that GitLab, Jenkins, Azure DevOps
and the GitHub test-report actions read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

from ..findings import ModelReport, fails


def render(reports: Sequence[ModelReport], *, fail_on: str = "error") -> str:
    root = ET.Element("testsuites", name="inspector lint")
    total = total_fail = total_err = 0
    for r in reports:
        suite = ET.SubElement(root, "testsuite", name=r.path)
        tests = failures = errors = 0
        if r.error is not None:
            case = ET.SubElement(suite, "testcase", classname=r.path, name="load")
            err = ET.SubElement(case, "error", message=r.error, type="ModelLoadError")
            err.text = r.error
            tests, errors = 1, 1
        elif not r.findings:
            ET.SubElement(suite, "testcase", classname=r.path, name="lint")
            tests = 1
        for f in r.findings:
            tests += 1
            name = f"{f.layer}: {f.code} {f.name}" if f.layer else f"{f.code} {f.name}"
            case = ET.SubElement(suite, "testcase", classname=r.path, name=name)
            if fails(f.severity, fail_on):
                failures += 1
                node = ET.SubElement(case, "failure", message=f.message, type=f.code)
                node.text = f"[{f.severity.value}] {f.code} {f.name}\nlayer: {f.layer or '(model)'}\n{f.message}"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"[{f.severity.value}] {f.message}"
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", "0")
        total, total_fail, total_err = total + tests, total_fail + failures, total_err + errors
    root.set("tests", str(total))
    root.set("failures", str(total_fail))
    root.set("errors", str(total_err))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
