"""The synthetic reef: determinism, taxonomy and held-out species, boxes, frames, metadata."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.errors import InvalidInput
from index.sources.reef.scene import make_water, place_sprite
from index.sources.reef.species import CATALOGUE, MAX_SPECIES, select_species
from index.sources.reef.sprite import BODY_PLANS, BOX_ALPHA, draw_species, opaque_box, organism_sprite
from index.sources.synthetic import SITES, generate_reef

FRAMES = 40


@pytest.fixture(scope="module")
def reef(tmp_path_factory) -> tuple[Path, dict]:
    """A default-sized reef (16 species, 4 held out) with few frames, drawn once."""
    path = generate_reef(tmp_path_factory.mktemp("reef"), frames=FRAMES, seed=3)
    return path, json.loads(path.read_text())


def _boxes_by_category(data: dict) -> Counter:
    return Counter(a["category_id"] for a in data["annotations"])


# -- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_json_and_frame_bytes(tmp_path):
    a = generate_reef(tmp_path / "a", frames=12, seed=7)
    b = generate_reef(tmp_path / "b", frames=12, seed=7)
    assert a.read_bytes() == b.read_bytes()
    for name in ("000001.png", "000012.png"):
        assert (a.parent / "frames" / name).read_bytes() == (b.parent / "frames" / name).read_bytes()


def test_different_seed_gives_different_reef(tmp_path):
    a = generate_reef(tmp_path / "a", frames=12, seed=7)
    b = generate_reef(tmp_path / "b", frames=12, seed=8)
    assert json.loads(a.read_text())["annotations"] != json.loads(b.read_text())["annotations"]
    assert (a.parent / "frames/000001.png").read_bytes() != (b.parent / "frames/000001.png").read_bytes()


# -- taxonomy and held-out species -----------------------------------------------------------


def test_default_categories_and_holdout_flags(reef):
    _, data = reef
    cats = data["categories"]
    assert len(cats) == 16
    held = [c for c in cats if c["holdout"]]
    assert len(held) == 4
    assert {c["holdout_kind"] for c in cats if not c["holdout"]} == {None}
    kinds = Counter(c["holdout_kind"] for c in held)
    assert kinds["near"] >= 1 and kinds["far"] >= 1


@pytest.mark.parametrize("species, holdout", [(16, 4), (24, 4), (MAX_SPECIES, 6), (8, 2), (5, 2), (16, 2)])
def test_near_and_far_holdouts_mean_what_they_say(species, holdout):
    reef = select_species(species, holdout)
    known = [r.species for r in reef if not r.holdout]
    held = [r for r in reef if r.holdout]
    assert len(reef) == species and len(held) == holdout
    kinds = {r.holdout_kind for r in held}
    assert {"near", "far"} <= kinds
    for r in held:
        same_genus = [k for k in known if k.genus == r.species.genus]
        same_plan = [k for k in known if k.body_plan == r.species.body_plan]
        if r.holdout_kind == "near":
            assert same_genus and same_plan  # a sibling with the same look
        elif r.holdout_kind == "far":
            assert not same_plan
        else:
            assert same_plan and not same_genus


def test_taxonomy_fields_and_siblings_share_genus_and_family(reef):
    _, data = reef
    cats = data["categories"]
    assert len({c["name"] for c in cats}) == len(cats)
    for c in cats:
        genus, epithet = c["name"].split(" ")
        assert genus == c["genus"] and epithet.islower()
        assert c["supercategory"] == c["family"]
        assert c["body_plan"] in BODY_PLANS
    family_of = {}
    for c in cats:
        assert family_of.setdefault(c["genus"], c["family"]) == c["family"]
    assert max(Counter(c["genus"] for c in cats).values()) >= 2


def test_catalogue_allows_at_least_24_species_with_fine_grained_pairs_and_morphs():
    assert MAX_SPECIES >= 24
    assert len({s.name for s in CATALOGUE}) == len(CATALOGUE)
    assert sum(len(s.morphs) > 1 for s in CATALOGUE[:16]) >= 2
    # a fine-grained pair: same genus and body plan, all proportions equal
    assert any(
        a.genus == b.genus and a.body_plan == b.body_plan and a.shape == b.shape and a != b
        for i, a in enumerate(CATALOGUE[:16])
        for b in CATALOGUE[i + 1 : 16]
    )


@pytest.mark.parametrize(
    "species, morph",
    [(s, m) for s in CATALOGUE for m in range(len(s.morphs))],
    ids=lambda v: v.name.replace(" ", "_") if hasattr(v, "name") else str(v),
)
def test_every_species_and_morph_draws_something(species, morph):
    sprite = draw_species(species, morph, np.random.default_rng(0))
    alpha = np.asarray(sprite.getchannel("A"))
    assert sprite.mode == "RGBA"
    assert (alpha >= BOX_ALPHA).mean() > 0.05  # a body, not a speck
    assert alpha[0].max() == 0 or alpha[:, 0].max() == 0 or alpha[-1].max() == 0  # not clipped all round


# -- boxes -----------------------------------------------------------------------------------


def test_boxes_inside_frame_and_non_degenerate(reef):
    _, data = reef
    images = {im["id"]: im for im in data["images"]}
    cat_ids = {c["id"] for c in data["categories"]}
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    for a in data["annotations"]:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["category_id"] in cat_ids and a["iscrowd"] == 0
        assert x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
        assert w >= 4 and h >= 4
        assert a["area"] == pytest.approx(w * h)


def test_box_sizes_are_recognisable(reef):
    _, data = reef
    long_sides = np.array([max(a["bbox"][2:]) for a in data["annotations"]])
    assert long_sides.max() <= 112
    assert 28 <= np.median(long_sides) <= 110
    untruncated = np.array([max(a["bbox"][2:]) for a in data["annotations"] if not a["truncated"]])
    assert untruncated.min() >= 24


@pytest.mark.parametrize("seed", range(6))
def test_box_is_the_bbox_of_the_drawn_pixels(seed):
    """Oracle: paste onto a flat frame and take the bbox of pixels that changed a lot."""
    rng = np.random.default_rng(seed)
    species = CATALOGUE[seed * 4 % len(CATALOGUE)]
    water = make_water("blue", 10.0, 0.1, lights=False)
    sprite = organism_sprite(species, 0, 90.0, water, rng)
    before = Image.new("RGB", (200, 150), (0, 0, 0))
    frame = before.copy()
    spot = place_sprite(frame, sprite, False, None, [], rng)
    assert spot is not None
    (x0, y0, x1, y1), truncated = spot
    changed = np.abs(np.asarray(frame, np.int16) - np.asarray(before, np.int16)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 150
    # every changed pixel lies within 3 px of the box (faint antialiased edge), the box hugs them
    assert xs.min() >= x0 - 3 and xs.max() < x1 + 3 and ys.min() >= y0 - 3 and ys.max() < y1 + 3
    assert abs(xs.min() - x0) <= 3 and abs(ys.max() + 1 - y1) <= 3
    full = opaque_box(sprite)
    assert truncated == ((x1 - x0, y1 - y0) != (full[2] - full[0], full[3] - full[1]))


def test_later_organism_never_hides_most_of_an_earlier_box():
    rng = np.random.default_rng(0)
    frame = Image.new("RGB", (160, 120))
    water = make_water("green", 5.0, 0.3, lights=False)
    placed = []
    for i in range(12):
        sprite = organism_sprite(CATALOGUE[i], 0, 60.0, water, rng)
        spot = place_sprite(frame, sprite, False, None, placed, rng)
        if spot is not None:
            new = spot[0]
            for p in placed:
                inter = max(0, min(p[2], new[2]) - max(p[0], new[0])) * max(0, min(p[3], new[3]) - max(p[1], new[1]))
                assert inter <= 0.45 * (p[2] - p[0]) * (p[3] - p[1]) + 1e-9
            placed.append(new)
    assert len(placed) >= 3


def test_species_get_similar_box_counts(reef):
    _, data = reef
    counts = _boxes_by_category(data)
    per = [counts[c["id"]] for c in data["categories"]]
    assert min(per) >= 0.6 * np.mean(per)


# -- frames and metadata ---------------------------------------------------------------------


def test_every_frame_exists_and_opens_at_declared_size(reef):
    path, data = reef
    assert len(data["images"]) == FRAMES
    for im in data["images"]:
        assert not Path(im["file_name"]).is_absolute()
        with Image.open(path.parent / im["file_name"]) as img:
            img.load()
            assert img.size == (im["width"], im["height"]) == (320, 240)
            assert img.format == "PNG"


def test_metadata_is_plausible(reef):
    _, data = reef
    site_names = {s.name for s in SITES}
    stamps = []
    for im in data["images"]:
        assert 0 <= im["depth_m"] <= 400
        assert -90 <= im["latitude"] <= 90 and -180 <= im["longitude"] <= 180
        assert -2 <= im["temperature_c"] <= 32
        assert im["imaging_type"] in {"ROV", "still camera"}
        assert im["site"] in site_names
        stamps.append(datetime.fromisoformat(im["timestamp"]))
    assert len({s.year for s in stamps}) >= 3


def test_frame_depth_lies_in_every_pictured_species_range(reef):
    _, data = reef
    ranges = {c["id"]: c["depth_range_m"] for c in data["categories"]}
    depth = {im["id"]: im["depth_m"] for im in data["images"]}
    for a in data["annotations"]:
        lo, hi = ranges[a["category_id"]]
        assert lo <= depth[a["image_id"]] <= hi


def test_depth_ranges_differ_so_filters_mean_something(reef):
    _, data = reef
    ranges = [tuple(c["depth_range_m"]) for c in data["categories"]]
    assert len(set(ranges)) == len(ranges)
    deep_only = [c for c in data["categories"] if c["depth_range_m"][0] >= 20]
    shallow_only = [c for c in data["categories"] if c["depth_range_m"][1] <= 40]
    assert deep_only and shallow_only


def test_info_records_seed_and_version(reef):
    _, data = reef
    assert data["info"]["seed"] == 3 and data["info"]["version"]
    assert data["info"]["frames"] == FRAMES


def test_other_frame_size_and_stale_frames_removed(tmp_path):
    generate_reef(tmp_path, species=6, holdout=2, frames=5, seed=1)
    path = generate_reef(tmp_path, species=6, holdout=2, frames=3, seed=1, frame_size=(200, 150))
    data = json.loads(path.read_text())
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    assert len(data["categories"]) == 6
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert x + w <= 200 and y + h <= 150
    with Image.open(tmp_path / "frames/000002.png") as img:
        assert img.size == (200, 150)


def test_lead_coco_reader_ingests_the_reef(reef):
    from index.sources.coco import read_coco

    path, data = reef
    plan = read_coco(path, source="synthetic", id_prefix="reef")
    assert plan.skipped == []
    assert len(plan.records) == FRAMES
    assert sum(len(r.boxes) for r in plan.records) == len(data["annotations"])
    assert sorted(plan.holdout_hints.values()).count("near") >= 1


# -- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"holdout": 16},
        {"holdout": 20},
        {"holdout": -1},
        {"species": MAX_SPECIES + 1},
        {"species": 0},
        {"frames": 0},
        {"frames": -3},
        {"frames": 2.5},
        {"seed": -1},
        {"frame_size": (10, 10)},
        {"frame_size": (320,)},
        {"frame_size": "big"},
        {"species": "16"},
    ],
)
def test_bad_arguments_raise_invalid_input(tmp_path, kwargs):
    with pytest.raises(InvalidInput):
        generate_reef(tmp_path / "reef", **kwargs)
    assert not (tmp_path / "reef" / "annotations.json").exists()


@pytest.mark.slow
def test_default_reef_is_quick_and_balanced(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt-in: run with -m slow")
    start = time.perf_counter()
    path = generate_reef(tmp_path)
    elapsed = time.perf_counter() - start
    data = json.loads(path.read_text())
    counts = _boxes_by_category(data)
    assert len(data["images"]) == 400
    assert min(counts[c["id"]] for c in data["categories"]) >= 60
    assert elapsed < 60  # ~10 s on one free core; generous for shared CI machines
