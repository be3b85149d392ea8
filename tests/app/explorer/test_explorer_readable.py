"""Issue 19, items 10-13: what the explorer shows a person, as Streamlit's AppTest sees it.

10 numbers at a fixed precision; 11 an uploaded crop already in the catalog marked in its own
gallery; 12 the Evaluation page naming the model and generation of its report and marking it
stale; 13 a bad upload in Add species reported by its file name. On the shared tiny workspace
(tests/conftest.py); tests that change it work on a copy (``tiny_ws``).
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

pytest.importorskip("streamlit")

from app.workspace import Workspace  # noqa: E402
from tests.app.explorer.test_explorer_apptest import crops_of, held_out_examples, ok, start, texts  # noqa: E402

FIXED = re.compile(r"^%\.\d+f$|^%d$")  # a printf format of fixed precision (or a whole number)


def column_formats(dataframe) -> dict[str, str]:
    """column -> the number format the page gave it (``st.column_config``), from the element's proto."""
    config = json.loads(dataframe.proto.columns or "{}")
    return {name: (c.get("type_config") or {}).get("format", "") for name, c in config.items()}


def float_columns(dataframe) -> list[str]:
    frame = dataframe.value
    return [
        str(c)
        for c in frame.columns
        if frame[c].dtype.kind == "f"
        or (frame[c].dtype == object and any(isinstance(v, float) for v in frame[c].dropna()))
    ]


def assert_every_number_fixed(at) -> None:
    """Every float column of every table on the page has a fixed-precision format."""
    assert at.dataframe
    for table in at.dataframe:
        formats = column_formats(table)
        for name in float_columns(table):
            assert FIXED.match(formats.get(name, "")), (name, formats)


# -- item 10 ---------------------------------------------------------------------------


def test_a_tiny_probability_is_shown_at_fixed_precision(tiny_home, monkeypatch):
    """A probability of 1e-300 (a far species after calibration) rendered with hundreds of digits.
    Fails when a table loses its fixed format (e.g. the Identify page's own column config)."""
    _, _, crop = crops_of(tiny_home, "train")[0]
    real = Workspace.identify

    def tiny_tail(self, *args, **kwargs):
        answers = real(self, *args, **kwargs)
        out = []
        for a in answers:
            probs = list(a.probabilities)
            if probs:
                probs[-1] = (probs[-1][0], 1e-300)
            out.append(dataclasses.replace(a, probabilities=tuple(probs)))
        return out

    monkeypatch.setattr(Workspace, "identify", tiny_tail)
    at = start(tiny_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.run()
    ok(at)
    top = at.dataframe[0]
    assert top.value["probability"].iloc[-1] == 1e-300  # the tiny number reached the table ...
    assert column_formats(top)["probability"] == "%.4f"  # ... which shows it as 0.0000
    assert column_formats(top)["similarity"] == "%.4f"
    assert_every_number_fixed(at)
    assert all(len(m.value) <= 6 for m in at.metric[:1])  # "0%" .. "100%", never a long fraction


@pytest.mark.parametrize("page", ["Species", "Evaluation"])
def test_every_table_number_is_fixed_on(page, tiny_home, monkeypatch):
    at = start(tiny_home, monkeypatch, page)
    ok(at)
    assert_every_number_fixed(at)


def test_whole_numbers_stay_whole_and_fractions_get_four_digits():
    import pandas as pd

    from app.explorer.widgets import number_columns

    frame = pd.DataFrame({"support": [12.0, 3.0], "f1": [0.5, 1e-300], "name": ["a", "b"], "n": [1, 2]})
    config = number_columns(frame)
    assert set(config) == {"support", "f1"}
    assert config["support"]["type_config"]["format"] == "%d"
    assert config["f1"]["type_config"]["format"] == "%.4f"


# -- item 11 ---------------------------------------------------------------------------


def test_an_uploaded_catalog_crop_is_marked_as_itself(tiny_home, monkeypatch):
    """Was listed first among "most similar" at 1.000 like any neighbour. Marked, not hidden."""
    annotation_id, species, crop = crops_of(tiny_home, "train")[0]
    at = start(tiny_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("fish.png", crop.read_bytes(), "image/png"))
    at.run()
    ok(at)
    captions = [m.value for m in at.markdown if re.search(r"#\d+$", m.value)]
    marked = [c for c in captions if "this image itself" in c]
    assert len(marked) == 1 and marked[0].endswith(f"#{annotation_id}"), captions
    assert captions[0] == marked[0]  # it is the nearest, and says so
    assert "the uploaded image itself" in texts(at.caption)


def test_an_upload_not_in_the_catalog_marks_nothing(tiny_home, monkeypatch, tmp_path):
    from PIL import Image, ImageOps

    _, _, crop = crops_of(tiny_home, "train")[0]
    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(crop).convert("RGB")).save(mirrored)
    at = start(tiny_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("m.png", mirrored.read_bytes(), "image/png"))
    at.run()
    ok(at)
    assert "this image itself" not in texts(at.markdown)


# -- item 12 ---------------------------------------------------------------------------


def test_evaluation_names_its_model_and_generation(tiny_home, monkeypatch):
    summary = Workspace(tiny_home).last_evaluation()
    at = start(tiny_home, monkeypatch, "Evaluation")
    ok(at)
    caption = texts(at.caption)
    assert f"model `{summary.model}`" in caption and f"index `{summary.generation}`" in caption
    assert not [w for w in at.warning if "Stale" in w.value]


def test_evaluation_is_marked_stale_when_identify_answers_with_another_generation(tiny_ws, monkeypatch):
    """The page showed an old report's figures (and its decision scorer) as if current."""
    tiny_ws.species_add("Staleia nova", held_out_examples(tiny_ws.home))  # a new live generation
    live = tiny_ws.engine_key()[1]
    assert live != "gen-0001"
    at = start(tiny_ws.home, monkeypatch, "Evaluation")
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "Stale report" in w.value]
    assert "index `gen-0001`" in warning and f"index `{live}`" in warning


def test_evaluation_says_when_its_model_was_stale(tiny_ws, monkeypatch):
    """A report made after `split --force` marked the model stale says so (item 3's mark, shown)."""
    import shutil
    from pathlib import Path

    folder = tiny_ws.home / "reports" / "stale"  # the copy's last report points into the shared fixture
    shutil.copytree(tiny_ws.catalog.last_report(), folder)
    data = json.loads((folder / "eval.json").read_text())
    data["model_stale"] = "trained on a split that `oceanid split --force` replaced"
    (folder / "eval.json").write_text(json.dumps(data))
    tiny_ws.catalog.set_last_report(str(Path(folder)))
    at = start(tiny_ws.home, monkeypatch, "Evaluation")
    assert not at.exception
    assert any("was stale when this report was made" in w.value for w in at.warning)


# -- item 13 ---------------------------------------------------------------------------


def test_a_bad_upload_in_add_species_is_reported_by_its_file_name(tiny_ws, monkeypatch):
    """Was "skipped example 4: ...". The page writes each upload under its own name before the add."""
    examples = held_out_examples(tiny_ws.home)
    uploads = [(p.name, p.read_bytes(), "image/png") for p in examples]
    uploads.append(("broken-fin.png", b"this is not an image", "image/png"))
    at = start(tiny_ws.home, monkeypatch, "Add species")
    at.text_input[0].set_value("Nomina testata")
    at.get("file_uploader")[0].set_value(uploads)
    at.button[0].click().run()
    ok(at)
    assert f"from {len(examples)} example(s)" in texts(at.success)
    (line,) = [w.value for w in at.warning if w.value.startswith("skipped")]
    assert line.startswith("skipped broken-fin.png: ") and "example 4" not in line


# -- item 8, the explorer's half --------------------------------------------------------


def test_an_unknown_upload_names_the_closest_known_species_not_a_probability_of_the_answer(tiny_home, monkeypatch):
    """ "unknown" was shown with "100%" for the closest species, as if it were the answer's."""
    ws = Workspace(tiny_home)
    held = crops_of(tiny_home, "holdout")
    answers = ws.identify([c for _, _, c in held])
    unknown = [(c, a) for (_, _, c), a in zip(held, answers, strict=False) if a.unknown]
    assert unknown, "the tiny fixture calls some held-out crop unknown"
    crop, expected = unknown[0]
    at = start(tiny_home, monkeypatch, "Identify")
    at.get("file_uploader")[0].set_value(("odd.png", crop.read_bytes(), "image/png"))
    at.run()
    ok(at)
    assert at.subheader[0].value == "Unknown"
    assert at.metric[0].label == f"closest known: {expected.closest} (among known species)"
    assert "probability it is" not in at.metric[0].label
