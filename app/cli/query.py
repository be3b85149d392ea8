"""``oceanid identify`` and ``oceanid search``: what is it, and what looks like it."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from app.cli import options
from app.cli.common import (check_output_file, check_output_folder, cli_errors, console, err_console, expand, fail, fixed, print_json,
                            workspace, write_csv)

app = typer.Typer()

NAME_WIDTH = 22  # characters of a crop's name shown in the table (the tail: it tells crops apart)
WIDE = 100  # terminal columns from which search shows lat, lon (always in --csv and --json)
ANSWER_WIDTH = 26  # characters of the answer (most binomials fit)
FRAME_WIDTH = 16  # characters of a frame's name in the whole-frame table (shown on its first organism's row)
IDENTIFY_COLUMNS = ["image", "source", "box_x", "box_y", "box_w", "box_h", "detection_score", "model", "generation", "species",
                    "unknown", "closest_known", "probability_among_known", "cosine", "ood_scorer", "ood_score",
                    "ood_threshold", "candidates_probability", "candidates_cosine", "taxon", "taxon_rank",
                    "taxon_probability", "lineage", "warning", "error"]
SEARCH_COLUMNS = ["crop_id", "cosine", "species", "genus", "family", "depth_m", "date", "latitude", "longitude",
                  "split", "source", "crop_file"]


def short_names(files: list[Path]) -> list[str]:
    """Each file's path below the folder all of them share (its file name when there is one)."""
    if len(files) == 1:
        return [files[0].name]
    absolute = [str(f.absolute()) for f in files]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    return [os.path.relpath(a, root) for a in absolute]


def clip_left(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` cut to ``width`` characters from the left ("…e200/c101.png"): the end tells crops apart."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def candidates(pairs) -> str:
    return "; ".join(f"{name} {fixed(value)}" for name, value in pairs)


def identify_row(r) -> list:
    """One CSV row: the answer, its trace (source, box, model, generation) and every figure named."""
    x, y, w, h = r.box if r.box else ("", "", "", "")
    v = r.verdict
    return [r.name, r.source or "", x, y, w, h, fixed(r.detection_score), r.model or "", r.generation or "", r.species or "",
            "" if r.error else r.unknown, r.closest or "", fixed(r.probability), fixed(r.score), r.scorer or "",
            fixed(v.score if v else None), fixed(v.threshold if v else None), candidates(r.probabilities),
            candidates(r.top), *taxon_cells(r), r.warning or "", r.error or ""]


def taxon_cells(r) -> list:
    """(taxon, rank, probability, lineage) of the deepest confident taxon; blank without one."""
    t = r.taxon
    if t is None or t.name is None:
        return ["", "", "", ""]
    return [t.name, t.rank or "", fixed(t.probability), " > ".join(f"{k} {v}" for k, v in t.lineage.items())]


def taxon_note(r) -> str:
    """"; likely genus X 0.93" for an unknown crop, or the rank above species for a named one."""
    t = r.taxon
    if t is None or t.name is None or (t.rank == "species" and not r.unknown):
        return ""
    lead = "new to oceanid; likely" if r.unknown else "at"
    return f"; {lead} {t.rank} {t.name} {fixed(t.probability, 2)}"


def answer_cells(r) -> tuple[str, str, str]:
    """(answer, probability, detail) for the table: an unknown crop shows its closest known
    species as what it is, never as the answer's probability."""
    if r.error:
        return "[red]unreadable[/red]", "", r.error
    score = f"{r.scorer} {fixed(r.unknown_score, 2)} {'<' if r.unknown else '≥'} {fixed(r.unknown_threshold, 2)}"
    warn = f"[yellow]{r.warning}[/yellow]; " if r.warning else ""
    if r.unknown:
        return ("[yellow]unknown[/yellow]", "",
                f"{warn}closest known: {r.closest}, {fixed(r.probability, 2)} among known species{taxon_note(r)}; "
                f"{score}")
    rest = "; ".join(f"{s} {fixed(p, 2)}" for s, p in r.probabilities[1:3])
    return r.species, fixed(r.probability, 2), f"{warn}{score}{taxon_note(r)}" + (f"; next {rest}" if rest else "")


def fitted_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], width: int, flex: int = -1,
                 caps: dict[int, int] | None = None) -> Table:
    """One line per row within ``width`` columns: every column as wide as its longest cell
    (at most ``caps[i]``), but column ``flex``, which gets the rest and is cut with "…"."""
    from rich.text import Text

    widths = [max([len(h)] + [Text.from_markup(row[i]).cell_len for row in rows]) for i, h in enumerate(headers)]
    for i, cap in (caps or {}).items():
        widths[i] = min(widths[i], cap)
    flex = flex % len(headers)
    gaps = 3 * (len(headers) - 1)  # padding, divider, padding between columns (box SIMPLE_HEAD, no edges)
    widths[flex] = max(8, min(widths[flex], width - sum(widths) + widths[flex] - gaps)) if flex != len(headers) - 1 \
        else max(8, width - sum(widths[:-1]) - gaps)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header, w in zip(headers, widths):
        table.add_column(header, width=w, no_wrap=True, overflow="ellipsis")
    return table


def summary_line(results) -> str:
    named = sum(1 for r in results if not r.error and not r.unknown)
    unknown = sum(1 for r in results if not r.error and r.unknown)
    bad = sum(1 for r in results if r.error)
    trace = next(((r.model, r.generation) for r in results if r.model), None)
    return (f"{len(results)} crops: {named} named, {unknown} unknown, {bad} unreadable"
            + (f" (model {trace[0]}, index {trace[1]})" if trace else ""))


@app.command("identify")
@cli_errors
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(None, help="Image files of crops (one organism each) or folders of them; "
                                                   "with --frames, whole frames (optional with --boxes)."),
    k: int = options.k_option(3, "How many candidate species to list."),
    csv_path: Path = options.csv_option("Write one row per image (with --frames: per organism) to this CSV file: "
                                        "the answer, calibrated probabilities and cosines in separate columns, "
                                        "source, box, detection score, model and index generation (checked "
                                        "before the work; written atomically)."),
    decode: str = typer.Option("probable", "--decode", help="How the answer's taxon is chosen: probable (the "
                                                             "deepest rank whose summed probability passes the "
                                                             "threshold) | distance (least expected taxonomic "
                                                             "distance)."),
    frames: bool = typer.Option(False, "--frames", help="The images are whole frames: find every organism with "
                                                        "the detector, cut each box like a training crop and "
                                                        "identify it (implied by --detector and --boxes)."),
    detector: Path = typer.Option(None, "--detector", help="Detector id or model folder (default: the home's "
                                                           "current detector; see `oceanid detect list`)."),
    boxes: Path = typer.Option(None, "--boxes", help="COCO-format detections from another tool (a results list "
                                                     "of {image_id, bbox [x,y,w,h], score}, or a document with "
                                                     "images + annotations): identify each box. Without "
                                                     "IMAGES, the frames are the files it names."),
    min_score: float = typer.Option(None, "--min-score", min=0.0, max=1.0,
                                    help="Drop boxes scored below this (default: 0.3 for the detector; every "
                                         "box of a --boxes file; unscored boxes are kept)."),
    draw: Path = typer.Option(None, "--draw", help="Write each frame with its boxes and labels drawn into this "
                                                   "folder (one PNG per frame)."),
    coco: Path = typer.Option(None, "--coco", help="Write the identified boxes as COCO (category = species; "
                                                   "info, images, categories, annotations with scores)."),
    save: bool = typer.Option(False, "--save", help="Add the organisms found to the catalog as predicted crops "
                                                    "(origin=predicted, never trained on), embedded and indexed "
                                                    "so `search --where origin=predicted` finds them."),
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Name the species in each crop, or 'unknown' when it matches no known species. With
    --frames, find every organism in whole frames first and name each one.

    Exits 1 when no image could be identified (the count of unreadable ones goes to stderr).

    Example: oceanid identify new_dive/ --csv identified.csv

    Example: oceanid identify reef_frames/ --frames --draw drawn/ --coco found.json
    """
    check_output_file(csv_path, "--csv")
    if decode not in ("probable", "distance"):
        raise fail(f"unknown --decode {decode!r}", "use probable or distance")
    whole = frames or detector is not None or boxes is not None
    if not whole and (draw is not None or coco is not None or save or min_score is not None):
        raise fail("--draw, --coco, --save and --min-score work on whole frames", "add --frames")
    if boxes is not None and detector is not None:
        raise fail("give --detector or --boxes, not both")
    ws = workspace(ctx, device)  # a bad --home is its one-line error before anything else
    files = expand(images or [])
    if not files and (boxes is None or images):
        raise fail("no image files found in the given paths")
    if whole:
        check_output_file(coco, "--coco")
        check_output_folder(draw, "--draw")
        return _identify_frames(ws, files, k, csv_path, decode, detector, boxes, min_score, draw,
                                coco, save, model, as_json)
    results = ws.identify(files, k=k, model=model, names=short_names(files),
                                              progress=not as_json, decode=decode)
    if csv_path is not None:
        write_csv(csv_path, IDENTIFY_COLUMNS, [identify_row(r) for r in results])
    if as_json:
        print_json(results)
    else:
        rows = [(clip_left(r.name), *answer_cells(r)) for r in results]
        table = fitted_table(("crop", "answer", "p", "why"), rows, console.width, caps={1: ANSWER_WIDTH})
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(summary_line(results), markup=False, highlight=False)
        if csv_path is not None:
            console.print(f"wrote {csv_path}", markup=False)
    failed = [r for r in results if r.error]
    if failed and len(failed) == len(results):  # nothing identified: a failure, said in one error line
        first = failed[0]
        raise fail(f"{len(failed)} of {len(results)} images could not be read "
                   f"(first: {first.source or first.name}: {first.error})")
    if failed:
        err_console.print(f"{len(failed)} of {len(results)} images could not be read", markup=False, highlight=False)


def frame_rows(result) -> list[list]:
    """CSV rows of a cascade: one per organism, one (with its error) per frame that could not be read."""
    from app.workspace import Identification

    rows = []
    for f in result.frames:
        if f.error:
            rows.append(identify_row(Identification.failed(f.name, f.error, source=f.source)))
        rows += [identify_row(o) for o in f.organisms]
    return rows


def _identify_frames(ws, files, k, csv_path, decode, detector, boxes, min_score, draw, coco, save, model,
                     as_json) -> None:
    result = ws.identify_frames(files, detector=detector, boxes=boxes, min_score=min_score, k=k, model=model,
                                names=short_names(files) if files else None, progress=not as_json, decode=decode)
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
    saved = ws.save_predicted(result, model=model) if save else None
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
        headers = ("frame", "#", "box x y w h", "answer", "p", "why")
        table = fitted_table(headers, rows, console.width, caps={0: FRAME_WIDTH, 3: ANSWER_WIDTH - 2})
        for row in rows:
            table.add_row(*row)
        console.print(table)
        organisms = result.organisms
        named = sum(1 for o in organisms if not o.unknown)
        bad = sum(1 for f in result.frames if f.error)
        console.print(f"{len(result.frames)} frames: {len(organisms)} organisms ({named} named, "
                      f"{len(organisms) - named} unknown), {bad} unreadable; boxes from {result.boxes_from}",
                      markup=False, highlight=False, soft_wrap=True)
        for what, path in (("--csv", csv_path), ("--coco", coco)):
            if path is not None:
                console.print(f"wrote {path}", markup=False)
        if draw is not None:
            console.print(f"drew {len(written)} frames into {draw}", markup=False)
        if saved is not None:
            console.print(f"saved {saved.crops_added} predicted crops ({saved.crops_existing} already there); "
                          "find them with --where origin=predicted", markup=False)
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
    where: str = typer.Option(None, "--where", help="Filter: species, genus, family, depth, date, lat, lon, split, source."),
    csv_path: Path = options.csv_option("Write one row per hit to this CSV file (checked before the work; "
                                        "written atomically)."),
    model: str = options.MODEL,
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
    hits = workspace(ctx, device).search(crop if crop is not None else image, k=k, where=where, model=model)
    if csv_path is not None:
        write_csv(csv_path, SEARCH_COLUMNS, [
            [h.annotation_id, fixed(h.score), h.species, h.genus or "", h.family or "", fixed(h.depth_m, 1),
             h.timestamp.isoformat() if hasattr(h.timestamp, "isoformat") else "", fixed(h.latitude, 5),
             fixed(h.longitude, 5), h.split or "", h.source, str(h.crop) if h.crop else ""] for h in hits])
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("no crops match", markup=False)
        return
    wide = console.width >= WIDE  # room for the position
    rows = []
    for h in hits:
        place = f"{h.latitude:.2f}, {h.longitude:.2f}" if h.latitude is not None and h.longitude is not None else ""
        date = h.timestamp.date().isoformat() if hasattr(h.timestamp, "date") else ""
        depth = f"{h.depth_m:.0f}" if h.depth_m is not None else ""
        rows.append((str(h.annotation_id), fixed(h.score, 3), h.species, depth, date, *((place,) if wide else ()),
                     h.split or "", h.source))
    headers = ("crop", "cosine", "species", "depth", "date", *(("lat, lon",) if wide else ()), "split", "source")
    table = fitted_table(headers, rows, console.width, flex=2, caps={len(headers) - 1: 16})
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)
