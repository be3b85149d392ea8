"""``oceanid evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from app.cli import options
from app.cli.common import check_output_folder, cli_errors, console, err_console, print_json, workspace

if TYPE_CHECKING:
    from app.workspace import DetectionFigures

app = typer.Typer()


def figure(value: float | None) -> str:
    """A figure to 3 decimals, or ``n/a`` when it does not apply."""
    return "n/a" if value is None else f"{value:.3f}"


@app.command("evaluate")
@cli_errors
def evaluate(
    ctx: typer.Context,
    report: Path = typer.Option(None, "--report", help="Report folder (default: <home>/reports/latest)."),
    map_method: str = typer.Option("pca", "--map", help="Embedding map projection: pca | umap"),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Measure classification, unknown-species detection, retrieval and few-shot on the test split.

    When the home has a detector (`oceanid detect train`), whole frames too: the detector's mAP
    and recall, and how many organisms the cascade finds and names, on the held-out frames.

    Example: oceanid evaluate --report reports/run1 --json
    """
    check_output_folder(report, "--report")  # before the work, not after it
    s = workspace(ctx).evaluate(report, model, map_method, progress=not as_json)
    if s.model_stale:
        err_console.print(
            f"warning: model {s.model} is stale ({s.model_stale}): retrain it before trusting these figures",
            markup=False,
            soft_wrap=True,
        )
    frames = s.detection
    for name, reason in frames.cascade.skipped if frames is not None else ():
        err_console.print(f"warning: whole-frame figures skip {name}: {reason}", markup=False, soft_wrap=True)
    if as_json:
        print_json(s)
        return
    c, r = s.classification, s.retrieval
    console.print(
        f"classification: top-1 {c.top1:.3f}, top-5 {figure(c.top5)}, F1-macro {c.f1_macro:.3f}", markup=False
    )
    if c.label_rank is not None and c.label_rank.get("holders"):
        k = c.label_rank["kinds"]
        console.print(
            f"at the label's rank: top-1 {figure(c.top1_at_label_rank)} (answers: {k['exact']} the label, "
            f"{k['subtree']} inside its subtree, {k['ancestor']} an ancestor of it, {k['error']} wrong)",
            markup=False,
        )
        for label, answers in c.label_rank["subtree_answers"].items():
            given = ", ".join(f"{name} {n}" for name, n in sorted(answers.items(), key=lambda kv: -kv[1]))
            console.print(f"  {label} answered more specifically: {given}", markup=False)
    if c.priors is not None and c.priors.get("active"):
        console.print(f"class priors: {c.priors['source']} x tau {c.priors['tau']:g}", markup=False)
    console.print(
        f"retrieval: R@1 {r.recall_at_1:.3f}, R@5 {r.recall_at_5:.3f}, R@10 {r.recall_at_10:.3f}, "
        f"MAP@R {r.map_at_r:.3f}",
        markup=False,
    )
    for name, o in s.ood.items():
        console.print(
            f"OOD {name}: AUROC {o.auroc:.3f}, FPR@95 {o.fpr_at_95_tpr:.3f}, AUPR {o.aupr_out:.3f}", markup=False
        )
    if s.calibration is not None:
        console.print(
            f"confidence calibration: temperature {s.calibration.temperature:.4f}, ECE on test "
            f"{figure(s.calibration.ece_test)} (uncalibrated {figure(s.calibration.ece_test_uncalibrated)})",
            markup=False,
        )
    if s.scorer_choice is not None:
        console.print(f"decision scorer: {s.scorer_choice.scorer} ({s.scorer_choice.source})", markup=False)
    for shots, f in s.few_shot.items():
        console.print(
            f"few-shot {shots}-shot: recall {f.recall:.3f}, known top-1 change {f.known_accuracy_change:+.3f}",
            markup=False,
        )
    t = s.taxonomy
    if t is not None:
        console.print(
            f"taxonomy (rank threshold {t.rank_threshold:.2f}, {t.threshold_source}): top-1 species "
            f"mean distance {t.species_mean_distance:.3f}",
            markup=False,
        )
        for name, d in t.decodings.items():
            ranks = ", ".join(f"{r} {figure(v)}" for r, v in d.rank_accuracy.items() if v is not None)
            line = f"  decode {name}: mean distance {d.mean_distance:.3f}; accuracy by rank: {ranks}"
            if d.held_out is not None:
                line += (
                    f"; held-out flagged new {d.held_out.flagged_new:.3f}, right genus "
                    f"{figure(d.held_out.genus)}, right family {figure(d.held_out.family)}"
                )
            console.print(line, markup=False)
    if s.count_error is not None and s.count_error.classes:
        console.print(count_line(s.count_error), markup=False, soft_wrap=True)
    if frames is not None:
        console.print(detection_line(frames), markup=False, soft_wrap=True)
    console.print(f"report: {s.report_dir}/summary.md", markup=False)


def count_line(e) -> str:
    """Mean absolute relative count error per class on the test crops, raw vs adjusted."""
    return (
        f"count error per class ({e.classes} classes with >= {e.min_crops} test crops): raw {figure(e.raw)}, "
        f"adjusted {figure(e.adjusted)}" + (f" ({e.note})" if e.note else "")
    )


def milliseconds(value: float | None) -> str:
    """A median time per frame, or ``n/a`` when no frame was timed."""
    return "n/a" if value is None else f"{value:.0f} ms/frame"


def detection_line(d: DetectionFigures) -> str:
    """One line of the whole-frame figures (``EvaluationSummary.detection``)."""
    c = d.cascade
    return (
        f"detector {d.detector_id} on {c.frames} {d.split} frames: mAP@0.5 {c.map50:.3f}, "
        f"mAP@0.5:0.95 {c.map:.3f}, recall@0.5 {c.recall50:.3f}; found and named {figure(c.found_and_named)} "
        f"({c.named}/{c.known_organisms}), found and flagged unknown {figure(c.found_and_flagged_unknown)} "
        f"({c.flagged_unknown}/{c.held_out_organisms}); detect {milliseconds(c.detect_ms_per_frame)}, "
        f"cascade {milliseconds(c.cascade_ms_per_frame)}"
    )
