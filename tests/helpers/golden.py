"""Golden-file comparison shared by the tests.

Regenerate every golden file after an intended output change with

    INSPECTOR_REGEN_GOLDEN=1 python -m pytest tests

then review the diff (``git diff tests/golden``) before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("INSPECTOR_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    expected = path.read_text()
    assert text == expected, f"{name} differs from the golden file (see tests/helpers/golden.py to regenerate)"
