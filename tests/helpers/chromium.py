"""Drive headless Chromium over the DevTools protocol, with websocket-client only.

Used by ``tests/test_report_browser.py`` and ``docs/make_screenshot.py``:

    with Browser.launch() as browser:          # raises BrowserMissing without chromium
        page = browser.open(Path("report.html"))
        page.console_errors(), page.requests, page.evaluate("document.title")
        page.screenshot(Path("shot.png"), width=1280, height=2000)

Chromium runs with the flags the machine notes ask for (no sandbox, no GPU, no
QUIC, no first-run, background networking, component updates and sync off, a
fresh profile folder), listens on a random local port, and is ended when the
``with`` block exits.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio")


class BrowserMissing(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The Chromium binary: ``$INSPECTOR_CHROMIUM`` or the first of :data:`CANDIDATES` on PATH."""
    env = os.environ.get("INSPECTOR_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab: send commands, keep every event."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client (test extra)

        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True,
                                               enable_multithread=True)
        self._id = 0
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}

    def _receive(self, until: float) -> None:
        self._ws.settimeout(max(0.05, until - time.monotonic()))
        msg = json.loads(self._ws.recv())
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30) -> dict[str, Any]:
        with self._lock:
            self._id += 1
            mid = self._id
            self._ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while mid not in self._replies:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {method}")
            self._receive(deadline)
        reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, *, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method:
                    return ev
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} event")
            self._receive(deadline)

    def settle(self, seconds: float = 0.5) -> None:
        """Collect events for a moment (late console messages)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._receive(deadline)
            except Exception:  # noqa: BLE001 - a receive timeout ends the wait
                break

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- what happened -------------------------------------------------------------------------
    def console_errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and browser log errors
        (failed loads, Content-Security-Policy violations)."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                               for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                entry = p["entry"]
                out.append(f"log.{entry['level']} ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        return out

    @property
    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events
                if ev.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, *, width: int = 1280, height: int = 2000, scale: float = 1.0) -> Path:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})
        self.settle(0.3)
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001
            pass


class Browser:
    def __init__(self, proc: subprocess.Popen, port: int, profile: str) -> None:
        self.proc, self.port, self.profile = proc, port, profile

    @classmethod
    def launch(cls, *, timeout: float = 60) -> Browser:
        binary = find_chromium()
        if binary is None:
            raise BrowserMissing("no Chromium found (install Debian's chromium package, or set INSPECTOR_CHROMIUM)")
        profile = tempfile.mkdtemp(prefix="inspector-chromium-")
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                 "--remote-debugging-address=127.0.0.1", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        port = None
        lines: list[str] = []
        deadline = time.monotonic() + timeout

        def read() -> None:
            nonlocal port
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                if m:
                    port = int(m.group(1))
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if port is None:
            proc.kill()
            proc.wait()
            shutil.rmtree(profile, ignore_errors=True)
            raise RuntimeError("Chromium did not start: " + "".join(lines[-20:]))
        # Keep draining stderr so Chromium never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        return cls(proc, port, profile)

    def open(self, path: Path, *, timeout: float = 60) -> Page:
        """A new tab with every event domain enabled, navigated to ``path`` and loaded."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        ws = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        page = Page(ws)
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.send(f"{domain}.enable")
        page.send("Page.navigate", {"url": path.resolve().as_uri()})
        page.wait_for("Page.loadEventFired", timeout=timeout)
        page.settle(0.5)
        return page

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
