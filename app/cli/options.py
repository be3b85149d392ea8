"""Options shared by several commands, declared once (as sqlite-utils shares its option decorators)."""

from __future__ import annotations

from pathlib import Path

import typer

HOME: Path = typer.Option(None, "--home", envvar="OCEANID_HOME",
                          help="Home folder (catalog, models, indexes). Default: $OCEANID_HOME, else ./data")
MODEL: str = typer.Option(None, "--model", help="Model id (default: the last trained).")
JSON: bool = typer.Option(False, "--json", help="Print the result as one JSON document.")
DEVICE_TORCH: str = typer.Option("auto", "--device", help="auto | cpu | cuda")
NEW_MODEL: str = typer.Option(None, "--model",
                              help="Model id (folder under models/). Default: <backbone>-<loss>-d<dim>.")
QUERY_DEVICE: str = typer.Option("cpu", "--device",
                                 help="Where queries run: cpu | cuda | auto. cuda: the encoder on the GPU, and "
                                      "unfiltered search on a FAISS GPU index when faiss-gpu is installed; "
                                      "filtered search always uses the CPU index.")
PIN_SPLIT: str = typer.Option(None, "--split", help="Pin every crop of this source to train|val|test.")
