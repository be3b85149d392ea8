"""Where and when a saved frame was taken: depth, date, position and source for what
``identify --frames --save`` adds to the catalog, so saved crops filter with ``--where`` like
ingested ones (``depth=100..500 and date>=2024 and source=dive-7``).

Given as options (one value for every frame of the run) and/or a sidecar CSV with one row per
frame file (a ``file`` column, matched to the frame by its name as given or its file name;
columns ``depth_m``, ``date``, ``latitude``, ``longitude``, ``source``, each optional, also
``depth`` / ``timestamp`` / ``lat`` / ``lon``). A sidecar cell wins over the option for its frame.
Everything is checked when read, before any frame is identified.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from index.errors import InvalidInput, SourceError
from index.ingest.ingest import check_source_name

DEFAULT_SOURCE = "predicted"  # the source of saved frames when none is given
FILE_COLUMNS = ("file", "file_name", "image", "frame", "name")
ALIASES = {
    "depth_m": ("depth_m", "depth"),
    "date": ("date", "timestamp", "datetime"),
    "latitude": ("latitude", "lat"),
    "longitude": ("longitude", "lon", "lng"),
    "source": ("source",),
}


@dataclass(frozen=True)
class FrameMetadata:
    """What is known about one frame (None: not given)."""

    depth_m: float | None = None
    timestamp: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        return out

    def over(self, base: FrameMetadata) -> FrameMetadata:
        """This metadata, its blanks filled from ``base``."""
        return replace(base, **{k: v for k, v in asdict(self).items() if v is not None})


@dataclass(frozen=True)
class SaveMetadata:
    """The metadata of a run's saved frames: the options' values and the sidecar's rows by file."""

    given: FrameMetadata = FrameMetadata()
    by_file: Mapping[str, FrameMetadata] = field(default_factory=dict)

    def of(self, name: str | None, source_path: str | None) -> FrameMetadata:
        """The metadata of the frame given as ``name`` (its name in the run) from ``source_path``."""
        for key in (name, Path(name).name if name else None, Path(source_path).name if source_path else None):
            if key and key in self.by_file:
                return self.by_file[key].over(self.given)
        return self.given

    def to_dict(self) -> dict[str, Any]:
        return {"given": self.given.to_dict(), "by_file": {k: v.to_dict() for k, v in self.by_file.items()}}


def _number(text: Any, what: str, low: float, high: float) -> float | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"{what} must be within {low:g}..{high:g}, not {text!r}")
    return value


def _date(text: Any, what: str = "date") -> datetime | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, datetime):
        return text
    try:
        return datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidInput(f"{what} must be an ISO date (2024-05-01, 2024-05-01T10:30), not {text!r}") from None


def frame_metadata(
    depth: Any = None,
    date: Any = None,
    latitude: Any = None,
    longitude: Any = None,
    source: str | None = None,
    where: str = "",
) -> FrameMetadata:
    """Checked metadata (``where`` names the row in messages). Raises InvalidInput: depth outside
    0..11000 m, latitude outside -90..90, longitude outside -180..180, a date that is not ISO, a
    source name :func:`index.ingest.ingest.check_source_name` refuses, or one of lat / lon alone."""
    lead = f"{where}: " if where else ""
    lat = _number(latitude, f"{lead}latitude", -90.0, 90.0)
    lon = _number(longitude, f"{lead}longitude", -180.0, 180.0)
    if (lat is None) != (lon is None):
        raise InvalidInput(f"{lead}a position needs both latitude and longitude")
    name = None if source is None or not str(source).strip() else str(source).strip()
    if name is not None:
        try:
            check_source_name(name)
        except InvalidInput as exc:
            raise InvalidInput(f"{lead}{exc}") from None
    return FrameMetadata(_number(depth, f"{lead}depth", 0.0, 11_000.0), _date(date, f"{lead}date"), lat, lon, name)


def read_sidecar(path: Path) -> dict[str, FrameMetadata]:
    """The rows of a sidecar CSV by file name. Raises SourceError (unreadable), InvalidInput (no
    file column, a bad cell: the row is named, a file listed twice)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read the metadata file {path}: {exc}") from None
    if not rows:
        return {}
    file_col = next((c for c in FILE_COLUMNS if c in header), None)
    if file_col is None:
        raise InvalidInput(f"{path}: no file column (one of {', '.join(FILE_COLUMNS)})")
    out: dict[str, FrameMetadata] = {}
    for n, raw in enumerate(rows, start=2):
        row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
        name = (row.get(file_col) or "").strip()
        if not name:
            continue
        if name in out:
            raise InvalidInput(f"{path} line {n}: {name} is listed twice")
        cell = {
            key: next((row[a] for a in aliases if row.get(a) not in (None, "")), None)
            for key, aliases in ALIASES.items()
        }
        out[name] = frame_metadata(
            cell["depth_m"], cell["date"], cell["latitude"], cell["longitude"], cell["source"], where=f"{path} line {n}"
        )
    return out


def save_metadata(
    depth: Any = None,
    date: Any = None,
    latitude: Any = None,
    longitude: Any = None,
    source: str | None = None,
    sidecar: Path | None = None,
) -> SaveMetadata:
    """The depth, date, position and source the saved frames get: the options (one value for every
    frame) and the ``sidecar`` CSV's rows, checked now, before any work. Raises InvalidInput / SourceError."""
    return SaveMetadata(
        frame_metadata(depth, date, latitude, longitude, source),
        read_sidecar(Path(sidecar)) if sidecar is not None else {},
    )
