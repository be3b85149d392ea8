"""`identify` on one image: total latency vs the encoder's forward pass alone.

Target: total within 1.3x of the forward pass. Uses the demo workspace if one
exists at --home (default ./data), else builds a small one in a temp folder.

Run: .venv/bin/python bench/identify_latency.py [--home data]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_result  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import torch

    from app.workspace import Workspace
    from embedder.transforms import eval_transform

    parser = argparse.ArgumentParser()
    parser.add_argument("--home", default="data")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    tmp = None
    ws = Workspace(args.home)
    try:
        ws.engine()
    except Exception:  # no trained workspace there: build a small one
        tmp = tempfile.TemporaryDirectory()
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import build_tiny_workspace

        ws = build_tiny_workspace(Path(tmp.name) / "home")
    engine = ws.engine()
    torch.set_num_threads(torch.get_num_threads())
    from index.catalog.embeddings import crop_rows

    path = ws.paths.resolve(crop_rows(ws.catalog, split="test", limit=1)[0].crop_path)
    image = __import__("index.imaging", fromlist=["open_image"]).open_image(path)
    tensor = eval_transform(engine.model.config)(image).unsqueeze(0)
    engine.model.eval()

    def forward():
        with torch.inference_mode():
            engine.model(tensor)

    for _ in range(5):
        forward()
        ws.identify([path])
    # interleaved, so background load hits both alike; medians
    pairs = [(timed(forward, 1), timed(lambda: ws.identify([path]), 1)) for _ in range(args.repeats)]
    t_forward = statistics.median(p[0] for p in pairs)
    t_identify = statistics.median(p[1] for p in pairs)
    rows = [{"model": engine.model_id, "backbone": engine.model.config.backbone,
             "image_size": engine.model.config.image_size, "forward_ms": t_forward * 1e3,
             "identify_ms": t_identify * 1e3, "ratio": t_identify / t_forward, "target": "<= 1.3"}]
    print(table(rows))
    write_result("identify_latency", {"rows": rows})
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
