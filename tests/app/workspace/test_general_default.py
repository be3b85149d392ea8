"""The general space is on by default for users (issue 26): ``oceanid embed`` keeps it beside the tuned one,
``index build`` stores the two-space decision, ``identify --json`` says which space named and which decided
"unknown", ``species add`` gives the support crops general vectors; ``--no-general-space`` starts none.

The suite runs with ``OCEANID_GENERAL_SPACE=0`` (tests/conftest.py); these tests unset it, as a user's shell
has it. For speed the general encoder they start is a tiny one (``write_general_model`` gets a tiny config);
each test records the config the product asked for, which must be the measured one (Lite0, ImageNet, 160 px).
test_a_user_home_gets_the_real_lite0_general_space runs the real encoder (slow).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from embedder.general import GeneralConfig
from tests.app.workspace.test_identify import crops
from tests.app.workspace.test_species import held_out_examples

ENV = "OCEANID_GENERAL_SPACE"
TINY = GeneralConfig("tiny", "none", 32)


@pytest.fixture
def asked(monkeypatch):
    """The default a user gets (the variable unset), with a tiny general encoder written in place of the
    one asked for; returns the configs asked for, in order."""
    import embedder.general as general

    monkeypatch.delenv(ENV, raising=False)
    real, configs = general.write_general_model, []

    def tiny(folder, config=None):
        configs.append(config)
        return real(folder, TINY)

    monkeypatch.setattr(general, "write_general_model", tiny)
    return configs


def oceanid(home, *args):
    from app.cli import app

    return CliRunner().invoke(app, ["--home", str(home), *[str(a) for a in args]])


def vector_ids(ws, space):
    """The crop ids with a vector in ``space`` (none for a space never embedded)."""
    from index.catalog.embeddings import load_embeddings
    from index.errors import NotFound

    try:
        return load_embeddings(ws.catalog, space)[0]
    except NotFound:
        return np.zeros(0, np.int64)


def test_the_fixture_homes_have_one_space(tiny_ws):
    """What the tests below start from: the suite's homes embed the tuned space only (conftest)."""
    from app.workspace.spaces import has_general

    assert not has_general(tiny_ws.catalog, "tiny") and tiny_ws.spaces("tiny") is None
    assert not tiny_ws.paths.model("tiny.general").exists()


def test_oceanid_embed_keeps_the_general_space_by_default_and_answers_say_which_space(tiny_ws, asked):
    from index.catalog.spaces import load_spaces_decision

    result = oceanid(tiny_ws.home, "embed", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    assert asked == [GeneralConfig()]  # the measured encoder: Lite0, ImageNet weights, 160 px
    assert (GeneralConfig().backbone, GeneralConfig().weights, GeneralConfig().image_size) == (
        "efficientnet_lite0",
        "imagenet",
        160,
    )
    folder = tiny_ws.paths.model("tiny.general")
    assert (folder / "encoder.onnx").is_file() and (folder / "encoder.json").is_file()  # queries need no torch
    tuned, general = vector_ids(tiny_ws, "tiny"), vector_ids(tiny_ws, "tiny.general")
    assert len(general) > 0
    np.testing.assert_array_equal(tuned, general)  # every crop in both spaces

    result = oceanid(tiny_ws.home, "index", "build", "--json")
    assert result.exit_code == 0, result.output
    decision = load_spaces_decision(tiny_ws.catalog, "tiny")
    assert decision is not None and (decision.naming, decision.unknown) == ("fused", "two-stage")

    paths = [tiny_ws.home / p for _, p, _ in crops(tiny_ws, split="test", limit=30)]
    paths += [tiny_ws.home / p for _, p, _ in crops(tiny_ws, split="holdout", limit=30)]
    result = oceanid(tiny_ws.home, "identify", *paths, "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == len(paths)
    named = [r for r in records if r["species"] != "unknown"]
    unknown = [r for r in records if r["species"] == "unknown"]
    assert named and all((r["named_by"], r["unknown_by"]) == ("fused", "") for r in named)
    assert unknown and all(r["named_by"] == "" and r["unknown_by"] in ("tuned", "tuned+general") for r in unknown)

    name, examples = held_out_examples(tiny_ws)  # species add on the default home: both spaces
    result = oceanid(tiny_ws.home, "species", "add", name, *examples, "--json")
    assert result.exit_code == 0, result.output
    from index.catalog.embeddings import support_crops

    support = [i for i, _ in support_crops(tiny_ws.catalog, name)]
    assert support and set(support) <= set(vector_ids(tiny_ws, "tiny.general").tolist())
    assert name in tiny_ws.spaces("tiny").general.prototypes.names


@pytest.mark.parametrize(
    ("flags", "env", "kept"),
    [
        (("--no-general-space",), None, False),  # (the default, on: the test above)
        ((), "0", False),  # the suite's setting
        ((), "off", False),
        (("--general-space",), "0", True),  # the flag wins over the setting
    ],
)
def test_no_general_space_starts_none_and_the_setting_only_moves_the_default(
    tiny_ws, asked, monkeypatch, flags, env, kept
):
    from index.catalog.spaces import load_spaces_decision

    if env is not None:
        monkeypatch.setenv(ENV, env)
    result = oceanid(tiny_ws.home, "embed", "--model", "tiny", "--device", "cpu", *flags, "--json")
    assert result.exit_code == 0, result.output
    assert tiny_ws.paths.model("tiny.general").exists() is kept
    assert (len(vector_ids(tiny_ws, "tiny.general")) > 0) is kept
    assert oceanid(tiny_ws.home, "index", "build", "--json").exit_code == 0
    assert (load_spaces_decision(tiny_ws.catalog, "tiny") is not None) is kept
    paths = [tiny_ws.home / p for _, p, _ in crops(tiny_ws, split="test", limit=10)]
    records = json.loads(oceanid(tiny_ws.home, "identify", *paths, "--json").stdout)
    named = {r["named_by"] for r in records if r["species"] != "unknown"}
    assert named == ({"fused"} if kept else {"tuned"})


def test_a_setting_that_is_neither_on_nor_off_is_one_line(tiny_ws, monkeypatch):
    monkeypatch.setenv(ENV, "maybe")
    result = oceanid(tiny_ws.home, "embed", "--model", "tiny", "--device", "cpu")
    assert result.exit_code == 1 and "OCEANID_GENERAL_SPACE='maybe'" in result.output
    assert "Traceback" not in result.output
    assert not tiny_ws.paths.model("tiny.general").exists()


def test_workspace_embed_and_the_demo_default_to_the_general_space(tiny_ws, asked, monkeypatch):
    """The library default (identify --save embeds through it) and the demo's flag, passed through."""
    import app.workspace.demo as demo_step

    tiny_ws.embed("tiny", device="cpu")
    assert len(vector_ids(tiny_ws, "tiny.general")) == len(vector_ids(tiny_ws, "tiny")) > 0
    seen = []

    def stop(ws, config, say, frames, progress, general):
        seen.append(general)
        raise SystemExit(0)

    monkeypatch.setattr(demo_step, "run_demo", stop)
    for flags in ((), ("--no-general-space",), ("--general-space",)):
        oceanid(tiny_ws.home / "demo", "demo", *flags)
    assert seen == [None, False, True]  # None: run_demo's embed takes the default (on)


@pytest.mark.slow
def test_a_user_home_gets_the_real_lite0_general_space(tiny_ws, monkeypatch):
    """No stand-in: the encoder a user's ``oceanid embed`` starts, its ONNX export, and the decision."""
    from embedder.model import read_config
    from index.catalog.spaces import load_spaces_decision

    monkeypatch.delenv(ENV, raising=False)
    assert oceanid(tiny_ws.home, "embed", "--model", "tiny", "--device", "cpu").exit_code == 0
    folder = tiny_ws.paths.model("tiny.general")
    config = read_config(folder)
    assert (config.backbone, config.image_size, config.output, config.vector_dim) == (
        "efficientnet_lite0",
        160,
        "pooled",
        1280,
    )
    assert json.loads((folder / "encoder.json").read_text())  # exported
    np.testing.assert_array_equal(vector_ids(tiny_ws, "tiny"), vector_ids(tiny_ws, "tiny.general"))
    assert oceanid(tiny_ws.home, "index", "build").exit_code == 0
    assert load_spaces_decision(tiny_ws.catalog, "tiny") is not None
    path = tiny_ws.home / crops(tiny_ws, split="test", limit=1)[0][1]
    record = json.loads(oceanid(tiny_ws.home, "identify", path, "--json").stdout)[0]
    assert record["named_by"] in ("fused", "") and record["unknown_by"] in ("", "tuned", "tuned+general")


def test_a_label_studio_annotation_is_embedded_in_both_spaces(tiny_ws):
    """The API's one embedding step (an annotation becomes truth crops) keeps the general space too."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.api import ApiSettings, errors
    from app.api.label_studio import router
    from app.api.label_studio.settings import LabelStudioSettings
    from embedder.general import write_general_model
    from tests.app.api.test_label_studio import choice, choices_config, data_uri, event

    write_general_model(tiny_ws.paths.model("tiny.general"), TINY)
    tiny_ws.embed("tiny", device="cpu")
    tiny_ws.index_build("tiny")
    before = set(vector_ids(tiny_ws, "tiny.general").tolist())
    app = FastAPI()
    errors.install(app)
    app.include_router(router(tiny_ws, ApiSettings(), LabelStudioSettings(min_examples=2)), prefix="/label-studio")
    species = list(tiny_ws.engine("tiny").prototypes.names)
    image = data_uri(tiny_ws.home / crops(tiny_ws, split="test", limit=1)[0][1])
    config = choices_config(species)
    with TestClient(app) as client:
        stored = client.post(
            "/label-studio/webhook", json=event("ANNOTATION_CREATED", 1, 7, 70, image, choice(species[0]), config)
        )
    assert stored.json()["status"] == "stored", stored.text
    new = set(vector_ids(tiny_ws, "tiny").tolist()) - before
    assert new and new <= set(vector_ids(tiny_ws, "tiny.general").tolist())
    tiny_ws.index_verify("tiny")  # the general space's live generation holds them too
