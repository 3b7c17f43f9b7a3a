"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``)
opens the report of a sample model from disk and must show every chart, log no
console error (script errors, failed loads and Content-Security-Policy
violations included), request nothing but the file itself, and its layer search
must work.  Skipped only where no Chromium is installed (CI installs it).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from helpers.chromium import Browser, find_chromium
from helpers.cli import run_cli
from helpers.logs import overfitting_log

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "samples" / "seed_cnn.keras"
ZERO_MLP = ROOT / "samples" / "lint_zero_mlp.keras"
CHARTS = ("params-by-layer", "macs-by-layer", "by-type", "split", "profile", "weights", "history")

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="headless Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with Browser.launch() as b:
        yield b


@pytest.fixture(scope="module")
def seed_page(browser, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    log = overfitting_log(folder / "log.csv")
    out = folder / "seed_cnn.html"
    assert run_cli("report", SEED, "-o", out, "--history", log, "--isolated").code == 0
    page = browser.open(out)
    yield out, page
    page.close()


def test_no_console_errors(seed_page):
    _, page = seed_page
    assert page.console_errors() == []


def test_nothing_but_the_file_is_loaded(seed_page):
    out, page = seed_page
    assert page.requests, "the navigation itself should be recorded"
    for url in page.requests:
        assert url == out.resolve().as_uri() or url.startswith("data:"), url


def test_every_chart_is_drawn(seed_page):
    _, page = seed_page
    drawn = page.evaluate("""
        Array.from(document.querySelectorAll('figure[data-chart]')).map(function (f) {
          var svg = f.querySelector('svg'); var r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
          return [f.getAttribute('data-chart'), Math.round(r.width), Math.round(r.height),
                  svg ? svg.querySelectorAll('path, use').length : 0];
        })""")
    assert sorted(c[0] for c in drawn) == sorted(CHARTS)
    for key, width, height, shapes in drawn:
        assert width > 300 and height > 100, (key, width, height)
        assert shapes > 10, key  # bars, lines and glyphs were rendered, not an empty box


def test_layer_search_filters_rows(seed_page):
    _, page = seed_page
    result = page.evaluate("""
        (function () {
          var box = document.getElementById('layer-search');
          function visible() { return Array.from(document.querySelectorAll('#layer-table tbody tr'))
              .filter(function (r) { return r.offsetParent !== null; }).length; }
          var all = visible();
          box.value = 'conv2d'; box.dispatchEvent(new Event('input'));
          var some = visible(); var label = document.getElementById('layer-count').textContent;
          box.value = ''; box.dispatchEvent(new Event('input'));
          return [all, some, label, visible()];
        })()""")
    all_rows, filtered, label, restored = result
    assert all_rows == 8 and filtered == 2 and label == "2 of 8 layers" and restored == 8


@contextlib.contextmanager
def _report_page(browser, cli, model: Path, out: Path):
    """The page of ``model``'s report (no charts) written to ``out``, open in ``browser`` until the block ends."""
    assert cli("report", model, "-o", out, "--isolated", "--no-charts").code == 0
    page = browser.open(out)
    try:
        yield page
    finally:
        page.close()


def test_findings_expand_and_collapse(browser, tmp_path, cli):
    with _report_page(browser, cli, ZERO_MLP, tmp_path / "zero.html") as page:
        states = page.evaluate("""
            (function () {
              var btn = document.querySelector('button[data-toggle=findings]');
              var all = function () { return Array.from(document.querySelectorAll('#findings details'))
                  .map(function (d) { return d.open; }); };
              var before = all(); btn.click(); var after = all(); btn.click();
              return [before, after, all()];
            })()""")
        before, after, again = states
        assert any(not s for s in before)  # the rule documentation starts collapsed
        assert all(after) and not any(again)
        assert page.console_errors() == []


def test_a_long_layer_table_is_shown_a_page_at_a_time(browser, tmp_path, cli, monkeypatch):
    """More layers than a page: the script shows them a page at a time, turns the pages and filters every
    layer, not only the page shown (the ResNet50-sized sample is made long by a small page)."""
    from inspector.reporters import html

    monkeypatch.setattr(html, "TABLE_PAGE", 3)
    with _report_page(browser, cli, SEED, tmp_path / "seed.html") as page:
        seen = page.evaluate("""
            (function () {
              var box = document.getElementById('layer-search');
              function state() {
                return [Array.from(document.querySelectorAll('#layer-table tbody tr td:nth-child(2)'))
                          .map(function (td) { return td.textContent; }),
                        document.getElementById('layer-page').textContent,
                        document.getElementById('layer-count').textContent,
                        document.getElementById('layer-prev').disabled,
                        document.getElementById('layer-next').disabled];
              }
              var out = [state()];
              document.getElementById('layer-next').click(); out.push(state());
              document.getElementById('layer-next').click(); out.push(state());
              box.value = 'batch'; box.dispatchEvent(new Event('input')); out.push(state());
              box.value = ''; box.dispatchEvent(new Event('input')); out.push(state());
              return out;
            })()""")
        first, second, last, filtered, restored = seen
        names = first[0] + second[0] + last[0]
        assert first[1:] == ["rows 1\u20133", "8 layers", True, False]
        assert second[1:] == ["rows 4\u20136", "8 layers", False, False]
        assert last[1:] == ["rows 7\u20138", "8 layers", False, True]
        assert len(names) == len(set(names)) == 8  # every layer on exactly one page
        assert filtered[0] == [n for n in names if "batch" in n]  # both, though only one is on the first page
        assert filtered[1:] == ["rows 1\u20132", "2 of 8 layers", True, True]
        assert restored == first
        assert page.console_errors() == []
