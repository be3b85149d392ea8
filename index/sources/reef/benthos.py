"""Drawers for the reef's bottom-living body plans: sea star, urchin, coral,
sponge, nudibranch, crab, anemone, sea cucumber.

Same contract as :mod:`index.sources.reef.swimmers`: species + morph +
generator -> transparent RGBA sprite in canonical pose (upright; crab and
star seen from above), long side about 180 px.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops

from index.sources.reef.catalogue import Morph, Species
from index.sources.reef.paint import Sprite, circle, draw_tube, jitter, mix, pattern, shade


def _colours(morph: Morph, rng: np.random.Generator):
    return jitter(morph.body, rng), jitter(morph.pattern, rng, 0.05), jitter(morph.accent, rng, 0.05)


def _union(a: Image.Image, b: Image.Image) -> Image.Image:
    return ImageChops.lighter(a, b)


def star(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    n, big = s.get("arms", 5), 88.0
    small = big * s.get("inner", 0.34)
    spr = Sprite(190, 190)
    c, a0 = 95.0, -math.pi / 2 + rng.normal(0, 0.1)
    arm_len = rng.uniform(0.85, 1.0, n)
    theta = np.linspace(0, 2 * math.pi, 360, endpoint=False)
    k = np.round((theta - a0) * n / (2 * math.pi)).astype(int) % n
    prof = ((1 + np.cos(n * (theta - a0))) / 2) ** s.get("sharp", 2.0)
    rad = small + (big * arm_len[k] - small) * prof
    body = spr.polygon(list(zip(c + rad * np.cos(theta), c + rad * np.sin(theta), strict=False)), body_c)
    tips = [
        (
            c + big * arm_len[i] * 0.85 * math.cos(a0 + 2 * math.pi * i / n),
            c + big * arm_len[i] * 0.85 * math.sin(a0 + 2 * math.pi * i / n),
        )
        for i in range(n)
    ]
    if sp.pattern == "radial":
        rays, d = spr.mask()
        for tip in tips:
            d.line([(c, c), tip], fill=255, width=int(small * 0.45))
        spr.fill(ImageChops.darker(rays, body), pat_c)
    pattern(spr, body, "spots", shade(body_c, 0.75), rng, 60, 0.04, 170)  # tubercle texture
    if sp.pattern == "spots":
        pattern(spr, body, "spots", pat_c, rng, s.get("spots", 24), 0.07)
    spr.ellipse((c - small * 0.55, c - small * 0.55, c + small * 0.55, c + small * 0.55), acc_c)
    return spr.img


def urchin(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(190, 190)
    c, rt = 95.0, 180 * s.get("test", 0.3) / 2 * 1.2
    sl = 180 * s.get("spine", 0.5) / 2 * 1.1
    n, w = s.get("spines", 80), s.get("spine_w", 2.5)
    angles = rng.uniform(0, 2 * math.pi, n)
    lengths = rt + sl * rng.uniform(0.7, 1.0, n)

    def spines(sel, start):
        return [
            [(c + math.cos(a) * start, c + math.sin(a) * start), (c + math.cos(a) * ln, c + math.sin(a) * ln)]
            for a, ln in zip(angles[sel], lengths[sel], strict=False)
        ]

    half = np.arange(n) % 2 == 0
    spr.lines(spines(half, rt * 0.5), acc_c, w)
    body = spr.ellipse((c - rt, c - rt, c + rt, c + rt), body_c)
    pattern(spr, body, sp.pattern, pat_c, rng, 30, 0.09)
    pattern(spr, body, "radial", shade(body_c, 0.7), rng, 10, 0.04, 150)
    spr.lines(spines(~half, rt * 0.3), mix(acc_c, body_c, 0.25), w)
    return spr.img


def coral(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(200, 185)
    m, d = spr.mask()
    tips = []
    spread, thick = s.get("spread", 0.5), s.get("thick", 10)

    def branch(x, y, angle, length, width, depth):
        x2, y2 = x + math.cos(angle) * length, y + math.sin(angle) * length
        d.line([(x, y), (x2, y2)], fill=255, width=max(2, int(width)))
        circle(d, x2, y2, width / 2)
        if depth == 0:
            tips.append((x2, y2, width))
            return
        for side in (-1, 1):
            branch(
                x2,
                y2,
                angle + side * spread * rng.uniform(0.6, 1.2) + rng.normal(0, 0.1),
                length * rng.uniform(0.68, 0.82),
                width * 0.78,
                depth - 1,
            )

    branch(100, 182, -math.pi / 2 + rng.normal(0, 0.08), 48, thick, s.get("depth", 4))
    spr.fill(m, body_c)
    pattern(spr, m, "spots", pat_c, rng, 120, 0.02, 200)
    tm, td = spr.mask()
    for x, y, w in tips:
        circle(td, x, y, w * 0.62)
    spr.fill(tm, acc_c)
    return spr.img


def sponge(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(170, 190)
    n = s.get("tubes", 1)
    flare = s.get("flare", 0.3)
    body, _ = spr.mask()
    openings = []
    for i in range(n):
        wb = (80 if n == 1 else 38) * rng.uniform(0.92, 1.08)
        hh = (160 if n == 1 else 110 + 60 * ((i + 1) % 2)) * rng.uniform(0.85, 1.0)
        cx = 85 + (i - (n - 1) / 2) * 44 + rng.normal(0, 2)
        tilt = (i - (n - 1) / 2) * 10
        wt = wb * (1 + flare)
        t = np.linspace(0, 1, 20)
        half = (wb + (wt - wb) * t) / 2 + wb * 0.12 * np.sin(math.pi * t)
        ys, xs = 186 - hh * t, cx + tilt * t
        outline = list(zip(xs - half, ys, strict=False)) + list(zip(xs + half, ys, strict=False))[::-1]
        body = _union(body, spr.polygon(outline, shade(body_c, 1.0 - 0.06 * i)))
        openings.append((xs[-1], ys[-1], half[-1]))
    pattern(spr, body, "spots" if sp.pattern == "spots" else "plain", pat_c, rng, 40, 0.06)
    ridges, d = spr.mask()
    for x, y, r in openings:
        for f in (-0.55, 0.0, 0.55):
            d.line([(x + f * r, y + 6), (x + f * r * 0.8, 186)], fill=255, width=3)
    spr.fill(ImageChops.darker(ridges, body), shade(body_c, 0.8), 120)
    for x, y, r in openings:
        spr.ellipse((x - r, y - r * 0.3, x + r, y + r * 0.3), shade(body_c, 1.15))
        spr.ellipse((x - r * 0.75, y - r * 0.2, x + r * 0.75, y + r * 0.2), acc_c)
    return spr.img


def nudibranch(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    bh = 180 * s.get("aspect", 0.3) * rng.uniform(0.92, 1.08)
    spr = Sprite(200, bh + 50)
    cy = 34 + bh / 2
    spr.ellipse((22, cy + bh * 0.05, 178, cy + bh * 0.6), shade(mix(body_c, acc_c, 0.3), 0.8), 230)  # foot
    rows = [
        [(40 + 6 * math.cos(a), cy - bh * 0.3), (40 + 26 * math.cos(a), cy - bh * 0.3 - 26 * math.sin(a))]
        for a in np.linspace(0.4, math.pi - 0.4, s.get("gills", 7))
    ]
    spr.lines(rows, acc_c, 4)
    for x in (150, 166):
        spr.lines([[(x, cy - bh * 0.3), (x + 8, cy - bh * 0.3 - 26)]], acc_c, 7)
    body = spr.ellipse((14, cy - bh / 2, 186, cy + bh / 2), body_c)
    if sp.pattern == "hstripes":
        pattern(spr, body, "hstripes", pat_c, rng, s.get("stripes", 3), s.get("stripe_w", 0.09))
    else:
        pattern(spr, body, sp.pattern, pat_c, rng, s.get("spots", 14), 0.1)
    pattern(spr, body, "rim", acc_c, rng, 1, 0.12)
    return spr.img


def crab(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(200, 190)
    cx, cy = 100.0, 110.0
    rx, ry = 45 * s.get("wide", 1.3), 36.0
    leg_c = shade(body_c, 0.85)
    legs = []
    for side in (-1, 1):
        for i in range(4):
            a = math.radians(-10 + 28 * i)
            x0, y0 = cx + side * rx * 0.85 * math.cos(a), cy + ry * 0.7 * math.sin(a)
            kx, ky = x0 + side * 34, y0 - 10 + 8 * i
            legs.append([(x0, y0), (kx, ky), (kx + side * 14, ky + 30 + 4 * i)])
    spr.lines(legs, leg_c, 7)
    cl = s.get("claw", 1.0)
    for side in (-1, 1):
        sx, sy = cx + side * rx * 0.55, cy - ry * 0.75
        ex, ey = cx + side * rx * 0.95, cy - ry * 1.6
        spr.lines([[(sx, sy), (ex, ey)]], leg_c, 9)
        claw_c = mix(body_c, acc_c, 0.3)
        spr.lines(
            [
                [(ex - side * 4, ey - 14 * cl), (ex - side * 10 * cl, ey - 36 * cl)],
                [(ex + side * 6, ey - 12 * cl), (ex + side * 5, ey - 32 * cl)],
            ],
            shade(claw_c, 0.55),
            6,
        )
        spr.ellipse((ex - 13 * cl, ey - 20 * cl, ex + 13 * cl, ey + 8), claw_c)
    for side in (-1, 1):
        spr.lines([[(cx + side * 10, cy - ry * 0.8), (cx + side * 15, cy - ry * 1.2)]], leg_c, 4)
        spr.ellipse((cx + side * 15 - 4, cy - ry * 1.2 - 4, cx + side * 15 + 4, cy - ry * 1.2 + 4), (15, 15, 15))
    body = spr.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), body_c)
    pattern(spr, body, sp.pattern, pat_c, rng, s.get("spots", 12), 0.14)
    spr.ellipse((cx - rx * 0.5, cy - ry * 0.55, cx + rx * 0.5, cy + ry * 0.2), shade(body_c, 1.1), 90)
    return spr.img


def anemone(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(190, 185)
    cx, disc_y = 95.0, 180 - 180 * s.get("column", 0.5) * 0.55
    n, tl = s.get("tentacles", 24), 180 * s.get("tent_len", 0.5)
    tips = []
    for i in range(n):
        a = math.radians(-172 + 164 * i / max(1, n - 1) + rng.normal(0, 3))
        bend = rng.normal(0, 0.25)
        u = np.linspace(0, 1, 10)
        x0 = cx + 34 * math.cos(a) * 0.9
        ang = a + bend * u
        pts = list(
            zip(
                x0 + np.cumsum(np.cos(ang)) * tl * rng.uniform(0.75, 1.0) / 10,
                disc_y + np.cumsum(np.sin(ang)) * tl * rng.uniform(0.75, 1.0) / 10,
                strict=False,
            )
        )
        draw_tube(spr, pts, list(np.linspace(10, 6, 10)), mix(body_c, acc_c, 0.3))
        tips.append(pts[-1])
    tm, td = spr.mask()
    for x, y in tips:
        circle(td, x, y, 4.5)
    spr.fill(tm, acc_c)
    col = spr.polygon([(cx - 38, 182), (cx + 38, 182), (cx + 30, disc_y), (cx - 30, disc_y)], body_c)
    pattern(spr, col, sp.pattern, pat_c, rng, 5, 0.08)
    spr.ellipse((cx - 38, disc_y - 9, cx + 38, disc_y + 9), pat_c)
    spr.ellipse((cx - 8, disc_y - 3, cx + 8, disc_y + 3), shade(pat_c, 0.5))
    return spr.img


def cucumber(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    girth = 180 * s.get("girth", 0.3) * rng.uniform(0.9, 1.1)
    spr = Sprite(200, girth + 40)
    cy = 22 + girth / 2
    t = np.linspace(0, 1, 30)
    bow = rng.uniform(-8, 8)
    pts = list(zip(16 + 168 * t, cy + bow * np.sin(math.pi * t), strict=False))
    widths = girth * (0.55 + 0.45 * np.sin(math.pi * (0.1 + 0.8 * t)))
    pm, pd = spr.mask()
    for i in np.linspace(2, 27, s.get("papillae", 9)).astype(int):
        x, y = pts[i][0] + rng.normal(0, 3), pts[i][1] - widths[i] / 2
        pd.polygon([(x - 6, y + 6), (x, y - 12), (x + 6, y + 6)], fill=255)
    spr.fill(pm, acc_c)
    body = draw_tube(spr, pts, list(widths), body_c)
    pattern(spr, body, sp.pattern, pat_c, rng, 40, 0.06)
    for i in np.linspace(2, 27, s.get("papillae", 9)).astype(int):
        x, y = pts[i][0], pts[i][1] - widths[i] * 0.2
        spr.ellipse((x - 4, y - 4, x + 4, y + 4), acc_c, 200)
    spr.lines([[(pts[-1][0] + widths[-1] * 0.3, pts[-1][1] + d) for d in (-8, 8)]], acc_c, 4)
    return spr.img


BENTHOS = {
    "star": star,
    "urchin": urchin,
    "coral": coral,
    "sponge": sponge,
    "nudibranch": nudibranch,
    "crab": crab,
    "anemone": anemone,
    "cucumber": cucumber,
}
