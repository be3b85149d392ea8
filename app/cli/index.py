"""``oceanid index build|rebuild|verify|prune|rollback``: the FAISS index generations."""

from __future__ import annotations

import typer

from app.cli import options
from app.cli.common import cli_errors, console, err_console, print_json, workspace

app = typer.Typer(help="FAISS index generations built from the catalog's vectors.", no_args_is_help=True)

KIND = typer.Option("auto", "--kind", help="auto (flat below 200k vectors, else IVF) | flat | ivf | ivfpq | hnsw")
SHARDS = typer.Option(
    1,
    "--shards",
    min=1,
    max=256,
    help="Indexes to split the vectors into by id hash, searched in parallel (1: one index).",
)
DEVICE = typer.Option("cpu", "--device", help="auto | cpu | cuda (FAISS GPU when installed; never a silent fallback)")


def _show(result, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    m = result.manifest
    if result.disagreed:
        console.print(f"{result.disagreed}: rebuilt from the catalog", markup=False)
    verb = "built" if result.built else "up to date:"
    shards = f" in {m.shards} shards" if m.shards else ""
    console.print(
        f"{m.model_id} {verb} {result.generation}: {m.count} vectors, {m.kind}{shards}, dim {m.dim}, "
        f"sha256 {m.sha256[:12]}",
        markup=False,
    )
    if result.priors is not None:
        p = result.priors
        console.print(
            f"class priors: {p.source}{' (' + p.file + ')' if p.file else ''} x tau {p.tau:g}"
            + ("" if p.active else " (off: answers as the nearest prototype)"),
            markup=False,
        )
    if result.pruned:
        console.print(
            f"pruned old generation(s) {', '.join(result.pruned)} (the newest are kept; "
            "`oceanid index prune --keep N` sets how many)",
            markup=False,
        )


@app.command("build")
@cli_errors
def build(
    ctx: typer.Context,
    model: str = options.MODEL,
    kind: str = KIND,
    device: str = DEVICE,
    shards: int = SHARDS,
    priors: str = typer.Option(
        None,
        "--priors",
        help="Class priors added to the calibrated scores: train (the training crops' frequencies), "
        "balanced (equal: the nearest prototype as is) or a CSV of class,weight rows. Default: keep the "
        "stored choice (train at tau 0, i.e. off, on a first build). Counting organisms: train with tau "
        "0.5-0.75; finding rare taxa: balanced (see the README).",
    ),
    prior_tau: float = typer.Option(
        None, "--prior-tau", help="Strength of the priors: score + tau x log(prior); 0 = off. Default: kept."
    ),
    as_json: bool = options.JSON,
) -> None:
    """Build an index generation from stored vectors if the live one is missing, stale
    (other vectors than the stored ones) or of another --kind or --shards than asked;
    otherwise write nothing. --priors / --prior-tau decide the class priors again.

    Example: oceanid index build --kind flat --shards 4
    """
    built = workspace(ctx).index_build(
        model, kind, device, rebuild=False, shards=shards, priors=priors, prior_tau=prior_tau
    )
    _show(built, as_json)


@app.command("rebuild")
@cli_errors
def rebuild(
    ctx: typer.Context,
    model: str = options.MODEL,
    kind: str = KIND,
    device: str = DEVICE,
    shards: int = SHARDS,
    as_json: bool = options.JSON,
) -> None:
    """Always write a new generation (no re-embedding), verify it, and swap CURRENT atomically.

    Example: oceanid index rebuild --kind hnsw --shards 2
    """
    _show(workspace(ctx).index_build(model, kind, device, rebuild=True, shards=shards), as_json)


@app.command("verify")
@cli_errors
def verify(
    ctx: typer.Context,
    model: str = options.MODEL,
    generation: str = typer.Option(None, "--generation", help="gen-NNNN (default: the live one)."),
    as_json: bool = options.JSON,
) -> None:
    """Check a generation against its manifest (files, sha256, count, model).

    Example: oceanid index verify --generation gen-0001
    """
    result = workspace(ctx).index_verify(model, generation)
    if as_json:
        print_json(result)
        return
    m = result.manifest
    console.print(f"{m.model_id} {result.generation}: ok ({m.count} vectors, sha256 {m.sha256[:12]})", markup=False)


@app.command("prune")
@cli_errors
def prune(
    ctx: typer.Context,
    model: str = options.MODEL,
    keep: int = typer.Option(3, "--keep", min=1, help="Generations to keep (the live one always stays)."),
    as_json: bool = options.JSON,
) -> None:
    """Delete old index generations (and leftovers of crashed builds), keeping the newest ones.

    Example: oceanid index prune --keep 2
    """
    result = workspace(ctx).index_prune(model, keep)
    if as_json:
        print_json(result)
        return
    console.print(
        f"{result.model_id}: removed {', '.join(result.removed) or 'nothing'}; live {result.current}", markup=False
    )


@app.command("rollback")
@cli_errors
def rollback(ctx: typer.Context, model: str = options.MODEL, as_json: bool = options.JSON) -> None:
    """Make the generation before the live one live again (verified first).

    Example: oceanid index rollback
    """
    result = workspace(ctx).index_rollback(model)
    if as_json:
        print_json(result)
        return
    console.print(f"{result.model_id}: {result.current} is live again", markup=False)
    if result.warning:
        err_console.print(f"warning: {result.warning}", markup=False)
