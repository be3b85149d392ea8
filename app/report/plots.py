"""PNG charts for the survey; the one place matplotlib is set up (headless ``Agg``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from index.catalog.stats import Survey  # noqa: E402

DPI = 110


def save_figure(fig, path: Path) -> Path:
    """Lay out, write ``path`` as PNG and free the figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def survey_plots(s: Survey, folder: Path) -> list[Path]:
    """Write crops-per-species and depth-distribution charts; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if s.per_species:
        names = list(s.per_species)
        fig, ax = plt.subplots(figsize=(8, max(3, 0.28 * len(names))))
        ax.barh(names[::-1], list(s.per_species.values())[::-1], color="#2a7fb8")
        ax.set_xlabel("crops")
        ax.set_title("Crops per species")
        written.append(save_figure(fig, folder / "crops_per_species.png"))
    if s.depths:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(s.depths, bins=20, color="#1b5e7a", orientation="horizontal")
        ax.invert_yaxis()
        ax.set_ylabel("depth (m)")
        ax.set_xlabel("crops")
        ax.set_title("Depth distribution")
        written.append(save_figure(fig, folder / "depth_distribution.png"))
    return written
