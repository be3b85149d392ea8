"""Options shared by several commands, declared once (as sqlite-utils shares its option decorators)."""

from __future__ import annotations

from pathlib import Path

import typer

HOME: Path = typer.Option(
    None,
    "--home",
    envvar="OCEANID_HOME",
    help="Home folder (catalog, models, indexes). Default: $OCEANID_HOME, else ./data",
)
MODEL: str = typer.Option(None, "--model", help="Model id (default: the last trained).")
JSON: bool = typer.Option(False, "--json", help="Print the result as one JSON document.")
DEVICE_TORCH: str = typer.Option("auto", "--device", help="auto | cpu | cuda")
NEW_MODEL: str = typer.Option(
    None, "--model", help="Model id (folder under models/). Default: <backbone>-<loss>-d<dim>."
)
QUERY_DEVICE: str = typer.Option(
    "cpu",
    "--device",
    help="Where queries run: cpu | cuda | auto. cuda: the encoder on the GPU, and "
    "unfiltered search on a FAISS GPU index when faiss-gpu is installed; "
    "filtered search always uses the CPU index.",
)
PIN_SPLIT: str = typer.Option(None, "--split", help="Pin every crop of this source to train|val|test.")
GENERAL_SPACE: bool = typer.Option(
    None,
    "--general-space/--no-general-space",
    help="Keep a frozen ImageNet space beside the tuned one, which names added species far better "
    '(default: on; $OCEANID_GENERAL_SPACE=0 sets it off; see the README\'s "What an answer means"). '
    "--no-general-space starts none for a model that has none; one it keeps stays kept.",
    show_default=False,
)


def count(default: int | None, flag: str, help: str, minimum: int = 1) -> int:
    """An integer option that must be at least ``minimum`` (1: ``--k 0`` is refused by every
    command the same way, as a one-line usage error, before any work)."""
    return typer.Option(default, flag, min=minimum, help=help)


def k_option(default: int, help: str) -> int:
    """``--k``: how many answers to list; at least 1 everywhere."""
    return count(default, "--k", help)


def csv_option(help: str = "Write the result to this CSV file (checked before the work; written atomically).") -> Path:
    """``--csv PATH``: an output file, checked by :func:`app.cli.common.check_output_file` first."""
    return typer.Option(None, "--csv", help=help)
