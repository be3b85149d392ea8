"""How an identify answer reads on the command line: the table's cells and columns, the CSV's row,
the summary line (``oceanid identify``, with and without ``--frames``; :mod:`app.cli.query`)."""

from __future__ import annotations

import os
from pathlib import Path

from app.cli.common import fixed
from app.cli.tables import Column

NAME_WIDTH = 22  # characters of a crop's name shown in the table (the tail: it tells crops apart)


FRAME_WIDTH = 16  # characters of a frame's name in the whole-frame table (shown on its first organism's row)


#: The tables' columns: at 80 columns the text ("answer", "why", "species") wraps word by word and
#: the columns of lowest priority go first; numbers are never cut (``app.cli.tables``).
IDENTIFY_TABLE = (
    Column("crop", 3),
    Column("answer", 4, wrap=True, min_width=12),
    Column("p", 2, number=True),
    Column("why", 1, wrap=True, min_width=20),
)


FRAMES_TABLE = (
    Column("frame", 3),
    Column("#", 5, number=True),
    Column("box x y w h", 0),
    Column("answer", 4, wrap=True, min_width=12),
    Column("p", 2, number=True),
    Column("why", 1, wrap=True, min_width=20),
)


IDENTIFY_COLUMNS = [
    "image",
    "source",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "detection_score",
    "model",
    "generation",
    "species",
    "unknown",
    "closest_known",
    "probability_among_known",
    "cosine",
    "ood_scorer",
    "ood_score",
    "ood_threshold",
    "candidates_probability",
    "candidates_cosine",
    "taxon",
    "taxon_rank",
    "taxon_probability",
    "lineage",
    "neighbours",
    "warning",
    "error",
]


def short_names(files: list[Path]) -> list[str]:
    """Each file's path below the folder all of them share (its file name when there is one)."""
    if len(files) == 1:
        return [files[0].name]
    absolute = [str(f.absolute()) for f in files]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    return [os.path.relpath(a, root) for a in absolute]


def clip_left(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` cut to ``width`` characters from the left ("…e200/c101.png"): the end tells crops apart."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def candidates(pairs) -> str:
    return "; ".join(f"{name} {fixed(value)}" for name, value in pairs)


def identify_row(r) -> list:
    """One CSV row: the answer, its trace (source, box, model, generation) and every figure named."""
    x, y, w, h = r.box if r.box else ("", "", "", "")
    v = r.verdict
    return [
        r.name,
        r.source or "",
        x,
        y,
        w,
        h,
        fixed(r.detection_score),
        r.model or "",
        r.generation or "",
        r.species or "",
        "" if r.error else r.unknown,
        r.closest or "",
        fixed(r.probability),
        fixed(r.score),
        r.scorer or "",
        fixed(v.score if v else None),
        fixed(v.threshold if v else None),
        candidates(r.probabilities),
        candidates(r.top),
        *taxon_cells(r),
        neighbour_cell(r),
        r.warning or "",
        r.error or "",
    ]


def neighbour_cell(r) -> str:
    """ "1234 0.9871 Chromis viridis; ...": the nearest catalog crops (id, cosine, label), best first."""
    return "; ".join(f"{n.crop_id} {fixed(n.similarity)} {n.species or '?'}" for n in r.neighbours)


def taxon_cells(r) -> list:
    """(taxon, rank, probability, lineage) of the deepest confident taxon; blank without one."""
    t = r.taxon
    if t is None or t.name is None:
        return ["", "", "", ""]
    return [t.name, t.rank or "", fixed(t.probability), " > ".join(f"{k} {v}" for k, v in t.lineage.items())]


def taxon_note(r) -> str:
    """ "; new to oceanid; of phylum X (right 0.80 on held-out species)" for an unknown crop placed at
    a rank that held up on held-out species ("; new to oceanid" when none did), or the rank above
    species for a named one."""
    t = r.taxon
    if r.unknown:
        if t is None or t.name is None:
            return "; new to oceanid"
        return f"; new to oceanid; of {t.rank} {t.name} (right {fixed(t.probability, 2)} on held-out species)"
    if t is None or t.name is None or t.rank == "species":
        return ""
    return f"; at {t.rank} {t.name} {fixed(t.probability, 2)}"


def answer_cells(r) -> tuple[str, str, str]:
    """(answer, probability, detail) for the table: an unknown crop shows its closest known
    species as what it is, never as the answer's probability."""
    if r.error:
        return "[red]unreadable[/red]", "", r.error
    below = r.unknown_score is not None and r.unknown_score < r.unknown_threshold
    score = f"{r.scorer} {fixed(r.unknown_score, 2)} {'<' if below else '≥'} {fixed(r.unknown_threshold, 2)}"
    if r.accepted_as_added:
        score += f", accepted by {r.species}'s few-shot scorer"
    warn = f"[yellow]{r.warning}[/yellow]; " if r.warning else ""
    two = r.named_by not in (None, "", "tuned") or r.unknown_by not in (None, "", "tuned")  # two vector spaces
    if r.unknown:
        return (
            "[yellow]unknown[/yellow]",
            "",
            f"{warn}closest known: {r.closest}, {fixed(r.probability, 2)} among known species{taxon_note(r)}; "
            f"{score}" + (f" (unknown by the {r.unknown_by} space)" if two else ""),
        )
    rest = "; ".join(f"{s} {fixed(p, 2)}" for s, p in r.probabilities[1:3])
    return (
        r.species,
        fixed(r.probability, 2),
        (
            f"{warn}{score}{taxon_note(r)}"
            + (f"; next {rest}" if rest else "")
            + (f"; named in the {r.named_by} space" if two else "")
        ),
    )


def summary_line(results) -> list[str]:
    """The summary's parts: the counts, and "(model M, index G)" (a line breaks only between them)."""
    named = sum(1 for r in results if not r.error and not r.unknown)
    unknown = sum(1 for r in results if not r.error and r.unknown)
    bad = sum(1 for r in results if r.error)
    trace = next(((r.model, r.generation) for r in results if r.model), None)
    return [
        f"{len(results)} crops: {named} named, {unknown} unknown, {bad} unreadable",
        f"(model {trace[0]}, index {trace[1]})" if trace else "",
    ]


def unreadable(r) -> str:
    """``/abs/path/x.png: file not found``: where the file is and why, each said once (the
    error already starts with the file's name)."""
    reason = r.error.split(": ", 1)[1] if r.error.startswith(f"{Path(r.source or r.name).name}: ") else r.error
    return f"{r.source or r.name}: {reason}"


def frame_rows(result) -> list[list]:
    """CSV rows of a cascade: one per organism, one (with its error) per frame that could not be read."""
    from app.workspace import Identification

    rows = []
    for f in result.frames:
        if f.error:
            rows.append(identify_row(Identification.failed(f.name, f.error, source=f.source)))
        rows += [identify_row(o) for o in f.organisms]
    return rows
