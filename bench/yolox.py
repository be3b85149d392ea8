"""YOLOX-Nano from COCO on the aquarium frames (issue 27): zero-shot proposer, fine-tune screen, tiles.

    python -m bench.yolox zeroshot [--tile 512]          COCO objectness x max class, no training
                                                        (onnxruntime), on the val frames
    python -m bench.yolox finetune --epochs 3 --classes 1 --out DIR
                                                        the converted model fine-tuned on the train
                                                        frames, val figures after every epoch
    python -m bench.yolox tiles --detector DIR --tile 512
                                                        a fine-tuned detector folder, whole frame +
                                                        overlapping tiles merged by NMS

Frames are read straight from the shared export (``--data``, default the aquarium's data.yaml
folder): train = ``train/``, val = ``valid/``, 7 classes; boxes under 2 px a side after clipping
are dropped, as ``oceanid ingest yolo`` does (val: 127 frames, 909 boxes). Figures: pycocotools
mAP@0.5 / mAP@0.5:0.95 / recall@0.5, class-agnostic (``index.metrics.boxes``), and per-class AP@0.5:
for a class-agnostic detector, the truth of that class against the detections except those
matched (IoU 0.5) to an organism of another class, over the frames holding that class (and that
class's recall@0.5). Detect time: wall ms per frame (contended machine) and the process's CPU ms.
Each run writes ``bench/results/yolox-*.json``.
Run CPU-heavy parts through the queue (``/work/shared/tools/cpujob --``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from bench.common import table, write_result

AQUARIUM = Path(__file__).resolve().parents[2] / "shared" / "data" / "aquarium"
CLASSES = ("fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray")
SPLIT_FOLDERS = {"train": "train", "val": "valid"}


@dataclasses.dataclass
class Frame:
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) x, y, w, h frame pixels
    labels: np.ndarray  # (n,) 0..6


def aquarium_frames(root: Path, split: str, limit: int | None = None) -> list[Frame]:
    """The frames of one split with their boxes (upright frame pixels)."""
    from index.sources.yolo import label_path, parse_label_line, upright_size

    names = dict(enumerate(CLASSES))
    out = []
    for image in sorted((root / SPLIT_FOLDERS[split] / "images").iterdir())[:limit]:
        width, height = upright_size(image)
        boxes, labels = [], []
        labels_file = label_path(image)
        lines = labels_file.read_text().splitlines() if labels_file.is_file() else []
        for line in lines:
            if not line.strip():
                continue
            name, x, y, w, h = parse_label_line(line, names, width, height)
            x1, y1 = max(0.0, x), max(0.0, y)
            x2, y2 = min(float(width), x + w), min(float(height), y + h)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            boxes.append((x1, y1, x2 - x1, y2 - y1))
            labels.append(CLASSES.index(name))
        out.append(
            Frame(image, width, height, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))
        )
    return out


def per_class(
    frames: list[Frame], boxes: list[np.ndarray], scores: list[np.ndarray], labels: list[np.ndarray] | None = None
) -> dict[str, dict[str, float]]:
    """Per class: AP@0.5 and recall@0.5 over the frames that hold that class. Class-agnostic (``labels``
    None): that class's truth against the frame's detections, less those matched (IoU 0.5) to an
    organism of another class; with ``labels``: against that class's detections."""
    from index.metrics.boxes import box_metrics, match_truth

    sizes = [(f.width, f.height) for f in frames]
    matched = match_truth([f.boxes for f in frames], sizes, boxes, scores) if labels is None else None
    out = {}
    for c, name in enumerate(CLASSES):
        held = [i for i, f in enumerate(frames) if (f.labels == c).any()]
        if not held:
            continue
        kept_b, kept_s = [], []
        for i in held:
            f = frames[i]
            if labels is None:
                drop = set(matched[i][(f.labels != c) & (matched[i] >= 0)].tolist())
                keep = np.array([j not in drop for j in range(len(scores[i]))], bool)
            else:
                keep = labels[i] == c
            kept_b.append(np.asarray(boxes[i]).reshape(-1, 4)[keep])
            kept_s.append(np.asarray(scores[i]).reshape(-1)[keep])
        m = box_metrics(
            [frames[i].boxes[frames[i].labels == c] for i in held], [sizes[i] for i in held], kept_b, kept_s
        )
        out[name] = {"ap50": m.map50, "recall50": m.recall50, "boxes": m.truth_boxes}
    return out


def figures(frames: list[Frame], boxes, scores, seconds: float, labels=None, cpu_seconds: float | None = None) -> dict:
    from index.metrics.boxes import box_metrics

    m = box_metrics([f.boxes for f in frames], [(f.width, f.height) for f in frames], boxes, scores)
    return {
        "frames": m.frames,
        "boxes": m.truth_boxes,
        "detections_per_frame": round(m.detections / m.frames, 1),
        "map50": m.map50,
        "map": m.map,
        "recall50": m.recall50,
        "per_class": per_class(frames, boxes, scores, labels),
        "ms_per_frame": round(1000 * seconds, 1),
        "cpu_ms_per_frame": None if cpu_seconds is None else round(1000 * cpu_seconds, 1),
    }


def zeroshot(args) -> None:
    """The COCO YOLOX-Nano as it ships: objectness x max class, on onnxruntime."""
    from embedder.detection.tiling import tiled_detect
    from embedder.detection.yolox_onnx import YoloxOnnx
    from embedder.detection.yolox_weights import yolox_nano_onnx
    from index.imaging import open_image

    weights = yolox_nano_onnx()
    frames = aquarium_frames(args.data, args.split, args.limit)
    model = YoloxOnnx(weights.path, threads=args.threads, score_thresh=args.score)
    rows = []
    for tile in args.tile:
        boxes, scores, spent, cpu = [], [], 0.0, 0.0
        for f in frames:
            image = open_image(f.path)
            start, start_cpu = time.perf_counter(), time.process_time()
            b, s = tiled_detect(model.detect, image, tile) if tile else model.detect(image)
            spent += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            boxes.append(b)
            scores.append(s)
        rows.append(
            {
                "candidate": f"zero-shot COCO YOLOX-Nano 416{f' + tiles {tile}' if tile else ''}",
                **figures(frames, boxes, scores, spent / len(frames), cpu_seconds=cpu / len(frames)),
            }
        )
        print(rows[-1], flush=True)
    print(table([{k: v for k, v in r.items() if k != "per_class"} for r in rows]))
    write_result(
        "yolox-zeroshot", {"split": args.split, "weights": weights.to_dict(), "threads": args.threads, "rows": rows}
    )


def _prepared(frames: list[Frame], size: int, classes: int):
    """(image resized to longer side ``size``, boxes scaled, labels 1-based) per frame, and the frames scaled."""
    from PIL import Image

    from index.imaging import open_image

    out, scaled = [], []
    for f in frames:
        image = open_image(f.path)
        scale = size / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
        )
        labels = f.labels + 1 if classes > 1 else np.ones(len(f.labels), np.int64)
        out.append((image, f.boxes * np.float32(scale), labels))
        scaled.append(dataclasses.replace(f, width=image.width, height=image.height, boxes=f.boxes * np.float32(scale)))
    return out, scaled


def _predict(model, config, images, min_score: float = 0.05):
    import torch

    from embedder.detection.predict import frame_tensor

    boxes, scores, labels, spent = [], [], [], 0.0
    with torch.inference_mode():
        for image in images:
            start = time.perf_counter()
            tensor, scale = frame_tensor(image, config.image_size)
            pred = model([tensor])[0]
            spent += time.perf_counter() - start
            keep = pred["scores"] >= min_score
            xyxy = pred["boxes"][keep].numpy() / scale
            boxes.append(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).reshape(-1, 4))
            scores.append(pred["scores"][keep].numpy())
            labels.append(pred["labels"][keep].numpy() - 1)
    return boxes, scores, labels, spent / max(1, len(images))


def finetune(args) -> None:
    """Fine-tune the converted COCO YOLOX-Nano (1 = organism, or 7 classes) with the product's trainer."""
    import torch

    from embedder.detection.model import detector_config, save_detector
    from embedder.detection.training import DetectorTrainConfig, train_detector
    from embedder.detection.yolox_model import YoloxDetector, convert_yolox
    from embedder.detection.yolox_weights import yolox_nano_onnx

    torch.set_num_threads(args.threads)
    config = detector_config("yolox-nano", args.image_size)
    train_frames, _ = _prepared(aquarium_frames(args.data, "train", args.limit), args.image_size, args.classes)
    val_raw = aquarium_frames(args.data, "val", args.val_limit)
    val_data, val_frames = _prepared(val_raw, args.image_size, args.classes)
    model = YoloxDetector(
        convert_yolox(yolox_nano_onnx().path, args.classes),
        args.classes,
        args.image_size,
        config.score_thresh,
        config.nms_thresh,
        config.max_detections,
    )
    best = {"map50": -1.0}

    def on_epoch(epoch: int, row: dict, trained) -> dict:
        boxes, scores, labels, seconds = _predict(trained, config, [im for im, _, _ in val_data])
        fig = figures(val_frames, boxes, scores, seconds, labels if args.classes > 1 else None)
        if fig["map50"] > best["map50"] and args.out:
            best.update(fig, epoch=epoch)
            if args.classes == 1:
                save_detector(trained, config, args.out)
        print({"epoch": epoch, **row, **fig}, flush=True)
        return {"val": fig}

    train = DetectorTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup,
        threads=args.threads,
        ema=args.ema,
        zoom=args.zoom,
    )
    _, result = train_detector(
        train_frames, config, train, model=model, on_epoch=on_epoch, progress=False, max_epochs_now=args.stop_after
    )
    rows = [
        {
            "epoch": h["epoch"],
            "seconds": h["seconds"],
            **{k: v for k, v in h["val"].items() if k != "per_class"},
            **{f"AP {k}": v["ap50"] for k, v in h["val"]["per_class"].items()},
        }
        for h in result.history
    ]
    print(table(rows))
    write_result(
        f"yolox-finetune-{args.classes}c-{args.image_size}",
        {
            "classes": args.classes,
            "image_size": args.image_size,
            "train": train.to_dict(),
            "threads": args.threads,
            "train_frames": result.frames,
            "train_boxes": result.boxes,
            "seconds": result.seconds,
            "epochs_done": result.epochs_done,
            "history": result.history,
            "best": best,
        },
    )


def tiles(args) -> None:
    """A detector folder (``detect_images`` per tile), whole frame + overlapping tiles merged by NMS."""
    import torch

    from embedder.detection.model import load_detector
    from embedder.detection.predict import detect_images
    from embedder.detection.tiling import tiled_detect
    from index.imaging import open_image

    torch.set_num_threads(args.threads)
    model, config = load_detector(args.detector)
    frames = aquarium_frames(args.data, "val", args.limit)

    def detect(image):
        found = detect_images(model, config, [image], min_score=0.05)[0]
        return found.boxes, found.scores

    rows = []
    for tile in args.tile:
        boxes, scores, spent, cpu = [], [], 0.0, 0.0
        for f in frames:
            image = open_image(f.path)
            start, start_cpu = time.perf_counter(), time.process_time()
            b, s = tiled_detect(detect, image, tile) if tile else detect(image)
            spent += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            boxes.append(b)
            scores.append(s)
        rows.append(
            {
                "candidate": f"{Path(args.detector).name}{f' + tiles {tile}' if tile else ''}",
                **figures(frames, boxes, scores, spent / len(frames), cpu_seconds=cpu / len(frames)),
            }
        )
        print(rows[-1], flush=True)
    print(table([{k: v for k, v in r.items() if k != "per_class"} for r in rows]))
    write_result(f"yolox-tiles-{Path(args.detector).name}", {"detector": str(args.detector), "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=AQUARIUM)
    parser.add_argument("--threads", type=int, default=1, help="1 measured fastest on the contended 2-core machine")
    parser.add_argument("--limit", type=int, default=None, help="first N frames of the split (screens)")
    sub = parser.add_subparsers(dest="what", required=True)
    z = sub.add_parser("zeroshot")
    z.add_argument("--split", default="val", choices=sorted(SPLIT_FOLDERS))
    z.add_argument("--tile", type=int, nargs="+", default=[0], help="0 = whole frame only")
    z.add_argument("--score", type=float, default=0.01)
    f = sub.add_parser("finetune")
    f.add_argument("--epochs", type=int, default=10)
    f.add_argument("--stop-after", type=int, default=None)
    f.add_argument("--image-size", type=int, default=416)
    f.add_argument("--classes", type=int, default=1, choices=(1, 7))
    f.add_argument("--batch-size", type=int, default=8)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--warmup", type=int, default=20)
    f.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights (0: off)")
    f.add_argument(
        "--zoom", type=float, default=0.0, help="zoom-in jitter: a random window of (1 - zoom .. 1) of the frame"
    )
    f.add_argument("--val-limit", type=int, default=None)
    f.add_argument("--out", type=Path, default=None, help="save the best epoch here (1 class only)")
    t = sub.add_parser("tiles")
    t.add_argument("--detector", type=Path, required=True)
    t.add_argument("--tile", type=int, nargs="+", default=[0, 512])
    args = parser.parse_args()
    {"zeroshot": zeroshot, "finetune": finetune, "tiles": tiles}[args.what](args)


if __name__ == "__main__":
    main()
