"""Typed errors raised by the oceanid library.

The library raises these and never prints or exits; the CLI maps each type to
one line that says what to do next (exit code 1).
"""

from __future__ import annotations


class OceanidError(Exception):
    """Base class of every error the library raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class CatalogBusy(OceanidError):
    """Another process holds the DuckDB catalog for writing."""

    hint = "another oceanid process is writing; wait for it and try again"


class HomeNotWritable(OceanidError):
    """The home (its catalog, a lock file, a report) cannot be written: read-only, no permission."""

    hint = "give a home you can write (--home / OCEANID_HOME), or fix its permissions"


class NotFound(OceanidError):
    """A named thing (model, species, crop, generation, file) does not exist."""


class InvalidInput(OceanidError):
    """User input (a box, an image, a JSON file, a filter, an option) is unusable."""


class BadImage(InvalidInput):
    """An image file is corrupt, truncated, not an image, or over the pixel limit."""


class FilterError(InvalidInput):
    """A metadata filter expression does not parse or names an unknown column."""


class IndexMismatch(OceanidError):
    """An index generation does not match its manifest, its model, or its file hash."""

    hint = "rebuild it with `oceanid index rebuild`"


class EmptyIndex(OceanidError):
    """A query needs vectors, prototypes or a model that do not exist yet."""

    hint = "run `oceanid demo`, or ingest, train, embed and `oceanid index build` first"


class SourceError(OceanidError):
    """A data source (FathomNet, COCO file, folder) could not be read at all."""


class ModelError(OceanidError):
    """A model folder, backbone name or weights file is missing or invalid."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, carrying what was finished before it (a KeyboardInterrupt still:
    whoever does not look for it stops as before). ``done``: the results of the first
    ``finished`` of ``total`` items, in input order (a step may wrap them, e.g. in a result)."""

    def __init__(self, done, finished: int, total: int) -> None:
        super().__init__(f"interrupted at {finished} of {total}")
        self.done, self.finished, self.total = done, finished, total


def describe(exc: BaseException) -> str:
    """An error as one line, with its hint when it has one: what both faces show.

    The first line of the message (or the type name when it has none), then
    `` — hint``. Used by the CLI (``error: ...`` on stderr) and the explorer (``st.error``).
    """
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = getattr(exc, "hint", "")
    return f"{text} — {hint}" if hint else text
