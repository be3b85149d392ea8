"""The synthetic reef: oceanid's built-in offline dataset, drawn with PIL.

``generate_reef`` draws underwater frames, several organisms each, and writes
them as COCO JSON with FathomNet-like metadata (depth, position, time,
temperature, imaging type) plus a made-up taxonomy and suggested held-out
species (``holdout`` / ``holdout_kind`` on categories). Everything comes from
one seeded ``numpy.random.Generator``: the same arguments give identical JSON
and identical PNG bytes.

Each frame is planned around the species with the fewest boxes so far (its
"anchor"): the frame's depth is drawn from the anchor's depth range and the
other organisms are species living at that depth, favouring rare ones, so
every species gets about the same number of boxes and depth filters mean
something.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from index.errors import InvalidInput
from index.sources.reef.scene import make_water, render_frame
from index.sources.reef.species import MAX_SPECIES, ReefSpecies, lineage, select_species
from index.sources.reef.sprite import BENTHIC

log = logging.getLogger(__name__)

REEF_VERSION = "1"
MIN_FRAME_SIDE = 96
MAX_FRAME_SIDE = 2048
FRAME_NAME = re.compile(r"^\d{6}\.png$")


@dataclass(frozen=True)
class Site:
    """A made-up dive site."""

    name: str
    latitude: float
    longitude: float
    max_depth_m: float
    water: str  # 'blue' | 'green'
    surface_temp_c: float


SITES = (
    Site("Kestrel Reef", -18.214, 147.632, 40, "blue", 27.0),
    Site("Mariner Wall", -8.473, 119.408, 160, "blue", 28.0),
    Site("Gannet Bank", 36.618, -121.982, 320, "green", 14.5),
    Site("Halcyon Slope", 21.332, -157.951, 320, "blue", 25.0),
)
FIRST_DAY = datetime(2019, 1, 1)
DAYS = (datetime(2023, 12, 31) - FIRST_DAY).days


def _integer(name: str, value) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidInput(f"{name} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class ReefConfig:
    """What ``generate_reef`` draws; validated on construction."""

    species: int = 16
    holdout: int = 4
    frames: int = 400
    seed: int = 0
    frame_size: tuple[int, int] = (320, 240)  # (width, height) in pixels

    def __post_init__(self) -> None:
        for name in ("species", "holdout", "frames", "seed"):
            object.__setattr__(self, name, _integer(name, getattr(self, name)))
        try:
            size = tuple(_integer("frame_size", v) for v in self.frame_size)
        except TypeError:
            size = ()
        if len(size) != 2 or not all(MIN_FRAME_SIDE <= v <= MAX_FRAME_SIDE for v in size):
            raise InvalidInput(
                f"frame_size must be (width, height) with sides in "
                f"{MIN_FRAME_SIDE}..{MAX_FRAME_SIDE}, got {self.frame_size!r}"
            )
        object.__setattr__(self, "frame_size", size)
        if self.frames < 1:
            raise InvalidInput(f"frames must be at least 1, got {self.frames}")
        if self.seed < 0:
            raise InvalidInput(f"seed must be non-negative, got {self.seed}")
        select_species(self.species, self.holdout)  # raises InvalidInput for bad counts

    def to_dict(self) -> dict:
        return {**asdict(self), "frame_size": list(self.frame_size)}


def _plan(reef: list[ReefSpecies], counts: np.ndarray, rng: np.random.Generator):
    """Pick (depth, [(species, morph)]) for one frame around the least-seen species."""
    order = rng.permutation(len(reef))
    anchor = int(order[np.argmin(counts[order])])
    lo, hi = reef[anchor].species.depth_m
    depth = round(float(rng.uniform(lo, hi)), 1)
    near = [i for i, r in enumerate(reef) if i != anchor and r.species.depth_m[0] <= depth <= r.species.depth_m[1]]
    chosen = [anchor]
    extra = min(len(near), int(rng.integers(2, 6)))
    if extra:
        weights = 1.0 / (1.0 + counts[near]) ** 2
        chosen += [int(i) for i in rng.choice(near, size=extra, replace=False, p=weights / weights.sum())]
    if rng.random() < 0.15:
        chosen.append(anchor)  # a second individual of the same species
    return depth, [(reef[i], int(rng.integers(len(reef[i].species.morphs)))) for i in chosen]


def _metadata(depth: float, rng: np.random.Generator) -> tuple[Site, dict]:
    sites = [s for s in SITES if s.max_depth_m >= depth]
    site = sites[int(rng.integers(len(sites)))]
    deep = depth > 40
    imaging = "ROV" if deep or rng.random() < 0.15 else "still camera"
    stamp = FIRST_DAY + timedelta(days=int(rng.integers(DAYS + 1)), minutes=int(rng.integers(7 * 60, 18 * 60)))
    season = math.cos(2 * math.pi * (stamp.timetuple().tm_yday - 45) / 365.0)
    season *= -1.0 if site.latitude > 0 else 1.0  # warmest in late summer of each hemisphere
    surface = site.surface_temp_c + 1.8 * season
    temp = 4.0 + (surface - 4.0) * math.exp(-depth / 180.0) + rng.normal(0, 0.3)
    meta = {
        "depth_m": depth,
        "latitude": round(site.latitude + float(rng.normal(0, 0.01)), 5),
        "longitude": round(site.longitude + float(rng.normal(0, 0.01)), 5),
        "timestamp": stamp.isoformat(timespec="seconds"),
        "temperature_c": round(float(temp), 1),
        "imaging_type": imaging,
        "site": site.name,
    }
    return site, meta


def _category(r: ReefSpecies) -> dict:
    sp = r.species
    return {
        "id": r.category_id,
        "name": sp.name,
        "supercategory": sp.family,
        "genus": sp.genus,
        "family": sp.family,
        **{r: lineage(sp)[r] for r in ("order", "class", "phylum", "kingdom")},
        "body_plan": sp.body_plan,
        "holdout": r.holdout,
        "holdout_kind": r.holdout_kind,
        "depth_range_m": list(sp.depth_m),
        "morphs": len(sp.morphs),
    }


def generate_reef(
    out_dir: Path,
    *,
    species: int = 16,
    holdout: int = 4,
    frames: int = 400,
    seed: int = 0,
    frame_size: tuple[int, int] = (320, 240),
) -> Path:
    """Draw the reef into ``out_dir`` (frames as PNG under ``out_dir/frames/``) and
    write ``out_dir/annotations.json`` (COCO plus metadata fields). Returns the JSON path.

    ``species`` (1..MAX_SPECIES) made-up species, ``holdout`` of them flagged
    held out (at least one "near" and one "far" when holdout >= 2 and the reef
    allows); ``frames`` frames of ``frame_size`` (width, height). Old
    ``NNNNNN.png`` frames in ``out_dir/frames`` are removed first.
    Raises InvalidInput for impossible arguments (holdout >= species,
    species > MAX_SPECIES, frames < 1, frame sides outside 96..2048).
    """
    cfg = ReefConfig(species, holdout, frames, seed, frame_size)
    reef = select_species(cfg.species, cfg.holdout)
    out_dir = Path(out_dir)
    frames_dir = out_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for old in frames_dir.iterdir():
        if FRAME_NAME.match(old.name):
            old.unlink()
    rng = np.random.default_rng(cfg.seed)
    counts = np.zeros(len(reef), dtype=np.int64)
    index = {r.category_id: i for i, r in enumerate(reef)}
    width, height = cfg.frame_size
    images, annotations = [], []
    log.info(
        "drawing the synthetic reef: %d species (%d held out), %d frames of %dx%d, seed %d",
        cfg.species,
        cfg.holdout,
        cfg.frames,
        width,
        height,
        cfg.seed,
    )
    for image_id in range(1, cfg.frames + 1):
        depth, organisms = _plan(reef, counts, rng)
        site, meta = _metadata(depth, rng)
        turbidity = float(np.clip(rng.normal(0.5 if site.water == "green" else 0.2, 0.12), 0, 1))
        water = make_water(site.water, depth, turbidity, meta["imaging_type"] == "ROV")
        floor = any(sp.species.body_plan in BENTHIC for sp, _ in organisms) or rng.random() < 0.5
        frame, placed = render_frame(cfg.frame_size, water, organisms, rng, floor=floor)
        name = f"frames/{image_id:06d}.png"
        frame.save(out_dir / name, format="PNG", compress_level=1)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height, **meta})
        for p in placed:
            counts[index[p.category_id]] += 1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": p.category_id,
                    "bbox": [p.x, p.y, p.w, p.h],
                    "area": p.w * p.h,
                    "iscrowd": 0,
                    "morph": p.morph,
                    "truncated": p.truncated,
                }
            )
    data = {
        "info": {"description": "oceanid synthetic reef", "version": REEF_VERSION, **cfg.to_dict()},
        "images": images,
        "annotations": annotations,
        "categories": [_category(r) for r in reef],
    }
    path = out_dir / "annotations.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    log.info(
        "synthetic reef written: %d frames, %d boxes, fewest per species %d, most %d",
        len(images),
        len(annotations),
        int(counts.min()),
        int(counts.max()),
    )
    return path


__all__ = ["MAX_SPECIES", "ReefConfig", "SITES", "generate_reef"]
