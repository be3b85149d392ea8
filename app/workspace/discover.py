"""Discover: group the crops the current model answers ``unknown`` into candidate species, and name one.

The steps, each a call into a library:

1. **select**: the catalog crops a ``--where`` filter allows (all by default) with a stored vector, never
   those the model trained or calibrated on (train, val) nor species-add examples (support), or
   the files of ``--images`` embedded now; the engine judges them (the stored decision, both spaces'
   rule where the model has two, :mod:`app.workspace.spaces`) and keeps those answered unknown;
2. **cluster**: :func:`index.scoring.clustering.cluster_vectors` (HDBSCAN) in the chosen space;
   (exemplars: the members nearest the centre, from distinct near-duplicate groups / tracks first);
3. **describe**: per cluster the known species nearest its centre, the taxon its members are placed
   at (the engine's held-out evidence, :func:`index.metrics.unknown_ranks.place_unknown`), and the
   frames, sources, sites, dates and depths its crops come from;
4. **store**: :mod:`index.catalog.discoveries` (one transaction). The same inputs (model, generation,
   space, parameters, the engine's stored decision and species, and the digest of the clustered crops
   and vectors) read back the stored run.

Naming a cluster (:meth:`Discoverer.name`) adds the species from its exemplars (or the crops the user
confirms) through ``species add`` itself (the ``add_species`` it is given: the Workspace's, which keeps
the general space and the home's writer lock), with no retraining; the engine's invariant holds (a
known crop's answer can change only to the new species), and the members now answered as it are
recorded beside the run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.workspace.discover_clusters import cluster_facts, naming_examples
from index.catalog.discoveries import (
    Cluster,
    Discovery,
    NewCluster,
    crop_places,
    find_discovery,
    list_discoveries,
    load_cluster,
    load_discovery,
    record_naming,
    store_discovery,
)
from index.catalog.embeddings import group_keys, load_embeddings, split_ids
from index.catalog.lookup import allowed_ids, crop_vectors
from index.errors import InvalidInput
from index.records import SUPPORT, TRAIN, VAL
from index.scoring.clustering import Clustering, ClusterParams, cluster_vectors
from index.scoring.fusion import SPACES

if TYPE_CHECKING:
    from app.workspace.engine import Engine
    from app.workspace.results import SpeciesChange
    from app.workspace.spaces import TwoSpaces
    from index.catalog.catalog import Catalog
    from index.home import Home

log = logging.getLogger(__name__)

#: where crops are clustered by default: the fusion of both spaces where the model has the general space
#: (fish4knowledge fold 0, 16 components: purity 0.96, coverage 0.84, ARI 0.87, one click names 0.50, against
#: 0.87 / 0.84 / 0.82 / 0.47 in the tuned space alone; bench/RESULTS.md "Discover"), else the tuned space
SPACE = "fused"
ONE_SPACE = "tuned"
#: crops never clustered: what the model trained and calibrated on, and the examples of added species
NEVER = (TRAIN, VAL, SUPPORT)
UNKNOWN = "unknown"
CSV_HEADER = ["crop_path", "crop_id", "discovery", "cluster", "number", "distance", "exemplar", "suggested_taxon"]


@dataclass(frozen=True)
class ClusterNamed:
    """What ``discover name`` did: the species added from the cluster and which members it now names."""

    cluster_id: int
    species: str
    change: SpeciesChange  # what species add did
    examples: tuple[str, ...]  # the files the species was added from (its support crops)
    answered: tuple[int | str, ...]  # members (crop ids, or files) now answered as the species
    members: int  # the cluster's size

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "species": self.species,
            "examples": list(self.examples),
            "answered": list(self.answered),
            "answered_share": len(self.answered) / self.members if self.members else 0.0,
            "members": self.members,
            "change": self.change.to_dict(),
        }


@dataclass(frozen=True)
class _Selected:
    """The crops a run considers: ids (catalog) or paths (files), their vectors in each space."""

    ids: np.ndarray  # (n,) int64 catalog ids, or empty for files
    paths: tuple[str, ...]  # (n,) files, or () for catalog crops
    tuned: np.ndarray  # (n, d_t)
    general: np.ndarray | None  # (n, d_g) where the model has two spaces


def _digest(keys: Sequence[str], vectors: np.ndarray) -> str:
    h = hashlib.sha256()
    for key in keys:
        h.update(key.encode() + b"\0")
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()


def _state(engine: Engine) -> str:
    """A digest of what judges and describes the crops besides their vectors: the stored decision and the
    species with prototypes (a re-decided threshold or an added species is a new input)."""
    import json

    decision = engine.decision.to_dict() if engine.decision is not None else None
    text = json.dumps([decision, list(engine.prototypes.names), engine.scorer], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pick(space: str | None, spaces: TwoSpaces | None, model_id: str) -> str:
    chosen = space or (SPACE if spaces is not None else ONE_SPACE)
    if chosen not in SPACES:
        raise InvalidInput(f"unknown space {chosen!r}; valid: {', '.join(SPACES)}")
    if chosen != "tuned" and spaces is None:
        raise InvalidInput(
            f"model {model_id} has one vector space (tuned), not {chosen}",
            hint="`oceanid embed` (without --no-general-space) and `oceanid index build` add the general space",
        )
    return chosen


class Discoverer:
    """The discover steps over one home and model, from explicit pieces (see the module docstring).

    ``engine`` / ``spaces``: the live engine and the model's two spaces (None: one space), asked again
    after a change; ``add_species(name, files, genus, family)``: the ``species add`` step.
    """

    def __init__(
        self,
        catalog: Catalog,
        home: Home,
        engine: Callable[[], Engine],
        spaces: Callable[[], TwoSpaces | None],
        add_species: Callable[..., SpeciesChange],
        tree: Callable[[], dict] | None = None,
    ) -> None:
        self.catalog, self.home = catalog, home
        self._engine, self._spaces, self._add = engine, spaces, add_species
        self._tree = tree
        self.csv_header = list(CSV_HEADER)
        self.default_min_cluster_size = ClusterParams().min_cluster_size

    # -- discover -------------------------------------------------------------------------------
    def run(
        self,
        where: str | None = None,
        images: Sequence[Path] | None = None,
        params: ClusterParams | None = None,
        space: str | None = None,
        min_cluster_size: int | None = None,
        exemplars: int | None = None,
    ) -> Discovery:
        """Cluster the crops answered unknown (catalog crops in ``where``, or the files ``images``) in
        ``space`` (default :data:`SPACE` where the model has two spaces, else tuned); store the run, or read
        back the stored one made from the same inputs. ``min_cluster_size`` / ``exemplars`` override those
        of ``params`` (default: ClusterParams()).
        Raises InvalidInput (a bad space or parameter, no usable image, no scikit-learn), FilterError."""
        params = _params(params, min_cluster_size, exemplars)
        engine, spaces = self._engine(), self._spaces()
        chosen = _pick(space, spaces, engine.model_id)
        selected = self._files(engine, spaces, images) if images is not None else self._catalog(engine, spaces, where)
        species = self._verdicts(engine, spaces, selected)
        unknown = np.flatnonzero(species == UNKNOWN)
        vectors = self._in_space(chosen, spaces, selected, unknown)
        keys = [str(i) for i in selected.ids[unknown]] if images is None else [selected.paths[i] for i in unknown]
        digest = _digest(keys, vectors)
        stored = {**params.to_dict(), "where": where or None, "images": images is not None, "engine": _state(engine)}
        found = find_discovery(self.catalog, engine.model_id, engine.generation, chosen, stored, digest)
        if found is not None:
            log.info("discover: the same inputs were discovered as run %d; reading it back", found)
            return _reused(load_discovery(self.catalog, found, self.home.root))
        groups = group_keys(self.catalog, selected.ids[unknown]) if images is None else None
        clustering = cluster_vectors(vectors, params, groups)
        clusters = self._describe(engine, selected, unknown, clustering, images is not None)
        run = store_discovery(
            self.catalog,
            engine.model_id,
            engine.generation,
            chosen,
            stored,
            digest,
            len(species),
            int(unknown.size),
            clusters,
        )
        log.info(
            "discover: run %d, %d of %d crops unknown, %d clusters", run, unknown.size, len(species), clustering.count
        )
        return load_discovery(self.catalog, run, self.home.root)

    def _catalog(self, engine: Engine, spaces: TwoSpaces | None, where: str | None) -> _Selected:
        ids, tuned = load_embeddings(self.catalog, engine.model_id)
        keep = ~np.isin(ids, split_ids(self.catalog, NEVER))
        allowed = allowed_ids(self.catalog, where)
        if allowed is not None:
            keep &= np.isin(ids, allowed)
        ids, tuned = ids[keep], tuned[keep]
        general = None
        if spaces is not None and ids.size:
            gi, gv = crop_vectors(self.catalog, spaces.general.model_id, ids.tolist())
            both = np.isin(ids, gi)
            ids, tuned = ids[both], tuned[both]
            general = gv[np.searchsorted(gi, ids)]
        return _Selected(ids, (), tuned, general)

    def _files(self, engine: Engine, spaces: TwoSpaces | None, images: Sequence[Path]) -> _Selected:
        files = [Path(p) for p in images]
        ok, tuned = engine.embed_files(files)
        if not ok:
            raise InvalidInput(f"none of the {len(files)} image(s) could be read")
        paths = tuple(str(files[i].absolute()) for i in ok)
        general = None
        if spaces is not None:
            _, general = spaces.general.embed_files([files[i] for i in ok])
        return _Selected(np.zeros(0, np.int64), paths, tuned, general)

    @staticmethod
    def _verdicts(engine: Engine, spaces: TwoSpaces | None, selected: _Selected) -> np.ndarray:
        if len(selected.tuned) == 0:
            return np.asarray([], dtype=object)
        if spaces is not None and selected.general is not None:
            return spaces.verdicts(selected.tuned, selected.general).species
        return engine.verdicts(selected.tuned).species

    @staticmethod
    def _in_space(space: str, spaces: TwoSpaces | None, selected: _Selected, rows: np.ndarray) -> np.ndarray:
        if space == "tuned":
            return selected.tuned[rows]
        assert spaces is not None and selected.general is not None
        if space == "general":
            return selected.general[rows]
        return spaces.decision.fusion.fuse(selected.tuned[rows], selected.general[rows])

    def _describe(
        self, engine: Engine, selected: _Selected, unknown: np.ndarray, clustering: Clustering, files: bool
    ) -> list[NewCluster]:
        """Each cluster's members (nearest the centre first) and facts."""
        tuned = selected.tuned[unknown]
        ids = selected.ids[unknown] if not files else np.zeros(0, np.int64)
        places = crop_places(self.catalog, ids.tolist()) if not files else {}
        placed = self._placements(engine, tuned)
        out = []
        for c in range(clustering.count):
            rows = clustering.members(c)
            exemplars = set(clustering.exemplars[c].tolist())
            members = [
                (
                    None if files else int(ids[r]),
                    selected.paths[unknown[r]] if files else None,
                    float(clustering.distances[r]),
                    int(r) in exemplars,
                )
                for r in rows
            ]
            member_ids = ids[rows] if not files else ids
            facts = cluster_facts(
                engine, tuned[rows], [placed[r] for r in rows] if placed else [], places, member_ids, files
            )
            out.append(NewCluster(len(rows), float(clustering.cohesion[c]), facts, members))
        return out

    def _placements(self, engine: Engine, vectors: np.ndarray) -> list:
        """Per vector, the taxon the engine places an unknown crop at (held-out evidence), or []."""
        if self._tree is None or engine.unknown_ranks is None or len(vectors) == 0:
            return []
        from index.metrics.unknown_ranks import place_unknown

        sims = engine.prototypes.similarities(vectors)
        return place_unknown(engine.rank_table(self._tree()), engine.probabilities(sims), sims, engine.unknown_ranks)

    # -- read back --------------------------------------------------------------------------------
    def list(self) -> list[Discovery]:
        """Every stored run, newest first (clusters without members)."""
        return list_discoveries(self.catalog, self.home.root)

    def show(self, discovery_id: int) -> Discovery:
        """A stored run with its clusters and members. Raises NotFound."""
        return load_discovery(self.catalog, discovery_id, self.home.root)

    def cluster(self, cluster_id: int) -> Cluster:
        """A stored cluster with its members. Raises NotFound."""
        return load_cluster(self.catalog, cluster_id, self.home.root)

    def export_rows(self, discovery_id: int) -> list[list[Any]]:
        """One CSV row per member of every cluster of a run (:data:`CSV_HEADER`). Raises NotFound."""
        from app.workspace.label_studio_tasks import suggested_name

        run = self.show(discovery_id)
        rows = []
        for cluster in run.clusters:
            suggested = suggested_name(cluster) or ""
            for m in cluster.members:
                rows.append([m.path, m.crop_id, run.id, cluster.id, cluster.number, m.distance, m.exemplar, suggested])
        return rows

    def label_studio_tasks(self, discovery_id: int, root: str | Path = "/") -> Any:
        """The run as Label Studio tasks pre-annotated with each cluster's suggested name, images under
        ``root`` (``app.workspace.label_studio_tasks``) -> LabelStudioTasks. Raises NotFound, InvalidInput."""
        from app.workspace.label_studio_tasks import discovery_tasks

        return discovery_tasks(self.show(discovery_id), root)

    # -- name -------------------------------------------------------------------------------------
    def name(
        self,
        cluster_id: int,
        species: str,
        exemplars: int | None = None,
        crops: Sequence[int | str] | None = None,
        genus: str | None = None,
        family: str | None = None,
    ) -> ClusterNamed:
        """Add ``species`` from ``exemplars`` members (its stored exemplars first, then the members nearest
        the centre; default: the stored exemplars) or from the members ``crops`` (crop ids, or files of an
        ``--images`` run) the user confirmed, through ``species add``; then judge every member again and
        record which are now answered as the species.

        Raises:
            NotFound: no such cluster. InvalidInput: an empty selection, a crop that is not a member,
            both ``exemplars`` and ``crops``, or whatever ``species add`` refuses.
        """
        cluster = self.cluster(cluster_id)
        chosen = naming_examples(cluster, exemplars, crops)
        change = self._add(species, [Path(m.path) for m in chosen if m.path], genus, family)
        answered = self._answered(cluster, change.species)
        payload = {
            "examples": [m.crop_id if m.crop_id is not None else m.path for m in chosen],
            "generation": change.generation,
            "answered": list(answered),
        }
        record_naming(self.catalog, cluster.id, change.species, payload)
        return ClusterNamed(
            cluster.id, change.species, change, tuple(str(m.path) for m in chosen), answered, len(cluster.members)
        )

    def _answered(self, cluster: Cluster, species: str) -> tuple[int | str, ...]:
        """The members the live engine (after the add) answers as ``species``."""
        engine, spaces = self._engine(), self._spaces()
        ids = [m.crop_id for m in cluster.members if m.crop_id is not None]
        if ids:
            selected = self._catalog_ids(engine, spaces, ids)
            keys: list[int | str] = [int(i) for i in selected.ids]
        else:
            selected = self._files(engine, spaces, [Path(m.path) for m in cluster.members if m.path])
            keys = list(selected.paths)
        named = self._verdicts(engine, spaces, selected)
        return tuple(k for k, s in zip(keys, named, strict=True) if s == species)

    def _catalog_ids(self, engine: Engine, spaces: TwoSpaces | None, ids: Sequence[int]) -> _Selected:
        got, tuned = crop_vectors(self.catalog, engine.model_id, ids)
        general = None
        if spaces is not None and got.size:
            gi, gv = crop_vectors(self.catalog, spaces.general.model_id, got.tolist())
            both = np.isin(got, gi)
            got, tuned = got[both], tuned[both]
            general = gv[np.searchsorted(gi, got)]
        return _Selected(got, (), tuned, general)


def _params(params: ClusterParams | None, min_cluster_size: int | None, exemplars: int | None) -> ClusterParams:
    from dataclasses import replace

    params = params or ClusterParams()
    if min_cluster_size is not None:
        params = replace(params, min_cluster_size=min_cluster_size)
    if exemplars is not None:
        params = replace(params, exemplars=exemplars)
    return params


def _reused(run: Discovery) -> Discovery:
    from dataclasses import replace

    return replace(run, reused=True)
