"""``oceanid identify`` and ``oceanid search``: what is it, and what looks like it."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from app.cli import options
from app.cli.common import (
    check_output_file,
    check_output_folder,
    cli_errors,
    console,
    err_console,
    expand,
    fail,
    fixed,
    print_json,
    workspace,
    write_csv,
)
from app.cli.tables import Column, print_parts, print_table
from index.errors import Interrupted

app = typer.Typer()

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
SEARCH_TABLE = (
    Column("crop", 6, number=True),
    Column("cosine", 5, number=True),
    Column("species", 7, wrap=True, min_width=12),
    Column("depth", 3, number=True),
    Column("date", 2),
    Column("lat, lon", 0),
    Column("split", 1),
    Column("source", 1, wrap=True, min_width=8),
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
SEARCH_COLUMNS = [
    "crop_id",
    "cosine",
    "species",
    "genus",
    "family",
    "depth_m",
    "date",
    "latitude",
    "longitude",
    "split",
    "source",
    "crop_file",
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
    score = f"{r.scorer} {fixed(r.unknown_score, 2)} {'<' if r.unknown else '≥'} {fixed(r.unknown_threshold, 2)}"
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


@app.command("identify")
@cli_errors
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(
        None,
        help="Image files of crops (one organism each) or folders of them; "
        "with --frames, whole frames (optional with --boxes).",
    ),
    k: int = options.k_option(3, "How many candidate species to list."),
    csv_path: Path = options.csv_option(
        "Write one row per image (with --frames: per organism) to this CSV file: "
        "the answer, calibrated probabilities and cosines in separate columns, "
        "source, box, detection score, model and index generation (checked "
        "before the work; written atomically)."
    ),
    decode: str = typer.Option(
        "probable",
        "--decode",
        help="How the answer's taxon is chosen: probable (the "
        "deepest rank whose summed probability passes the "
        "threshold) | distance (least expected taxonomic "
        "distance).",
    ),
    frames: bool = typer.Option(
        False,
        "--frames",
        help="The images are whole frames: find every organism with "
        "the detector, cut each box like a training crop and "
        "identify it (implied by --detector and --boxes).",
    ),
    detector: Path = typer.Option(
        None,
        "--detector",
        help="Detector id or model folder (default: the home's current detector; see `oceanid detect list`).",
    ),
    boxes: Path = typer.Option(
        None,
        "--boxes",
        help="COCO-format detections from another tool (a results list "
        "of {image_id, bbox [x,y,w,h], score}, or a document with "
        "images + annotations): identify each box. Without "
        "IMAGES, the frames are the files it names.",
    ),
    min_score: float = typer.Option(
        None,
        "--min-score",
        min=0.0,
        max=1.0,
        help="Drop boxes scored below this (default: 0.3 for the detector; every "
        "box of a --boxes file; unscored boxes are kept).",
    ),
    draw: Path = typer.Option(
        None, "--draw", help="Write each frame with its boxes and labels drawn into this folder (one PNG per frame)."
    ),
    coco: Path = typer.Option(
        None,
        "--coco",
        help="Write the identified boxes as COCO (category = species; "
        "info, images, categories, annotations with scores).",
    ),
    neighbours: int = typer.Option(
        3,
        "--neighbours",
        min=0,
        help="List this many nearest catalog crops behind "
        "each answer (id, cosine, species) in --csv "
        "and --json; 0 lists none.",
    ),
    save: bool = typer.Option(
        False,
        "--save",
        help="Add the organisms found to the catalog as predicted crops "
        "(origin=predicted, never trained on), embedded and indexed "
        "so `search --where origin=predicted` finds them.",
    ),
    depth: float = typer.Option(None, "--depth", help="With --save: the frames' depth in metres."),
    date: str = typer.Option(
        None, "--date", help="With --save: when the frames were taken (ISO: 2024-05-01 or 2024-05-01T10:30)."
    ),
    lat: float = typer.Option(None, "--lat", help="With --save: the frames' latitude (with --lon)."),
    lon: float = typer.Option(None, "--lon", help="With --save: the frames' longitude (with --lat)."),
    source_name: str = typer.Option(
        None,
        "--source-name",
        help="With --save: the saved frames' source (default predicted), for `--where source=NAME`.",
    ),
    metadata: Path = typer.Option(
        None,
        "--metadata",
        help="With --save: a CSV with one row per frame file (a "
        "file column; depth_m, date, latitude, longitude, "
        "source): its cells win over the options above.",
    ),
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Name the species in each crop, or 'unknown' when it matches no known species. With
    --frames, find every organism in whole frames first and name each one.

    Exits 1 when no image could be identified (the count of unreadable ones goes to stderr).
    Ctrl-C still writes (--csv, --coco, --draw, --save) what was done, says "interrupted at N
    of M" and exits 130.

    Example: oceanid identify new_dive/ --csv identified.csv

    Example: oceanid identify reef_frames/ --frames --draw drawn/ --coco found.json

    Example: oceanid identify dive7/ --frames --save --depth 320 --date 2024-05-01 --lat 36.7 --lon -122.1
    """
    check_output_file(csv_path, "--csv")
    described = [
        flag
        for flag, v in (
            ("--depth", depth),
            ("--date", date),
            ("--lat", lat),
            ("--lon", lon),
            ("--source-name", source_name),
            ("--metadata", metadata),
        )
        if v is not None
    ]
    if described and not save:
        raise fail(f"{', '.join(described)} describe the frames --save adds", "add --frames --save")
    if decode not in ("probable", "distance"):
        raise fail(f"unknown --decode {decode!r}", "use probable or distance")
    whole = frames or detector is not None or boxes is not None
    if not whole and (draw is not None or coco is not None or save or min_score is not None):
        raise fail("--draw, --coco, --save and --min-score work on whole frames", "add --frames")
    if boxes is not None and detector is not None:
        raise fail("give --detector or --boxes, not both")
    ws = workspace(ctx, device)  # a bad --home is its one-line error before anything else
    described = ws.save_metadata(depth, date, lat, lon, source_name, metadata) if save else None  # checked first
    files = expand(images or [])
    if not files and (boxes is None or images):
        raise fail("no image files found in the given paths")
    if whole:
        check_output_file(coco, "--coco")
        check_output_folder(draw, "--draw")
        return _identify_frames(
            ws,
            files,
            k,
            csv_path,
            decode,
            detector,
            boxes,
            min_score,
            draw,
            coco,
            save,
            model,
            as_json,
            neighbours,
            described,
        )
    try:
        results, stop = (
            ws.identify(
                files,
                k=k,
                model=model,
                names=short_names(files),
                progress=not as_json,
                decode=decode,
                neighbours=neighbours,
            ),
            None,
        )
    except Interrupted as interrupted:  # Ctrl-C: what was identified is still written and shown
        results, stop = interrupted.done, interrupted
    failed = [r for r in results if r.error]
    if csv_path is not None:
        write_csv(csv_path, IDENTIFY_COLUMNS, [identify_row(r) for r in results])
    if as_json:
        print_json(results)
    elif len(failed) < len(results):  # nothing identified: only the one error line below
        rows = [(clip_left(r.name), *answer_cells(r)) for r in results]
        print_table(console, IDENTIFY_TABLE, rows)
        print_parts(console, summary_line(results))
        if csv_path is not None:
            console.print(f"wrote {csv_path}", markup=False)
    if stop is not None:
        raise interrupted_at(stop)
    if failed and len(failed) == len(results):  # nothing identified: a failure, said in one error line
        first = unreadable(failed[0])
        raise fail(
            first if len(results) == 1 else f"{len(failed)} of {len(results)} images could not be read (first: {first})"
        )
    if failed:
        err_console.print(f"{len(failed)} of {len(results)} images could not be read", markup=False, highlight=False)


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


def interrupted_at(stop: Interrupted) -> typer.Exit:
    """The last line of a batch stopped by Ctrl-C (after what it did was written) and exit 130."""
    err_console.print(f"interrupted at {stop.finished} of {stop.total}", markup=False, highlight=False)
    return typer.Exit(130)


def _identify_frames(
    ws,
    files,
    k,
    csv_path,
    decode,
    detector,
    boxes,
    min_score,
    draw,
    coco,
    save,
    model,
    as_json,
    neighbours=0,
    described=None,
) -> None:
    try:
        result, stop = (
            ws.identify_frames(
                files,
                detector=detector,
                boxes=boxes,
                min_score=min_score,
                k=k,
                model=model,
                names=short_names(files) if files else None,
                progress=not as_json,
                decode=decode,
                neighbours=neighbours,
            ),
            None,
        )
    except Interrupted as interrupted:  # Ctrl-C: the frames done are written, drawn and saved
        result, stop = interrupted.done, interrupted
    for item, reason in result.skipped:
        err_console.print(f"skipped {item}: {reason}", markup=False, highlight=False, soft_wrap=True)
    for f in result.frames:
        for note in f.notes:
            err_console.print(f"{f.name}: {note}", markup=False, highlight=False, soft_wrap=True)
        if f.error:
            err_console.print(f"unreadable {f.error}", markup=False, highlight=False, soft_wrap=True)
    if csv_path is not None:
        write_csv(csv_path, IDENTIFY_COLUMNS, frame_rows(result))
    written = ws.draw_frames(result, draw) if draw is not None else []
    if coco is not None:
        ws.write_coco(result, coco, model=model)
    saved = ws.save_predicted(result, model=model, metadata=described) if save else None
    if as_json:
        print_json(result)
    else:
        rows = []
        for f in result.frames:
            name = clip_left(f.name, FRAME_WIDTH)
            if f.error:
                rows.append((name, "", "", "[red]unreadable[/red]", "", f.error))
            elif not f.organisms:
                rows.append((name, "", "", "no organism found", "", ""))
            for n, o in enumerate(f.organisms, start=1):
                answer, p, why = answer_cells(o)
                box = " ".join(f"{v:.0f}" for v in o.box)
                det = f"box score {fixed(o.detection_score, 2)}; " if o.detection_score is not None else ""
                rows.append((name if n == 1 else "", str(n), box, answer, p, det + why))
        print_table(console, FRAMES_TABLE, rows)
        organisms = result.organisms
        named = sum(1 for o in organisms if not o.unknown)
        bad = sum(1 for f in result.frames if f.error)
        print_parts(
            console,
            [
                f"{len(result.frames)} frames: {len(organisms)} organisms ({named} named, "
                f"{len(organisms) - named} unknown), {bad} unreadable;",
                f"boxes from {result.boxes_from}",
            ],
        )
        for path in (csv_path, coco):
            if path is not None:
                console.print(f"wrote {path}", markup=False)
        if draw is not None:
            console.print(f"drew {len(written)} frames into {draw}", markup=False)
        if saved is not None:
            console.print(
                f"saved {saved.crops_added} predicted crops ({saved.crops_existing} already there); "
                "find them with --where origin=predicted",
                markup=False,
            )
    if stop is not None:
        raise interrupted_at(stop)
    if result.frames and all(f.error for f in result.frames):
        raise typer.Exit(1)
    if not result.frames:
        raise fail("no frame to identify: the detections file names no frame that was found")


@app.command("search")
@cli_errors
def search(
    ctx: typer.Context,
    image: Path = typer.Argument(None, help="Query image (or use --crop)."),
    crop: int = typer.Option(None, "--crop", help="Query with a catalog crop id instead of an image."),
    k: int = options.k_option(10, "Number of neighbours."),
    where: str = typer.Option(
        None, "--where", help="Filter: species, genus, family, depth, date, lat, lon, split, source."
    ),
    csv_path: Path = options.csv_option(
        "Write one row per hit to this CSV file (checked before the work; written atomically)."
    ),
    model: str = options.MODEL,
    space: str = typer.Option(
        None,
        "--space",
        help="Vector space: tuned, general or fused (default: fused where the model has a general space, else tuned).",
    ),
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Find the crops most similar to an image or a catalog crop, optionally filtered.

    Filters: species="Chromis chrysura", depth=100..500, date>=2020-06, lat=-20..-10,
    split in (val, test), source=fathomnet; join clauses with 'and' / 'or'. A value that
    no crop has is an error that names it and suggests the nearest existing values.

    Example: oceanid search dive42.png --k 5 --where "depth=200..800 and date>=2021"
    """
    if (image is None) == (crop is None):
        raise fail("give either an IMAGE or --crop ID")
    check_output_file(csv_path, "--csv")
    hits = workspace(ctx, device).search(
        crop if crop is not None else image, k=k, where=where, model=model, space=space
    )
    if csv_path is not None:
        write_csv(
            csv_path,
            SEARCH_COLUMNS,
            [
                [
                    h.annotation_id,
                    fixed(h.score),
                    h.species,
                    h.genus or "",
                    h.family or "",
                    fixed(h.depth_m, 1),
                    h.timestamp.isoformat() if hasattr(h.timestamp, "isoformat") else "",
                    fixed(h.latitude, 5),
                    fixed(h.longitude, 5),
                    h.split or "",
                    h.source,
                    str(h.crop) if h.crop else "",
                ]
                for h in hits
            ],
        )
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("no crops match", markup=False)
        return
    rows = []
    for h in hits:
        place = f"{h.latitude:.2f}, {h.longitude:.2f}" if h.latitude is not None and h.longitude is not None else ""
        date = h.timestamp.date().isoformat() if hasattr(h.timestamp, "date") else ""
        depth = f"{h.depth_m:.0f}" if h.depth_m is not None else ""
        rows.append((str(h.annotation_id), fixed(h.score, 3), h.species, depth, date, place, h.split or "", h.source))
    print_table(console, SEARCH_TABLE, rows)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)
