"""The explorer as Streamlit's AppTest sees it, on a tiny real workspace.

The workspace is the shared tiny one of tests/conftest.py (built once per
session with the real ``Workspace`` methods); tests that change it work on a copy.
"""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.workspace import Workspace  # noqa: E402

MAIN = Path(__file__).resolve().parents[3] / "app" / "explorer" / "main.py"
TIMEOUT = 60  # seconds per script run; the first one imports torch


@pytest.fixture
def explorer_home(tiny_home: Path) -> Path:
    """The shared tiny workspace (tests/conftest.py), read-only."""
    return tiny_home


@pytest.fixture
def home_copy(tiny_ws) -> Path:
    """A private copy of the tiny workspace, for tests that add species."""
    return tiny_ws.home


def crops_of(home: Path, split: str) -> list[tuple[int, str, Path]]:
    """(annotation id, species, crop file) of one split, straight from the catalog (the oracle)."""
    with Workspace(home).catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id, concept, crop_path FROM annotations WHERE split = ? ORDER BY annotation_id", [split]
        ).fetchall()
    return [(i, c, home / p) for i, c, p in rows]


def start(home: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    """The explorer on ``home``, opened at ``page`` (chosen in the sidebar radio)."""
    monkeypatch.setenv("OCEANID_HOME", str(home))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    if page is not None:
        at.session_state["page"] = page
    return at.run()


def ok(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (the pixel limit refuses it before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


# -- every page -------------------------------------------------------------------------


def test_empty_workspace_says_run_demo(tmp_path, monkeypatch):
    at = start(tmp_path / "nothing-here", monkeypatch)
    assert not at.exception
    assert "oceanid demo" in texts(at.info)


@pytest.mark.parametrize("page", ["Identify", "Species", "Embedding map", "Add species"])
def test_a_model_without_an_index_says_build_one(page, home_copy, monkeypatch):
    shutil.rmtree(home_copy / "indexes")
    at = start(home_copy, monkeypatch, page)
    ok(at)
    assert len(at.warning) == 1 and "oceanid index build" in at.warning[0].value


@pytest.mark.parametrize("page", ["Identify", "Species", "Embedding map", "Evaluation", "Add species", "Data"])
def test_every_page_renders(page, explorer_home, monkeypatch):
    at = start(explorer_home, monkeypatch, page)
    ok(at)
    assert at.header[0].value == ("Add a species" if page == "Add species" else page)


def test_identify_page_offers_upload_and_filters(explorer_home, monkeypatch):
    at = start(explorer_home, monkeypatch, "Identify")
    ok(at)
    assert len(at.get("file_uploader")) == 1
    assert {w.label for w in at.sidebar.multiselect} >= {"Species", "Split", "Source"}


def test_data_page_matches_the_survey(explorer_home, monkeypatch):
    survey = Workspace(explorer_home).stats()
    at = start(explorer_home, monkeypatch, "Data")
    ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"images": f"{survey.images:,}", "crops": f"{survey.crops:,}", "species": f"{survey.species:,}"}


def test_species_page_lists_every_species(explorer_home, monkeypatch):
    at = start(explorer_home, monkeypatch, "Species")
    ok(at)
    table = at.dataframe[0].value
    assert set(table["species"]) == set(Workspace(explorer_home).stats().per_species)
    held_out = {c for _, c, _ in crops_of(explorer_home, "holdout")}
    assert set(table.loc[table["status"] == "holdout", "species"]) == held_out
    choice = sorted(table["species"])[-1]
    at.selectbox(key="species_pick").set_value(choice).run()
    ok(at)
    assert at.subheader[0].value == choice


def test_map_page_plots_every_embedded_crop_with_a_hover_image(explorer_home, monkeypatch):
    import pyarrow as pa

    at = start(explorer_home, monkeypatch, "Embedding map")
    ok(at)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    table = pa.ipc.open_stream(charts[0].proto.datasets[0].data.data).read_all().to_pandas()
    with Workspace(explorer_home).catalog.read() as con:
        embedded = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert len(table) == embedded
    assert set(table["status"]) == {"known", "holdout"}
    assert table["image"].str.startswith("data:image/jpeg;base64,").all()


# -- identify --------------------------------------------------------------------------


def test_identify_a_catalog_crop_shows_what_the_workspace_says(explorer_home, monkeypatch):
    annotation_id, _, crop = crops_of(explorer_home, "test")[0]
    expected = Workspace(explorer_home).identify([crop])[0]
    at = start(explorer_home, monkeypatch, "Identify")
    at.radio(key="identify_mode").set_value("Pick a crop from the catalog").run()
    at.selectbox(key="identify_crop").set_value(annotation_id).run()
    ok(at)
    assert at.subheader[0].value == ("Unknown" if expected.unknown else expected.species)
    ood = at.dataframe[1].value
    assert set(ood["scorer"]) == set(expected.ood)
    assert not re.search(rf"#{annotation_id}\b", texts(at.markdown))  # not its own neighbour
    assert len([m for m in at.markdown if re.search(r"#\d+$", m.value)]) == 8  # k = 8 neighbours


def test_identify_an_upload(explorer_home, monkeypatch):
    _, species, crop = crops_of(explorer_home, "train")[0]
    at = start(explorer_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.run()
    ok(at)
    expected = Workspace(explorer_home).identify([crop])[0]
    assert at.subheader[0].value == ("Unknown" if expected.unknown else expected.species)
    # the calibrated probability and the unknown score against its threshold, never confused
    assert at.metric[0].label == f"probability it is {expected.top[0][0]} (calibrated)"
    assert at.metric[0].value == f"{expected.probability:.0%}"
    assert at.metric[1].label.startswith(f"unknown score ({expected.scorer}) vs threshold")
    assert f"{expected.unknown_threshold:.3f}" in at.metric[1].value


def test_gallery_filter_restricts_the_neighbours(explorer_home, monkeypatch):
    _, species, crop = crops_of(explorer_home, "train")[0]
    other = sorted({c for _, c, _ in crops_of(explorer_home, "train")} - {species})[0]
    at = start(explorer_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.sidebar.multiselect(key="filter_species").set_value([other]).run()
    ok(at)
    captions = [m.value for m in at.markdown if re.search(r"#\d+$", m.value)]
    assert captions and all(c.startswith(f"**{other}**") for c in captions)


def test_gallery_date_range_filter(explorer_home, monkeypatch):
    from datetime import date

    _, _, crop = crops_of(explorer_home, "train")[0]
    at = start(explorer_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.sidebar.date_input(key="filter_date").set_value((date(2021, 1, 1), date(2021, 12, 31))).run()
    ok(at)
    assert "date=2021-01-01..2021-12-31" in texts(at.sidebar.caption)
    with Workspace(explorer_home).catalog.read() as con:
        in_2021 = con.execute(
            'SELECT count(*) FROM annotations JOIN images USING (image_id) WHERE year("timestamp") = 2021'
        ).fetchone()[0]
    dates = re.findall(r"· (\d{4})-\d\d-\d\d", texts(at.markdown))
    assert 0 < len(dates) == min(8, in_2021) and set(dates) == {"2021"}


@pytest.mark.parametrize(
    "data, words",
    [
        (b"this is not an image", "not an image"),
        (b"", "empty"),
        ("truncated", "truncated"),
        (png_header_only(20_000, 10_000), "pixel"),
    ],
    ids=["not-an-image", "empty", "truncated", "over-the-pixel-limit"],
)
def test_bad_upload_is_a_message_not_a_traceback(data, words, explorer_home, monkeypatch):
    if data == "truncated":
        crop = crops_of(explorer_home, "train")[0][2].read_bytes()
        data = crop[: len(crop) // 2]
    at = start(explorer_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("bad.png", data, "image/png"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and words in at.error[0].value


def test_bad_filter_is_a_message(explorer_home, monkeypatch):
    _, _, crop = crops_of(explorer_home, "train")[0]
    at = start(explorer_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.sidebar.text_input(key="filter_extra").set_value("colour = blue").run()
    assert not at.exception
    assert len(at.error) == 1 and "allowed columns" in at.error[0].value


def held_out_examples(home: Path, n: int = 3) -> list[Path]:
    """``n`` crops of ONE held-out species (the fixture holds out two)."""
    held = crops_of(home, "holdout")
    return [c for _, s, c in held if s == held[0][1]][:n]


def test_a_change_from_the_cli_is_picked_up_without_restart(home_copy, monkeypatch):
    examples = held_out_examples(home_copy)
    at = start(home_copy, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", examples[0].read_bytes(), "image/png"))
    at.run()
    ok(at)
    assert "gen-0001" in texts(at.sidebar.caption)
    assert "Cli addita" not in set(at.dataframe[0].value["species"])
    # another process (the CLI) adds a species: a new index generation and new prototypes
    Workspace(home_copy).species_add("Cli addita", examples)
    at.run()
    ok(at)
    assert "gen-0002" in texts(at.sidebar.caption)
    assert at.dataframe[0].value["species"].iloc[0] == "Cli addita"


# -- add species -----------------------------------------------------------------------


def test_add_a_species_then_identify_it(home_copy, monkeypatch):
    examples = held_out_examples(home_copy)
    name = "Novaspecies explorata"
    at = start(home_copy, monkeypatch, "Add species")
    at.text_input[0].set_value(name)
    at.get("file_uploader")[0].set_value([(p.name, p.read_bytes(), "image/png") for p in examples])
    at.button[0].click().run()
    ok(at)
    assert name in texts(at.success)
    at.sidebar.radio(key="page").set_value("Identify").run()
    at.get("file_uploader")[0].set_value(("new.png", examples[0].read_bytes(), "image/png"))
    at.run()
    ok(at)
    assert at.dataframe[0].value["species"].iloc[0] == name
    assert at.subheader[0].value == name


def test_adding_an_existing_species_is_a_message(home_copy, monkeypatch):
    _, species, crop = crops_of(home_copy, "train")[0]
    at = start(home_copy, monkeypatch, "Add species")
    at.text_input[0].set_value(species)
    at.get("file_uploader")[0].set_value([("a.png", crop.read_bytes(), "image/png")])
    at.button[0].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "already exists" in at.error[0].value


# -- `oceanid app` ----------------------------------------------------------------------


def _cli() -> typer.Typer:
    from app.cli.explorer import app_command

    cli = typer.Typer()
    cli.command()(app_command)
    return cli


def test_app_help_has_an_example():
    result = CliRunner().invoke(_cli(), ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_app_runs_streamlit_on_localhost(tmp_path, monkeypatch):
    from app.cli import explorer as cli_explorer

    seen = {}
    monkeypatch.setattr(cli_explorer, "serve", lambda cmd, env: seen.update(cmd=cmd, env=env) or 0)
    result = CliRunner().invoke(_cli(), ["--port", "8765", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]) == MAIN
    pairs = dict(zip(cmd[5::2], cmd[6::2], strict=False))
    assert pairs["--server.address"] == "127.0.0.1" and pairs["--server.port"] == "8765"
    assert pairs["--server.headless"] == "true"
    assert seen["env"]["OCEANID_HOME"] == str(tmp_path)


def test_app_refuses_a_busy_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(_cli(), ["--port", str(port), "--home", str(tmp_path)])
    assert result.exit_code == 1 and "in use" in result.output


def test_an_upload_is_decoded_once_and_embedded_once(explorer_home, monkeypatch):
    """The page identifies an upload and searches with it: one decode, one forward pass."""
    import app.explorer.pages_identify as page
    import app.workspace.identify as identify
    import index.imaging as imaging
    from app.workspace.engine import Engine

    calls = {"decode": 0, "embed": 0}

    def counting(key, fn):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapper

    decode = counting("decode", imaging.decode_bytes)
    for module in (page, identify, imaging):
        monkeypatch.setattr(module, "decode_bytes", decode)
    monkeypatch.setattr(Engine, "embed", counting("embed", Engine.embed))  # the query encoder, ORT or torch
    crop = crops_of(explorer_home, "train")[0][2]
    at = start(explorer_home, monkeypatch, "Identify")
    calls.update(decode=0, embed=0)
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.run()
    ok(at)
    assert len([m for m in at.markdown if re.search(r"#\d+$", m.value)]) == 8  # the gallery was searched
    assert calls == {"decode": 1, "embed": 1}


# -- taxonomy (issue 17) ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["probable", "distance"])
def test_identify_shows_the_answers_rank_and_lineage(method, explorer_home, monkeypatch):
    annotation_id, _, crop = crops_of(explorer_home, "holdout")[0]
    taxon = Workspace(explorer_home).identify([crop], decode=method)[0].taxon
    assert taxon is not None and taxon.name is not None
    at = start(explorer_home, monkeypatch, "Identify")
    at.radio(key="identify_mode").set_value("Pick a crop from the catalog").run()
    at.sidebar.radio(key="identify_decode").set_value(method).run()
    at.selectbox(key="identify_crop").set_value(annotation_id).run()
    ok(at)
    shown = texts(at.markdown)
    assert f"{taxon.rank} {taxon.name}**" in shown and f"({taxon.probability:.0%}" in shown
    lineage = " › ".join(f"{r} {n}" for r, n in taxon.lineage.items())
    assert f"lineage: {lineage}" in texts(at.caption)


def test_species_page_shows_the_place_in_the_tree_and_the_nearest_relatives(explorer_home, monkeypatch):
    ws = Workspace(explorer_home)
    held = sorted({c for _, c, _ in crops_of(explorer_home, "holdout")})[0]
    place = ws.taxa_place(held)
    assert place.relatives and place.relatives[0].distance <= place.relatives[-1].distance
    at = start(explorer_home, monkeypatch, "Species")
    at.selectbox(key="species_pick").set_value(held).run()
    ok(at)
    assert " › ".join(f"{r} *{n}*" for r, n in place.lineage.items()) in texts(at.markdown)
    relatives = at.dataframe[1].value
    assert list(relatives["relative"]) == [r.name for r in place.relatives]
    assert list(relatives["distance"]) == [r.distance for r in place.relatives]


def test_evaluation_page_compares_both_decodings(explorer_home, monkeypatch):
    summary = Workspace(explorer_home).last_evaluation()
    at = start(explorer_home, monkeypatch, "Evaluation")
    ok(at)
    assert "Answers at rank (taxonomy)" in texts(at.subheader)
    table = next(d.value for d in at.dataframe if "answer" in d.value.columns)
    assert list(table["answer"]) == ["top-1 species", "decode probable", "decode distance"]
    t = summary.taxonomy
    assert list(table["mean distance"]) == pytest.approx(
        [t.species_mean_distance, t.decodings["probable"].mean_distance, t.decodings["distance"].mean_distance]
    )


def test_identify_a_whole_frame_shows_its_boxes_and_each_organisms_answer(
    home_copy, monkeypatch, drawn_detector, drawn_frames
):
    """An uploaded frame: the detector's boxes drawn with labels, a picker over the organisms,
    and the chosen one's answer and similar crops, as the workspace gives them."""
    from app.workspace.demo import register_frame_detector
    from app.workspace.frames.drawing import label

    shutil.copytree(drawn_detector, home_copy / "models" / "detector-x")
    register_frame_detector(Workspace(home_copy), home_copy / "models" / "detector-x")  # the current detector
    data = drawn_frames[0].read_bytes()
    expected = Workspace(home_copy).identify_frames([data], names=["frame.png"]).frames[0]
    assert len(expected.organisms) >= 1
    at = start(home_copy, monkeypatch, "Identify")
    at.radio(key="identify_mode").set_value("Upload a whole frame").run()
    at.get("file_uploader")[0].set_value(("frame.png", data, "image/png"))
    at.run()
    ok(at)
    picker = at.selectbox(key="identify_organism")
    assert [o.split(" (box score")[0] for o in picker.options] == [
        f"{n + 1}: {label(o)}" for n, o in enumerate(expected.organisms)
    ]
    for n in (0, len(expected.organisms) - 1):
        picker.set_value(n).run()
        ok(at)
        want = expected.organisms[n]
        assert at.subheader[0].value == ("Unknown" if want.unknown else want.species)
        assert at.metric[0].value == f"{want.probability:.0%}"
        assert len([m for m in at.markdown if re.search(r"#\d+$", m.value)]) == 8  # k = 8 similar crops
        picker = at.selectbox(key="identify_organism")
