"""Drawers for the reef's swimming body plans: fish, eel, shrimp, jelly, octopus.

Each drawer takes a species, one of its colour morphs and a generator and
returns a transparent RGBA sprite in canonical pose (head to the right, or
bell/mantle up), long side about 180 px. Proportions come from
``species.shape`` with a few percent of per-individual variation.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops

from index.sources.reef.catalogue import Morph, Species
from index.sources.reef.paint import Sprite, draw_tube, jitter, mix, pattern, shade, tube


def _colours(morph: Morph, rng: np.random.Generator):
    return jitter(morph.body, rng), jitter(morph.pattern, rng, 0.05), jitter(morph.accent, rng, 0.05)


def _eye(spr: Sprite, x: float, y: float, r: float) -> None:
    spr.ellipse((x - r, y - r, x + r, y + r), (236, 232, 214))
    spr.ellipse((x - r * 0.6, y - r * 0.6, x + r * 0.6, y + r * 0.6), (12, 12, 16))


def fish(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    length = 180.0
    bl = length * 0.74
    bh = bl * s.get("aspect", 0.45) * rng.uniform(0.94, 1.06)
    tl = length * 0.24
    fin = s.get("dorsal", 0.5) * bh * rng.uniform(0.9, 1.1)
    margin = max(fin, bh * 0.4) + 8
    spr = Sprite(length + 14, bh + 2 * margin)
    cy = margin + bh / 2
    bx0 = 6 + tl
    bx1 = bx0 + bl
    px, tx, ts = bx0 + bl * 0.1, 6.0, bh * 0.55
    fin_c = shade(body_c, 0.82)
    tail = s.get("tail", "fork")
    if tail == "fork":
        spr.polygon(
            [(px, cy - bh * 0.14), (tx, cy - ts), (tx + tl * 0.45, cy), (tx, cy + ts), (px, cy + bh * 0.14)], acc_c, 240
        )
    elif tail == "lunate":
        spr.polygon(
            [
                (px, cy - bh * 0.1),
                (tx, cy - ts * 1.15),
                (tx + tl * 0.35, cy - ts * 0.45),
                (tx + tl * 0.55, cy),
                (tx + tl * 0.35, cy + ts * 0.45),
                (tx, cy + ts * 1.15),
                (px, cy + bh * 0.1),
            ],
            acc_c,
            240,
        )
    elif tail == "truncate":
        spr.polygon([(px, cy - bh * 0.16), (tx, cy - ts * 0.8), (tx, cy + ts * 0.8), (px, cy + bh * 0.16)], acc_c, 240)
    else:  # round
        spr.polygon(
            [
                (px, cy - bh * 0.18),
                (tx + tl * 0.5, cy - ts * 0.4),
                (tx + tl * 0.5, cy + ts * 0.4),
                (px, cy + bh * 0.18),
            ],
            acc_c,
            240,
        )
        spr.ellipse((tx + tl * 0.1, cy - ts * 0.6, tx + tl * 1.1, cy + ts * 0.6), acc_c, 240)
    spr.polygon(
        [
            (bx0 + 0.2 * bl, cy - bh * 0.38),
            (bx0 + 0.36 * bl, cy - bh * 0.5 - fin),
            (bx0 + 0.55 * bl, cy - bh * 0.5 - fin * 0.75),
            (bx0 + 0.8 * bl, cy - bh * 0.36),
        ],
        fin_c,
        235,
    )
    spr.polygon(
        [
            (bx0 + 0.22 * bl, cy + bh * 0.34),
            (bx0 + 0.32 * bl, cy + bh * 0.5 + fin * 0.45),
            (bx0 + 0.52 * bl, cy + bh * 0.4),
        ],
        fin_c,
        235,
    )
    spr.polygon(
        [
            (bx0 + 0.58 * bl, cy + bh * 0.4),
            (bx0 + 0.56 * bl, cy + bh * 0.5 + fin * 0.4),
            (bx0 + 0.7 * bl, cy + bh * 0.42),
        ],
        fin_c,
        235,
    )
    body = spr.ellipse((bx0, cy - bh / 2, bx1, cy + bh / 2), body_c)
    if sp.pattern == "vbands":
        pattern(spr, body, "vbands", pat_c, rng, s.get("bands", 3), s.get("band_w", 0.1))
    elif sp.pattern == "hstripes":
        pattern(spr, body, "hstripes", pat_c, rng, s.get("stripes", 3), s.get("stripe_w", 0.09))
    else:
        pattern(spr, body, sp.pattern, pat_c, rng, 12, 0.1)
    gx = bx1 - 0.3 * bl
    spr.lines([[(gx, cy - bh * 0.3), (gx - bh * 0.08, cy), (gx, cy + bh * 0.3)]], shade(body_c, 0.7), 2.5, 160)
    spr.polygon(
        [(gx - 4, cy + bh * 0.05), (gx - bl * 0.16, cy + bh * 0.02), (gx - bl * 0.12, cy + bh * 0.2)],
        shade(fin_c, 0.8),
        170,
    )
    _eye(spr, bx1 - 0.13 * bl, cy - 0.1 * bh, bh * 0.1 * s.get("eye", 1.0))
    spr.lines([[(bx1 - 2, cy + bh * 0.08), (bx1 - bl * 0.06, cy + bh * 0.1)]], shade(body_c, 0.5), 2)
    return spr.img


def eel(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    girth = 180 * s.get("girth", 0.11)
    amp = 180 * s.get("wave", 0.15) * rng.uniform(0.8, 1.2)
    spr = Sprite(220, 2 * amp + 2 * girth + 16)
    cy, phase = spr.size[1] / 2, rng.uniform(0, 2 * math.pi)
    t = np.linspace(0, 1, 60)
    xs = 12 + 190 * t
    ys = cy + amp * np.sin(2 * math.pi * 1.3 * t + phase) * (1 - 0.6 * t)
    pts = list(zip(xs, ys, strict=False))
    widths = girth * (0.25 + 0.75 * np.sqrt(t))
    k = len(t) * 3 // 4
    draw_tube(spr, pts[:k], list(widths[:k] + 7), acc_c, 220)
    body = draw_tube(spr, pts, list(widths), body_c)
    pattern(spr, body, sp.pattern, pat_c, rng, 14, 0.12)
    hx, hy = pts[-1]
    _eye(spr, hx - girth * 0.45, hy - girth * 0.15, girth * 0.12)
    spr.lines([[(hx + girth * 0.3, hy + girth * 0.1), (hx - girth * 0.3, hy + girth * 0.2)]], shade(body_c, 0.4), 2)
    return spr.img


def shrimp(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    curl = s.get("curl", 0.35) * rng.uniform(0.85, 1.15)
    spr = Sprite(220, 150)
    t = np.linspace(0, 1, 40)
    xs = 180 - 140 * t
    ys = 70 - 30 * t + curl * 120 * t**2
    pts = list(zip(xs, ys, strict=False))
    widths = 42 * (1 - 0.6 * t) * (1 - 0.25 * np.exp(-(((t - 0.36) / 0.04) ** 2)))
    # antennae and legs behind the body
    ant = 140 * s.get("antennae", 1.2)
    for sign in (-1, 1):
        u = np.linspace(0, 1, 16)
        spr.lines(
            [list(zip(190 + 20 * u - ant * 0.5 * u**2, 56 - ant * 0.35 * u * (1 + 0.2 * sign), strict=False))],
            acc_c,
            2,
            220,
        )
    legs = [[(xs[i], ys[i] + widths[i] * 0.3), (xs[i] + 6, ys[i] + widths[i] * 0.5 + 22)] for i in (3, 6, 9, 12, 15)]
    spr.lines(legs, shade(body_c, 0.85), 3, 230)
    spr.polygon([(xs[0], ys[0] - 8), (xs[0] + 28, ys[0] - 14), (xs[0], ys[0] + 2)], body_c, 240)
    end = np.array(pts[-1])
    d = end - np.array(pts[-3])
    d /= np.linalg.norm(d)
    n = np.array([-d[1], d[0]])
    for a in (-0.7, 0.0, 0.7):
        v = d * math.cos(a) + n * math.sin(a)
        tip, side = end + v * 26, np.array([-v[1], v[0]]) * 7
        spr.polygon([tuple(end + side), tuple(tip), tuple(end - side)], acc_c if a == 0 else body_c, 235)
    body = draw_tube(spr, pts, list(widths), body_c, 240)
    segs = s.get("segments", 6)
    marks = np.linspace(0.36, 0.95, segs + 1)
    if sp.pattern == "vbands":
        for i in range(0, segs, 2):
            sel = (t >= marks[i]) & (t <= marks[i + 1])
            band, bd = spr.mask()
            bd.polygon(tube([p for p, k in zip(pts, sel, strict=False) if k], list(widths[sel] + 4)), fill=255)
            spr.fill(ImageChops.darker(band, body), pat_c)
        band, bd = spr.mask()
        bd.rectangle((xs[12], 0, 220, 150), fill=255)  # carapace band
        spr.fill(ImageChops.darker(band, body), pat_c)
    else:
        pattern(spr, body, sp.pattern, pat_c, rng, 12, 0.14)
    lines = []
    for m in marks:
        i = int(m * (len(t) - 1))
        lines.append([(xs[i] + 3, ys[i] - widths[i] / 2), (xs[i] - 3, ys[i] + widths[i] / 2)])
    spr.lines(lines, shade(body_c, 0.6), 1.5, 150)
    _eye(spr, xs[2], ys[2] - widths[2] * 0.3, 6)
    return spr.img


def jelly(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    bw = 160 * rng.uniform(0.94, 1.04)
    bell = bw * s.get("bell", 0.6) * rng.uniform(0.92, 1.08)
    tent = bw * s.get("tent_len", 1.0)
    spr = Sprite(bw + 24, bell + tent + 20)
    cx, top = spr.size[0] / 2, 6
    rim = top + bell
    n = s.get("tentacles", 10)
    segs = []
    for i in range(n):
        x = cx - bw * 0.45 + bw * 0.9 * i / max(1, n - 1)
        ph, amp, ln = rng.uniform(0, 2 * math.pi), rng.uniform(3, 8), tent * rng.uniform(0.7, 1.0)
        u = np.linspace(0, ln, 16)
        segs.append(list(zip(x + amp * np.sin(ph + u * 0.07), rim - 4 + u, strict=False)))
    spr.lines(segs, acc_c, 4.5, 215)
    for j in range(s.get("oral", 0)):
        x0 = cx + (j - (s["oral"] - 1) / 2) * 10
        u = np.linspace(0, tent * 0.55, 14)
        pts = list(zip(x0 + 6 * np.sin(u * 0.09 + j), rim - 8 + u, strict=False))
        draw_tube(spr, pts, list(np.linspace(14, 4, len(u))), pat_c, 200)
    m, d = spr.mask()
    d.chord((cx - bw / 2, top, cx + bw / 2, top + 2 * bell), 180, 360, fill=255)
    d.ellipse((cx - bw / 2, rim - bell * 0.12, cx + bw / 2, rim + bell * 0.1), fill=255)
    spr.fill(m, body_c, 215)
    if sp.pattern == "rings":
        pattern(spr, m, "rings", pat_c, rng, 3, 0.1, 200)
    else:
        inner, di = spr.mask()
        for k in range(4):  # four gonad loops seen through the bell
            ax = cx + (k - 1.5) * bw * 0.16
            di.ellipse((ax - bw * 0.07, rim - bell * 0.5, ax + bw * 0.07, rim - bell * 0.12), outline=255, width=5)
        spr.fill(inner, pat_c, 220)
        pattern(spr, m, "radial", pat_c, rng, 14, 0.025, 120)
    spr.ellipse((cx - bw / 2, rim - bell * 0.06, cx + bw / 2, rim + bell * 0.08), mix(body_c, acc_c, 0.5), 200)
    spr.ellipse((cx - bw * 0.3, top + bell * 0.15, cx - bw * 0.05, top + bell * 0.35), (255, 255, 255), 70)
    return spr.img


def octopus(sp: Species, morph: Morph, rng: np.random.Generator) -> Image.Image:
    s = sp.shape
    body_c, pat_c, acc_c = _colours(morph, rng)
    spr = Sprite(200, 200)
    mw = 200 * s.get("mantle", 0.42) * 0.5
    head_y = 95
    arms = []
    for i in range(8):
        a = math.radians(15 + 150 * i / 7 + rng.normal(0, 6))
        curl = s.get("curl", 1.0) * rng.uniform(1.5, 3.5) * rng.choice([-1, 1])
        x, y = 100 + math.cos(a) * 20, head_y + 10
        pts = []
        for k in range(28):
            pts.append((x, y))
            a += curl * (k / 27) ** 2 * 0.12
            x, y = x + math.cos(a) * 3.4, y + math.sin(a) * 3.4
        arms.append(pts)
    body, _ = spr.mask()
    for pts in arms:
        m = draw_tube(spr, pts, list(np.linspace(15, 3, len(pts))), shade(body_c, 0.92))
        body = ImageChops.lighter(body, m)
        spr.lines([pts[4::3]], acc_c, 3, 150)
    head = spr.ellipse((100 - mw * 0.8, head_y - 26, 100 + mw * 0.8, head_y + 20), body_c)
    mantle = spr.ellipse((100 - mw, 10, 100 + mw, head_y - 6), body_c)
    for m in (head, mantle):
        body = ImageChops.lighter(body, m)
    pattern(spr, body, "spots", pat_c, rng, s.get("spots", 20), 0.05)
    for sx in (-1, 1):
        _eye(spr, 100 + sx * mw * 0.55, head_y - 10, 7)
    return spr.img


SWIMMERS = {"fish": fish, "eel": eel, "shrimp": shrimp, "jelly": jelly, "octopus": octopus}
