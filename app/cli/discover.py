"""``oceanid discover [list|show|name|export]``: group the crops answered unknown into candidate species."""

from __future__ import annotations

from pathlib import Path

import typer
from typer._click import exceptions as click_errors  # typer >= 0.2x vendors click here

from app.cli import options
from app.cli.common import (
    check_output_file,
    cli_errors,
    console,
    err_console,
    expand,
    fail,
    fixed,
    print_json,
    workspace,
    write_csv,
)

app = typer.Typer(invoke_without_command=True)  # help: the callback's docstring (it runs `oceanid discover`)


def _print_run(run, members: str = "none") -> None:
    """The run, one line per cluster; ``members``: none | exemplars | all listed under each."""
    said = " (the same inputs as before: the stored run)" if run.reused else ""
    console.print(
        f"discovery {run.id}{said}: {run.unknown} of {run.inputs} crops answered unknown, "
        f"{len(run.clusters)} cluster(s) holding {run.clustered}, {run.unknown - run.clustered} left unclustered "
        f"({run.space} space, model {run.model_id} {run.generation or ''})",
        markup=False,
    )
    for c in run.clusters:
        f = c.facts
        near = f"nearest {f.nearest_species} {fixed(f.nearest_similarity, 3)}" if f.nearest_species else ""
        taxon = f"; placed at {f.taxon_rank} {f.taxon} ({fixed(f.taxon_share, 2)})" if f.taxon else ""
        named = f"; named {', '.join(n.species for n in c.names)}" if c.names else ""
        where = f"; {f.frames} frame(s)" + (f", {f.first_date}..{f.last_date}" if f.first_date else "")
        head = f"  cluster {c.id} (#{c.number}): {c.size} crops, cohesion {fixed(c.cohesion, 3)}; "
        console.print(f"{head}{near}{taxon}{where}{named}", markup=False)
        if members != "none":
            for m in c.members if members == "all" else c.exemplars:
                mark = "*" if m.exemplar else " "
                console.print(
                    f"    {mark} {m.crop_id if m.crop_id is not None else '-'}  {fixed(m.distance)}  {m.path}",
                    markup=False,
                )


@app.callback(invoke_without_command=True)
@cli_errors
def discover(
    ctx: typer.Context,
    where: str = typer.Option(None, "--where", help="Only catalog crops matching this filter (search's grammar)."),
    images: Path = typer.Option(None, "--images", help="Discover in these image files (a folder) instead."),
    min_cluster_size: int = typer.Option(None, "--min-cluster-size", min=2, help="Smallest group called a cluster."),
    exemplars: int = typer.Option(None, "--exemplars", min=1, help="Members nearest each centre kept as exemplars."),
    space: str = typer.Option(
        None,
        "--space",
        help="tuned | general | fused (default: fused where the model has the general space, else tuned).",
    ),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Cluster the crops the model answers unknown into candidate new species (HDBSCAN), stored in the catalog.

    The crops of the train and val splits (what the model learned and calibrated on) and the examples of
    added species are never clustered. Each cluster is listed with its exemplars (`discover show` lists
    every member, nearest the centre first; `*` marks the exemplars).
    Re-running with the same inputs reads the stored run back.

    Example: oceanid discover --where "split=holdout" --min-cluster-size 3
    """
    if ctx.invoked_subcommand is not None:
        return
    files = None
    if images is not None:
        files = [f for f in expand([images]) if f.is_file()]
        if not files:
            raise fail(f"no image files found in {images}")
    run = (
        workspace(ctx)
        .discovery(model)
        .run(where=where, images=files, space=space, min_cluster_size=min_cluster_size, exemplars=exemplars)
    )
    if as_json:
        print_json(run)
        return
    _print_run(run, members="exemplars")


@app.command("list")
@cli_errors
def discover_list(ctx: typer.Context, model: str = options.MODEL, as_json: bool = options.JSON) -> None:
    """List the stored discovery runs, newest first.

    Example: oceanid discover list
    """
    runs = workspace(ctx).discovery(model).list()
    if as_json:
        print_json(runs)
        return
    if not runs:
        console.print("no discovery runs yet: `oceanid discover` makes one", markup=False)
    for run in runs:
        _print_run(run)


@app.command("show")
@cli_errors
def discover_show(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="A discovery run's id (`oceanid discover list`)."),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Show one discovery run: its clusters and their members, nearest the centre first.

    Example: oceanid discover show 1
    """
    run = workspace(ctx).discovery(model).show(run_id)
    if as_json:
        print_json(run)
        return
    _print_run(run, members="all")


@app.command("name")
@cli_errors
def discover_name(
    ctx: typer.Context,
    cluster: int = typer.Argument(..., help="A cluster's id (`oceanid discover show RUN`)."),
    species: str = typer.Argument(..., help="The new species' name."),
    exemplars: int = typer.Option(None, "--exemplars", min=1, help="Add it from the N members nearest the centre."),
    crops: str = typer.Option(None, "--crops", help="Add it from these member crop ids (comma-separated)."),
    genus: str = typer.Option(None, "--genus", help="Its genus."),
    family: str = typer.Option(None, "--family", help="Its family."),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Name a cluster: add the species from its exemplars, as `species add` does (no retraining).

    Adds it from the cluster's exemplars (or --exemplars N nearest members, or the --crops you confirm),
    then says which members are now answered as it.

    Example: oceanid discover name 1 "Glaucichthys melanurus" --exemplars 3
    """
    picked = None if crops is None else [c.strip() for c in crops.split(",")]
    result = (
        workspace(ctx)
        .discovery(model)
        .name(cluster, species, exemplars=exemplars, crops=picked, genus=genus, family=family)
    )
    if as_json:
        print_json(result)
        return
    console.print(
        f"added {result.species} from {len(result.examples)} crop(s) of cluster {result.cluster_id}; "
        f"index {result.change.generation} is live; {len(result.answered)} of {result.members} members "
        f"are now answered {result.species}",
        markup=False,
    )
    for warning in result.change.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


@app.command("export")
@cli_errors
def discover_export(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="A discovery run's id."),
    csv_path: Path | None = typer.Option(
        None, "--csv", help="The CSV to write: crop path, cluster, distance, suggested taxon."
    ),
    label_studio: Path | None = typer.Option(
        None,
        "--label-studio",
        help="The Label Studio tasks to write (JSON to import), one per crop, each cluster's suggested name as a "
        "prediction; its label config goes beside it (NAME.label-config.xml).",
    ),
    root: Path = typer.Option(
        Path("/"),
        "--label-studio-root",
        help="The folder Label Studio serves local files from (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT): "
        "image URLs are /data/local-files/?d=<crop path under it>.",
    ),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Export a discovery run for review: one row (--csv) or Label Studio task (--label-studio) per crop.

    Example: oceanid discover export 1 --csv clusters.csv --label-studio clusters.json
    """
    import json

    from index.files import write_output

    discovery = workspace(ctx).discovery(model)  # a home that cannot be one is said first, as by every command
    if csv_path is None and label_studio is None:
        raise click_errors.UsageError("give --csv FILE, --label-studio FILE or both")
    config = None if label_studio is None else label_studio.with_name(f"{label_studio.stem}.label-config.xml")
    check_output_file(csv_path, "--csv")
    check_output_file(label_studio, "--label-studio")
    check_output_file(config, "--label-studio")
    rows = discovery.export_rows(run_id) if csv_path is not None else None  # both built before either is written
    tasks = discovery.label_studio_tasks(run_id, root) if label_studio is not None else None
    out: dict = {"discovery": run_id}
    lines = []
    if rows is not None:
        write_csv(csv_path, discovery.csv_header, rows)
        out.update(csv=str(csv_path), rows=len(rows))
        lines.append(f"wrote {len(rows)} row(s) to {csv_path}")
    if tasks is not None:
        write_output(label_studio, json.dumps(list(tasks.tasks), indent=1).encode(), "--label-studio")
        write_output(config, tasks.label_config.encode(), "--label-studio")
        facts = {k: v for k, v in tasks.to_dict().items() if k in ("tasks", "predicted", "model_version", "root")}
        out.update(label_studio=str(label_studio), label_config=str(config), **facts)
        lines.append(
            f"wrote {len(tasks.tasks)} Label Studio task(s) to {label_studio} ({tasks.predicted} pre-annotated, "
            f"model version {tasks.model_version!r}) and their label config to {config}"
        )
    if as_json:
        print_json(out)
        return
    for line in lines:
        console.print(line, markup=False)
