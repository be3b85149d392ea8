"""Which of the synthetic reef's made-up species a reef of ``n`` holds out, and their made-up lineages.

The species themselves (body plan, pattern, morphs, depth range) are the fixed catalogue of
:mod:`index.sources.reef.catalogue`; a reef of ``n`` species takes its first ``n`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.errors import InvalidInput
from index.sources.reef.catalogue import CATALOGUE, MAX_SPECIES, Species

#: The made-up ranks above family, by body plan: (order, class, phylum); kingdom Animalia. Body
#: plans that share a class or phylum are related (crab and shrimp, star and urchin), so every
#: rank of the taxonomic distance means something on the reef.
KINGDOM = "Animalia"
HIGHER_TAXA: dict[str, tuple[str, str, str]] = {
    "fish": ("Pinnatiformes", "Pinnatia", "Chordata"),
    "eel": ("Serpentiformes", "Pinnatia", "Chordata"),
    "jelly": ("Medusellida", "Scyphozoella", "Cnidaria"),
    "anemone": ("Actiniella", "Anthozoella", "Cnidaria"),
    "coral": ("Ramicorida", "Anthozoella", "Cnidaria"),
    "star": ("Astrellida", "Asteroidella", "Echinodermata"),
    "urchin": ("Echinellida", "Echinoidella", "Echinodermata"),
    "cucumber": ("Holothurellida", "Holothuroidella", "Echinodermata"),
    "shrimp": ("Cariscida", "Malacostracella", "Arthropoda"),
    "crab": ("Cancrellida", "Malacostracella", "Arthropoda"),
    "nudibranch": ("Nudibranchiella", "Gastropodella", "Mollusca"),
    "octopus": ("Octopellida", "Cephalopodella", "Mollusca"),
    "sponge": ("Doliospongida", "Demospongiella", "Porifera"),
}


def lineage(sp: Species) -> dict[str, str]:
    """The made-up lineage of ``sp`` at the 7 standard ranks (rank -> name)."""
    order, class_, phylum = HIGHER_TAXA[sp.body_plan]
    return {
        "kingdom": KINGDOM,
        "phylum": phylum,
        "class": class_,
        "order": order,
        "family": sp.family,
        "genus": sp.genus,
        "species": sp.name,
    }


@dataclass(frozen=True)
class ReefSpecies:
    """A species of one reef: its catalogue entry, category id and held-out flag."""

    category_id: int
    species: Species
    holdout: bool
    holdout_kind: str | None  # 'near' | 'far' | 'other' | None when not held out


def _kind(sp: Species, known: list[Species]) -> str:
    if sp.body_plan not in {k.body_plan for k in known}:
        return "far"
    if sp.genus in {k.genus for k in known}:
        return "near"
    return "other"


def select_species(n: int, holdout: int) -> list[ReefSpecies]:
    """The first ``n`` catalogue species, ``holdout`` of them flagged held out.

    Held out, in this order: a "near" species (the last whose genus has another
    member in the reef), a "far" one (the last whose body plan is unique in the
    reef), then others walking back from the end, never the near one's last
    known sibling. Kinds are then assigned by definition: far = body plan no
    known species has, near = genus a known species has, else other.
    Raises InvalidInput unless 1 <= n <= MAX_SPECIES and 0 <= holdout < n.
    """
    if not 1 <= n <= MAX_SPECIES:
        raise InvalidInput(f"species must be between 1 and {MAX_SPECIES}, got {n}")
    if not 0 <= holdout < n:
        raise InvalidInput(f"holdout must be between 0 and species - 1 = {n - 1}, got {holdout}")
    chosen = list(CATALOGUE[:n])
    genus_count = {g: sum(s.genus == g for s in chosen) for g in {s.genus for s in chosen}}
    plan_count = {p: sum(s.body_plan == p for s in chosen) for p in {s.body_plan for s in chosen}}
    near = next((i for i in reversed(range(n)) if genus_count[chosen[i].genus] > 1), None)
    far = next((i for i in reversed(range(n)) if plan_count[chosen[i].body_plan] == 1 and i != near), None)
    order = [i for i in (near, far) if i is not None]
    rest = [i for i in reversed(range(n)) if i not in order]
    if near is not None:  # the near one's first sibling is held out last
        keep = min(j for j in range(n) if j != near and chosen[j].genus == chosen[near].genus)
        rest = [j for j in rest if j != keep] + [keep]
    order += rest
    held = set(order[:holdout])
    known = [s for i, s in enumerate(chosen) if i not in held]
    return [ReefSpecies(i + 1, s, i in held, _kind(s, known) if i in held else None) for i, s in enumerate(chosen)]
