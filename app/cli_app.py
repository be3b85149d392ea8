"""``oceanid app``: start the Streamlit explorer on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import typer

from app.cli_common import console, fail

SCRIPT = Path(__file__).resolve().parent / "explorer" / "main.py"


def streamlit_command(port: int) -> list[str]:
    """The ``streamlit run`` command line for the explorer on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "streamlit", "run", str(SCRIPT),
            "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def app_command(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port on 127.0.0.1 to serve on."),
    home: Path = typer.Option(None, "--home", help="Home folder to explore (default: the root --home, "
                              "$OCEANID_HOME, or ./data)."),
) -> None:
    """Open the explorer: identify an image, browse species, the embedding map, the last
    evaluation, add a species, and the data survey. Serves on 127.0.0.1 until Ctrl-C.

    Example: oceanid app --port 8501 --home ~/reef
    """
    from app.workspace import resolve_home

    chosen = home or (ctx.obj or {}).get("home")
    resolved = resolve_home(chosen).expanduser().absolute()
    if not port_free(port):
        raise fail(f"port {port} on 127.0.0.1 is in use", "pick another with --port")
    console.print(f"oceanid explorer: http://127.0.0.1:{port}  (home {resolved}; Ctrl-C stops it)",
                  markup=False, highlight=False)
    env = {**os.environ, "OCEANID_HOME": str(resolved)}
    try:
        code = subprocess.call(streamlit_command(port), env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
