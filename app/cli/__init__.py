"""The ``oceanid`` command line (face 1): noun groups and verbs over one Workspace.

::

    oceanid [--home H] [-v]
      ingest synthetic|coco|folders|fathomnet   ingest.py
      stats, split                               data.py
      train, embed                               train.py
      models [export]                            models.py
      index build|rebuild|verify|prune|rollback  index.py
      identify                                   query.py
      search                                     search.py
      detect FRAME...|train|list|evaluate        detect.py
      species add|remove                         species.py
      discover [list|show|name|export]           discover.py
      taxa show|import                           taxa.py
      evaluate                                   evaluate.py
      count                                      count.py
      demo                                       demo.py
      app                                        explorer.py (serves the Streamlit explorer)
      serve                                      serve.py (the HTTP API, app.api)

Every module holds one ``typer.Typer`` named ``app`` and is registered the same
way below (a group under its name, verbs merged into the root). Shared options
live in ``options.py``; ``common.py`` turns library errors into one line and
exit code 1. Commands parse input, make one Workspace call and print its result.
A command module imports ``app.workspace`` inside its commands, never at its top:
building the app (``oceanid --help``) loads no numpy, DuckDB or pyarrow
(tests/app/cli/test_cli_startup.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from app.cli import (
    count,
    data,
    demo,
    detect,
    discover,
    evaluate,
    explorer,
    index,
    ingest,
    models,
    options,
    query,
    search,
    serve,
    species,
    taxa,
    train,
)
from app.cli.common import OneLineErrors, cli_errors, setup_logging

app = typer.Typer(
    name="oceanid",
    help="Identify marine organisms by searching an embedding space.\n\n"
    "Example: oceanid demo   (offline, end to end, on the built-in synthetic reef)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


@app.callback()
@cli_errors
def root(
    ctx: typer.Context,
    home: Path = options.HOME,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log one line per stage."),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="Cores this process computes on (torch, onnxruntime, faiss, BLAS). "
        "Default: $OCEANID_THREADS, else every core for batch jobs (train, "
        "embed, index build, evaluate, detect train, demo) and half the "
        "cores for serve, app and queries, so a server and a CLI job "
        "beside it share the machine.",
    ),
) -> None:
    """Identify marine organisms by searching an embedding space.

    Example: oceanid --home ~/reef demo
    """
    from app.workspace import THREADS_ENV, limit_threads, threads_for

    setup_logging(verbose)
    if threads is None and not os.environ.get(THREADS_ENV):  # batch jobs: every core; serve, app, queries: half
        threads = threads_for(ctx.meta.get("oceanid.command") or (ctx.invoked_subcommand or "",))
    limit_threads(threads)
    ctx.obj = {"home": home}


#: (module, group name); None merges the module's verbs into the root.
GROUPS = (
    (ingest, "ingest"),
    (data, None),
    (train, None),
    (models, "models"),
    (index, "index"),
    (query, None),
    (search, None),
    (detect, "detect"),
    (species, "species"),
    (discover, "discover"),
    (taxa, "taxa"),
    (evaluate, None),
    (count, None),
    (demo, None),
    (explorer, None),
    (serve, None),
)
for module, name in GROUPS:
    app.add_typer(module.app, name=name)


def main() -> None:
    """The ``oceanid`` console script."""
    app()


if __name__ == "__main__":
    main()
