"""``oceanid evaluate``."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli_common import cli_errors, console, print_json, workspace


@cli_errors
def evaluate(
    ctx: typer.Context,
    report: Path = typer.Option(None, "--report", help="Report folder (default: <home>/reports/latest)."),
    map_method: str = typer.Option("pca", "--map", help="Embedding map projection: pca | umap"),
    model: str = typer.Option(None, "--model", help="Model id (default: the last trained)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Measure classification, unknown-species detection, retrieval and few-shot on the test split.

    Example: oceanid evaluate --report reports/run1 --json
    """
    s = workspace(ctx).evaluate(report, model, map_method)
    if as_json:
        print_json(s)
        return
    c, r = s["classification"], s["retrieval"]
    console.print(f"classification: top-1 {c['top1']:.3f}, top-5 {c['top5']:.3f}, F1-macro {c['f1_macro']:.3f}",
                  markup=False)
    console.print(f"retrieval: R@1 {r['recall_at_1']:.3f}, R@5 {r['recall_at_5']:.3f}, R@10 {r['recall_at_10']:.3f}, "
                  f"MAP@R {r['map_at_r']:.3f}", markup=False)
    for name, o in s["ood"].items():
        console.print(f"OOD {name}: AUROC {o['auroc']:.3f}, FPR@95 {o['fpr95']:.3f}, AUPR {o['aupr']:.3f}",
                      markup=False)
    for shots, f in s["few_shot"].items():
        console.print(f"few-shot {shots}: recall {f['recall']:.3f}, known top-1 change "
                      f"{f['known_accuracy_change']:+.3f}", markup=False)
    console.print(f"report: {s['report_dir']}/summary.md", markup=False)




@cli_errors
def demo(
    ctx: typer.Context,
    frames: int = typer.Option(400, help="Frames of synthetic reef to draw."),
    epochs: int = typer.Option(None, help="Training epochs (default: the demo budget)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON at the end."),
) -> None:
    """Run everything offline on the synthetic reef: ingest, split, train, embed, index, evaluate,
    add a held-out species from 5 examples. Reruns reuse what is already there.

    Example: oceanid --home /tmp/reef demo
    """
    from app.demo import demo_train_config, run_demo

    config = demo_train_config(epochs)
    say = (lambda line: None) if as_json else (lambda line: console.print(line, markup=False, soft_wrap=True))
    result = run_demo(workspace(ctx), config, say, frames=frames, progress=not as_json)
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("demo")(demo)
