"""The whole-frame cascade end to end: found (IoU >= 0.5) and correctly named, held-out species found
and flagged unknown, per-frame latency.

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.cascade --home /tmp/cascade-demo \\
        --train-epochs 12                   (trains a reef detector into HOME/models/detector-reef first)
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.cascade --home H --detector DIR

Protocol. The home is a built demo home (``oceanid demo``): its frames carry ground-truth boxes,
split by frame (no frame's boxes straddle splits). With ``--train-epochs`` a class-agnostic
detector is trained on the frames of the train split (every box an "organism", held-out
species included: the identifier never saw them, the detector did) and saved as
``HOME/models/detector-<name>``. The held-out frames are those of the test split (``--split``).
Each goes through ``Workspace.identify_frames`` (detect -> cut with the training padding ->
identify), and pycocotools' COCOeval (class-agnostic, IoU 0.5, up to 100 boxes) matches
detections to ground truth. Per ground-truth organism of a trained species: found (matched)
and named (the matched box's answer is its species); per organism of a held-out species:
found and flagged unknown. Also mAP@0.5 / mAP@0.5:0.95 (pycocotools, over every box the
detector keeps), ``recall_50`` (the organisms the cascade's boxes found), and the wall time per
frame of the detector and of the whole cascade (one frame at a time). The grading is the
library's (:mod:`app.workspace.frames.grading`, what ``oceanid evaluate`` reports).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import FIGURES, bench_parser, store_figures

if TYPE_CHECKING:
    from app.workspace import Workspace

OUT = FIGURES / "cascade.json"


def train(ws: Workspace, name: str, epochs: int, image_size: int, threads: int | None) -> Path:
    """The demo's detector training (app.workspace.demo.train_frame_detector) into models/detector-NAME."""
    from app.workspace.demo import train_frame_detector

    folder = ws.paths.models / f"detector-{name}"
    seconds = train_frame_detector(ws, folder, epochs, image_size, threads=threads, progress=True)
    (folder / "history.json").write_text(
        json.dumps({"epochs": epochs, "seconds": round(seconds, 1), "image_size": image_size})
    )
    print(f"trained {folder} in {seconds:.0f} s")
    return folder


def evaluate(ws: Workspace, frames, detector: Path, min_score: float) -> dict:
    """The library's grading (app.workspace.frames.grading, as `oceanid evaluate` does it),
    under this benchmark's JSON keys."""
    from app.workspace.frames.boxes import detector_finder
    from app.workspace.frames.grading import cascade_figures
    from index.catalog.taxa import tree

    find = detector_finder(ws.load_detector(detector), 0.0)  # every box the detector keeps: mAP grades them all
    c = cascade_figures(ws.engine(), frames, find, ws.crop, min_score, tree(ws.catalog))
    for name, reason in c.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    return {
        "frames": c.frames,
        "detections": c.detections,
        "min_score": c.min_score,
        "map_50_95": c.map,
        "map_50": c.map50,
        "organisms": c.organisms,
        "recall_50": round(c.found / max(1, c.organisms), 4),
        "known_organisms": c.known_organisms,
        "found_and_named": c.found_and_named,
        "named_when_found": c.named_when_found,
        "held_out_organisms": c.held_out_organisms,
        "found_and_flagged_unknown": c.found_and_flagged_unknown,
        "detect_ms_per_frame": c.detect_ms_per_frame,
        "cascade_ms_per_frame": c.cascade_ms_per_frame,
        "cascade_ms_per_frame_mean": c.cascade_ms_per_frame_mean,
        "organisms_per_frame": round(c.detections / max(1, c.frames), 2),
    }


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument(
        "--detector", type=Path, help="a detector folder or id (default: train one, or the current detector)"
    )
    parser.add_argument("--train-epochs", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--name", default="reef")
    parser.add_argument("--split", default="test", help="held-out frames: those whose boxes are in this split")
    parser.add_argument("--min-score", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--key", default=None, help="key in bench/figures/cascade.json (default: --name)")
    args = parser.parse_args()
    import torch

    from app.workspace import Workspace
    from index.catalog.frames import truth_frames

    torch.set_num_threads(args.threads)
    ws = Workspace(args.home)
    frames = truth_frames(ws.catalog, ws.home)
    detector = args.detector
    if args.train_epochs:
        detector = train(ws, args.name, args.train_epochs, args.image_size, args.threads)
    detector = ws.detector_path(detector)
    held = [f for f in frames if args.split in f.splits]
    figures = {
        "detector": str(detector),
        **evaluate(ws, held, detector, args.min_score),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    history = detector / "history.json"
    if history.is_file():
        h = json.loads(history.read_text())
        figures["detector_training"] = h
    print(json.dumps(figures, indent=1))
    store_figures(OUT, args.key or args.name, figures, indent=1)


if __name__ == "__main__":
    main()
