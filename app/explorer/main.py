"""The oceanid explorer: ``oceanid app`` runs ``streamlit run app/explorer/main.py``.

A sidebar picks one page; each page is a thin view over ``Workspace`` methods.
The home folder comes from ``$OCEANID_HOME`` (else ``./data``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, _ROOT)

import streamlit as st

from app.explorer import (
    pages_add,
    pages_counts,
    pages_data,
    pages_discover,
    pages_evaluation,
    pages_identify,
    pages_map,
    pages_species,
    state,
)

PAGES = {
    "Identify": pages_identify.render,
    "Species": pages_species.render,
    "Embedding map": pages_map.render,
    "Evaluation": pages_evaluation.render,
    "Counts": pages_counts.render,
    "Add species": pages_add.render,
    "Discover": pages_discover.render,
    "Data": pages_data.render,
}
NEEDS_ENGINE = {"Identify", "Species", "Embedding map", "Add species", "Discover", "Counts"}


def main() -> None:
    st.set_page_config(page_title="oceanid explorer", page_icon="🐠", layout="wide")
    st.sidebar.title("oceanid")
    page = st.sidebar.radio("Page", list(PAGES), key="page")
    with state.guard():
        ws = state.workspace()
        status = ws.status()
        st.sidebar.caption(
            f"home `{status.home}`  \nmodel `{status.model_id or '—'}` · index `{status.generation or '—'}`"
        )
        if status.model_stale:
            st.sidebar.warning(f"model `{status.model_id}` is stale: {status.model_stale}; retrain it")
        if not status.crops:
            st.title("oceanid explorer")
            st.info(status.message)
            return
        if page in NEEDS_ENGINE and status.has_index:
            with st.spinner("Loading the model and index…"):
                ws.engine()
        PAGES[page](ws, status)


main()
