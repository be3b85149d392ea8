"""``oceanid demo``: offline, end to end, on the synthetic reef; reruns reuse what is there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace.results import EvaluationSummary
from index.catalog.splits import SplitConfig
from index.home import default_model_id
from index.records import HOLDOUT, TEST, TRAIN

if TYPE_CHECKING:
    from app.workspace import Workspace
    from embedder.train_config import TrainConfig

log = logging.getLogger(__name__)

SHOTS = 5
# the CPU demo budget: the default encoder (128 px) for fewer epochs: 6.2 min end to end vs 8.2 at 8 (bench/RESULTS.md)
DEMO_EPOCHS = 5
QUERIES = 20  # other crops of the added species identified before and after
DETECTOR = "detector-reef"  # the demo's organism detector, under models/
DETECTOR_EPOCHS = 3  # bench/cascade.py: the reef detector's recall@0.5 is ~0.97 from 1 epoch (RESULTS.md)
DETECTOR_SIZE = 320  # the reef frames' own width: no resizing
FRAMES = 3  # held-out (test split) frames whose every organism the demo identifies


@dataclass(frozen=True)
class DemoAdded:
    """The demo's last step: a held-out species added from a few examples."""

    species: str
    examples: int
    identified_before: int  # of ``queries`` other crops of it named as it before adding
    identified_after: int
    queries: int
    top_species_after: int = 0  # of ``queries``, how many have it as the top species after adding


@dataclass(frozen=True)
class DemoFrames:
    """The demo's whole-frame step: a few held-out frames through the cascade."""

    detector: str
    detector_seconds: float  # training time (0 when reused)
    frames: int
    organisms: int  # boxes found and identified
    truth_organisms: int  # ground-truth organisms in those frames
    found: int  # of them, matched by a box at IoU >= 0.5
    named: int  # of the found, named right (held-out species: flagged unknown)


@dataclass(frozen=True)
class DemoResult:
    """What ``oceanid demo`` did."""

    evaluation: EvaluationSummary
    added: DemoAdded | None
    seconds: float
    frames: DemoFrames | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation.to_dict(),
            "added": asdict(self.added) if self.added else {},
            "seconds": self.seconds,
            "frames": asdict(self.frames) if self.frames else {},
        }


def demo_train_config(epochs: int | None = None) -> TrainConfig:
    """The default TrainConfig with the demo's epoch budget."""
    from embedder.train_config import TrainConfig

    return TrainConfig(epochs=epochs or DEMO_EPOCHS)


def run_demo(
    ws: Workspace,
    train_config: TrainConfig,
    say: Callable[[str], None] = print,
    frames: int = 400,
    progress: bool = True,
    general: bool | None = None,
) -> DemoResult:
    """Ingest -> split -> train -> embed -> index -> evaluate -> add a held-out species from 5 examples.
    ``general``: embed the general space too (None: the default, on; :meth:`Workspace.embed`)."""
    started = time.perf_counter()
    report = ws.ingest_synthetic(frames=frames, progress=progress)
    say(f"1/8 ingest: synthetic reef, {report.crops_added} new crops ({report.crops_existing} already there)")
    summary = ws.split(SplitConfig())
    say(
        f"2/8 split: {len(summary.counts) - len(summary.held_out)} known species, held out: "
        f"{', '.join(summary.held_out)}"
    )
    model_id = default_model_id(train_config.backbone, train_config.loss, train_config.dim)
    if (ws.paths.model(model_id) / "config.json").exists():
        ws.catalog.set_current_model(model_id)
        say(f"3/8 train: reusing model {model_id}")
        if not (ws.paths.model(model_id) / "encoder.json").exists():  # trained before ONNX exports
            ws.export_model(model_id)
    else:
        result = ws.train(train_config, model=model_id, progress=progress)
        m = result.best_metrics
        say(f"3/8 train: {model_id}, val top-1 {m['top1']:.3f}, F1-macro {m['f1_macro']:.3f} ({result.seconds:.0f} s)")
    embedded = ws.embed(model_id, progress=progress, general=general)
    say(f"4/8 embed: {embedded.embedded} crops embedded ({embedded.already} already)")
    built = ws.index_build(model_id, rebuild=False)
    say(f"5/8 index: {built.generation} {'built' if built.built else 'up to date'}, {built.manifest.count} vectors")
    evaluation = ws.evaluate(model=model_id)
    c, o = evaluation.classification, evaluation.ood.get(evaluation.ood_decision_scorer or "")
    say(
        f"6/8 evaluate: test top-1 {c.top1:.3f}, F1-macro {c.f1_macro:.3f}"
        + (f"; unknown detection AUROC {o.auroc:.3f}" if o else "")
        + f"; report in {evaluation.report_dir}"
    )
    added = _add_held_out(ws, model_id, summary.held_out, say)
    frames_found = whole_frames(ws, model_id, say, progress=progress)
    seconds = time.perf_counter() - started
    say(f"done in {seconds:.0f} s. Open the explorer with: oceanid app --home {ws.home}")
    return DemoResult(evaluation, added, seconds, frames_found)


def train_frame_detector(
    ws: Workspace,
    folder,
    epochs: int = DETECTOR_EPOCHS,
    image_size: int = DETECTOR_SIZE,
    threads: int | None = None,
    progress: bool = False,
) -> float:
    """Train a class-agnostic detector on the frames of the train split (every ground-truth box an
    organism, held-out species included: the identifier never sees them) into ``folder``;
    returns the seconds it took. (``oceanid detect train`` is the general command.)"""
    from embedder.detection.model import DetectorConfig, save_detector
    from embedder.detection.training import DetectorTrainConfig, train_detector
    from index.catalog.frames import truth_frames
    from index.imaging import open_image

    started = time.perf_counter()
    chosen = [
        f
        for f in truth_frames(ws.catalog, ws.home)
        if TRAIN in f.splits and all(s in (TRAIN, HOLDOUT) for s in f.splits)
    ]
    data = [(open_image(f.path), f.boxes) for f in chosen]
    config = DetectorConfig(image_size=image_size, fpn_channels=64)
    model, _ = train_detector(
        data, config, DetectorTrainConfig(epochs=epochs, lr=2e-3, warmup_steps=30, threads=threads), progress=progress
    )
    save_detector(model, config, folder)
    seconds = time.perf_counter() - started
    register_frame_detector(ws, folder, len(chosen), epochs, seconds)
    return seconds


def register_frame_detector(
    ws: Workspace,
    folder,
    train_frames: int | None = None,
    epochs: int | None = None,
    seconds: float | None = None,
    current: bool = True,
) -> None:
    """List the detector folder ``models/<detector-id>/`` in the catalog and, with ``current``, make
    it the current detector, as ``oceanid detect train`` does: every command (``detect``, ``detect
    evaluate``, ``evaluate``, ``identify --frames``) then finds it through the one registry."""
    from embedder.detection.model import read_detector_config
    from index.catalog.detectors import DetectorRecord, register_detector

    folder = Path(folder)
    config = read_detector_config(folder)
    register_detector(
        ws.catalog,
        DetectorRecord(
            folder.name,
            config.hash(),
            config.arch,
            config.image_size,
            train_frames,
            0,
            epochs,
            epochs,
            None,
            None if seconds is None else round(seconds, 1),
            None,
        ),
    )
    if current:
        ws.catalog.set_current_detector(folder.name)


def whole_frames(
    ws: Workspace,
    model_id: str,
    say: Callable[[str], None],
    frames: int = FRAMES,
    epochs: int = DETECTOR_EPOCHS,
    image_size: int = DETECTOR_SIZE,
    progress: bool = False,
) -> DemoFrames | None:
    """Train (or reuse) the reef detector, then find and identify every organism of a few
    held-out frames, drawn into reports/frames/; says how many ground-truth organisms were
    found (a box at IoU >= 0.5) and named right."""
    import torch
    from torchvision.ops import box_iou

    from app.workspace.frames.drawing import label
    from index.catalog.frames import truth_frames

    folder = ws.paths.models / DETECTOR
    seconds = 0.0
    if (folder / "weights.safetensors").is_file():
        if DETECTOR not in {r.detector_id for r in ws.detectors()}:  # a home the demo made before it registered
            register_frame_detector(ws, folder, current=ws.current_detector() is None)
        say(f"8/8 whole frames: reusing detector {folder.name}")
    else:
        seconds = train_frame_detector(ws, folder, epochs, image_size, progress=progress)
        say(f"8/8 whole frames: trained detector {folder.name} on the train frames ({epochs} epochs, {seconds:.0f} s)")
    held = [f for f in truth_frames(ws.catalog, ws.home) if TEST in f.splits][:frames]
    if not held:
        say("      no held-out frames to identify")
        return None
    result = ws.identify_frames(
        [f.path for f in held], detector=folder, model=model_id, names=[f.path.name for f in held]
    )
    drawn = ws.draw_frames(result, ws.paths.reports / "frames")
    truth_total = found = named = 0
    for f, frame in zip(held, result.frames, strict=True):
        boxes = torch.tensor([o.box for o in frame.organisms], dtype=torch.float32).reshape(-1, 4)
        t = torch.from_numpy(f.boxes)
        iou = box_iou(
            torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], 1), torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        )
        for row, concept in zip(iou, f.concepts, strict=False):
            truth_total += 1
            if len(frame.organisms) and float(row.max()) >= 0.5:
                found += 1
                answer = frame.organisms[int(row.argmax())]
                named += answer.species == concept or (
                    answer.unknown and concept not in ws.engine(model_id).prototypes.names
                )
        labels = ", ".join(label(o) for o in frame.organisms)
        say(f"      {frame.name}: {len(frame.organisms)} organisms: {labels}")
    say(
        f"      {found} of {truth_total} ground-truth organisms found (IoU >= 0.5), {named} named right or, "
        f"for held-out species, flagged unknown; drawn into {drawn[0].parent if drawn else '-'}"
    )
    return DemoFrames(folder.name, round(seconds, 1), len(held), len(result.organisms), truth_total, found, named)


def _add_held_out(ws: Workspace, model_id: str, held_out: list[str], say: Callable[[str], None]) -> DemoAdded | None:
    from index.catalog.embeddings import crop_rows

    if not held_out:
        say("7/8 add species: no held-out species to add")
        return None
    engine = ws.engine(model_id)
    added = [n for n in held_out if engine.origins.get(n) == "added"]
    name = added[0] if added else held_out[0]
    examples, others = [], []
    groups = set()
    for row in crop_rows(ws.catalog, concept=name, split=HOLDOUT):  # examples from distinct frames
        if len(examples) < SHOTS and row.group_key not in groups:
            examples.append(ws.paths.resolve(row.crop_path))
            groups.add(row.group_key)
        elif row.group_key not in groups:  # test on the other frames
            others.append(ws.paths.resolve(row.crop_path))
    before = ws.identify(others[:QUERIES], model=model_id)
    if not added:
        ws.species_add(name, examples, model=model_id)
    after = ws.identify(others[:QUERIES], model=model_id)
    hit_before = sum(r.species == name for r in before)
    hit_after = sum(r.species == name for r in after)
    top_after = sum(bool(r.top) and r.top[0][0] == name for r in after)
    say(
        f"7/8 add species: '{name}' {'was already added' if added else f'added from {len(examples)} examples'}; "
        f"of its {len(after)} other crops, {top_after} now have it as the top species and {hit_after} are named it "
        f"(the rest are still below the unknown threshold; before adding: {hit_before} named)"
    )
    for r in after[:3]:
        say(
            f"      {r.name}: {r.species} (top {r.top[0][0]}, probability {r.probability:.2f}; unknown score "
            f"{r.unknown_score:.3f} {'<' if r.unknown_score < r.unknown_threshold else '>='} threshold "
            f"{r.unknown_threshold:.3f}, {r.scorer}"
            + (f"; accepted by {r.species}'s few-shot scorer" if r.accepted_as_added else "")
            + ")"
        )
    return DemoAdded(name, len(examples), hit_before, hit_after, len(after), top_after)
