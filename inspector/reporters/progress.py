"""A progress line on standard error, for work that takes more than a moment.

Shown only when stderr is a terminal (never in CI logs or pipes) and only once
the work has taken longer than ``delay`` seconds, so quick runs print nothing.
A small background thread redraws it, so a stage without steps (loading a
model) still shows its elapsed time.  Standard output is never touched.

    with ProgressLine("probe resnet50.keras") as progress:
        report = probe(graph, progress=progress)
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO


class ProgressLine:
    """``progress(stage, done, total)`` draws ``label: stage [####....] done/total 3.2s``."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, delay: float = 0.75,
                 width: int = 24, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.label, self.delay, self.width = label, delay, width
        self.stage, self.done, self.total = "starting", 0, 0
        self._start = time.monotonic()
        self._shown = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self.stage, self.done, self.total = stage, done, total
        self._draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        bar = ""
        if self.total > 1:
            filled = int(self.width * min(self.done, self.total) / self.total)
            bar = f" [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
        return f"{self.label}: {self.stage}{bar} {elapsed:.1f}s"

    def _draw(self) -> None:
        if not self.enabled or time.monotonic() - self._start < self.delay:
            return
        with self._lock:
            text = self.line()
            pad = max(self._shown - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._shown = len(text)

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            self._draw()

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="inspector-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        with self._lock:
            if self._shown:
                self.stream.write("\r" + " " * self._shown + "\r")
                self.stream.flush()
                self._shown = 0
