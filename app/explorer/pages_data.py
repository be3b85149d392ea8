"""Data: the survey behind ``oceanid stats`` as charts."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

COLOUR = "#2a7fb8"


def _bars(counts: dict, name: str, horizontal: bool = True) -> None:
    """One bar per key in the given order, labels never cut."""
    frame = pd.DataFrame({name: list(counts), "crops": list(counts.values())})
    axis = alt.Axis(labelLimit=400, title=None)
    category = (alt.Y if horizontal else alt.X)(f"{name}:N", sort=None, axis=axis)
    value = (alt.X if horizontal else alt.Y)("crops:Q")
    height = alt.Step(26) if horizontal else 260  # one 26-px row per bar: every label shows
    chart = (
        alt.Chart(frame)
        .mark_bar(color=COLOUR)
        .encode(category, value, tooltip=[f"{name}:N", "crops:Q"])
        .properties(height=height)
    )
    st.altair_chart(chart, width="stretch")


def render(ws, status) -> None:
    st.header("Data")
    s = ws.stats()
    cols = st.columns(3)
    cols[0].metric("images", f"{s.images:,}")
    cols[1].metric("crops", f"{s.crops:,}")
    cols[2].metric("species", f"{s.species:,}")
    if s.crops_per_species:
        c = s.crops_per_species
        st.caption(f"crops per species: mean {c['mean']:.1f}, median {c['median']:.1f}, max {c['max']}, min {c['min']}")
    st.subheader("Crops per species")
    _bars(s.per_species, "species")
    left, right = st.columns(2)
    with left:
        st.subheader("Splits")
        _bars(s.per_split, "split", horizontal=False)
    with right:
        st.subheader("Sources")
        _bars(s.per_source, "source", horizontal=False)
    if s.depth_histogram:
        d = s.depth
        st.subheader("Depth distribution")
        st.caption(
            f"{d['count']} crops with a depth: min {d['min']:.0f} m, median {d['median']:.0f} m, max {d['max']:.0f} m"
        )
        _bars({f"{a:.0f}–{b:.0f} m": n for a, b, n in s.depth_histogram}, "depth")
    with st.expander("The survey as JSON (`oceanid stats --json`)"):
        st.json(s.to_dict(), expanded=False)
