"""One organism, ready to paste: drawn, posed, scaled, tinted by the water.

:func:`organism_sprite` draws a species in canonical pose with its body
plan's drawer, flips and rotates it (within what the body plan allows: a
fish tilts a little, a sea star turns freely), shrinks it to the requested
size and applies the water's colour cast, haze and optional defocus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from index.errors import InvalidInput
from index.sources.reef.benthos import BENTHOS
from index.sources.reef.catalogue import Species
from index.sources.reef.swimmers import SWIMMERS

BODY_PLANS = {**SWIMMERS, **BENTHOS}

#: Largest rotation (degrees, either way) each body plan is drawn at.
TILT_DEG = {
    "fish": 20,
    "eel": 25,
    "shrimp": 30,
    "jelly": 25,
    "octopus": 25,
    "star": 180,
    "urchin": 180,
    "crab": 180,
    "coral": 8,
    "sponge": 6,
    "anemone": 8,
    "nudibranch": 15,
    "cucumber": 15,
}
#: Body plans that live on the bottom (placed on the sea floor when there is one).
BENTHIC = frozenset({"star", "urchin", "coral", "sponge", "anemone", "nudibranch", "crab", "cucumber"})

#: Alpha (0..255) above which a pixel counts as part of the organism for its box.
BOX_ALPHA = 80

WATER_TINT = {"blue": (0.5, 0.84, 1.0), "green": (0.62, 1.0, 0.78)}


@dataclass(frozen=True)
class Water:
    """The water a frame is seen through."""

    kind: str  # 'blue' | 'green'
    depth_m: float
    turbidity: float  # 0 clear .. 1 murky
    lights: bool  # artificial lights (ROV): colours survive depth better
    rgb: tuple[float, float, float]  # background water colour at mid-frame, 0..1

    @property
    def cast(self) -> float:
        """Strength of the colour cast on objects, 0 (none) .. 1 (full tint)."""
        strength = min(0.8, 0.2 + self.depth_m / 40.0)
        return strength * (0.5 if self.lights else 1.0)

    @property
    def light(self) -> float:
        """Brightness multiplier for objects."""
        if self.lights:
            return 0.95
        return float(max(0.4, np.exp(-self.depth_m / 90.0)))


def draw_species(species: Species, morph: int, rng: np.random.Generator) -> Image.Image:
    """RGBA sprite of ``species`` in colour morph ``morph``, canonical pose, ~180 px.

    Raises InvalidInput for an unknown body plan or morph index.
    """
    drawer = BODY_PLANS.get(species.body_plan)
    if drawer is None:
        raise InvalidInput(f"unknown body plan {species.body_plan!r}; valid: {', '.join(sorted(BODY_PLANS))}")
    if not 0 <= morph < len(species.morphs):
        raise InvalidInput(f"{species.name} has {len(species.morphs)} morph(s), not index {morph}")
    return drawer(species, species.morphs[morph], rng)


def pose(sprite: Image.Image, body_plan: str, long_side: float, rng: np.random.Generator) -> Image.Image:
    """Flip, rotate and resize so the opaque part's longer side is ``long_side`` px."""
    img = sprite.convert("RGBa")  # premultiplied: no dark fringes when resampling
    pre = min(1.0, 1.6 * long_side / max(img.size))  # rotate at ~1.6x the final size: cheaper
    if pre < 1.0:
        img = img.resize(
            (max(1, round(img.size[0] * pre)), max(1, round(img.size[1] * pre))),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    tilt = TILT_DEG.get(body_plan, 15)
    img = img.rotate(float(rng.uniform(-tilt, tilt)), resample=Image.Resampling.BICUBIC, expand=True)
    box = img.getchannel("a").getbbox()
    if box is not None:
        img = img.crop(box)
    scale = long_side / max(img.size)
    size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return img.convert("RGBA")


def tint(sprite: Image.Image, water: Water, haze: float, shading: float = 0.18) -> Image.Image:
    """Light from above (top rows x(1+shading), bottom x(1-shading)), colour cast,
    light level and haze (blend toward the water colour, 0..1)."""
    arr = np.asarray(sprite, dtype=np.float32)
    rgb = arr[..., :3] / 255.0
    top_down = np.linspace(1.0 + shading, 1.0 - shading, arr.shape[0], dtype=np.float32)
    cast = 1.0 - water.cast * (1.0 - np.asarray(WATER_TINT[water.kind], dtype=np.float32))
    rgb = rgb * top_down[:, None, None] * cast * water.light
    rgb = rgb * (1.0 - haze) + np.asarray(water.rgb, dtype=np.float32) * haze
    arr[..., :3] = np.clip(rgb * 255.0, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGBA")


def organism_sprite(
    species: Species,
    morph: int,
    long_side: float,
    water: Water,
    rng: np.random.Generator,
    haze: float = 0.1,
    defocus: float = 0.0,
) -> Image.Image:
    """Draw, pose, tint and (``defocus`` > 0: Gaussian radius in px) blur one organism."""
    img = pose(draw_species(species, morph, rng), species.body_plan, long_side, rng)
    img = tint(img, water, haze)
    if defocus > 0:
        pad = int(np.ceil(defocus * 2))
        padded = Image.new("RGBA", (img.size[0] + 2 * pad, img.size[1] + 2 * pad), (0, 0, 0, 0))
        padded.paste(img, (pad, pad))
        img = padded.convert("RGBa").filter(ImageFilter.GaussianBlur(defocus)).convert("RGBA")
    return img


def opaque_box(sprite: Image.Image) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels with alpha >= BOX_ALPHA (x1, y1 exclusive), or None."""
    return sprite.getchannel("A").point(_BOX_LUT).getbbox()


_BOX_LUT = [255 if v >= BOX_ALPHA else 0 for v in range(256)]
