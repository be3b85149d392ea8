"""Training history as JSON and a PNG of loss and metric curves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_history(history: list[dict[str, Any]], out_dir: Path) -> None:
    """Write ``history.json`` (one dict per epoch) and ``curves.png`` into ``out_dir``."""
    tmp = out_dir / "history.json.tmp"
    tmp.write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "history.json")
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    for key in ("val_top1", "val_top5", "val_f1_macro"):
        ax_metric.plot(epochs, [h.get(key) for h in history], marker="o", label=key.removeprefix("val_"))
    ax_metric.set(xlabel="epoch", ylabel="validation (nearest prototype)", ylim=(0, 1), title="metrics")
    ax_metric.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "curves.png", dpi=100)
    plt.close(fig)
