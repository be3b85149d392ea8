"""Embedding map: the crops in 2-D (PCA or UMAP), coloured by species, held-out and
added species marked by shape; hovering a point shows its crop."""

from __future__ import annotations

import altair as alt
import streamlit as st

from app.explorer import state

SHAPES = {"known": "circle", "holdout": "cross", "added": "diamond", "excluded": "triangle"}


def render(ws, status) -> None:
    st.header("Embedding map")
    if not status.has_index:
        st.warning(status.message)
        return
    left, right = st.columns([1, 2])
    method = left.radio(
        "Projection",
        ["pca", "umap"],
        horizontal=True,
        key="map_method",
        format_func=str.upper,
        help="UMAP keeps neighbourhoods better; PCA is instant.",
    )
    max_points = right.slider(
        "Crops on the map (a random sample beyond this)", 100, 5000, 1500, step=100, key="map_points"
    )
    with st.spinner(f"Projecting with {method.upper()}…"):
        frame = state.embedding_frame(ws, method, max_points)
    if frame.empty:
        st.info("No crops have vectors yet.")
        return
    shapes = [s for s in SHAPES if s in set(frame["status"])]
    chart = (
        alt.Chart(frame)
        .mark_point(filled=True, size=45, opacity=0.8)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color(
                "species:N", scale=alt.Scale(scheme="tableau20"), legend=alt.Legend(columns=1, symbolLimit=60)
            ),
            shape=alt.Shape("status:N", scale=alt.Scale(domain=shapes, range=[SHAPES[s] for s in shapes])),
            tooltip=["species:N", "status:N", "split:N", "image:N"],
        )
        .properties(height=560)
        .interactive()
    )
    st.altair_chart(chart, width="stretch")
    counts = frame["status"].value_counts().to_dict()
    st.caption(
        " · ".join(f"{n} {s}" for s, n in counts.items())
        + f" crops, {str(frame['projection'].iloc[0]).upper() if 'projection' in frame else method.upper()}"
        + (
            " (UMAP needs more points: PCA drawn)"
            if method == "umap" and "projection" in frame and frame["projection"].iloc[0] != "umap"
            else ""
        )
        + ". "
        "Crosses are held-out species, diamonds added ones."
    )
