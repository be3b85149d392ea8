"""``oceanid index build|rebuild|verify``."""

from __future__ import annotations

import typer

from app.cli_common import cli_errors, console, print_json, workspace

app = typer.Typer(help="FAISS index generations built from the catalog's vectors.", no_args_is_help=True)

MODEL = typer.Option(None, "--model", help="Model id (default: the last trained).")
JSON = typer.Option(False, "--json", help="Print the manifest as JSON.")
KIND = typer.Option("auto", "--kind", help="auto (flat below 200k vectors, else IVF) | flat | ivf | hnsw")
DEVICE = typer.Option("cpu", "--device", help="auto | cpu | cuda (FAISS GPU when installed; never a silent fallback)")


def _show(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    verb = "built" if result.get("built", True) else "up to date:"
    console.print(f"{result['model_id']} {verb} {result['generation']}: {result['count']} vectors, "
                  f"{result['kind']}, dim {result['dim']}, sha256 {result['sha256'][:12]}", markup=False)


@app.command("build")
@cli_errors
def build(ctx: typer.Context, model: str = MODEL, kind: str = KIND, device: str = DEVICE, as_json: bool = JSON) -> None:
    """Build an index generation from stored vectors if the live one is missing or stale.

    Example: oceanid index build --kind flat
    """
    _show(workspace(ctx).index_build(model, kind, device, rebuild=False), as_json)


@app.command("rebuild")
@cli_errors
def rebuild(ctx: typer.Context, model: str = MODEL, kind: str = KIND, device: str = DEVICE, as_json: bool = JSON) -> None:
    """Always write a new generation (no re-embedding), verify it, and swap CURRENT atomically.

    Example: oceanid index rebuild --kind hnsw
    """
    _show(workspace(ctx).index_build(model, kind, device, rebuild=True), as_json)


@app.command("verify")
@cli_errors
def verify(ctx: typer.Context, model: str = MODEL,
           generation: str = typer.Option(None, "--generation", help="gen-NNNN (default: the live one)."),
           as_json: bool = JSON) -> None:
    """Check a generation against its manifest (files, sha256, count, model).

    Example: oceanid index verify --generation gen-0003
    """
    result = workspace(ctx).index_verify(model, generation)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['model_id']} {result['generation']}: ok ({result['count']} vectors, "
                  f"sha256 {result['sha256'][:12]})", markup=False)
