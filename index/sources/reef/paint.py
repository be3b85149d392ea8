"""Painting primitives shared by the reef's body-plan drawers.

Organisms are drawn on a transparent RGBA sprite at a fixed canonical scale
(long side ~180 px) and shrunk later, which antialiases them; lighting is
added after posing, so it always comes from above. Every part is a
mask ("L" image) filled with a colour by alpha compositing, so translucent
parts (jelly bells, fins) blend correctly over what is already drawn.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from index.errors import InvalidInput

RGB = tuple[int, int, int]
Point = tuple[float, float]

PATTERNS = ("plain", "hstripes", "vbands", "spots", "eyespot", "radial", "rings", "rim", "twotone", "reticulate")


def jitter(rgb: RGB, rng: np.random.Generator, amount: float = 0.07) -> RGB:
    """The colour with its brightness and each channel nudged by ~``amount``."""
    scale = 1.0 + rng.normal(0.0, amount)
    return tuple(int(np.clip(c * scale + rng.normal(0.0, 255 * amount * 0.35), 0, 255)) for c in rgb)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend: ``t=0`` gives ``a``, ``t=1`` gives ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))


def shade(rgb: RGB, factor: float) -> RGB:
    """Darker (factor < 1) or lighter (factor > 1) colour, clipped to 0..255."""
    return tuple(int(np.clip(c * factor, 0, 255)) for c in rgb)


class Sprite:
    """A transparent RGBA canvas that parts are composited onto."""

    def __init__(self, width: float, height: float) -> None:
        self.size = (int(math.ceil(width)), int(math.ceil(height)))
        self.img = Image.new("RGBA", self.size, (0, 0, 0, 0))

    def mask(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        """A fresh empty mask and a drawer for it."""
        m = Image.new("L", self.size, 0)
        return m, ImageDraw.Draw(m)

    def fill(self, mask: Image.Image, rgb: RGB, alpha: int = 255) -> None:
        """Composite ``rgb`` at opacity ``alpha`` (0..255) wherever ``mask`` is set."""
        if alpha < 255:
            mask = mask.point([v * alpha // 255 for v in range(256)])
        layer = Image.new("RGBA", self.size, tuple(rgb) + (255,))
        layer.putalpha(mask)
        self.img.alpha_composite(layer)

    def polygon(self, points: list[Point], rgb: RGB, alpha: int = 255) -> Image.Image:
        m, d = self.mask()
        d.polygon(points, fill=255)
        self.fill(m, rgb, alpha)
        return m

    def ellipse(self, box: tuple[float, float, float, float], rgb: RGB, alpha: int = 255) -> Image.Image:
        m, d = self.mask()
        d.ellipse(box, fill=255)
        self.fill(m, rgb, alpha)
        return m

    def lines(self, segments: list[list[Point]], rgb: RGB, width: float, alpha: int = 255) -> Image.Image:
        """Polylines of one width with round joints and ends."""
        m, d = self.mask()
        w = max(1, int(round(width)))
        for pts in segments:
            d.line(pts, fill=255, width=w, joint="curve")
            for x, y in (pts[0], pts[-1]):
                d.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)
        self.fill(m, rgb, alpha)
        return m


def circle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: int = 255) -> None:
    d.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def tube(points: list[Point], widths: list[float]) -> list[Point]:
    """Outline polygon of a tube of varying width along a centreline."""
    pts = np.asarray(points, dtype=np.float64)
    tangent = np.gradient(pts, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = np.asarray(widths, dtype=np.float64)[:, None] / 2
    left, right = pts + normal * half, pts - normal * half
    return [tuple(p) for p in np.concatenate([left, right[::-1]])]


def draw_tube(sprite: Sprite, points: list[Point], widths: list[float], rgb: RGB, alpha: int = 255) -> Image.Image:
    """Fill a tapered tube with rounded ends; returns its mask."""
    m, d = sprite.mask()
    d.polygon(tube(points, widths), fill=255)
    for (x, y), w in ((points[0], widths[0]), (points[-1], widths[-1])):
        circle(d, x, y, w / 2)
    sprite.fill(m, rgb, alpha)
    return m


def pattern(
    sprite: Sprite,
    body: Image.Image,
    kind: str,
    rgb: RGB,
    rng: np.random.Generator,
    count: int = 3,
    width: float = 0.1,
    alpha: int = 255,
) -> None:
    """Paint ``kind`` in ``rgb`` inside the ``body`` mask (within its bounding box).

    ``count`` is the number of stripes/bands/spots/rays, ``width`` a stripe's
    width as a fraction of the body box's height (stripes) or width (bands).
    """
    if kind not in PATTERNS:
        raise InvalidInput(f"unknown pattern {kind!r}; valid: {', '.join(PATTERNS)}")
    box = body.getbbox()
    if box is None or kind == "plain":
        return
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    pat, d = sprite.mask()
    if kind == "hstripes":
        for i in range(count):
            y = y0 + h * (i + 1) / (count + 1)
            wob = rng.normal(0, h * 0.01)
            d.rectangle((x0, y - h * width / 2 + wob, x1, y + h * width / 2 + wob), fill=255)
    elif kind == "vbands":
        for i in range(count):
            x = x0 + w * (0.12 + 0.76 * (i + 0.5) / count)
            d.polygon(
                [
                    (x - w * width / 2, y0),
                    (x + w * width / 2 + w * 0.02, y0),
                    (x + w * width / 2, y1),
                    (x - w * width / 2 - w * 0.02, y1),
                ],
                fill=255,
            )
    elif kind == "spots":
        r = max(2.0, min(w, h) * width * 0.5)
        for _ in range(count):
            circle(d, rng.uniform(x0, x1), rng.uniform(y0, y1), r * rng.uniform(0.6, 1.3))
    elif kind == "eyespot":
        ex, ey, r = x0 + w * 0.28, cy - h * 0.05, h * 0.2
        circle(d, ex, ey, r)
        sprite.fill(ImageChops.multiply(pat, body), rgb, alpha)
        pat, d = sprite.mask()
        circle(d, ex, ey, r * 0.55)
        rgb = (248, 244, 234)
    elif kind == "radial":
        for i in range(count):
            a = 2 * math.pi * i / count + rng.normal(0, 0.03)
            d.line(
                [(cx, cy), (cx + math.cos(a) * w, cy + math.sin(a) * h)], fill=255, width=max(1, int(min(w, h) * width))
            )
    elif kind == "rings":
        for i in range(1, count + 1):
            rx, ry = w * i / (2 * count + 1), h * i / (2 * count + 1)
            d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=255, width=max(1, int(min(w, h) * width * 0.5)))
    elif kind == "rim":
        inner = body.filter(ImageFilter.MinFilter(max(3, int(min(w, h) * width) | 1)))
        pat = ImageChops.subtract(body, inner)
    elif kind == "twotone":
        d.polygon([(x0, y0), (x1, y0), (x1, cy - h * 0.02), (x0, cy + h * 0.08)], fill=255)
    elif kind == "reticulate":
        step = max(6.0, min(w, h) * 0.45)
        lw = max(1, int(step * 0.18))
        for k in np.arange(-h, w + h, step):
            d.line([(x0 + k, y0), (x0 + k + h, y1)], fill=255, width=lw)
            d.line([(x0 + k, y1), (x0 + k + h, y0)], fill=255, width=lw)
    sprite.fill(ImageChops.multiply(pat, body), rgb, alpha)
