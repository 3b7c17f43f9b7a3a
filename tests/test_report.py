"""``inspector report``: the Markdown report (golden file), the HTML report's
structure (sections, charts, no external resources, escaping), histograms that
never read what they must not, and the training-history section.

The golden Markdown lives in ``tests/golden/report_seed_cnn.md``; regenerate it
after an intended change with ``INSPECTOR_REGEN_GOLDEN=1 python -m pytest
tests/test_report.py`` and review the diff.  The numbers in it are checked
against Keras itself by ``test_markdown_numbers_match_keras``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.cli import run_cli
from helpers.golden import check_golden
from helpers.hostile import functional_config, keras_archive, layer_entry
from helpers.logs import overfitting_log

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "samples" / "seed_cnn.keras"
ZERO_MLP = ROOT / "samples" / "lint_zero_mlp.keras"
CHARTS = ("params-by-layer", "macs-by-layer", "by-type", "split", "profile", "weights")
HOSTILE_A = "<script>alert(1)</script>"
HOSTILE_B = "a`|b](http://e.example)<img src=x onerror=alert(2)>$x$"


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def report(tmp_path: Path, model: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert run_cli("report", model, "-o", out, "--isolated", *extra).code == 0
    return out


@pytest.fixture(scope="module")
def seed_html(tmp_path_factory) -> str:
    return report(tmp_path_factory.mktemp("html"), SEED, "seed_cnn.html").read_text()


@pytest.fixture(scope="module")
def seed_md(tmp_path_factory) -> tuple[Path, str]:
    path = report(tmp_path_factory.mktemp("md"), SEED, "seed_cnn.md")
    return path, path.read_text()


@pytest.fixture(scope="module")
def seed_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras.saving.load_model(SEED, compile=False)  # the oracle (a trusted sample)


# -- Markdown ------------------------------------------------------------------------------------


def test_markdown_golden(seed_md):
    _, text = seed_md
    check_golden("report_seed_cnn.md", text)


def test_markdown_images_exist(seed_md):
    path, text = seed_md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(Path(link).stem for link in links) == sorted(CHARTS)
    for link in links:
        assert not os.path.isabs(link) and link.startswith("seed_cnn_files/"), link
        data = (path.parent / link).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), link


def test_markdown_numbers_match_keras(seed_md, seed_keras):
    """Totals and every row of the layer table agree with Keras itself."""
    _, text = seed_md
    trainable = sum(int(np.prod(w.shape)) for w in seed_keras.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in seed_keras.non_trainable_weights)
    assert f"| **Parameters** | {seed_keras.count_params():,} " in text
    assert f"| **Trainable** | {trainable:,} |" in text
    assert f"| **Non-trainable** | {non_trainable:,} |" in text
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^\| \d+ \| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \| ([\d,]+) \|", text, re.M)}
    assert list(rows) == [layer.name for layer in seed_keras.layers]
    for layer in seed_keras.layers:
        cls, shape, params = rows[layer.name]
        assert cls == type(layer).__name__
        assert shape == str(tuple(layer.output.shape))
        assert int(params.replace(",", "")) == layer.count_params()
    import zipfile

    meta = json.loads(zipfile.ZipFile(SEED).read("metadata.json"))
    assert f"| **Keras version** | {meta['keras_version']} |" in text  # the version that wrote the file


def test_markdown_architecture_is_mermaid(seed_md, seed_keras):
    _, text = seed_md
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    nodes = re.findall(r"^    n\d+[\[(]", block, re.M)
    # A Sequential model: its input plus every layer, drawn as one chain.
    assert len(nodes) == len(seed_keras.layers) + 1
    assert len(re.findall(r"-->", block)) == len(seed_keras.layers)


def test_markdown_to_stdout_has_no_images(cli):
    code, out, _ = cli("report", SEED, "--format", "markdown", "--isolated")
    assert code == 0
    assert out.startswith("# Model report:") and "![" not in out


# -- HTML ----------------------------------------------------------------------------------------


def test_html_sections_and_charts(seed_html, seed_keras):
    page = Page(seed_html)
    ids = {a.get("id") for _, a in page.tags}
    for section in ("overview", "compute", "layers", "weights", "findings"):
        assert section in ids, section
    figures = page.find("figure")
    assert sorted(f["data-chart"] for f in figures) == sorted(CHARTS)
    assert len(page.find("svg")) == len(CHARTS)
    rows = [a for t, a in page.tags if t == "tr" and "data-search" in a]
    assert len(rows) == len(seed_keras.layers)
    for layer in seed_keras.layers:
        assert layer.name in page.all_text


class Outline(HTMLParser):
    """The HTML report's structure, one line per landmark: sections, figures, tables,
    elements with an id, and the text of headings, table headers, summaries and links.
    Chart drawings, styles and the script are left out (their bytes belong to matplotlib)."""

    LANDMARKS = ("section", "nav", "table", "figure", "details", "svg")
    TITLED = ("h1", "h2", "h3", "h4", "th", "summary", "a", "figcaption")

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._open: list[tuple[str, str, list[str]]] = []  # (tag, head, text pieces) being captured
        self._skip = 0  # inside <svg>, <style> or <script>
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if self._skip:
            self._skip += tag in ("svg", "style", "script")
            return
        a = dict(attrs)
        head = tag + (f"#{a['id']}" if a.get("id") else "") + "".join(
            f" {k}={a[k]}" for k in ("href", "data-chart", "class") if a.get(k) and (k != "class" or tag in
                                                                                    ("section", "table", "th")))
        if tag in self.TITLED:
            self._open.append((tag, head, []))
        elif tag in self.LANDMARKS or a.get("id"):
            self.lines.append(head)
        if tag in ("svg", "style", "script"):
            self._skip = 1

    def handle_endtag(self, tag):
        if self._skip:
            self._skip -= tag in ("svg", "style", "script")
            return
        if self._open and self._open[-1][0] == tag:
            _, head, text = self._open.pop()
            self.lines.append(f"{head}: {' '.join(''.join(text).split())}")

    def handle_data(self, data):
        if self._open and not self._skip:
            self._open[-1][2].append(data)


@pytest.mark.parametrize("name", ["seed_cnn", "zero_mlp"])
def test_html_structure_golden(name, seed_html, tmp_path):
    text = seed_html if name == "seed_cnn" else report(tmp_path, ZERO_MLP, "zero.html", "--no-charts").read_text()
    check_golden(f"report_{name}.structure.txt", "\n".join(Outline(text).lines) + "\n")


def test_html_is_self_contained(seed_html):
    page = Page(seed_html)
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), (tag, key, value)
            if key in ("src", "href") and value:
                assert value.startswith(("#", "data:")), (tag, key, value)
    assert not page.find("link") and not page.find("img") and not page.find("iframe")
    assert "@import" not in seed_html and not re.search(r"url\((?!#)", seed_html)
    # The one script is allowed by its hash, and nothing else may load.
    csp = page.find("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"]
    assert "default-src 'none'" in csp
    assert len(page.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


def test_html_is_deterministic(tmp_path, seed_html):
    again = report(tmp_path, SEED, "again.html").read_text()
    assert again == seed_html
    assert str(ROOT) not in seed_html and str(tmp_path) not in seed_html


def test_html_findings_with_rule_docs(tmp_path):
    """lint_zero_mlp has two all-zero kernels (INIT002, error): the findings section
    groups them under errors and carries the rule's documentation."""
    page = Page(report(tmp_path, ZERO_MLP, "zero.html").read_text())
    text = page.all_text
    assert "2 errors" in text
    doc = page.find("details", id="rule-INIT002")
    assert doc, "INIT002 documentation missing"
    from inspector.rules.registry import get_rule

    heads = re.findall(r"^##\s*(.+)$", get_rule("INIT002").doc, re.M)
    assert heads and all(h in text for h in heads)
    # The histogram of an all-zero kernel is drawn (constant) and tabulated as 100% zeros.
    assert "100.0%" in text


def _hostile_model(tmp_path: Path) -> Path:
    cfg = functional_config(layer_entry("ReLU", HOSTILE_A, "x"),
                            layer_entry("Activation", HOSTILE_B, HOSTILE_A, activation="relu"),
                            name="<b>model</b>")
    return keras_archive(tmp_path / "hostile.keras", cfg)


def test_html_escapes_hostile_names(tmp_path):
    page_text = report(tmp_path, _hostile_model(tmp_path), "hostile.html").read_text()
    page = Page(page_text)
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]
    assert not page.find("img")
    assert HOSTILE_A in page.all_text and HOSTILE_B in page.all_text and "<b>model</b>" in page.all_text
    for raw in ("<script>alert", "<img src=x", "<b>model"):
        assert raw not in page_text, raw  # only ever as text, never as markup


def test_html_long_layer_table_holds_every_row_in_a_data_block_that_cannot_end_early(tmp_path, monkeypatch):
    """More layers than a page: the first page as HTML, every row in the JSON block the script pages through,
    hostile names included, with no ``<`` in the block (a name holding ``</script>`` cannot end it)."""
    from inspector.reporters import html as html_report

    monkeypatch.setattr(html_report, "TABLE_PAGE", 2)
    page_text = report(tmp_path, _hostile_model(tmp_path), "hostile.html").read_text()
    page = Page(page_text)
    assert [a.get("type") for t, a in page.tags if t == "script"] == ["application/json", None]  # data, then code
    block = page.scripts[0]
    assert "<" not in block and "alert" not in page.scripts[1]
    rows = json.loads(block)
    names = [re.search(r"<td><code>(.*?)</code>", r).group(1) for _, r in rows]
    assert len(rows) == 3 and len(set(names)) == 3  # the input and the two hostile layers
    body = page_text.split('id="layer-table"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body == "".join(r for _, r in rows[:2])  # the first page, as the script would show it
    assert HOSTILE_A in page.all_text and not page.find("img")
    assert "data-search" not in block  # the script searches the block's texts: the ones a short table's rows hold
    monkeypatch.setattr(html_report, "TABLE_PAGE", 1000)
    short = Page(report(tmp_path, _hostile_model(tmp_path), "short.html").read_text())
    assert [a["data-search"] for t, a in short.tags if t == "tr" and "data-search" in a] == [q for q, _ in rows]


def test_markdown_escapes_hostile_names(tmp_path):
    text = report(tmp_path, _hostile_model(tmp_path), "hostile.md").read_text()
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)  # drop fenced blocks, then code spans
    outside_code = re.sub(r"(`+)(?:(?!\1).)+?\1", "", outside_code)
    for bad in (r"<script", r"<img", r"\]\(http", r"<b>model"):
        assert not re.search(r"(?<!\\)" + bad, outside_code), bad  # only backslash-escaped
    # Pipes inside names do not split table cells: every layer row has 7 cells.
    for line in text.splitlines():
        if re.match(r"^\| \d+ \| ", line):
            assert len(re.findall(r"(?<!\\)\|", line)) == 8, line


# -- what the histograms read ---------------------------------------------------------------------


def test_histograms_never_read_oversized_or_placeholder_tensors():
    from inspector.analysis.report import collect
    from inspector.ir import Inbound, Layer, ModelGraph, Weight

    def forbidden():
        raise AssertionError("this tensor must not be read")

    def placeholder_reader():
        raise AssertionError("placeholders must not be read")

    placeholder_reader.generated = True  # how loaders mark ConstantOfShape fills
    small = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    layers = [
        Layer("x", "InputLayer", node_shapes=[[(None, 8)]]),
        Layer("huge", "Dense", inbound=[[Inbound("x")]], node_shapes=[[(None, 100_000)]],
              weights=[Weight("huge/kernel", "kernel", (8, 10**11), "float32", reader=forbidden)]),
        Layer("filled", "Dense", inbound=[[Inbound("huge")]], node_shapes=[[(None, 8)]],
              weights=[Weight("filled/kernel", "kernel", (100, 1000), "float32", reader=placeholder_reader)]),
        Layer("fine", "Dense", inbound=[[Inbound("filled")]], node_shapes=[[(None, 8)]],
              weights=[Weight("fine/kernel", "kernel", (8, 8), "float32", reader=lambda: small)]),
    ]
    graph = ModelGraph("g", "keras", layers=layers, inputs=[Inbound("x")], outputs=[Inbound("fine")])
    data = collect(graph)
    assert [h.layer for h in data.histograms] == ["fine"]
    assert sum(data.histograms[0].counts) == 64
    skipped = dict(data.skipped_weights)
    assert "above" in skipped["huge/kernel"] and "placeholder" in skipped["filled/kernel"]


def test_histograms_sample_large_tensors_evenly():
    from inspector.analysis.report import _histogram
    from inspector.ir import Weight

    values = np.arange(3_000_000, dtype=np.float32)
    w = Weight("k", "kernel", values.shape, "float32")
    h = _histogram("layer", w, values, sample=1_000_000, bins=10)
    assert h.size == 3_000_000 and h.sampled == 1_000_000
    # An even stride keeps a uniform distribution uniform.
    assert max(h.counts) - min(h.counts) <= 1
    assert h.minimum == 0 and h.maximum == 2_999_997


def _chain_of_dense(n: int) -> Any:
    """``n`` Dense layers in a chain, the ``i``-th holding ``i + 1`` parameters (a bias), so each run of
    consecutive layers has its largest at its end."""
    from inspector.ir import Inbound, Layer, ModelGraph, Weight

    layers = [Layer("x", "InputLayer", node_shapes=[[(None, 1)]])]
    for i in range(n):
        layers.append(Layer(f"d{i}", "Dense", inbound=[[Inbound(layers[-1].name)]], node_shapes=[[(None, 1)]],
                            weights=[Weight(f"d{i}/bias", "bias", (i + 1,), "float32")]))
    return ModelGraph("g", "keras", layers=layers, inputs=[Inbound("x")], outputs=[Inbound(layers[-1].name)])


def test_profile_peaks_cover_every_layer_with_the_largest_of_each_run():
    from inspector.reporters.charts import _peaks

    values = [float((7 * i) % 11) for i in range(95)]
    assert _peaks(values, 100) == (values, [i - 0.5 for i in range(96)], 1)  # few layers: one bar each
    heights, edges, step = _peaks(values, 10)
    assert step == 10 and len(heights) == 10 and len(edges) == 11
    assert edges[0] == -0.5 and edges[-1] == 94.5  # every layer covered, once
    assert heights == [max(values[a:a + 10]) for a in range(0, 95, 10)]  # the last run is shorter


def test_profile_of_many_layers_draws_at_most_its_bars(monkeypatch):
    pytest.importorskip("matplotlib")
    from inspector.analysis.report import collect
    from inspector.reporters import charts

    data = collect(_chain_of_dense(60))
    every = charts.profile(data)
    monkeypatch.setattr(charts, "PROFILE_BARS", 12)
    peaks = charts.profile(data)
    assert every is not None and peaks is not None
    assert every.alt.endswith("over 61 layers.")  # the InputLayer is a layer too
    assert peaks.alt.endswith("over 61 layers; each bar is the largest of 6 consecutive layers.")
    assert len(peaks.data) < len(every.data)  # fewer steps drawn


# -- command line ----------------------------------------------------------------------------------


def test_format_follows_suffix_and_bad_suffix_is_usage_error(tmp_path, cli):
    assert cli("report", SEED, "-o", tmp_path / "r.htm", "--no-charts", "--isolated").code == 0
    assert (tmp_path / "r.htm").read_text().startswith("<!DOCTYPE html>")
    code, _, err = cli("report", SEED, "-o", tmp_path / "r.txt")
    assert code == 2 and "--format" in err
    assert not (tmp_path / "r.txt").exists()
    assert cli("report", tmp_path / "missing.keras", "-o", tmp_path / "m.html").code == 2


def test_no_charts(tmp_path):
    html = report(tmp_path, SEED, "plain.html", "--no-charts").read_text()
    assert "<svg" not in html and "Charts need matplotlib" in html
    md = report(tmp_path, SEED, "plain.md", "--no-charts").read_text()
    assert "![" not in md and not (tmp_path / "plain_files").exists()


def test_importing_report_modules_stays_light():
    code = ("import sys, inspector, inspector.cli, inspector.commands.report, inspector.commands.graph, "
            "inspector.commands.diff, inspector.reporters.html, inspector.reporters.markdown, "
            "inspector.reporters.charts, inspector.analysis.report, inspector.analysis.diff; "
            "heavy = [m for m in ('matplotlib', 'tensorflow', 'keras', 'onnxruntime') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.stdout.strip() == "[]"


# -- training history ------------------------------------------------------------------------------


def test_history_section(tmp_path):
    log = overfitting_log(tmp_path / "log.csv")
    md = report(tmp_path, SEED, "hist.md", "--history", str(log)).read_text()
    section = md.split("## Training history", 1)[1]
    assert "| **Overfitting from epoch** | 16 |" in section
    assert "| **Best validation epoch** | 15 |" in section
    assert "22, 29, 34" in section
    assert "`HIST001`" in section
    assert (tmp_path / "hist_files" / "history.png").read_bytes().startswith(b"\x89PNG")
    page = Page(report(tmp_path, SEED, "hist.html", "--history", str(log)).read_text())
    assert page.find("section", id="history") and page.find("figure", **{"data-chart": "history"})


def test_history_bad_log_is_usage_error(tmp_path, cli):
    code, _, err = cli("report", SEED, "-o", tmp_path / "r.html", "--history", tmp_path / "nope.csv")
    assert code == 2 and "nope.csv" in err


# -- activation probe -------------------------------------------------------------------------------


def test_probe_section_shows_dead_units(tmp_path):
    """A ReLU layer whose biases are -100 never fires on standard-normal input (all
    units dead, by construction); a He-initialized one with zero biases fires."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), name="features")
    x = layers.Dense(32, activation="relu", kernel_initializer="he_normal", name="alive")(inp)
    x = layers.Dense(32, activation="relu", bias_initializer=keras.initializers.Constant(-100.0), name="dead")(x)
    model = keras.Model(inp, layers.Dense(4, name="out")(x))
    path = tmp_path / "relu.keras"
    model.save(path)
    md = report(tmp_path, path, "probe.md", "--probe", "--batch-size", "16").read_text()
    section = md.split("## Activation probe", 1)[1]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \| relu \| 32 \|(?:[^|]*\|){2} ([\d.]+)%",
                                                       section, re.M)}
    dead_share = {name: float(v) for name, v in rows.items()}
    assert dead_share["dead"] == 100.0 and dead_share["alive"] < 50.0
    assert (tmp_path / "probe_files" / "probe.png").exists()
    assert "`ACT004`" in md  # the dead-units rule ran on the probe's measurements


def test_probe_skips_unsafe_model(tmp_path, saved_model, cli):
    """A file with a Lambda layer (SEC001) is not run: the report is written, its
    probe section says why, and the SEC finding is in it."""
    path = saved_model("with_lambda", "keras")
    code, _, err = cli("report", path, "-o", tmp_path / "r.md", "--probe", "--isolated")
    assert code == 0 and "probe skipped" in err
    md = (tmp_path / "r.md").read_text()
    section = md.split("## Activation probe", 1)[1]
    assert "The model was not run" in section and "| `double` |" not in section
    assert "`SEC001`" in md
