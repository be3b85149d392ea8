"""Metadata for the frames `identify --frames --save` adds (issue 30 request): depth, date, position
and source, as options and from a sidecar CSV, so saved crops filter with --where like ingested
ones. f856aba had none of these options: saved crops had no depth, date or position."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from app.cli import app
from app.workspace.frame_metadata import FrameMetadata, SaveMetadata, frame_metadata, read_sidecar
from index.errors import InvalidInput
from tests.app.workspace.frames.test_cascade import detections, results_list, truth

runner = CliRunner()


def saved(ws, where: str) -> list:
    """The saved (predicted) crops the filter keeps, by a search from one of them (k large)."""
    return ws.search(next(ws.home.glob("images/**/*.png")), k=500, where=f"origin=predicted and {where}")


def test_options_describe_every_saved_frame_and_where_finds_them(tiny_ws, tmp_path):
    frames = [f for f, _ in truth(tiny_ws, 2)]
    path = detections(tmp_path / "det.json", results_list(frames))
    result = runner.invoke(
        app,
        [
            "--home",
            str(tiny_ws.home),
            "identify",
            *[str(f.path) for f in frames],
            "--boxes",
            str(path),
            "--save",
            "--depth",
            "320",
            "--date",
            "2024-05-01",
            "--lat",
            "36.7",
            "--lon",
            "-122.1",
            "--source-name",
            "dive-7",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    boxes = sum(len(f.boxes) for f in frames)
    hits = saved(tiny_ws, "source=dive-7 and depth=300..400 and date>=2024-05 and lat=36..37 and lon=-123..-122")
    assert len(hits) == boxes
    assert all(
        h.depth_m == 320
        and h.source == "dive-7"
        and h.timestamp.date().isoformat() == "2024-05-01"
        and math.isclose(h.latitude, 36.7)
        and math.isclose(h.longitude, -122.1)
        for h in hits
    )
    assert saved(tiny_ws, "depth=0..100") == []


def test_a_sidecar_gives_each_frame_its_own_and_wins_over_the_options(tiny_ws, tmp_path):
    frames = [f for f, _ in truth(tiny_ws, 2)]
    path = detections(tmp_path / "det.json", results_list(frames))
    sidecar = tmp_path / "frames.csv"
    sidecar.write_text(
        f"file,depth,date,lat,lon\n{frames[0].path.name},50,2023-01-02,10,20\n{frames[1].path.name},900,,,\n"
    )
    result = runner.invoke(
        app,
        [
            "--home",
            str(tiny_ws.home),
            "identify",
            *[str(f.path) for f in frames],
            "--boxes",
            str(path),
            "--save",
            "--metadata",
            str(sidecar),
            "--date",
            "2024-05-01",
        ],
    )
    assert result.exit_code == 0, result.output
    shallow, deep = saved(tiny_ws, "depth=0..100"), saved(tiny_ws, "depth=800..1000")
    assert len(shallow) == len(frames[0].boxes) and len(deep) == len(frames[1].boxes)
    assert {h.timestamp.date().isoformat() for h in shallow} == {"2023-01-02"}  # the sidecar's date
    assert {h.timestamp.date().isoformat() for h in deep} == {"2024-05-01"}  # the option fills its blank
    assert {h.source for h in shallow + deep} == {"predicted"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lat", "36.7"], "both latitude and longitude"),
        (["--lat", "95", "--lon", "0"], "latitude must be within -90..90"),
        (["--date", "yesterday"], "ISO date"),
        (["--source-name", "bad name!"], "source name"),
    ],
)
def test_bad_metadata_is_one_line_before_any_work(tiny_ws, tmp_path, args, message):
    frames = [f for f, _ in truth(tiny_ws, 1)]
    path = detections(tmp_path / "det.json", results_list(frames))
    result = runner.invoke(
        app, ["--home", str(tiny_ws.home), "identify", str(frames[0].path), "--boxes", str(path), "--save", *args]
    )
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # refused before identifying anything


def test_metadata_without_save_is_refused(tiny_home, tmp_path):
    crop = next((tiny_home / "crops").rglob("*.png"))
    result = runner.invoke(app, ["--home", str(tiny_home), "identify", str(crop), "--depth", "10"])
    assert result.exit_code == 1 and "--depth describe the frames --save adds" in result.stderr


def test_sidecar_rows_are_checked_and_named(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("file_name,latitude,longitude\na.png,1,2\nb.png,1,999\n")
    with pytest.raises(InvalidInput, match="line 3: longitude"):
        read_sidecar(path)
    path.write_text("depth\n3\n")
    with pytest.raises(InvalidInput, match="no file column"):
        read_sidecar(path)
    meta = SaveMetadata(FrameMetadata(depth_m=5.0), {"a.png": FrameMetadata(latitude=1.0, longitude=2.0)})
    assert meta.of("dive/a.png", "/x/a.png") == FrameMetadata(5.0, None, 1.0, 2.0)
    assert meta.of("b.png", "/x/b.png") == FrameMetadata(depth_m=5.0)
    json.dumps(meta.to_dict())


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_a_position_is_kept_only_within_range(lat, lon):
    ok = all(math.isfinite(v) for v in (lat, lon)) and -90 <= lat <= 90 and -180 <= lon <= 180
    if ok:
        assert frame_metadata(latitude=lat, longitude=lon) == FrameMetadata(latitude=lat, longitude=lon)
    else:
        with pytest.raises(InvalidInput):
            frame_metadata(latitude=lat, longitude=lon)
