"""``oceanid serve``: the HTTP API (FastAPI + uvicorn) over one warm engine (``oceanid app`` is the explorer)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from app.cli import options
from app.cli.common import cli_errors, console, fail

app = typer.Typer()

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (connections in TIME_WAIT don't count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def api_env(
    home: Path, model: str | None, device: str, token: str | None, read_only: bool, max_request_bytes: int
) -> dict[str, str]:
    """The ``OCEANID_API_*`` variables ``app.api.ApiSettings.from_env`` reads."""
    env = {
        "OCEANID_API_HOME": str(home),
        "OCEANID_API_DEVICE": device,
        "OCEANID_API_READ_ONLY": "1" if read_only else "",
        "OCEANID_API_MAX_REQUEST_BYTES": str(max_request_bytes),
        "OCEANID_API_MODEL": model or "",
        "OCEANID_API_TOKEN": token or "",
    }
    return env


def _server_class():
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopping with exit code 0 on SIGTERM / Ctrl-C: it shuts down
        gracefully (requests in flight are answered), then, unlike uvicorn, does not raise the
        signal again to die by it (the process was asked to stop and did)."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server


def _Server(config):  # noqa: N802 - the class is made on first use (uvicorn imports on `serve` only)
    return _server_class()(config)


@app.command("serve")
@cli_errors
def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback needs a token."),
    port: int = typer.Option(8700, "--port", min=1, max=65535, help="Port to serve on."),
    home: Path = options.HOME,
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes, each with its own warm engine (memory x N)."
    ),
    token: str = typer.Option(
        None,
        "--token",
        envvar="OCEANID_TOKEN",
        help="Bearer token every request must send (Authorization: Bearer TOKEN). "
        "Required off loopback. Default: $OCEANID_TOKEN.",
    ),
    read_only: bool = typer.Option(False, "--read-only", help="Refuse POST and DELETE /species."),
    max_request_mb: float = typer.Option(
        32.0, "--max-request-mb", min=0.001, help="Largest request body accepted (MB)."
    ),
    label_studio_url: str = typer.Option(
        None,
        "--label-studio-url",
        envvar="LABEL_STUDIO_URL",
        help="Label Studio's address, to fetch task images it stores "
        "(/label-studio backend). Default: $LABEL_STUDIO_URL.",
    ),
    label_studio_key: str = typer.Option(
        None,
        "--label-studio-key",
        envvar="LABEL_STUDIO_API_KEY",
        help="Label Studio API token for those images. Default: $LABEL_STUDIO_API_KEY.",
    ),
    label_studio_fallback: str = typer.Option(
        "Unknown",
        "--label-studio-fallback",
        help="Label predicted for unknown organisms and for species "
        "the project's labels lack (when the config has it).",
    ),
    label_studio_min_examples: int = typer.Option(
        5,
        "--label-studio-min-examples",
        min=1,
        help="Annotated crops of a species the model does not know before it is added (species add).",
    ),
) -> None:
    """Serve the HTTP API: POST /identify, /search, /species; DELETE /species/NAME; GET /species,
    /status, /health; Label Studio's ML backend under /label-studio; OpenAPI docs at /docs. Follows
    the catalog: an `index build` or a
    `species add` from another process is picked up without a restart. Stops on Ctrl-C / SIGTERM.

    Example: oceanid serve --home ~/reef --port 8700
    """
    import uvicorn

    if device not in ("cpu", "cuda", "auto"):
        raise fail(f"unknown device {device!r}", "use cpu, cuda or auto")
    if host not in LOOPBACK and not token:
        raise fail(f"binding {host} (not loopback) needs a token", "pass --token or set OCEANID_TOKEN")
    if not port_free(host, port):
        raise fail(f"port {port} on {host} is in use", "pick another with --port")
    from app.workspace import check_home, resolve_home

    resolved = check_home(resolve_home(home or (ctx.obj or {}).get("home")))  # a file: one line, not a server
    console.print(
        f"oceanid API: http://{host}:{port}/docs  (home {resolved}; Ctrl-C stops it)", markup=False, highlight=False
    )
    # The face is started, not imported (as `oceanid app` starts the explorer): uvicorn and each
    # of its workers build the app from the import string, reading the settings from the environment.
    os.environ.update(api_env(resolved, model, device, token, read_only, int(max_request_mb * 1024 * 1024)))
    os.environ.update(
        {
            "LABEL_STUDIO_URL": label_studio_url or "",
            "LABEL_STUDIO_API_KEY": label_studio_key or "",
            "OCEANID_LABEL_STUDIO_FALLBACK": label_studio_fallback,
            "OCEANID_LABEL_STUDIO_MIN_EXAMPLES": str(label_studio_min_examples),
        }
    )
    options = dict(factory=True, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
    if workers > 1:  # uvicorn's supervisor process starts the workers
        uvicorn.run("app.api:create_app_from_env", workers=workers, **options)
    else:
        _Server(uvicorn.Config("app.api:create_app_from_env", **options)).run()
