"""Loaded engines and vector spaces kept between queries (light: imports nothing heavy, so the facade
can hold them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.workspace.engine import Engine
    from app.workspace.spaces import TwoSpaces


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
