"""``oceanid demo``: offline, end to end, on the synthetic reef; reruns reuse what is there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.workspace.results import DemoAdded, DemoResult
from index.home import default_model_id
from index.records import HOLDOUT
from index.splits import SplitConfig

if TYPE_CHECKING:
    from app.workspace import Workspace
    from embedder.train_config import TrainConfig

log = logging.getLogger(__name__)

SHOTS = 5
DEMO_EPOCHS = 8  # the CPU demo budget: the default encoder for fewer epochs
QUERIES = 20  # other crops of the added species identified before and after


def demo_train_config(epochs: int | None = None) -> TrainConfig:
    """The default TrainConfig with the demo's epoch budget."""
    from embedder.train_config import TrainConfig

    return TrainConfig(epochs=epochs or DEMO_EPOCHS)


def run_demo(ws: Workspace, train_config: TrainConfig, say: Callable[[str], None] = print, frames: int = 400,
             progress: bool = True) -> DemoResult:
    """Ingest -> split -> train -> embed -> index -> evaluate -> add a held-out species from 5 examples."""
    started = time.perf_counter()
    report = ws.ingest_synthetic(frames=frames, progress=progress)
    say(f"1/7 ingest: synthetic reef, {report.crops_added} new crops ({report.crops_existing} already there)")
    summary = ws.split(SplitConfig())
    say(f"2/7 split: {len(summary.counts) - len(summary.held_out)} known species, held out: "
        f"{', '.join(summary.held_out)}")
    model_id = default_model_id(train_config.backbone, train_config.loss, train_config.dim)
    if (ws.paths.model(model_id) / "config.json").exists():
        ws.catalog.set_current_model(model_id)
        say(f"3/7 train: reusing model {model_id}")
    else:
        result = ws.train(train_config, model=model_id, progress=progress)
        m = result.best_metrics
        say(f"3/7 train: {model_id}, val top-1 {m['top1']:.3f}, F1-macro {m['f1_macro']:.3f} "
            f"({result.seconds:.0f} s)")
    embedded = ws.embed(model_id, progress=progress)
    say(f"4/7 embed: {embedded.embedded} crops embedded ({embedded.already} already)")
    built = ws.index_build(model_id, rebuild=False)
    say(f"5/7 index: {built.generation} {'built' if built.built else 'up to date'}, {built.manifest.count} vectors")
    evaluation = ws.evaluate(model=model_id)
    c, o = evaluation.classification, evaluation.ood.get(evaluation.ood_decision_scorer or "")
    say(f"6/7 evaluate: test top-1 {c.top1:.3f}, F1-macro {c.f1_macro:.3f}"
        + (f"; unknown detection AUROC {o.auroc:.3f}" if o else "")
        + f"; report in {evaluation.report_dir}")
    added = _add_held_out(ws, model_id, summary.held_out, say)
    seconds = time.perf_counter() - started
    say(f"done in {seconds:.0f} s. Open the explorer with: oceanid app --home {ws.home}")
    return DemoResult(evaluation, added, seconds)


def _add_held_out(ws: Workspace, model_id: str, held_out: list[str], say: Callable[[str], None]) -> DemoAdded | None:
    from index.embeddings import crop_rows

    if not held_out:
        say("7/7 add species: no held-out species to add")
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
    say(f"7/7 add species: '{name}' {'was already added' if added else f'added from {len(examples)} examples'}; "
        f"of its {len(after)} other crops, {top_after} now have it as the top species and {hit_after} are named it "
        f"(the rest are still below the unknown threshold; before adding: {hit_before} named)")
    for r in after[:3]:
        say(f"      {r.name}: {r.species} (top {r.top[0][0]}, probability {r.probability:.2f}; unknown score "
            f"{r.unknown_score:.3f} {'<' if r.unknown else '>='} threshold {r.unknown_threshold:.3f}, {r.scorer})")
    return DemoAdded(name, len(examples), hit_before, hit_after, len(after), top_after)
