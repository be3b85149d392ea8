"""The home-folder layout, written once: every path under a home is built here.

::

    <home>/catalog.duckdb        the catalog (source of truth)
    <home>/images/ crops/        source frames and cut crops (index.ingest.ingest, index.ingest.crops)
    <home>/models/<model-id>/    encoder folders (embedder.model)
    <home>/indexes/<model-id>/   index generations + CURRENT (index.vectors.generations)
    <home>/sources/              drawn or downloaded inputs (synthetic reef, FathomNet, added examples)
    <home>/reports/              evaluation reports
    <home>/.writer.lock          held (flock) by the one process publishing a generation

The home is ``--home`` if given, else ``$OCEANID_HOME``, else ``./data``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("data")
HOME_ENV = "OCEANID_HOME"


def resolve_home(home: Path | str | None = None) -> Path:
    """``home`` if given, else ``$OCEANID_HOME``, else ``./data`` (absolute, ``~`` expanded)."""
    if not home:
        home = os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(home).expanduser().absolute()


def check_home(root: Path) -> Path:
    """``root`` when it is, or can become, a folder. Raises InvalidInput when it or the
    nearest existing folder above it is a file (every step would fail there later, mid-way)."""
    from index.errors import InvalidInput

    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                what = "is a file" if path == root else f"lies under the file {path}"
                raise InvalidInput(
                    f"home {root} {what}, not a folder",
                    hint="give --home (or OCEANID_HOME) a folder; it is created when missing",
                )
            break
    return root


def default_model_id(backbone: str, loss: str, dim: int) -> str:
    """The model id ``oceanid train`` uses when ``--model`` is not given."""
    return f"{backbone}-{loss}-d{dim}"


def slug(name: str) -> str:
    """A name made safe for one path component (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "species"


@dataclass(frozen=True)
class Home:
    """The folders of one home. ``root`` is absolute."""

    root: Path

    @classmethod
    def at(cls, home: Path | str | None = None) -> Home:
        """The home chosen by ``home`` / ``$OCEANID_HOME`` / ``./data``.

        Raises InvalidInput when it (or a folder above it) is a file: nothing could be stored there.
        """
        return cls(check_home(resolve_home(home)))

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def writer_lock(self) -> Path:
        """The lock file every writer that publishes an index generation holds (app.workspace.writer)."""
        return self.root / ".writer.lock"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def indexes(self) -> Path:
        return self.root / "indexes"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def model(self, model_id: str) -> Path:
        """The folder of one encoder: ``models/<model-id>``."""
        return self.models / model_id

    def added_examples(self, species: str) -> Path:
        """Where the examples of a species added without retraining are kept."""
        return self.sources / "added" / slug(species)

    def resolve(self, relative: str | Path) -> Path:
        """A path the catalog stores (relative to the home) as an absolute path."""
        return self.root / relative
