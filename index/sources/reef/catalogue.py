"""The synthetic reef's catalogue of made-up species: body plan, pattern, colour morphs, proportions,
depth and size ranges. Fixed (names do not change with the seed); a reef of ``n`` species takes the
first ``n`` entries, ordered so that any prefix mixes body plans. Fine-grained pairs (same genus,
tiny difference) and siblings used as "near" held-out species are deliberate, see the comments in
``CATALOGUE``. Which species a reef holds out is :mod:`index.sources.reef.species`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[int, int, int]


def _rgb(hex_colour: str) -> RGB:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


@dataclass(frozen=True)
class Morph:
    """One colour morph: body, pattern and accent (fins, tips, tentacles) colours."""

    body: RGB
    pattern: RGB
    accent: RGB


def _m(body: str, pattern: str, accent: str) -> Morph:
    return Morph(_rgb(body), _rgb(pattern), _rgb(accent))


@dataclass(frozen=True)
class Species:
    """A made-up species; ``shape`` keys are read by its body plan's drawer."""

    genus: str
    epithet: str
    family: str
    body_plan: str
    pattern: str  # plain | hstripes | vbands | spots | eyespot | rim | radial | rings | twotone | reticulate
    morphs: tuple[Morph, ...]
    depth_m: tuple[float, float]  # (shallowest, deepest) where it is found
    shape: dict = field(default_factory=dict, hash=False, compare=False)
    size_px: tuple[float, float] = (32.0, 104.0)  # long side of the box on a 240-px-high frame

    @property
    def name(self) -> str:
        return f"{self.genus} {self.epithet}"


# Order matters: a reef of n species uses the first n. Default n=16 holds out,
# walking back from the end: 15 (near: sibling of 0 and 1), 14 (far: the only
# octopus), 13 and 12 (other: body plan known, genus not).
CATALOGUE: tuple[Species, ...] = (
    # 0/1: fine-grained pair, identical but for the tail colour
    Species(
        "Glaucichthys",
        "lineatus",
        "Glaucichthyidae",
        "fish",
        "hstripes",
        (_m("f2c630", "1d1d28", "f2c630"),),
        (2, 30),
        {"aspect": 0.42, "tail": "fork", "dorsal": 0.55, "stripes": 3, "stripe_w": 0.09},
    ),
    Species(
        "Glaucichthys",
        "melanurus",
        "Glaucichthyidae",
        "fish",
        "hstripes",
        (_m("f2c630", "1d1d28", "1d1d28"),),
        (5, 40),
        {"aspect": 0.42, "tail": "fork", "dorsal": 0.55, "stripes": 3, "stripe_w": 0.09},
    ),
    # 2: two colour morphs (intra-class modes)
    Species(
        "Auropinna",
        "fasciata",
        "Glaucichthyidae",
        "fish",
        "vbands",
        (_m("f26b1d", "f8f4ea", "1a1a1a"), _m("5a2a1a", "f8f4ea", "1a1a1a")),
        (1, 18),
        {"aspect": 0.55, "tail": "round", "dorsal": 0.45, "bands": 3, "band_w": 0.1},
    ),
    Species(
        "Umbrellia",
        "lucida",
        "Medusellidae",
        "jelly",
        "radial",
        (_m("f4a6c8", "c2307a", "f7c9de"),),
        (0, 60),
        {"bell": 0.62, "tentacles": 10, "tent_len": 1.1, "oral": 4},
        (40, 104),
    ),
    # 4: two colour morphs
    Species(
        "Pentastra",
        "rubra",
        "Pentastridae",
        "star",
        "spots",
        (_m("d8322b", "f6e3c6", "a81f1a"), _m("7b2d8e", "f2d7ef", "5a1e6a")),
        (5, 80),
        {"arms": 5, "inner": 0.34, "sharp": 1.6, "spots": 28},
    ),
    Species(
        "Echinopila",
        "nigra",
        "Echinopilidae",
        "urchin",
        "plain",
        (_m("2a1f33", "4b3b5c", "17121c"),),
        (2, 40),
        {"test": 0.3, "spine": 0.62, "spines": 80, "spine_w": 2.4},
    ),
    Species(
        "Cariscus",
        "pictus",
        "Cariscidae",
        "shrimp",
        "vbands",
        (_m("e9e4dc", "d0202a", "d0202a"),),
        (10, 90),
        {"curl": 0.35, "segments": 6, "antennae": 1.3},
        (34, 96),
    ),
    Species(
        "Ramicora",
        "flava",
        "Ramicoridae",
        "coral",
        "plain",
        (_m("e8c23a", "f5e79e", "fff3b8"),),
        (3, 35),
        {"depth": 4, "spread": 0.5, "thick": 15},
        (42, 104),
    ),
    Species(
        "Doliospongia",
        "purpurea",
        "Doliospongiidae",
        "sponge",
        "spots",
        (_m("8a3e9c", "5d2470", "3a1247"),),
        (15, 120),
        {"form": "barrel", "flare": 0.35, "tubes": 1},
    ),
    # 9: two colour morphs
    Species(
        "Pictolimax",
        "aureus",
        "Pictolimacidae",
        "nudibranch",
        "spots",
        (_m("2d5bd8", "ffd23a", "ff8a1c"), _m("f1f1f1", "ffd23a", "ff8a1c")),
        (5, 45),
        {"aspect": 0.3, "gills": 7, "spots": 14},
    ),
    Species(
        "Cancrella",
        "rufa",
        "Cancrellidae",
        "crab",
        "plain",
        (_m("c4481f", "e9a16a", "f4e1c8"),),
        (20, 250),
        {"wide": 1.35, "claw": 1.0},
    ),
    Species(
        "Auropinna",
        "ocellata",
        "Glaucichthyidae",
        "fish",
        "eyespot",
        (_m("3c7fcf", "14213d", "f7d44c"),),
        (10, 50),
        {"aspect": 0.5, "tail": "truncate", "dorsal": 0.35},
    ),
    # 12/13: held out "other": body plan known, genus not
    Species(
        "Cyanomedusa",
        "aurita",
        "Medusellidae",
        "jelly",
        "rings",
        (_m("8fd6f0", "2c6fb0", "d9f3ff"),),
        (20, 150),
        {"bell": 0.42, "tentacles": 16, "tent_len": 0.6, "oral": 0},
        (40, 104),
    ),
    Species(
        "Heliastra",
        "caerulea",
        "Pentastridae",
        "star",
        "radial",
        (_m("3b6fd1", "f1c14b", "23408a"),),
        (30, 200),
        {"arms": 7, "inner": 0.3, "sharp": 1.3, "spots": 0},
    ),
    # 14: held out "far": the only octopus
    Species(
        "Octopella",
        "maculata",
        "Octopellidae",
        "octopus",
        "spots",
        (_m("c86d3c", "f4d3a6", "9e4a22"),),
        (10, 100),
        {"mantle": 0.42, "curl": 1.0, "spots": 22},
    ),
    # 15: held out "near": sibling of 0/1, same plan, paler with two stripes
    Species(
        "Glaucichthys",
        "pallidus",
        "Glaucichthyidae",
        "fish",
        "hstripes",
        (_m("e6e08a", "5b5a4a", "e6e08a"),),
        (3, 38),
        {"aspect": 0.42, "tail": "fork", "dorsal": 0.55, "stripes": 2, "stripe_w": 0.08},
    ),
    # beyond the default 16
    Species(
        "Serpichthys",
        "undulatus",
        "Serpichthyidae",
        "eel",
        "reticulate",
        (_m("c8b15a", "3d3220", "8a7436"),),
        (5, 60),
        {"wave": 0.16, "girth": 0.11},
        (50, 110),
    ),
    Species(
        "Floractis",
        "viridis",
        "Floractidae",
        "anemone",
        "vbands",
        (_m("5fae62", "2f6e3b", "e87aa8"),),
        (3, 50),
        {"tentacles": 22, "tent_len": 0.55, "column": 0.5},
    ),
    Species(
        "Cucumarella",
        "papillosa",
        "Holothurellidae",
        "cucumber",
        "spots",
        (_m("6b4a33", "2f1f14", "e6b07a"),),
        (40, 300),
        {"girth": 0.3, "papillae": 9},
    ),
    Species(
        "Cariscus",
        "nitidus",
        "Cariscidae",
        "shrimp",
        "spots",
        (_m("f2ddd0", "e0322c", "f0f0f0"),),
        (50, 250),
        {"curl": 0.45, "segments": 6, "antennae": 1.0},
        (34, 96),
    ),
    Species(
        "Ramicora",
        "rosea",
        "Ramicoridae",
        "coral",
        "plain",
        (_m("e67fa7", "f6c6d9", "ffffff"),),
        (8, 45),
        {"depth": 4, "spread": 0.65, "thick": 12},
        (42, 104),
    ),
    Species(
        "Tubispongia",
        "aurantia",
        "Doliospongiidae",
        "sponge",
        "plain",
        (_m("f08a24", "b85a10", "5a2a08"),),
        (30, 150),
        {"form": "tubes", "flare": 0.1, "tubes": 3},
    ),
    Species(
        "Pictolimax",
        "lineolatus",
        "Pictolimacidae",
        "nudibranch",
        "hstripes",
        (_m("f4f1ec", "f07b1a", "f07b1a"),),
        (10, 60),
        {"aspect": 0.26, "gills": 6, "stripes": 3, "stripe_w": 0.09},
    ),
    Species(
        "Cancrella",
        "maculata",
        "Cancrellidae",
        "crab",
        "spots",
        (_m("e2c7a0", "9b3b28", "f6ead8"), _m("8c8f6e", "3e4230", "e8e4cf")),
        (60, 300),
        {"wide": 1.2, "claw": 1.3, "spots": 16},
    ),
    Species(
        "Echinopila",
        "rosea",
        "Echinopilidae",
        "urchin",
        "spots",
        (_m("d46a8c", "f6c4d2", "f3dbe3"),),
        (30, 180),
        {"test": 0.42, "spine": 0.22, "spines": 110, "spine_w": 3.0},
    ),
    Species(
        "Auropinna",
        "nigripinnis",
        "Glaucichthyidae",
        "fish",
        "twotone",
        (_m("c9d4dc", "3a4a66", "15151f"),),
        (15, 80),
        {"aspect": 0.36, "tail": "lunate", "dorsal": 0.7},
    ),
    Species(
        "Umbrellia",
        "fulva",
        "Medusellidae",
        "jelly",
        "radial",
        (_m("f0b46a", "a85a1a", "f6d6a8"),),
        (5, 90),
        {"bell": 0.7, "tentacles": 8, "tent_len": 1.3, "oral": 4},
        (40, 104),
    ),
    Species(
        "Floractis",
        "alba",
        "Floractidae",
        "anemone",
        "plain",
        (_m("ece6df", "c9bfb4", "b8a6ff"),),
        (20, 120),
        {"tentacles": 30, "tent_len": 0.45, "column": 0.45},
    ),
)

MAX_SPECIES = len(CATALOGUE)
