"""Data: the survey behind ``oceanid stats`` as charts; class folders and lineage files added
(``oceanid ingest folders DIR --lineages CSV``, ``oceanid taxa import CSV``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.explorer import state

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


def _attached_lines(report) -> list[str]:
    """What an ingest (or a lineage import) did, as the CLI says it."""
    if hasattr(report, "images_added"):
        lines = [
            f"{report.source}: {report.images_added} images added ({report.images_existing} already there), "
            f"{report.crops_added} crops added, {len(report.skipped)} skipped"
        ]
        a = report.lineages
        if a is not None:
            how = "found at the folder's root" if a.found else "uploaded"
            lines.append(f"lineages ({how}): {a.matched} of {a.classes} classes named, {a.written} taxa written")
            if a.missing:
                lines.append(f"not in the lineage file ({len(a.missing)}; no rank known): {', '.join(a.missing)}")
        return lines
    lines = [f"read {report.rows} lineage row(s); {report.written} taxa written"]
    if report.unknown:
        lines.append(f"not in the catalog (skipped): {', '.join(report.unknown)}")
    return lines


def _add_folders(ws) -> None:
    """A folder of class folders and / or a lineage CSV: ``ingest folders --lineages`` or ``taxa import``."""
    st.subheader("Add class folders and lineages")
    st.caption(
        "One sub-folder of images per class, on this server. A lineage CSV (the `oceanid taxa import` format: "
        "concept,kingdom,phylum,class,order,family,genus) gives the classes their ranks; without one, a "
        "lineages.csv at the folder's root is used. With no folder, the CSV corrects the classes already here. "
        "The file is checked before anything is ingested."
    )
    done = st.session_state.pop("data_added", None)
    if done:
        st.success("  \n".join(done))
    with st.form("add_folders"):
        folder = st.text_input("Class folders (a path on the server; optional)", key="data_folder")
        upload = st.file_uploader("Lineage CSV (optional)", type=["csv"], key="data_lineages")
        submitted = st.form_submit_button("Add")
    if not submitted:
        return
    if not folder.strip() and upload is None:
        st.error("Give a folder of class folders, a lineage CSV, or both.")
        return
    with tempfile.TemporaryDirectory(prefix="oceanid-lineages-") as tmp:
        lineages = None
        if upload is not None:
            lineages = Path(tmp) / (Path(upload.name).name or "lineages.csv")
            lineages.write_bytes(upload.getvalue())
        with st.spinner("Adding…"):
            if folder.strip():
                report = ws.ingest_folders(Path(folder.strip()).expanduser(), lineages=lineages)
            else:
                report = ws.taxa_import(lineages)
    state.forget()
    st.session_state["data_added"] = _attached_lines(report)
    st.rerun()


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
    _add_folders(ws)
