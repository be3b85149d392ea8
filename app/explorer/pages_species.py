"""Species: every species with its count and status; for one, its place in the tree and its
nearest relatives, its examples, the crops nearest its prototype and its most confusable neighbours."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.explorer import state
from app.explorer.widgets import image_row
from app.explorer.widgets import table as show_table

STATUS_NOTE = {
    "known": "learned in training",
    "holdout": "held out of training: the system should call it unknown",
    "added": "added from a few examples, without retraining",
    "excluded": "left out of the split",
}


def _place(ws, name: str) -> None:
    """The species' lineage and its nearest relatives by taxonomic distance."""
    place = ws.taxa_place(name)
    st.markdown("**Place in the tree**")
    st.markdown(
        " › ".join(f"{rank} *{taxon}*" for rank, taxon in place.lineage.items())
        or "no lineage known (import one with `oceanid taxa import FILE.csv`)"
    )
    if place.relatives:
        st.markdown(
            "**Nearest relatives** (taxonomic distance: 2 = same genus, 4 = same family, .. 12 = nothing shared)"
        )
        show_table(
            pd.DataFrame(
                [
                    {
                        "relative": r.name,
                        "rank": r.rank,
                        "distance": r.distance,
                        "shared": f"{r.shared_rank} {r.shared}" if r.shared else "—",
                    }
                    for r in place.relatives
                ]
            ),
            hide_index=True,
        )


def render(ws, status) -> None:
    st.header("Species")
    if not status.has_index:
        st.warning(status.message)
        return
    infos = state.species_summary(ws)
    if not infos:
        st.info("No species yet.")
        return
    table = pd.DataFrame(
        [{"species": i.name, "genus": i.genus, "family": i.family, "crops": i.count, "status": i.status} for i in infos]
    )
    show_table(table, hide_index=True)
    names = [i.name for i in infos]
    chosen = st.selectbox("Look at one species", names, key="species_pick")
    info = infos[names.index(chosen)]
    st.subheader(info.name)
    taxonomy = " · ".join(x for x in (info.genus, info.family) if x)
    st.caption(
        f"{taxonomy + ' · ' if taxonomy else ''}{info.count} crops · {info.status}: {STATUS_NOTE.get(info.status, '')}"
    )
    _place(ws, info.name)
    st.markdown("**Examples**")
    image_row(info.examples)
    st.markdown("**Nearest its prototype** (the most typical crops)")
    image_row(info.nearest)
    st.markdown("**Most confusable with**")
    if info.confusable:
        show_table(pd.DataFrame(info.confusable, columns=["species", "prototype similarity"]), hide_index=True)
    else:
        st.caption("no other species to compare with")
