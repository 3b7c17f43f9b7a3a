"""Regenerate ``docs/report-screenshot.png``: the top of the HTML report of
``keras.applications.ResNet50(weights=None)``, as headless Chromium shows it.

    python docs/make_screenshot.py            # needs tensorflow, matplotlib, chromium, websocket-client

The model is built with random weights (no download); the report is written with
``inspector report`` and opened from disk, exactly as the browser test does
(``tests/helpers/chromium.py`` drives Chromium).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers.chromium import Browser  # noqa: E402

OUT = ROOT / "docs" / "report-screenshot.png"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="inspector-shot-") as tmp:
        model = Path(tmp) / "resnet50.keras"
        code = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras; "
                "keras.applications.ResNet50(weights=None).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(model)], check=True, capture_output=True)
        html = Path(tmp) / "resnet50.html"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-m", "inspector", "report", str(model), "-o", str(html), "--isolated"],
                       check=True, env=env)
        with Browser.launch() as browser:
            page = browser.open(html)
            errors = page.console_errors()
            if errors:
                raise SystemExit(f"the report logged errors: {errors}")
            page.screenshot(OUT, width=1280, height=1900)
            page.close()
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
