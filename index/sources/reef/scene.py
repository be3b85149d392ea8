"""One underwater frame: water, sea floor, organisms, marine snow, blur.

:func:`render_frame` places the organisms it is given (smallest, i.e.
farthest, first so near ones occlude far ones), each partly out of frame at
most a little and never hiding most of one already placed, and returns the
frame with a box per organism that made it in: the bounding box of its drawn
pixels, clipped to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from index.sources.reef.species import ReefSpecies
from index.sources.reef.sprite import BENTHIC, WATER_TINT, Water, opaque_box, organism_sprite

WATER_SHALLOW = {"blue": (0.28, 0.64, 0.80), "green": (0.36, 0.62, 0.50)}
WATER_DEEP = {"blue": (0.01, 0.07, 0.18), "green": (0.02, 0.11, 0.10)}
FLOORS = ((0.78, 0.72, 0.55), (0.50, 0.46, 0.42), (0.62, 0.58, 0.48))  # sand, rock, mud

MAX_TRIES = 12  # placements tried per organism before it is left out
MIN_INSIDE = 0.6  # least fraction of an organism's box that must lie inside the frame
MAX_COVER = 0.45  # most of an earlier box that a later (nearer) one may cover
NEAR_FAR_PX = (32.0, 104.0)  # long sides (240-px frame) read as far (hazy) .. near (clear)


@dataclass(frozen=True)
class Placed:
    """An organism that made it into the frame, with its clipped pixel box."""

    category_id: int
    morph: int
    x: float
    y: float
    w: float
    h: float
    truncated: bool  # the organism runs past the frame edge


def make_water(kind: str, depth_m: float, turbidity: float, lights: bool) -> Water:
    """The water at ``depth_m``: its colour darkens with depth, murk lifts it to grey-green."""
    b = math.exp(-depth_m / 70.0)
    rgb = tuple(d + (s - d) * b for s, d in zip(WATER_SHALLOW[kind], WATER_DEEP[kind], strict=False))
    rgb = tuple(c * (1 - 0.25 * turbidity) + 0.3 * turbidity * g for c, g in zip(rgb, (0.35, 0.45, 0.35), strict=False))
    return Water(kind, float(depth_m), float(turbidity), bool(lights), rgb)


def _smooth_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    coarse = rng.normal(0.0, 1.0, cells).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


def background(size: tuple[int, int], water: Water, rng: np.random.Generator) -> np.ndarray:
    """Open water, (H, W, 3) float32 in 0..1: lighter towards the surface, sun rays when shallow."""
    w, h = size
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    light = (1.3 - 0.6 * y) * (1.0 + 0.06 * _smooth_noise((h, w), (4, 5), rng))
    if water.depth_m < 30 and not water.lights:
        strength = 0.18 * (1 - water.depth_m / 30)
        for _ in range(int(rng.integers(2, 5))):
            x0, slant, width = rng.uniform(-0.2, 1.0), rng.uniform(0.1, 0.5), rng.uniform(0.03, 0.09)
            dist = np.abs(x - (x0 + slant * y))
            light = light + strength * np.clip(1 - dist / width, 0, 1) * (1 - y)
    return np.asarray(water.rgb, dtype=np.float32)[None, None, :] * light[..., None]


def add_floor(arr: np.ndarray, water: Water, rng: np.random.Generator) -> int:
    """Paint a sea floor over the lower part of ``arr`` in place; returns the horizon row."""
    full_h, w, _ = arr.shape
    horizon = int(full_h * rng.uniform(0.55, 0.72))
    top = max(0, horizon - 12)  # rows above cannot be floor
    arr, horizon = arr[top:], horizon - top
    h = arr.shape[0]
    xs = np.arange(w)
    edge = (
        horizon + 4 * np.sin(xs / w * rng.uniform(4, 9) + rng.uniform(0, 6)) + 3 * _smooth_noise((1, w), (1, 6), rng)[0]
    )
    rows = np.arange(h)[:, None]
    ground = np.clip((rows - edge[None, :]) / 3.0, 0, 1)[..., None]
    base = np.asarray(FLOORS[int(rng.integers(len(FLOORS)))], dtype=np.float32)
    texture = (
        1.0
        + 0.12 * _smooth_noise((h, w), (10, 14), rng)[..., None]
        + 0.06 * _smooth_noise((h, w), (h // 4, w // 4), rng)[..., None]
    )
    cast = 1.0 - water.cast * (1.0 - np.asarray(WATER_TINT[water.kind], dtype=np.float32))
    t = np.clip((rows - horizon) / max(1, h - horizon), 0, 1)[..., None]  # 0 horizon .. 1 bottom
    haze = 0.75 - 0.5 * t + 0.2 * water.turbidity
    floor = base * texture * cast * water.light * (1 - haze) + np.asarray(water.rgb, np.float32) * haze
    arr[:] = arr * (1 - ground) + floor * ground
    return horizon + top


def _inter(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_sprite(
    frame: Image.Image,
    sprite: Image.Image,
    benthic: bool,
    horizon: int | None,
    placed: list[tuple[float, float, float, float]],
    rng: np.random.Generator,
):
    """Paste ``sprite`` (RGBA) onto ``frame`` (RGB, in place) at a random allowed spot.

    Allowed: at least MIN_INSIDE of its box inside the frame, covering at most
    MAX_COVER of any box in ``placed`` ((x0, y0, x1, y1), exclusive ends);
    benthic sprites stand on the floor below ``horizon`` when there is one.
    Returns ((x0, y0, x1, y1) of its pixels with alpha >= BOX_ALPHA clipped to
    the frame, truncated) or None when no spot was found in MAX_TRIES.
    """
    fw, fh = frame.size
    local = opaque_box(sprite)
    if local is None:
        return None
    sw, sh = sprite.size
    bw, bh = local[2] - local[0], local[3] - local[1]
    for _ in range(MAX_TRIES):
        x = int(rng.uniform(-0.3 * bw, fw - 0.7 * bw)) - local[0]
        if benthic and horizon is not None:
            bottom = rng.uniform(horizon + 0.15 * (fh - horizon), fh + 0.25 * bh)
            y = int(bottom - bh) - local[1]
        else:
            y = int(rng.uniform(-0.3 * bh, fh - 0.7 * bh)) - local[1]
        full = (x + local[0], y + local[1], x + local[2], y + local[3])
        box = (max(0, full[0]), max(0, full[1]), min(fw, full[2]), min(fh, full[3]))
        area = (box[2] - box[0]) * (box[3] - box[1])
        if box[2] - box[0] < 4 or box[3] - box[1] < 4 or area < MIN_INSIDE * bw * bh:
            continue
        if any(_inter(box, p) > MAX_COVER * (p[2] - p[0]) * (p[3] - p[1]) for p in placed):
            continue
        frame.paste(sprite, (x, y), sprite)
        return box, box != full
    return None


def marine_snow(frame: Image.Image, water: Water, rng: np.random.Generator) -> Image.Image:
    """Scatter drifting particles (more in murky and deep water), softly blurred."""
    w, h = frame.size
    n = int(rng.uniform(10, 40) + 140 * water.turbidity + 0.25 * min(water.depth_m, 300))
    n = int(n * w * h / (320 * 240))
    alpha = Image.new("L", frame.size, 0)
    d = ImageDraw.Draw(alpha)
    for x, y, r, a in zip(
        rng.uniform(0, w, n), rng.uniform(0, h, n), rng.gamma(2.0, 0.45, n), rng.integers(70, 210, n), strict=False
    ):
        d.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=int(a))
    frame = frame.copy()
    frame.paste((232, 236, 240), mask=alpha.filter(ImageFilter.GaussianBlur(0.6)))
    return frame


def finish(frame: Image.Image, water: Water, rng: np.random.Generator) -> Image.Image:
    """Camera effects: optional global blur, vignette under artificial lights.

    No per-pixel sensor noise: it would triple PNG size and encoding time.
    """
    if rng.random() < 0.45:
        frame = frame.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.1))))
    if water.lights:
        arr = np.asarray(frame, dtype=np.float32)
        h, w, _ = arr.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        arr *= np.clip(1.1 - 0.35 * r2, 0.3, 1.1)[..., None]
        frame = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    return frame


def render_frame(
    size: tuple[int, int],
    water: Water,
    organisms: list[tuple[ReefSpecies, int]],
    rng: np.random.Generator,
    floor: bool = True,
) -> tuple[Image.Image, list[Placed]]:
    """Draw one frame of ``size`` (w, h) with the given (species, morph) organisms.

    Returns the RGB frame and the organisms that were placed (some may be left
    out when no allowed position is found), boxes in pixels inside the frame.
    """
    arr = background(size, water, rng)
    horizon = add_floor(arr, water, rng) if floor else None
    frame = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    scale = size[1] / 240.0
    sizes = [
        math.exp(rng.uniform(math.log(sp.species.size_px[0]), math.log(sp.species.size_px[1]))) * scale
        for sp, _ in organisms
    ]
    lo, hi = NEAR_FAR_PX[0] * scale, NEAR_FAR_PX[1] * scale
    placed: list[Placed] = []
    boxes: list[tuple[float, float, float, float]] = []
    for i in np.argsort(sizes, kind="stable"):
        sp, morph = organisms[i]
        far = float(np.clip(1 - (sizes[i] - lo) / max(1.0, hi - lo), 0, 1))  # 1 = small, far away
        haze = 0.04 + 0.14 * far + 0.15 * water.turbidity
        defocus = float(rng.uniform(0.4, 1.4)) if rng.random() < 0.25 else 0.0
        sprite = organism_sprite(sp.species, morph, sizes[i], water, rng, haze, defocus)
        spot = place_sprite(frame, sprite, sp.species.body_plan in BENTHIC, horizon, boxes, rng)
        if spot is None:
            continue
        box, truncated = spot
        boxes.append(box)
        placed.append(
            Placed(
                sp.category_id,
                morph,
                float(box[0]),
                float(box[1]),
                float(box[2] - box[0]),
                float(box[3] - box[1]),
                truncated,
            )
        )
    frame = marine_snow(frame, water, rng)
    return finish(frame, water, rng), placed
