"""``oceanid demo``: the whole pipeline, offline, on the synthetic reef."""

from __future__ import annotations

import typer

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace

app = typer.Typer()


@app.command("demo")
@cli_errors
def demo(
    ctx: typer.Context,
    frames: int = options.count(400, "--frames", "Frames of synthetic reef to draw."),
    epochs: int = options.count(None, "--epochs", "Training epochs (default: the demo budget)."),
    general_space: bool = options.GENERAL_SPACE,
    as_json: bool = options.JSON,
) -> None:
    """Run everything offline on the synthetic reef: ingest, split, train, embed, index, evaluate,
    add a held-out species from 5 examples. Reruns reuse what is already there.

    Example: oceanid --home /tmp/reef demo
    """
    say = (lambda line: None) if as_json else (lambda line: console.print(line, markup=False, soft_wrap=True))
    from app.workspace import demo_train_config, run_demo

    result = run_demo(
        workspace(ctx), demo_train_config(epochs), say, frames=frames, progress=not as_json, general=general_space
    )
    if as_json:
        print_json(result)
