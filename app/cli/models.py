"""``oceanid models`` (the trained models) and ``oceanid models export`` (their ONNX export)."""

from __future__ import annotations

import typer

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace
from app.cli.tables import Column, print_table

app = typer.Typer(invoke_without_command=True)

MODELS_TABLE = (
    Column("model", 6),
    Column("backbone", 1, wrap=True, min_width=10),
    Column("dim", 3, number=True),
    Column("vectors", 4, number=True),
    Column("index", 2),
    Column("status", 5, wrap=True, min_width=10),
)


@app.callback()
@cli_errors
def models(ctx: typer.Context, as_json: bool = options.JSON) -> None:
    """List the trained models: backbone, size, crops embedded, live index, and whether each is stale
    (trained on a split that `oceanid split --force` replaced: retrain it before trusting its figures).

    Example: oceanid models --json
    """
    if ctx.invoked_subcommand is not None:
        return
    infos = workspace(ctx).models()
    if as_json:
        print_json(infos)
        return
    if not infos:
        console.print("no models yet: oceanid train", markup=False)
        return
    rows = [
        (
            m.model_id + (" *" if m.current else ""),
            m.backbone or "—",
            str(m.dim),
            str(m.vectors),
            m.generation or "—",
            f"stale: {m.stale}" if m.stale else "ok",
        )
        for m in infos
    ]
    print_table(console, MODELS_TABLE, rows)  # the model id is never wrapped: other text wraps first
    console.print("* the model commands use without --model", markup=False)


@app.command("export")
@cli_errors
def export(
    ctx: typer.Context,
    model: str = options.MODEL,
    int8: bool = typer.Option(
        False,
        "--int8",
        help="Also write encoder.int8.onnx (dynamic INT8 quantisation) "
        "and report its cosine gap; queries keep the FP32 export.",
    ),
    as_json: bool = options.JSON,
) -> None:
    """Export a trained encoder to ONNX (encoder.onnx + encoder.json beside its weights), checked
    against torch on the first validation crops; identify, search and serve then run it on
    onnxruntime. `oceanid train` does this itself: this is for models trained before.

    Example: oceanid models export   (the last trained model; name another with --model)
    """
    result = workspace(ctx).export_model(model, int8=int8)
    if as_json:
        print_json(result)
        return
    verdict = "passed" if result.passed else "FAILED (queries stay on torch)"
    console.print(
        f"{result.model_id}: {result.onnx_file} ({result.onnx_bytes / 1e6:.1f} MB), max cosine gap to "
        f"torch {result.max_cosine_gap:.1e} over {result.check_crops} crops: {verdict}",
        markup=False,
    )
    if result.int8_file:
        console.print(f"  {result.int8_file}: max cosine gap {result.int8_max_cosine_gap:.1e}", markup=False)
