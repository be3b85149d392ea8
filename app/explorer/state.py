"""What the explorer caches, and how it shows errors.

Heavy objects (the model, the CPU index, the prototypes, the fitted OOD
scorers) live inside a ``Workspace``, which loads them once per *engine key*
(model id, live index generation, prototypes version) and reloads them when the
key changes. One Workspace is cached per home folder for all sessions, so a
rebuild from the CLI (a new ``CURRENT``) or an added species is picked up on the
next rerun, without restarting the explorer. Answers that take a moment (the
species summary, the 2-D map, the crop list) are cached under the same key.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from app.workspace import Workspace, resolve_home
from index.errors import OceanidError, describe

log = logging.getLogger(__name__)


def home() -> Path:
    """The home folder: ``$OCEANID_HOME`` (set by ``oceanid app``), else ``./data``."""
    return resolve_home(None)


@st.cache_resource(max_entries=4)
def _workspace(home_dir: str) -> Workspace:
    """One Workspace per home folder, shared by sessions. It keeps its loaded engine
    and reloads it by itself when the engine key changes (see ``Workspace.engine``)."""
    log.info("explorer: workspace %s", home_dir)
    # the encoder's device comes from `oceanid app --device`; search stays on the CPU index
    return Workspace(home_dir, device=os.environ.get("OCEANID_DEVICE", "cpu"), gpu_search=False)


def workspace() -> Workspace:
    """The cached Workspace of this server's home folder."""
    return _workspace(str(home()))


def engine_key(ws: Workspace) -> tuple:
    """(model id, live generation, prototypes version): the key of every cached answer."""
    return tuple(ws.engine_key())


@st.cache_data(max_entries=8, show_spinner=False)
def _species_summary(_ws: Workspace, home_dir: str, key: tuple) -> list:
    return _ws.species_summary()


def species_summary(ws: Workspace) -> list:
    return _species_summary(ws, str(ws.home), engine_key(ws))


@st.cache_data(max_entries=8, show_spinner=False)
def _crop_choices(_ws: Workspace, home_dir: str, key: tuple) -> list:
    return _ws.crops()


def crop_choices(ws: Workspace) -> list:
    """Catalog crops with vectors, offered by the "pick a crop" widgets."""
    return _crop_choices(ws, str(ws.home), engine_key(ws))


def _data_url(path: Path, side: int = 128) -> str:
    """A small JPEG thumbnail as a data: URL, for the map's hover tooltip."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_data(max_entries=8, show_spinner=False)
def _embedding_frame(_ws: Workspace, home_dir: str, key: tuple, method: str, max_points: int) -> pd.DataFrame:
    frame = pd.DataFrame([p.to_dict() for p in _ws.embedding_map(method=method, max_points=max_points)])
    if not frame.empty:
        frame["image"] = [_data_url(Path(p)) if p else "" for p in frame["crop"]]
        frame["crop"] = frame["crop"].astype(str)
    return frame


def embedding_frame(ws: Workspace, method: str, max_points: int) -> pd.DataFrame:
    """The 2-D map as a table (x, y, species, status, split, crop) plus thumbnails."""
    return _embedding_frame(ws, str(ws.home), engine_key(ws), method, max_points)


def forget() -> None:
    """Drop cached answers (after the explorer itself changed the workspace)."""
    for cached in (_species_summary, _crop_choices, _embedding_frame):
        cached.clear()


@contextmanager
def guard() -> Iterator[None]:
    """Show library errors as one ``st.error`` line; anything else too, logged with
    its traceback on the server (re-raised with ``OCEANID_DEBUG=1``)."""
    try:
        yield
    except OceanidError as exc:
        st.error(describe(exc))
    except Exception as exc:  # a page must never show a traceback
        if os.environ.get("OCEANID_DEBUG", "") not in ("", "0"):
            raise
        log.exception("explorer page failed")
        st.error(f"unexpected error: {type(exc).__name__}: {describe(exc)}")
