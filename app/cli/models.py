"""``oceanid models`` (the trained models) and ``oceanid models export`` (their ONNX export)."""

from __future__ import annotations

import typer
from rich.table import Table

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace

app = typer.Typer(invoke_without_command=True)


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
    table = Table("model", "backbone", "dim", "vectors", "index", "status")
    for m in infos:
        table.add_row(m.model_id + (" *" if m.current else ""), m.backbone or "—", str(m.dim), str(m.vectors),
                      m.generation or "—", f"stale: {m.stale}" if m.stale else "ok")
    console.print(table)
    console.print("* the model commands use without --model", markup=False)


@app.command("export")
@cli_errors
def export(
    ctx: typer.Context,
    model: str = options.MODEL,
    int8: bool = typer.Option(False, "--int8", help="Also write encoder.int8.onnx (dynamic INT8 quantisation) "
                                                    "and report its cosine gap; queries keep the FP32 export."),
    as_json: bool = options.JSON,
) -> None:
    """Export a trained encoder to ONNX (encoder.onnx + encoder.json beside its weights), checked
    against torch on the first validation crops; identify, search and serve then run it on
    onnxruntime. `oceanid train` does this itself: this is for models trained before.

    Example: oceanid models export --model efficientnet_lite0-softmax-d128
    """
    result = workspace(ctx).export_model(model, int8=int8)
    if as_json:
        print_json(result)
        return
    verdict = "passed" if result.passed else "FAILED (queries stay on torch)"
    console.print(f"{result.model_id}: {result.onnx_file} ({result.onnx_bytes / 1e6:.1f} MB), max cosine gap to "
                  f"torch {result.max_cosine_gap:.1e} over {result.check_crops} crops: {verdict}", markup=False)
    if result.int8_file:
        console.print(f"  {result.int8_file}: max cosine gap {result.int8_max_cosine_gap:.1e}", markup=False)
