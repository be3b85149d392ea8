"""The notes of an ingest (duplicate frames, tiny images, renamed folders), kept in the home.

Notes are made when images are first added; a re-run adds nothing and so has none, which made
"31 notes: see them with --show-notes" show nothing on the re-run it asked for. Each run that
has notes writes them to ``reports/ingest-notes/<source>.tsv`` (item, note); a run without new
notes carries the stored ones as ``earlier_notes``, and both runs name the file.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from index.files import write_text_atomic
from index.home import Home
from index.records import IngestReport


def notes_path(home: Home, source: str) -> Path:
    """Where the notes of ``source`` are kept (its name made safe for a file name)."""
    return home.reports / "ingest-notes" / (re.sub(r"[^A-Za-z0-9._-]+", "_", source) + ".tsv")


def keep_notes(home: Home, report: IngestReport) -> IngestReport:
    """Store the report's notes (when it has any), else read the stored ones into
    ``report.earlier_notes``; ``report.notes_file`` names the file either way (None without one)."""
    path = notes_path(home, report.source)
    if report.notes:
        buffer = io.StringIO(newline="")
        csv.writer(buffer, delimiter="\t").writerows(report.notes)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, buffer.getvalue())
    elif path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            report.earlier_notes = [(row[0], row[1]) for row in csv.reader(fh, delimiter="\t") if len(row) >= 2]
    report.notes_file = str(path) if path.is_file() else None
    return report
