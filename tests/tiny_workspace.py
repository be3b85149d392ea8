"""A tiny trained workspace built once per test session (tiny backbone, small reef)."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_tiny_workspace(home: Path, frames: int = 48, epochs: int = 2):
    from app.workspace import Workspace
    from embedder.train_config import TrainConfig
    from index.splits import SplitConfig

    ws = Workspace(home)
    ws.ingest_synthetic(species=8, holdout=2, frames=frames, seed=1)
    ws.split(SplitConfig(seed=0))
    ws.train(TrainConfig(backbone="tiny", weights="none", epochs=epochs, image_size=32, dim=32, batch_p=4, batch_k=4,
                         workers=0, seed=0), model="tiny")
    ws.embed("tiny", progress=False)
    ws.index_build("tiny")
    return ws


def copy_workspace(src: Path, dest: Path):
    from app.workspace import Workspace

    shutil.copytree(src, dest)
    return Workspace(dest)
