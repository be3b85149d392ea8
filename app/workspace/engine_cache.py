"""Loaded engines and vector spaces kept between queries (light: imports nothing heavy, so the facade
can hold them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.workspace.catalog_reads import CatalogReads
    from app.workspace.engine import Engine
    from app.workspace.spaces import TwoSpaces
    from index.catalog.catalog import Catalog
    from index.home import Home


class EngineCache:
    """The loaded engine of each model, kept until its live generation or prototypes change.

    One per Workspace (the explorer's sessions and the server's threads share it). Readers keep
    the engine they hold (never changed in place); while one thread loads a new engine, the
    others answer from the whole old one of the same model, so a server under load does not
    stall on every reload.
    """

    def __init__(self, load: Callable[[str], Engine]) -> None:
        self._load = load  # model id -> a freshly loaded Engine
        self._engines: dict[tuple, Engine] = {}  # key -> engine (one at a time)
        self._loading = threading.Lock()

    def get(self, key: tuple, fresh: bool = False) -> Engine:
        """The engine for ``key`` = (model id, live generation, prototypes version); ``fresh``:
        never the old one while another thread loads it (a writer builds on the live state)."""
        engine = self._engines.get(key)
        if engine is not None:
            return engine
        stale = None if fresh else next((e for e in self._engines.values() if e.model_id == key[0]), None)
        if not self._loading.acquire(blocking=stale is None):
            return stale
        try:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._load(key[0])
                self._engines = {key: engine}  # swapped whole: a reader never sees it half-built
        finally:
            self._loading.release()
        return engine

    def clear(self) -> None:
        """Forget every loaded engine (the next query loads the current state)."""
        self._engines = {}


class SpacesCache:
    """Both vector spaces of the model (``spaces.TwoSpaces``, or None for a model with the tuned
    space only), kept until either space's live generation or prototypes change; one at a time.

    Like :class:`EngineCache`, the dict is swapped whole: a reader never sees it half-built.
    """

    def __init__(self, load: Callable[[Engine], TwoSpaces | None]) -> None:
        self._load = load  # the tuned space's engine -> both spaces, freshly loaded (or None)
        self._spaces: dict[tuple, TwoSpaces | None] = {}  # key -> spaces (one at a time)

    def get(self, key: tuple, tuned: Engine) -> TwoSpaces | None:
        """The spaces for ``key`` = (the tuned space's engine key, the general space's)."""
        spaces = self._spaces
        if key not in spaces:
            spaces = {key: self._load(tuned)}
            self._spaces = spaces
        return spaces[key]

    def clear(self) -> None:
        """Forget the loaded spaces (the next query loads the current state)."""
        self._spaces = {}


class Engines:
    """The engines a Workspace's queries read: which model and state a query reads (its key: model,
    live generation, prototypes version, read through ``reads`` so a served query opens the catalog
    only when it changed), and the loaded engine and spaces of that key, kept until it changes."""

    def __init__(self, catalog: Catalog, home: Home, reads: CatalogReads, device: str, gpu_search: bool) -> None:
        self.catalog, self.home, self.reads = catalog, home, reads
        self.engines = EngineCache(lambda model_id: _load_engine(catalog, home, model_id, device, gpu_search))
        self.spaces_cache = SpacesCache(lambda tuned: _load_spaces(catalog, home, tuned, device))

    def model(self, model: str | None = None) -> str:
        """``model`` if given, else the last trained one. Raises EmptyIndex when none."""
        from index.errors import EmptyIndex

        chosen = model or self.catalog.current_model()
        if not chosen:
            raise EmptyIndex("no model trained yet")
        return chosen

    def key(self, model: str | None = None) -> tuple[str, str | None, int]:
        """(model, live generation, prototypes version): changes whenever answers may change."""
        from index.vectors.generations import current_generation

        model_id = self.model(model or self.reads.get("current_model", self.catalog.current_model))
        version = self.reads.get(("prototypes_version", model_id), lambda: self.catalog.prototypes_version(model_id))
        return (model_id, current_generation(self.home.root, model_id), version)

    def engine(self, model: str | None = None, fresh: bool = False) -> Engine:
        """The loaded engine of the model's current state (``fresh``: never an old one, for writers)."""
        return self.engines.get(self.key(model), fresh=fresh)

    def spaces(self, model: str | None = None) -> TwoSpaces | None:
        """Both vector spaces of the model with their stored decision, or None for a model with the
        tuned space only; cached until either space's generation or prototypes change."""
        from app.workspace.spaces import general_id

        tuned = self.engine(model)
        return self.spaces_cache.get((self.key(tuned.model_id), self.key(general_id(tuned.model_id))), tuned)

    def clear(self) -> None:
        """Forget the loaded engines and spaces: the next query loads what the home holds now."""
        self.engines.clear()
        self.spaces_cache.clear()


def _load_engine(catalog: Catalog, home: Home, model_id: str, device: str, gpu_search: bool) -> Engine:
    from app.workspace.engine import load_engine

    return load_engine(catalog, home, model_id, device=device, gpu_search=gpu_search)


def _load_spaces(catalog: Catalog, home: Home, tuned: Engine, device: str) -> TwoSpaces | None:
    from app.workspace.spaces import load_spaces

    return load_spaces(catalog, home, tuned, device)
