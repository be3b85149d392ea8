"""``oceanid app``: start the Streamlit explorer on 127.0.0.1 (``oceanid serve`` is the HTTP API)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import typer

from app.cli import options
from app.cli.common import cli_errors, console, fail

SCRIPT = Path(__file__).resolve().parents[1] / "explorer" / "main.py"

app = typer.Typer()


def streamlit_command(port: int) -> list[str]:
    """The ``streamlit run`` command line for the explorer on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SCRIPT),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` (connections in TIME_WAIT don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@app.command("app")
@cli_errors
def app_command(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port on 127.0.0.1 to serve on."),
    home: Path = options.HOME,
    device: str = typer.Option(
        "cpu",
        "--device",
        help="Where the explorer's encoder runs: cpu | cuda | auto "
        "(its search always uses the CPU index: FAISS GPU "
        "indexes are not thread-safe).",
    ),
) -> None:
    """Open the explorer: identify an image, browse species, the embedding map, the last
    evaluation, add a species, and the data survey. Serves on 127.0.0.1 until Ctrl-C.

    Example: oceanid app --port 8501 --home ~/reef
    """
    from app.workspace import check_home, resolve_home

    resolved = check_home(resolve_home(home or (ctx.obj or {}).get("home")))  # a file: one line, not a server
    if not port_free(port):
        raise fail(f"port {port} on 127.0.0.1 is in use", "pick another with --port")
    console.print(
        f"oceanid explorer: http://127.0.0.1:{port}  (home {resolved}; Ctrl-C stops it)", markup=False, highlight=False
    )
    if device not in ("cpu", "cuda", "auto"):
        raise fail(f"unknown device {device!r}", "use cpu, cuda or auto")
    env = {**os.environ, "OCEANID_HOME": str(resolved), "OCEANID_DEVICE": device}
    raise typer.Exit(serve(streamlit_command(port), env))


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the server until it exits; Ctrl-C reaches it through the terminal and
    SIGTERM is passed on, so stopping ``oceanid app`` never leaves it behind."""
    proc = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
