"""`identify` on one image: total latency vs the encoder's forward pass alone.

Target: total within 1.3x of the forward pass. Uses the demo workspace if one
exists at --home (default ./data), else builds a small one in a temp folder.

Run: .venv/bin/python -m bench.identify_latency [--home data]
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.common import bench_parser, median_seconds, table, tiny_workspace, write_result


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("--home", default="data")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import torch

    from app.workspace import Workspace
    from embedder.transforms import eval_transform
    from index.catalog.embeddings import crop_rows
    from index.imaging import open_image

    tmp = None
    ws = Workspace(args.home)
    try:
        ws.engine()
    except Exception:  # no trained workspace there: build a small one
        tmp = tempfile.TemporaryDirectory()
        ws = tiny_workspace(Path(tmp.name) / "home")
    engine = ws.engine()
    torch.set_num_threads(torch.get_num_threads())
    path = ws.paths.resolve(crop_rows(ws.catalog, split="test", limit=1)[0].crop_path)
    image = open_image(path)
    tensor = eval_transform(engine.model.config)(image).unsqueeze(0)
    engine.model.eval()

    def forward():
        with torch.inference_mode():
            engine.model(tensor)

    for _ in range(5):
        forward()
        ws.identify([path])
    # interleaved, so background load hits both alike; medians
    pairs = [(median_seconds(forward, 1), median_seconds(lambda: ws.identify([path]), 1)) for _ in range(args.repeats)]
    t_forward = statistics.median(p[0] for p in pairs)
    t_identify = statistics.median(p[1] for p in pairs)
    rows = [
        {
            "model": engine.model_id,
            "backbone": engine.model.config.backbone,
            "image_size": engine.model.config.image_size,
            "forward_ms": t_forward * 1e3,
            "identify_ms": t_identify * 1e3,
            "ratio": t_identify / t_forward,
            "target": "<= 1.3",
        }
    ]
    print(table(rows))
    write_result("identify_latency", {"rows": rows})
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
