"""Whole frames graded through the cascade (app.workspace.frames.grading) and `oceanid evaluate`'s section.

The grading is checked with oracle box finders on the tiny workspace: one that returns each
frame's ground-truth boxes (every organism found, and named exactly as its catalog crop is
identified: the cascade cuts a truth box like ingest cut it), one that shifts them past IoU
0.5 (nothing found). `oceanid evaluate` is then run on a home whose catalog lists a small
detector (the drawn-disc detector of tests/conftest.py, registered as the home's current one)
and on one with none (no section, the plain output unchanged).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace import EvaluationSummary, Workspace
from app.workspace.frames.grading import cascade_figures, held_out_frames
from index.catalog.frames import truth_frames
from index.catalog.taxa import tree
from index.sources.detections import DetectedBox

runner = CliRunner()


FINDER_S = 0.005  # the oracle finder sleeps this long per frame, so detect time is measured, not ~0


def truth_finder(frames, shift: float = 0.0, extra: bool = False):
    """A BoxFinder returning each frame's ground-truth boxes (score 0.9), moved right by
    ``shift`` of their width; with ``extra``, one more box scoring 0.1 (under min_score).
    It takes FINDER_S per frame, like a (very fast) detector."""
    by_path = {f.path.absolute(): f for f in frames}

    def find(images, keys):
        time.sleep(FINDER_S * len(keys))
        out = []
        for key in keys:
            boxes = [
                DetectedBox((float(x + shift * w), float(y), float(w), float(h)), 0.9)
                for x, y, w, h in by_path[key].boxes.tolist()
            ]
            out.append(boxes + ([DetectedBox((1.0, 1.0, 12.0, 12.0), 0.1)] if extra else []))
        return out

    return find


def crop_answers(ws: Workspace, frames):
    """(concept, answer) of each frame's truth boxes, identified from the crop files ingest cut (the oracle)."""
    with ws.catalog.read() as con:
        crops = {
            (i, round(x, 2), round(y, 2)): p
            for i, x, y, p in con.execute("SELECT image_id, x, y, crop_path FROM annotations").fetchall()
        }
    files = [
        ws.home / crops[(f.image_id, round(float(b[0]), 2), round(float(b[1]), 2))] for f in frames for b in f.boxes
    ]
    return list(zip([c for f in frames for c in f.concepts], ws.identify(files), strict=True))


@pytest.fixture(scope="module")
def graded(tiny_home):
    ws = Workspace(tiny_home)
    split, frames = held_out_frames(truth_frames(ws.catalog, ws.home))
    return ws, split, frames


def test_held_out_frames_are_the_test_frames(graded):
    ws, split, frames = graded
    assert split == "test" and len(frames) >= 3
    assert all("test" in f.splits or set(f.splits) == {"holdout"} for f in frames)
    chosen = {f.image_id for f in frames}
    others = [f for f in truth_frames(ws.catalog, ws.home) if f.image_id not in chosen and len(f.boxes)]
    assert others and not any("test" in f.splits for f in others)


def test_truth_boxes_are_all_found_and_named_as_their_crops_are(graded):
    """Every organism found; named / flagged counts equal those of the catalog crops' answers.
    A matcher pairing a truth box with the wrong organism, or counting held-out species as
    known, changes the counts; the 0.1 box is graded by mAP (ranked last: AP stays 1) but not identified."""
    ws, _, frames = graded
    engine = ws.engine()
    c = cascade_figures(engine, frames, truth_finder(frames, extra=True), ws.crop, 0.3, tree(ws.catalog))
    oracle = crop_answers(ws, frames)
    known = set(engine.prototypes.names)
    assert c.frames == len(frames) and c.organisms == len(oracle) == c.found == c.detections
    assert c.known_organisms == sum(concept in known for concept, _ in oracle) > 0
    assert c.held_out_organisms == c.organisms - c.known_organisms > 0
    assert c.named == sum(concept in known and a.species == concept for concept, a in oracle)
    assert c.flagged_unknown == sum(concept not in known and a.unknown for concept, a in oracle)
    assert c.found_and_named == pytest.approx(c.named / c.known_organisms, abs=1e-4)
    assert c.named_when_found == c.found_and_named  # every known organism was found
    assert c.found_and_flagged_unknown == pytest.approx(c.flagged_unknown / c.held_out_organisms, abs=1e-4)
    assert (c.map50, c.map, c.recall50) == (1.0, 1.0, 1.0)
    assert 1000 * FINDER_S <= c.detect_ms_per_frame <= c.cascade_ms_per_frame and c.skipped == ()


def test_boxes_shifted_past_iou_half_find_nothing(graded):
    ws, _, frames = graded
    c = cascade_figures(ws.engine(), frames, truth_finder(frames, shift=0.6), ws.crop, 0.3)
    assert c.organisms > 0 and c.detections > 0
    assert (c.found, c.named, c.flagged_unknown, c.map50, c.recall50) == (0, 0, 0, 0.0, 0.0)
    assert c.found_and_named == 0.0 and c.named_when_found is None  # nothing found: no share of the found


def test_an_unreadable_frame_is_skipped_with_its_reason(graded, tmp_path):
    ws, _, frames = graded
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    chosen = [dataclasses.replace(frames[0], path=broken), *frames[1:3]]
    c = cascade_figures(ws.engine(), chosen, truth_finder(chosen), ws.crop, 0.3, names=["broken.png", "a.png", "b.png"])
    assert c.frames == 2 and c.organisms == c.found == sum(len(f.boxes) for f in frames[1:3])
    assert [name for name, _ in c.skipped] == ["broken.png"] and c.skipped[0][1]


def register(ws: Workspace, folder, detector_id: str = "detector-drawn") -> None:
    from index.catalog.detectors import DetectorRecord, register_detector

    shutil.copytree(folder, ws.paths.models / detector_id)
    register_detector(ws.catalog, DetectorRecord(detector_id, "test", "fcos", 128, 24, 0, 6, 6, None, 1.0, None))
    ws.catalog.set_current_detector(detector_id)


def test_evaluate_reports_the_current_detector_on_the_test_frames(tiny_ws, drawn_detector):
    register(tiny_ws, drawn_detector)
    _, frames = held_out_frames(truth_frames(tiny_ws.catalog, tiny_ws.home))
    frames[0].path.write_bytes(b"broken")  # an unreadable frame: skipped, said, the rest graded
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "evaluate"])
    assert result.exit_code == 0, result.output
    s = tiny_ws.last_evaluation()
    d, c = s.detection, s.detection.cascade
    assert d.detector_id == "detector-drawn" and d.split == "test"
    rest = frames[1:]
    assert c.frames == len(rest) and c.organisms == sum(len(f.boxes) for f in rest)
    assert [name for name, _ in c.skipped] == [str(frames[0].path.relative_to(tiny_ws.home))]
    held = set(s.counts.held_out_species)
    assert c.held_out_organisms == sum(concept in held for f in rest for concept in f.concepts) > 0
    assert c.known_organisms + c.held_out_organisms == c.organisms
    assert c.named <= c.found_known <= c.known_organisms and c.flagged_unknown <= c.found_held_out
    assert c.found == c.found_known + c.found_held_out <= c.detections
    for share in (c.map50, c.map, c.recall50, c.found_and_named, c.found_and_flagged_unknown):
        assert 0.0 <= share <= 1.0
    assert c.map <= c.map50 and 0 < c.detect_ms_per_frame <= c.cascade_ms_per_frame
    own = tiny_ws.detect_evaluate()  # `oceanid detect evaluate`: the same frames, the same detector
    assert own.metrics.frames == c.frames
    assert c.map50 == pytest.approx(own.metrics.map50, abs=0.02)
    assert c.recall50 == pytest.approx(own.metrics.recall50, abs=0.02)
    line = next(x for x in result.stdout.splitlines() if x.startswith("detector "))
    assert line.startswith(f"detector detector-drawn on {c.frames} test frames: mAP@0.5 {c.map50:.3f}")
    assert f"found and named {c.found_and_named:.3f} ({c.named}/{c.known_organisms})" in line
    assert "cascade " in line and "ms/frame" in line
    assert "whole-frame figures skip" in result.stderr and frames[0].path.name in result.stderr
    report = tiny_ws.home / "reports" / "latest"
    saved = json.loads((report / "eval.json").read_text())
    assert saved["detection"]["cascade"]["organisms"] == c.organisms
    assert json.loads(json.dumps(EvaluationSummary.from_dict(saved).to_dict(), default=str)) == saved
    assert "## Whole frames: detector `detector-drawn`" in (report / "summary.md").read_text()


def test_a_home_without_a_detector_has_no_section(tiny_ws):
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "evaluate"])
    assert result.exit_code == 0, result.output
    out = result.stdout.split("report:")[0]  # the report path holds this test's name
    assert not any(words in out for words in ("detector", "mAP", "ms/frame")), out
    assert "whole-frame" not in result.stderr
    assert tiny_ws.last_evaluation().detection is None
    report = tiny_ws.home / "reports" / "latest"
    assert json.loads((report / "eval.json").read_text())["detection"] is None
    assert "Whole frames" not in (report / "summary.md").read_text()
