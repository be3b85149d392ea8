"""Embedding pipeline throughput vs the bare forward pass (CPU).

    .venv/bin/python -m bench.embed_throughput [--data ../shared/data/fish4knowledge]
        [--backbone resnet18] [--image-size 64] [--batch-size 64] [--workers 0 1 2] [--prefetch 0 2]
        [--n 2000] [--repeats 3]

Pipeline = read + decode + eval transform + forward (embedder.encoding.encode_paths);
bare = forward only, on the same model and batch size, over a pre-built batch.
``--prefetch`` (workers 0 only): batches a thread decodes ahead of the forward pass (0 = in series).
Target: pipeline / bare >= 0.9. Storing the vectors in the catalog is the lead's
part (index/app) and is not measured here. Writes bench/results/embed_throughput.json.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import FISH4K, bench_parser, write_result

if TYPE_CHECKING:
    import torch


def bare_forward(model, batch: torch.Tensor, n: int) -> float:
    """Crops/s of model(batch) repeated to cover n crops (after one warm-up batch)."""
    import torch

    with torch.inference_mode():
        model(batch)
        reps = max(1, n // len(batch))
        t0 = time.perf_counter()
        for _ in range(reps):
            model(batch)
        return reps * len(batch) / (time.perf_counter() - t0)


def main() -> None:
    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--data", type=Path, default=FISH4K)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=None)
    ap.add_argument(
        "--prefetch",
        type=int,
        nargs="+",
        default=[2],
        help="batches decoded ahead by a thread with 0 workers (0: in series)",
    )
    ap.add_argument("--n", type=int, default=2000, help="crops to embed per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements; the best counts")
    args = ap.parse_args()
    import torch

    from embedder.encoding import default_workers, encode_paths
    from embedder.model import build_model

    paths = sorted(args.data.glob("*/*.png"))[: args.n]
    if not paths:
        sys.exit(f"no crops under {args.data}")
    torch.manual_seed(0)
    model = build_model(args.backbone, image_size=args.image_size).eval()
    batch = torch.randn(args.batch_size, 3, model.config.image_size, model.config.image_size)
    workers_list = args.workers if args.workers is not None else sorted({0, 1, default_workers()})

    encode_paths(
        model, paths[: args.batch_size * 2], batch_size=args.batch_size, workers=0, device="cpu", progress=False
    )  # warm caches
    rows = []
    runs = [(w, p) for w in workers_list for p in (args.prefetch if w == 0 else [0])]
    for workers, prefetch in runs:
        # the CPU may be shared: alternate the two measurements and keep the best of each
        bare, pipe = 0.0, 0.0
        for _ in range(args.repeats):
            bare = max(bare, bare_forward(model, batch, len(paths)))
            t0 = time.perf_counter()
            result = encode_paths(
                model,
                paths,
                batch_size=args.batch_size,
                workers=workers,
                device="cpu",
                progress=False,
                prefetch=prefetch,
            )
            pipe = max(pipe, len(result.ok) / (time.perf_counter() - t0))
        rows.append(
            {
                "workers": workers,
                "prefetch": prefetch,
                "pipeline_crops_s": round(pipe, 1),
                "bare_forward_crops_s": round(bare, 1),
                "ratio": round(pipe / bare, 3),
                "failed": len(result.failed),
            }
        )

    print(
        f"{args.backbone} @ {model.config.image_size}px, batch {args.batch_size}, "
        f"{len(paths)} crops, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
    )
    print(f"{'workers':>7} {'prefetch':>8} {'pipeline/s':>11} {'forward/s':>10} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['workers']:>7} {r['prefetch']:>8} {r['pipeline_crops_s']:>11.1f} "
            f"{r['bare_forward_crops_s']:>10.1f} {r['ratio']:>6.2f}"
        )
    out = {
        "backbone": args.backbone,
        "image_size": model.config.image_size,
        "batch_size": args.batch_size,
        "n_crops": len(paths),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
        "note": "storing vectors in the catalog is measured by the lead, not here",
    }
    write_result("embed_throughput", out)


if __name__ == "__main__":
    main()
