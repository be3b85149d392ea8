"""``oceanid detect``: the class-agnostic organism detector (train, list, evaluate, and boxes in frames).

``oceanid detect FRAME|DIR...`` runs the current detector; ``oceanid detect train|list|evaluate``
are its verbs (a frame named like a verb: give it as ``./train``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from app.cli import options
from app.cli.common import check_output_file, cli_errors, console, err_console, expand, fail, print_json, workspace

RUN = "frames"  # the hidden verb ``oceanid detect FRAME...`` goes to


class FramesByDefault(TyperGroup):
    """``detect FRAME...`` (no verb) is ``detect frames FRAME...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [RUN, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=FramesByDefault,
    no_args_is_help=True,
    help="Find every organism in whole frames: `oceanid detect FRAME|DIR...` prints boxes with "
    "scores; train, list and evaluate the detector.\n\nExample: oceanid detect reef/ --coco "
    "boxes.json",
)

DETECTOR = typer.Option(
    None,
    "--detector",
    help="Detector id or folder (default: the current one, the last trained; see `oceanid detect list`).",
)


@app.command(RUN, hidden=True)
@cli_errors
def detect(
    ctx: typer.Context,
    frames: list[Path] = typer.Argument(..., help="Frame files or folders of them."),
    min_score: float = typer.Option(
        None,
        "--min-score",
        min=0.0,
        max=1.0,
        help="Keep boxes scoring at least this (default: the detector's own, YOLOX-Nano 0.1, FCOS 0.3).",
    ),
    coco: Path = typer.Option(
        None,
        "--coco",
        help="Write the boxes as a COCO document (images, categories, "
        "annotations = COCO results with score) to this file.",
    ),
    detector: str = DETECTOR,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Print the boxes (x, y, w, h pixels) and scores of every organism found in each frame.

    A frame that cannot be used (unreadable, over the pixel limit, under 32 px) is one line on
    stderr and the rest go on; exits 1 when no frame could be used.

    Example: oceanid detect dive42/ --min-score 0.4 --coco dive42-boxes.json
    """
    check_output_file(coco, "--coco")
    files = expand(frames)
    if not files:
        raise fail("no image files found in the given paths")
    run = workspace(ctx, device).detect(files, [str(f) for f in files], min_score, detector)
    if coco is not None:
        workspace(ctx).detections_coco(run, coco)
    if as_json:
        print_json(run)
    else:
        for f in run.frames:
            if f.error:
                continue
            note = f" ({f.warning})" if f.warning else ""
            console.print(
                f"{f.name}: {len(f.boxes)} organism(s) in {f.width}x{f.height}{note}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            for box, score in zip(f.boxes, f.scores, strict=True):
                x, y, w, h = box
                console.print(
                    f"  {score:.3f}  x {x:.0f}  y {y:.0f}  w {w:.0f}  h {h:.0f}", markup=False, highlight=False
                )
        used = [f for f in run.frames if not f.error]
        console.print(
            f"{len(run.frames)} frames: {sum(len(f.boxes) for f in used)} boxes, "
            f"{sum(1 for f in used if not f.boxes)} with none, {len(run.frames) - len(used)} unusable "
            f"(detector {run.detector_id}, min score {run.min_score:g})",
            markup=False,
            highlight=False,
        )
        if coco is not None:
            console.print(f"wrote {coco}", markup=False)
    bad = [f for f in run.frames if f.error]
    for f in bad:
        err_console.print(f"skipped {f.error}", markup=False, highlight=False, soft_wrap=True)
    if len(bad) == len(run.frames):
        raise typer.Exit(1)


@app.command("train")
@cli_errors
def train(
    ctx: typer.Context,
    epochs: int = options.count(
        None, "--epochs", "Epochs (the one with the best val mAP@0.5 is kept). Default: yolox-nano 25, fcos 8."
    ),
    image_size: int = typer.Option(
        None,
        "--image-size",
        help="Frames are resized so their longer side is this (a multiple of 32). Default: yolox-nano 416, fcos 384.",
    ),
    arch: str = typer.Option(
        None,
        "--arch",
        help="yolox-nano (the default: COCO-pretrained YOLOX-Nano, weights fetched at first use) | fcos | "
        "retinanet (torchvision heads on an EfficientNet-Lite0 + FPN body, nothing to fetch). "
        "--resume keeps the detector's own.",
    ),
    device: str = options.DEVICE_TORCH,
    detector: str = typer.Option(
        None, "--detector", help="Detector id (folder under models/). Default: detector-<arch>-<image-size>."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the detector's unfinished training."),
    stop_after: int = typer.Option(
        None, "--stop-after", min=1, help="Stop after this many epochs of this run (continue later with --resume)."
    ),
    batch_size: int = options.count(None, "--batch-size", "Frames per step (default: yolox-nano 8, fcos 4)."),
    lr: float = typer.Option(
        None, "--lr", min=0.0, help="AdamW peak learning rate (default: yolox-nano 3e-4, fcos 1e-3)."
    ),
    as_json: bool = options.JSON,
) -> None:
    """Train a class-agnostic organism detector on the catalog's frames with boxes.

    Frames follow their boxes' split (no frame's boxes straddle splits); train frames train,
    val frames choose the epoch. A checkpoint is written after every epoch: --stop-after N
    ends the run early and --resume continues it.

    Example: oceanid detect train                  (YOLOX-Nano from COCO, 416 px, 25 epochs)
    """
    result = workspace(ctx).detect_train(
        arch=arch,
        image_size=image_size,
        epochs=epochs,
        device=device,
        detector=detector,
        resume=resume,
        max_epochs_now=stop_after,
        progress=not as_json,
        batch_size=batch_size,
        lr=lr,
    )
    for item, reason in result.skipped:
        err_console.print(f"skipped {item}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
        return
    best = (
        f"best epoch {result.best_epoch}, val mAP@0.5 {result.val_map50:.3f}"
        if result.val_map50 is not None
        else "no val frames: last epoch kept"
    )
    state = "done" if result.finished else f"stopped; continue with --resume ({result.epochs_done}/{result.epochs})"
    console.print(
        f"detector {result.detector_id}: {result.epochs_done}/{result.epochs} epochs on "
        f"{result.train_frames} train frames ({result.boxes} boxes), {result.val_frames} val frames; "
        f"{best} ({result.seconds:.0f} s, {state}) -> {result.folder}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
@cli_errors
def list_detectors(ctx: typer.Context, as_json: bool = options.JSON) -> None:
    """List the home's detectors (the current one marked *).

    Example: oceanid detect list
    """
    ws = workspace(ctx)
    rows = ws.detectors()
    current = ws.current_detector()
    if as_json:
        print_json({"current": current, "detectors": [r.to_dict() for r in rows]})
        return
    if not rows:
        console.print("no detectors; train one with `oceanid detect train`", markup=False)
        return
    for r in rows:
        score = f"val mAP@0.5 {r.val_map50:.3f} (epoch {r.best_epoch})" if r.val_map50 is not None else "no val score"
        console.print(
            f"{'*' if r.detector_id == current else ' '} {r.detector_id}  {r.arch} {r.image_size} px, "
            f"{'?' if r.epochs is None else r.epochs} epochs, {score}, {r.seconds or 0:.0f} s",
            markup=False,
            highlight=False,
        )


@app.command("evaluate")
@cli_errors
def evaluate(
    ctx: typer.Context,
    split: str = typer.Option(
        None, "--split", help="train | val | test (default: test when there are test frames, else val)."
    ),
    detector: str = DETECTOR,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Class-agnostic mAP@0.5, mAP@0.5:0.95 and recall@0.5 (pycocotools) on held-out frames.

    Example: oceanid detect evaluate --json
    """
    result = workspace(ctx, device).detect_evaluate(split, detector)
    for item, reason in result.skipped:
        err_console.print(f"skipped {item}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
        return
    m = result.metrics
    console.print(
        f"detector {result.detector_id} on {m.frames} {result.split} frames ({m.truth_boxes} boxes): "
        f"mAP@0.5 {m.map50:.3f}, mAP@0.5:0.95 {m.map:.3f}, recall@0.5 {m.recall50:.3f} "
        f"({result.seconds_per_frame:.3f} s/frame)",
        markup=False,
        highlight=False,
    )
