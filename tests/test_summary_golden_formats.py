"""Golden files for the other summary formats, on the shipped sample model.

Their numbers are pinned against Keras by the loader tests; these files pin the
layout.  Regenerate: see ``tests/helpers/golden.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import inspector
from helpers.golden import check_golden

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "seed_cnn.keras"


@pytest.mark.parametrize("fmt,suffix", [("github", "md"), ("grid", "txt"), ("simple", "txt"),
                                        ("csv", "csv"), ("json", "json")])
def test_sample_summary_golden(fmt, suffix):
    graph = inspector.load(SAMPLE)
    graph.path = "samples/seed_cnn.keras"  # stable, wherever the checkout lives
    text = inspector.summarize(graph, fmt=fmt, macs=fmt != "json")
    check_golden(f"summary_seed_cnn_{fmt}.{suffix}", text)


def test_classic_with_macs_golden():
    text = inspector.summarize(inspector.load(SAMPLE), macs=True)
    check_golden("summary_seed_cnn_classic_macs.txt", text)
