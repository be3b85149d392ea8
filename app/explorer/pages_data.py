"""Data: the survey behind ``oceanid stats`` as charts."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def _bar(counts: dict, index: str, value: str = "crops", horizontal: bool = False) -> None:
    frame = pd.DataFrame({index: list(counts), value: list(counts.values())}).set_index(index)
    st.bar_chart(frame, horizontal=horizontal, sort=False,
                 height=max(240, 22 * len(counts)) if horizontal else 260)


def render(ws, status) -> None:
    st.header("Data")
    s = ws.stats()
    cols = st.columns(3)
    cols[0].metric("images", f"{s.images:,}")
    cols[1].metric("crops", f"{s.crops:,}")
    cols[2].metric("species", f"{s.species:,}")
    if s.crops_per_species:
        c = s.crops_per_species
        st.caption(f"crops per species: mean {c['mean']:.1f}, median {c['median']:.1f}, "
                   f"max {c['max']}, min {c['min']}")
    st.subheader("Crops per species")
    _bar(s.per_species, "species", horizontal=True)
    left, right = st.columns(2)
    with left:
        st.subheader("Splits")
        _bar(s.per_split, "split")
    with right:
        st.subheader("Sources")
        _bar(s.per_source, "source")
    if s.depth_histogram:
        d = s.depth
        st.subheader("Depth distribution")
        st.caption(f"{d['count']} crops with a depth: min {d['min']:.0f} m, median {d['median']:.0f} m, "
                   f"max {d['max']:.0f} m")
        hist = pd.DataFrame([{"depth (m)": f"{a:.0f}–{b:.0f}", "crops": n} for a, b, n in s.depth_histogram])
        st.bar_chart(hist.set_index("depth (m)"), horizontal=True, sort=False, height=300)
    with st.expander("The survey as JSON (`oceanid stats --json`)"):
        st.json(s.to_dict(), expanded=False)
