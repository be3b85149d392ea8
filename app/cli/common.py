"""What every CLI command shares: the workspace, error mapping (one line, exit 1), output helpers."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer._click import exceptions as click_errors  # typer >= 0.2x vendors click here
from typer.core import TyperGroup

from index.errors import OceanidError, describe

if TYPE_CHECKING:
    from app.workspace import Workspace

#: what `pip install oceanid` leaves out and `oceanid[train]` brings (pyproject.toml)
TRAIN_STACK = frozenset(
    {
        "torch",
        "torchvision",
        "timm",
        "open_clip",
        "pytorch_metric_learning",
        "safetensors",
        "sklearn",
        "scipy",
        "matplotlib",
        "streamlit",
        "fathomnet",
        "requests",
        "umap",
        "yaml",
        "pycocotools",
        "onnx",
    }
)


class _Output(Console):
    """stdout: as wide as the text when piped (not a terminal, no ``$COLUMNS``), so piped output is
    the full plain text; a terminal's width (or ``$COLUMNS``) otherwise (``app.cli.tables``)."""

    @property
    def size(self):  # type: ignore[override]
        dims = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return dims._replace(width=PIPED_WIDTH)
        return dims

    @size.setter
    def size(self, new_size) -> None:
        self._width, self._height = new_size


PIPED_WIDTH = 100_000  # "no limit": what a piped line may take
console = _Output()
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
        except ModuleNotFoundError as exc:  # the serving install (no `oceanid[train]`) asked to train
            if debug() or (exc.name or "").split(".")[0] not in TRAIN_STACK:
                raise
            raise fail(
                f"this command needs {exc.name}, part of the training stack",
                "install it with `pip install 'oceanid[train]'`",
            ) from None
        except OSError as exc:  # a path the checks before the work did not foresee: still one line
            if debug():
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            raise fail(f"{exc.strerror or type(exc).__name__}{where}") from None
        except KeyboardInterrupt:
            err_console.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def check_output_file(path: Path | None, flag: str) -> None:
    """Refuse an output file that cannot be written, before any work: its folder is missing
    or is a file, or the path is a folder, FIFO, device node or socket (a symlink is followed:
    its target is written; ``index.files.output_target``). Raises the one-line error (exit 1)."""
    from index.errors import InvalidInput
    from index.files import output_target

    if path is None:
        return
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise fail(f"{flag} {path} is a folder", "give a file name")
    try:
        output_target(path, flag)
    except InvalidInput as exc:
        raise fail(describe(exc)) from None


def check_output_folder(path: Path | None, flag: str) -> None:
    """Refuse an output folder that cannot be made: it is a file, or lies under one."""
    if path is None:
        return
    for p in (Path(path).absolute(), *Path(path).absolute().parents):
        if p.exists():
            if not p.is_dir():
                raise fail(f"{flag} {path}: {p} is a file", "give a folder")
            if not os.access(p, os.W_OK):
                raise fail(f"{flag} {path}: {p} is not writable", "write elsewhere")
            return


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write a CSV atomically (a reader, or a crash, never sees half a file) to the file the
    user's path names (``index.files.write_output``: a symlink's target; never a FIFO or device)."""
    import csv
    import io

    from index.files import write_output

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_output(path, buffer.getvalue().encode("utf-8"), "--csv")


def fixed(value: float | None, digits: int = 4) -> str:
    """A number at fixed precision for tables and CSV; "" for None; never "-0.0000"."""
    if value is None:
        return ""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


ROOT_VALUE_OPTIONS = ("--home", "--threads")  # root options that take a value


def hoist_home(args: list[str]) -> list[str]:
    """``oceanid identify --home X ...`` -> ``oceanid --home X identify ...``: a ``--home`` given
    after the command (as ``serve --home`` and ``app --home`` take it) is the root's. Given both
    ways with different values: a usage error (``click`` exit code 2)."""
    start = 0
    while start < len(args) and args[start].startswith("-"):
        start += 2 if args[start] in ROOT_VALUE_OPTIONS else 1
    if start >= len(args):
        return args
    head, rest, found = list(args[: start + 1]), [], []
    tail = list(args[start + 1 :])
    while tail:
        token = tail.pop(0)
        if token == "--":
            rest += [token, *tail]
            break
        if token == "--home" and tail:
            found.append(tail.pop(0))
        elif token.startswith("--home="):
            found.append(token.split("=", 1)[1])
        else:
            rest.append(token)
    if not found:
        return args
    given = [head[i + 1] for i in range(start) if head[i] == "--home" and i + 1 < start] + [
        h.split("=", 1)[1] for h in head[:start] if h.startswith("--home=")
    ]
    if len(set(given + found)) > 1:
        raise click_errors.UsageError(f"--home given twice ({', '.join(dict.fromkeys(given + found))}); give it once")
    return ["--home", found[-1], *head, *rest] if not given else [*head, *rest]


class OneLineErrors(TyperGroup):
    """The root command group: usage errors (a bad option, a missing argument, ``--k 0``) are
    one line on stderr, ``error: ... — see `oceanid CMD --help```, exit code 2, like the
    library's errors (exit 1); click prints a usage block instead. No arguments still shows help."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            args = hoist_home(list(sys.argv[1:] if args is None else args))
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "oceanid"
            fail(" ".join(exc.format_message().split()), f"see `{where} --help`")
            sys.exit(exc.exit_code)
        except typer.Abort:
            err_console.print("aborted", markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        # the root callback sees only the group's name (`index`); the threads policy needs the verb too
        words = [a for a in (*getattr(ctx, "_protected_args", ()), *ctx.args) if not a.startswith("-")]
        ctx.meta["oceanid.command"] = tuple(words[:2])
        return super().invoke(ctx)


def workspace(ctx: typer.Context, device: str = "cpu") -> Workspace:
    """The Workspace chosen by the root ``--home`` option (or OCEANID_HOME, or ./data);
    ``device`` is where its queries run (auto | cpu | cuda)."""
    from app.workspace import Workspace  # here, not at the top: `oceanid --help` loads no numpy or DuckDB

    return Workspace(ctx.obj.get("home") if ctx.obj else None, device=device)


def print_json(data: Any) -> None:
    """Print a result as indented JSON on stdout: its ``to_dict()``, or a list of them."""
    if hasattr(data, "to_dict"):
        data = data.to_dict()
    elif isinstance(data, list):
        data = [d.to_dict() if hasattr(d, "to_dict") else d for d in data]
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


#: Libraries whose INFO lines are noise to a user: faiss' loader reports, at INFO, the
#: ``ModuleNotFoundError`` of every optional build (AVX2, AVX512) it tries before the one it loads.
QUIET_LOGGERS = ("faiss.loader",)


def setup_logging(verbose: bool) -> None:
    """One line per stage with ``--verbose``; everything with ``OCEANID_DEBUG`` (the
    :data:`QUIET_LOGGERS` only from warnings up, unless ``OCEANID_DEBUG``)."""
    logging.basicConfig(
        level=logging.DEBUG if debug() else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug() else logging.WARNING)


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the image files below them (sorted). A path that cannot
    be looked at or listed stays as given: reading it is then one row's error, not the batch's."""
    from index.imaging import is_image_name  # numpy and Pillow: when a command runs, not at --help

    out = []
    for path in paths:
        try:
            if path.is_dir():
                out += sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p))
                continue
        except OSError:
            pass
        out.append(path)
    return out
