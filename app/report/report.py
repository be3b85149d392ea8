"""The evaluation report folder: summary.md, eval.json and PNG plots (matplotlib, headless)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import roc_curve

from app.report.plots import plt, save_figure
from index.scoring.projection import project_2d

if TYPE_CHECKING:
    from app.workspace.evaluation import RawFigures
    from app.workspace.results import EvaluationSummary


def _confusion(raw: RawFigures, path: Path) -> None:
    cm = raw.confusion.astype(float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(raw.classes)
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * n + 2), max(4, 0.4 * n + 1.5)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), raw.classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), raw.classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (row-normalised, test split)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    save_figure(fig, path)


def _roc(raw: RawFigures, summary: EvaluationSummary, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (known, unknown) in raw.roc.items():
        y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
        fpr, tpr, _ = roc_curve(y, np.r_[known, unknown])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {summary.ood[name].auroc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.axhline(0.95, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("false positive rate (unknown accepted)")
    ax.set_ylabel("true positive rate (known accepted)")
    ax.set_title("OOD detection: known test vs held-out species")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def _map(raw: RawFigures, path: Path, method: str) -> None:
    test_v, test_l = raw.test
    held_v, held_l = raw.held
    vectors = np.concatenate([test_v, held_v]) if len(held_v) else test_v
    xy, method = project_2d(vectors, method)
    fig, ax = plt.subplots(figsize=(7, 6))
    names = sorted(set(test_l.tolist()))
    cmap = plt.get_cmap("tab20", max(len(names), 1))
    for i, name in enumerate(names):
        m = test_l == name
        ax.scatter(xy[: len(test_v)][m, 0], xy[: len(test_v)][m, 1], s=8, color=cmap(i), label=name)
    if len(held_v):
        ax.scatter(xy[len(test_v) :, 0], xy[len(test_v) :, 1], s=14, marker="x", color="black", label="held out")
    ax.set_title(f"Embedding map ({method.upper()}), test split + held-out species")
    ax.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1, 0.5))
    save_figure(fig, path)


def _figure(value: float | None) -> str:
    """A figure to 3 decimals, or ``n/a`` when it does not apply (top-5 with <= 5 species)."""
    return "n/a" if value is None else f"{value:.3f}"


def _taxonomy_markdown(summary: EvaluationSummary) -> list[str]:
    t = summary.taxonomy
    if t is None:
        return []
    from index.taxonomy import RANKS

    lines = [
        "## Answers at rank (taxonomy)",
        "",
        f"Rank threshold {t.rank_threshold:.2f} ({t.threshold_source}). Taxonomic distance: FathomNet 2025, "
        "7 ranks, 0 (right label) .. 12 (nothing shared); an answer naming nothing counts 12.",
        "",
        "| answer | mean distance | " + " | ".join(RANKS) + " |",
        "|---|---|" + "---|" * len(RANKS),
    ]
    rows = [("top-1 species", t.species_mean_distance, t.species_rank_accuracy)]
    rows += [(f"decode {k}", d.mean_distance, d.rank_accuracy) for k, d in t.decodings.items()]
    lines += [
        f"| {name} | {dist:.3f} | " + " | ".join(_figure(acc.get(r)) for r in RANKS) + " |" for name, dist, acc in rows
    ]
    held = {k: d for k, d in t.decodings.items() if d.held_out is not None}
    if held:
        lines += [
            "",
            "Held-out species: share of their crops flagged new at species level whose answer names "
            "their true genus / family.",
            "",
            "| species | crops | decode | flagged new | genus | family |",
            "|---|---|---|---|---|---|",
        ]
        for k, d in held.items():
            for name, p in [("all held-out", d.held_out), *d.held_out_species.items()]:
                lines.append(
                    f"| {name} | {p.crops} | {k} | {p.flagged_new:.3f} | {_figure(p.genus)} | {_figure(p.family)} |"
                )
    return lines + [""]


def _detection_markdown(summary: EvaluationSummary) -> list[str]:
    d = summary.detection
    if d is None:
        return []
    c = d.cascade
    ms = lambda v: "n/a" if v is None else f"{v:.0f} ms"  # noqa: E731
    lines = [
        f"## Whole frames: detector `{d.detector_id}` and the cascade ({c.frames} {d.split} frames)",
        "",
        "Class-agnostic pycocotools figures over every box the detector keeps; the cascade answers with "
        f"the boxes scoring >= {c.min_score:g} (found: matched to a ground-truth organism at IoU >= 0.5). "
        "Known species: trained or added; held out: no prototypes.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| mAP@0.5 / mAP@0.5:0.95 | {c.map50:.3f} / {c.map:.3f} |",
        f"| recall@0.5 | {c.recall50:.3f} |",
        f"| found (cascade boxes) | {c.found} of {c.organisms} |",
        f"| found and named ({c.known_organisms} known-species organisms) | {_figure(c.found_and_named)} "
        f"({c.named}; {_figure(c.named_when_found)} of those found) |",
        f"| found and flagged unknown ({c.held_out_organisms} held-out organisms) | "
        f"{_figure(c.found_and_flagged_unknown)} ({c.flagged_unknown}) |",
        f"| boxes answered | {c.detections} |",
        f"| detect, per frame (median) | {ms(c.detect_ms_per_frame)} |",
        f"| whole cascade, per frame (median / mean) | {ms(c.cascade_ms_per_frame)} / "
        f"{ms(c.cascade_ms_per_frame_mean)} |",
        "",
    ]
    if c.skipped:
        lines += [f"Skipped {len(c.skipped)} frame(s) that could not be read:", ""]
        lines += [f"- {name}: {reason}" for name, reason in c.skipped] + [""]
    return lines


def _label_rank_lines(c) -> list[str]:
    """Top-1 at the label's rank and where the answers of labels that hold other classes went."""
    lr = c.label_rank
    if not lr or not lr.get("holders"):
        return []
    k = lr["kinds"]
    lines = [
        f"At the label's rank (an answer inside the label's subtree in the lineages is right): top-1 "
        f"**{c.top1_at_label_rank:.3f}**; answers: {k['exact']} the label, {k['subtree']} inside its subtree "
        f"(more specific), {k['ancestor']} an ancestor of it (less specific), {k['error']} wrong.",
        "",
        "| label | the label | inside its subtree | an ancestor | wrong |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {v['exact']} | {v['subtree']} | {v['ancestor']} | {v['error']} |"
        for label, v in lr["per_class"].items()
        if v["subtree"] or v["ancestor"] or label in lr["holders"]
    ]
    return [*lines, ""]


def _markdown(summary: EvaluationSummary) -> str:
    c, r, n = summary.classification, summary.retrieval, summary.counts
    lines = [
        f"# oceanid evaluation: {summary.model} ({summary.generation})",
        "",
        f"{n.species} species; test crops {n.test}, held-out crops "
        f"{n.holdout} ({', '.join(n.held_out_species) or 'none'})",
        "",
        "## Classification (nearest prototype, test split)",
        "",
        f"top-1 **{c.top1:.3f}**, top-5 {_figure(c.top5)}, F1-macro **{c.f1_macro:.3f}**, "
        f"F1-weighted {c.f1_weighted:.3f}",
        "",
        *_label_rank_lines(c),
        "![confusion](confusion.png)",
        "",
        "| species | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v.precision:.3f} | {v.recall:.3f} | {v.f1:.3f} | {v.support} |" for k, v in c.per_class.items()
    ]
    lines += [
        "",
        "## Retrieval (leave-one-out on the test split)",
        "",
        f"Recall@1 {r.recall_at_1:.3f}, Recall@5 {r.recall_at_5:.3f}, Recall@10 {r.recall_at_10:.3f}, "
        f"MAP@R {r.map_at_r:.3f}",
        "",
    ]
    if summary.ood:
        lines += [
            "## Unknown-species detection (threshold at 95% TPR on val)",
            "",
            "| scorer | AUROC | FPR@95 | AUPR | known kept | unknown flagged |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {k}{' (used)' if k == summary.ood_decision_scorer else ''} | {v.auroc:.3f} | "
            f"{v.fpr_at_95_tpr:.3f} | {v.aupr_out:.3f} | {v.known_accuracy:.3f} | {v.unknown_accuracy:.3f} |"
            for k, v in summary.ood.items()
        ]
        lines += ["", "![roc](roc.png)", ""]
        ch = summary.scorer_choice
        if ch is not None and ch.source == "held-out validation":
            lines += [
                f"Decision scorer `{ch.scorer}` chosen on {ch.n_unknown_val} held-out crops (even ids) against "
                f"{ch.n_known_val} known validation crops (measured default `{ch.default}`); the table above "
                "grades the other held-out crops.",
                "",
            ]
        elif ch is not None:
            lines += [f"Decision scorer: the measured default `{ch.scorer}` (no held-out crops to choose on).", ""]
    cal = summary.calibration
    if cal is not None:
        lines += [
            "## Confidence calibration (temperature scaling of prototype cosines, fitted on val)",
            "",
            f"Temperature {cal.temperature:.4f}; expected calibration error on test "
            f"{_figure(cal.ece_test)} (uncalibrated {_figure(cal.ece_test_uncalibrated)}), on val "
            f"{cal.ece_val:.3f}.",
            "",
        ]
    if summary.few_shot:
        lines += [
            "## Few-shot: held-out species added without retraining",
            "",
            "| shots | recall of added species | change in known top-1 |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v.recall:.3f} | {v.known_accuracy_change:+.3f} |" for k, v in summary.few_shot.items()]
        lines.append("")
    lines += _taxonomy_markdown(summary)
    lines += _count_markdown(summary)
    lines += _detection_markdown(summary)
    lines += ["## Most confusable species (prototype cosine)", "", "| a | b | cosine |", "|---|---|---|"]
    lines += [f"| {p.a} | {p.b} | {p.similarity:.3f} |" for p in summary.confusable]
    lines += ["", "![map](embedding_map.png)", ""]
    return "\n".join(lines)


def _count_markdown(summary: EvaluationSummary) -> list[str]:
    """The count error per class on the known test crops: raw (classify-and-count) vs adjusted."""
    e = summary.count_error
    if e is None or not e.classes:
        return []
    lines = [
        f"## Counts per class (test crops; classes with >= {e.min_crops})",
        "",
        f"Mean absolute relative count error: raw {_figure(e.raw)}, adjusted {_figure(e.adjusted)}"
        + (f" ({e.note})" if e.note else "")
        + ".",
        "",
        "| class | crops | raw count | adjusted count | raw error | adjusted error |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in e.per_class.items():
        adjusted = f"{c.adjusted:.1f}" if c.adjusted is not None else "—"
        lines.append(f"| {name} | {c.truth} | {c.raw} | {adjusted} | {c.raw_error:.3f} | {_figure(c.adjusted_error)} |")
    return [*lines, ""]


def _taxonomy_csv(summary: EvaluationSummary, path: Path) -> None:
    """One row per (decoding, figure): taxonomy.csv (answer, set, rank, value)."""
    import csv

    t = summary.taxonomy
    rows = [("top-1 species", "known test", "mean_distance", "", t.species_mean_distance)]
    rows += [("top-1 species", "known test", "accuracy", r, v) for r, v in t.species_rank_accuracy.items()]
    for k, d in t.decodings.items():
        rows.append((k, "known test", "mean_distance", "", d.mean_distance))
        rows += [(k, "known test", "accuracy", r, v) for r, v in d.rank_accuracy.items()]
        for name, p in ([("held-out", d.held_out)] if d.held_out else []) + list(d.held_out_species.items()):
            rows += [
                (k, name, "flagged_new", "", p.flagged_new),
                (k, name, "placed", "genus", p.genus),
                (k, name, "placed", "family", p.family),
            ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["decode", "crops", "figure", "rank", "value"])
        writer.writerows([(a, b, c, r, "" if v is None else f"{v:.4f}") for a, b, c, r, v in rows])


def write_report(summary: EvaluationSummary, raw: RawFigures, folder: Path, map_method: str = "pca") -> list[Path]:
    """Write eval.json, summary.md, taxonomy.csv, confusion.png, roc.png and embedding_map.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    (folder / "summary.md").write_text(_markdown(summary))
    if summary.taxonomy is not None:
        _taxonomy_csv(summary, folder / "taxonomy.csv")
    _confusion(raw, folder / "confusion.png")
    if raw.roc:
        _roc(raw, summary, folder / "roc.png")
    _map(raw, folder / "embedding_map.png", map_method)
    return sorted(folder.iterdir())
