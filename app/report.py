"""The evaluation report folder: summary.md, eval.json and PNG plots (matplotlib, headless)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, d) -> (n, 2) with PCA, or UMAP when asked for and installed."""
    if method == "umap":
        try:
            import umap

            return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(vectors)
        except ImportError:
            pass
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=seed).fit_transform(vectors)


def _confusion(raw: dict, path: Path) -> None:
    cm = raw["confusion"].astype(float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(raw["classes"])
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * n + 2), max(4, 0.4 * n + 1.5)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), raw["classes"], rotation=90, fontsize=7)
    ax.set_yticks(range(n), raw["classes"], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (row-normalised, test split)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _roc(raw: dict, summary: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (known, unknown) in raw["roc"].items():
        y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
        fpr, tpr, _ = roc_curve(y, np.r_[known, unknown])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {summary['ood'][name]['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.axhline(0.95, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("false positive rate (unknown accepted)")
    ax.set_ylabel("true positive rate (known accepted)")
    ax.set_title("OOD detection: known test vs held-out species")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _map(raw: dict, path: Path, method: str) -> None:
    test_v, test_l = raw["test"]
    held_v, held_l = raw["held"]
    vectors = np.concatenate([test_v, held_v]) if len(held_v) else test_v
    xy = project_2d(vectors, method)
    fig, ax = plt.subplots(figsize=(7, 6))
    names = sorted(set(test_l.tolist()))
    cmap = plt.get_cmap("tab20", max(len(names), 1))
    for i, name in enumerate(names):
        m = test_l == name
        ax.scatter(xy[: len(test_v)][m, 0], xy[: len(test_v)][m, 1], s=8, color=cmap(i), label=name)
    if len(held_v):
        ax.scatter(xy[len(test_v):, 0], xy[len(test_v):, 1], s=14, marker="x", color="black", label="held out")
    ax.set_title(f"Embedding map ({method.upper()}), test split + held-out species")
    ax.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(summary: dict) -> str:
    c, r = summary["classification"], summary["retrieval"]
    lines = [f"# oceanid evaluation: {summary['model']} ({summary['generation']})", "",
             f"{summary['counts']['species']} species; test crops {summary['counts']['test']}, held-out crops "
             f"{summary['counts']['holdout']} ({', '.join(summary['counts']['held_out_species']) or 'none'})", "",
             "## Classification (nearest prototype, test split)", "",
             f"top-1 **{c['top1']:.3f}**, top-5 {c['top5']:.3f}, F1-macro **{c['f1_macro']:.3f}**, "
             f"F1-weighted {c['f1_weighted']:.3f}", "", "![confusion](confusion.png)", "",
             "| species | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
              for k, v in c["per_class"].items()]
    lines += ["", "## Retrieval (leave-one-out on the test split)", "",
              f"Recall@1 {r['recall_at_1']:.3f}, Recall@5 {r['recall_at_5']:.3f}, Recall@10 {r['recall_at_10']:.3f}, "
              f"MAP@R {r['map_at_r']:.3f}", ""]
    if summary["ood"]:
        lines += ["## Unknown-species detection (threshold at 95% TPR on val)", "",
                  "| scorer | AUROC | FPR@95 | AUPR | known kept | unknown flagged |", "|---|---|---|---|---|---|"]
        lines += [f"| {k}{' (used)' if k == summary.get('ood_decision_scorer') else ''} | {v['auroc']:.3f} | "
                  f"{v['fpr95']:.3f} | {v['aupr']:.3f} | {v['known_accuracy']:.3f} | {v['unknown_accuracy']:.3f} |"
                  for k, v in summary["ood"].items()]
        lines += ["", "![roc](roc.png)", ""]
    if summary["few_shot"]:
        lines += ["## Few-shot: held-out species added without retraining", "",
                  "| shots | recall of added species | change in known top-1 |", "|---|---|---|"]
        lines += [f"| {k.split('_')[1]} | {v['recall']:.3f} | {v['known_accuracy_change']:+.3f} |"
                  for k, v in summary["few_shot"].items()]
        lines.append("")
    lines += ["## Most confusable species (prototype cosine)", "", "| a | b | cosine |", "|---|---|---|"]
    lines += [f"| {p['a']} | {p['b']} | {p['similarity']:.3f} |" for p in summary["confusable"]]
    lines += ["", "![map](embedding_map.png)", ""]
    return "\n".join(lines)


def write_report(summary: dict, raw: dict, folder: Path, map_method: str = "pca") -> list[Path]:
    """Write eval.json, summary.md, confusion.png, roc.png and embedding_map.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(summary, indent=2, default=str))
    (folder / "summary.md").write_text(_markdown(summary))
    _confusion(raw, folder / "confusion.png")
    if raw["roc"]:
        _roc(raw, summary, folder / "roc.png")
    _map(raw, folder / "embedding_map.png", map_method)
    return sorted(folder.iterdir())
