"""The ``oceanid`` command line: noun groups and verbs over one Workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from app import cli_app, cli_data, cli_eval, cli_index, cli_ingest, cli_model, cli_query
from app.cli_common import setup_logging

app = typer.Typer(
    name="oceanid",
    help="Identify marine organisms by searching an embedding space.\n\n"
    "Example: oceanid demo   (offline, end to end, on the built-in synthetic reef)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    home: Path = typer.Option(None, "--home", envvar="OCEANID_HOME",
                              help="Home folder (catalog, models, indexes). Default: ./data"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log one line per stage."),
) -> None:
    """Identify marine organisms by searching an embedding space.

    Example: oceanid --home ~/reef demo
    """
    setup_logging(verbose)
    ctx.obj = {"home": home}


app.add_typer(cli_ingest.app, name="ingest")
cli_data.register(app)
cli_model.register(app)
app.add_typer(cli_index.app, name="index")
cli_query.register(app)
cli_eval.register(app)
app.command("app")(cli_app.app_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
