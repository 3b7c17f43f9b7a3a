"""``bench/trace_summary.py`` reads the two lanes of a traced run off its timeline (the figures the README's
"where the time goes" paragraph quotes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "trace_summary.py"


def _script():
    spec = importlib.util.spec_from_file_location("trace_summary", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stamp(at: float, who: str, text: str) -> str:
    return f"{at:7.3f} {who:6} cpu   0.00 s faults       0  {text}"


def test_lanes_when_the_build_is_the_later_lane():
    lines = [_stamp(1.0, "main", "> Builder._construct"), _stamp(1.6, "helper", "< _declared_answer"),
             _stamp(1.7, "main", "< Builder._construct"), _stamp(2.5, "main", "> _end_program")]
    first, after, bound = _script().lanes(lines)
    assert "answer ready at 1.600 s" in first and "build at 1.700 s" in first
    assert "(the build is later, by 0.100 s)" in first
    assert after == "after both: 0.800 s of work that needs the inferred types, to the end at 2.500 s"
    assert bound.endswith("would still end at 2.400 s")


def test_lanes_when_the_answer_is_the_later_lane():
    lines = [_stamp(1.2, "main", "< Builder._construct"), _stamp(1.5, "helper", "< _declared_answer"),
             _stamp(2.0, "main", "> _end_program")]
    first, after, bound = _script().lanes(lines)
    assert "(the answer is later, by 0.300 s)" in first
    assert after.startswith("after both: 0.500 s")
    assert bound.endswith("would still end at 2.000 s")  # the build's time does not count then


def test_no_lanes_without_a_helper_answer():
    lines = [_stamp(0.2, "main", "< Builder._construct"), _stamp(0.3, "main", "> _end_program"),
             _stamp(0.1, "main", "< _declared_answer")]  # inference in the main process: no helper lane
    assert _script().lanes(lines) == []
