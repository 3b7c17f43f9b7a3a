"""Training logs for tests: CSVLogger files with a known shape."""

from __future__ import annotations

import math
from pathlib import Path


def overfitting_log(path: Path, *, best: int = 15, epochs: int = 40, spikes: tuple[int, ...] = (22, 29, 34)) -> Path:
    """A CSVLogger file whose validation loss is lowest at epoch ``best`` and rises
    steadily after it while the training loss keeps falling, with validation
    spikes at ``spikes``."""
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    for e in range(epochs):
        loss = 1.5 * math.exp(-e / 8) + 0.05
        val = 1.2 * math.exp(-e / 8) + 0.3 + (0.03 * (e - best) if e > best else 0.0)
        if e in spikes:
            val += 0.3
        rows.append(f"{e},{1 - loss / 2:.5f},{loss:.5f},{1 - val / 2:.5f},{val:.5f}")
    path.write_text("\n".join(rows) + "\n")
    return path
