"""What every CLI command shares: the workspace option, error mapping, output helpers."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from index.errors import OceanidError

console = Console()
err_console = Console(stderr=True)


def debug() -> bool:
    return os.environ.get("OCEANID_DEBUG", "") not in ("", "0")


def fail(message: str, hint: str = "") -> typer.Exit:
    """Print one line to stderr and return an Exit(1) to raise."""
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
            raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.hint) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def workspace(ctx: typer.Context):
    """The Workspace chosen by the root ``--home`` option (or OCEANID_HOME, or ./data)."""
    from app.workspace import Workspace

    return Workspace(ctx.obj.get("home") if ctx.obj else None)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug() else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
