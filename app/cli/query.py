"""``oceanid identify``: what is it (how an answer reads: :mod:`app.cli.answers`)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.answers import (
    FRAME_WIDTH,
    FRAMES_TABLE,
    IDENTIFY_COLUMNS,
    IDENTIFY_TABLE,
    answer_cells,
    clip_left,
    frame_rows,
    identify_row,
    short_names,
    summary_line,
    unreadable,
)
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
from app.cli.tables import print_parts, print_table
from index.errors import Interrupted

app = typer.Typer()


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
        help="Drop boxes scored below this (default: the detector's own, YOLOX-Nano 0.1, FCOS 0.3; every "
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
