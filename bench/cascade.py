"""The whole-frame cascade end to end: found (IoU >= 0.5) and correctly named, held-out species found
and flagged unknown, per-frame latency.

    flock /tmp/oceanid-cpu.lock env PYTHONPATH=$PWD .venv/bin/python bench/cascade.py --home /tmp/cascade-demo \\
        --train-epochs 12                   (trains a reef detector into HOME/models/detector-reef first)
    flock /tmp/oceanid-cpu.lock env PYTHONPATH=$PWD .venv/bin/python bench/cascade.py --home H --detector DIR

Protocol. The home is a built demo home (``oceanid demo``): its frames carry ground-truth boxes,
split by frame (no frame's boxes straddle splits). With ``--train-epochs`` a class-agnostic
detector is trained on the frames of the train split (every box an "organism", held-out
species included: the identifier never saw them, the detector did) and saved as
``HOME/models/detector-<name>``. The held-out frames are those of the test split (``--split``).
Each goes through ``Workspace.identify_frames`` (detect -> cut with the training padding ->
identify), and pycocotools' COCOeval (class-agnostic, IoU 0.5, up to 100 boxes) matches
detections to ground truth. Per ground-truth organism of a trained species: found (matched)
and named (the matched box's answer is its species); per organism of a held-out species:
found and flagged unknown. Also mAP@0.5 / mAP@0.5:0.95 and recall@0.5 from the same COCOeval,
and the wall time per frame of the detector alone and of the whole cascade (one frame at a time).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.workspace import Workspace  # noqa: E402
from index.frames import truth_frames  # noqa: E402
from index.imaging import open_image  # noqa: E402

OUT = ROOT / "bench" / "figures" / "cascade.json"


def train(ws: Workspace, name: str, epochs: int, image_size: int, threads: int | None) -> Path:
    """The demo's detector training (app.workspace.demo.train_frame_detector) into models/detector-NAME."""
    from app.workspace.demo import train_frame_detector

    folder = ws.paths.models / f"detector-{name}"
    seconds = train_frame_detector(ws, folder, epochs, image_size, threads=threads, progress=True)
    (folder / "history.json").write_text(json.dumps({"epochs": epochs, "seconds": round(seconds, 1),
                                                     "image_size": image_size}))
    print(f"trained {folder} in {seconds:.0f} s")
    return folder


def evaluate(ws: Workspace, frames, detector: Path, min_score: float) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    engine = ws.engine()
    known = set(engine.prototypes.names)
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "organism"}]}
    for n, f in enumerate(frames, start=1):
        gt["images"].append({"id": n, "width": f.width, "height": f.height})
        for box, concept in zip(f.boxes.tolist(), f.concepts):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": n, "category_id": 1,
                                      "bbox": box, "area": box[2] * box[3], "iscrowd": 0, "concept": concept})
    ws.identify_frames([frames[0].path], detector=detector, min_score=min_score)  # warm-up: load the models
    from app.workspace.cascade import detector_finder

    detect_s, cascade_s, results = [], [], []
    finder = detector_finder(detector, min_score, "cpu")  # the detector alone, for its share of the time
    for f in frames:
        image = open_image(f.path)
        t0 = time.perf_counter()
        finder([image], [f.path])
        detect_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        results.append(ws.identify_frames([f.path], detector=detector, min_score=min_score).frames[0])
        cascade_s.append(time.perf_counter() - t0)
    dt, answers = [], {}
    for n, frame in enumerate(results, start=1):
        for o in frame.organisms:
            dt.append({"image_id": n, "category_id": 1, "bbox": list(o.box), "score": float(o.detection_score),
                       "id": len(dt) + 1})
            answers[len(dt)] = o
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt) if dt else None
    figures: dict = {"frames": len(frames), "detections": len(dt), "min_score": min_score}
    matched: dict[int, int] = {}
    if coco_dt is not None:
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.useCats = 0
        ev.params.maxDets = [1, 10, 100]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        figures.update(map_50_95=round(float(ev.stats[0]), 4), map_50=round(float(ev.stats[1]), 4))
        t50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
        for e in ev.evalImgs:
            if e is None or e["aRng"] != ev.params.areaRng[0]:
                continue
            for g, d in zip(e["gtIds"], e["gtMatches"][t50]):
                if d > 0:
                    matched[int(g)] = int(d)
    known_total = found_known = named = held_total = found_held = flagged = 0
    for a in gt["annotations"]:
        d = matched.get(a["id"])
        if a["concept"] in known:
            known_total += 1
            found_known += d is not None
            named += d is not None and answers[d].species == a["concept"]
        else:
            held_total += 1
            found_held += d is not None
            flagged += d is not None and answers[d].unknown
    total = known_total + held_total
    figures.update(
        organisms=total, recall_50=round((found_known + found_held) / max(1, total), 4),
        known_organisms=known_total, found_and_named=round(named / max(1, known_total), 4),
        named_when_found=round(named / max(1, found_known), 4),
        held_out_organisms=held_total, found_and_flagged_unknown=round(flagged / max(1, held_total), 4),
        detect_ms_per_frame=round(1000 * float(np.median(detect_s)), 1),
        cascade_ms_per_frame=round(1000 * float(np.median(cascade_s)), 1),
        cascade_ms_per_frame_mean=round(1000 * float(np.mean(cascade_s)), 1),
        organisms_per_frame=round(len(dt) / max(1, len(frames)), 2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--detector", type=Path, help="a detector folder (default: train one, or the newest)")
    parser.add_argument("--train-epochs", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--name", default="reef")
    parser.add_argument("--split", default="test", help="held-out frames: those whose boxes are in this split")
    parser.add_argument("--min-score", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--key", default=None, help="key in bench/figures/cascade.json (default: --name)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    ws = Workspace(args.home)
    frames = truth_frames(ws.catalog, ws.home)
    detector = args.detector
    if args.train_epochs:
        detector = train(ws, args.name, args.train_epochs, args.image_size, args.threads)
    detector = ws.detector_path(detector)
    held = [f for f in frames if args.split in f.splits]
    figures = {"detector": str(detector), **evaluate(ws, held, detector, args.min_score),
               "date": time.strftime("%Y-%m-%d %H:%M")}
    history = detector / "history.json"
    if history.is_file():
        h = json.loads(history.read_text())
        figures["detector_training"] = h
    print(json.dumps(figures, indent=1))
    stored = json.loads(OUT.read_text()) if OUT.is_file() else {}
    stored[args.key or args.name] = figures
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
