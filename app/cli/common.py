"""What every CLI command shares: the workspace, error mapping (one line, exit 1), output helpers."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from app.workspace import Workspace
from index.imaging import is_image_name
from index.errors import OceanidError, describe

console = Console()
err_console = Console(stderr=True)


def debug() -> bool:
    """True when ``OCEANID_DEBUG`` asks for tracebacks."""
    return os.environ.get("OCEANID_DEBUG", "") not in ("", "0")


def fail(message: str, hint: str = "") -> typer.Exit:
    """Print ``error: message — hint`` as one line on stderr and return an Exit(1) to raise."""
    line = f"error: {message}" + (f" — {hint}" if hint else "")
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def cli_errors(fn: Callable) -> Callable:
    """Map library errors to one line on stderr and exit code 1 (traceback with OCEANID_DEBUG=1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OceanidError as exc:
            if debug():
                raise
            raise fail(describe(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def workspace(ctx: typer.Context, device: str = "cpu") -> Workspace:
    """The Workspace chosen by the root ``--home`` option (or OCEANID_HOME, or ./data);
    ``device`` is where its queries run (auto | cpu | cuda)."""
    return Workspace(ctx.obj.get("home") if ctx.obj else None, device=device)


def print_json(data: Any) -> None:
    """Print a result as indented JSON on stdout: its ``to_dict()``, or a list of them."""
    if hasattr(data, "to_dict"):
        data = data.to_dict()
    elif isinstance(data, list):
        data = [d.to_dict() if hasattr(d, "to_dict") else d for d in data]
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def setup_logging(verbose: bool) -> None:
    """One line per stage with ``--verbose``; everything with ``OCEANID_DEBUG``."""
    logging.basicConfig(
        level=logging.DEBUG if debug() else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the image files below them (sorted)."""
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p))
        else:
            out.append(path)
    return out
