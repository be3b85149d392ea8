"""Counts: organisms per taxon in catalog crops (a filter) or uploaded crops, raw and adjusted for the
classifier's known confusion, with intervals; what ``oceanid count`` prints."""

from __future__ import annotations

import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.explorer import state

SOURCES = ("Catalog crops (a filter)", "Uploaded crops")


@st.cache_data(max_entries=16, show_spinner=False)
def _where_counts(_ws, home_dir: str, key: tuple, where: str):
    return _ws.count(where=where)


def _frame(result) -> pd.DataFrame:
    rows = [
        {"taxon": t.taxon, "raw": t.raw, "adjusted": t.adjusted, "low": t.low, "high": t.high}
        for t in (*result.taxa, result.unknown)
    ]
    return pd.DataFrame(rows, columns=["taxon", "raw", "adjusted", "low", "high"])


def _chart(frame: pd.DataFrame) -> None:
    """Adjusted counts as bars with their interval, raw counts as ticks."""
    shown = frame[frame["adjusted"].notna()]
    if shown.empty:
        return
    axis = alt.Axis(labelLimit=400, title=None)
    base = alt.Chart(shown).encode(alt.Y("taxon:N", sort=None, axis=axis))
    bars = base.mark_bar(color="#2a7fb8", opacity=0.6).encode(
        alt.X("adjusted:Q", title="organisms"), tooltip=["taxon", "raw", "adjusted", "low", "high"]
    )
    rule = base.mark_rule(color="#14425f").encode(alt.X("low:Q"), alt.X2("high:Q"))
    ticks = base.mark_tick(color="#d62728", thickness=2).encode(alt.X("raw:Q"))
    st.altair_chart((bars + rule + ticks).properties(height=alt.Step(24)), width="stretch")


def render(ws, status) -> None:
    st.header("Counts")
    if not status.has_index:
        st.warning(status.message)
        return
    st.caption(
        "Organisms per taxon. **Raw**: each crop counted as its answer. **Adjusted**: corrected for the "
        "confusion measured on validation crops at `index build` (adjusted classify-and-count), with a 90% "
        "bootstrap interval (bars and lines; raw counts are the red ticks). Crops answered unknown are counted "
        "apart. The same as `oceanid count`."
    )
    source = st.radio("Count", SOURCES, horizontal=True, key="count_source")
    if source == SOURCES[0]:
        where = st.text_input("Filter (as `--where`)", value="split=test", key="count_where").strip()
        if not where:
            st.info("Give a filter, e.g. `split=test` or `source=survey-2024`.")
            return
        with st.spinner("Counting…"):
            result = _where_counts(ws, str(ws.home), state.engine_key(ws), where)
    else:
        uploads = st.file_uploader("Crops (one organism each)", accept_multiple_files=True, key="count_uploads")
        if not uploads:
            st.info("Upload crops to count them.")
            return
        with st.spinner("Identifying and counting…"), tempfile.TemporaryDirectory(prefix="oceanid-count-") as tmp:
            files = []
            for n, upload in enumerate(uploads):
                path = Path(tmp) / str(n) / (Path(upload.name).name or f"upload-{n + 1}")
                path.parent.mkdir()
                path.write_bytes(upload.getvalue())
                files.append(path)
            result = ws.count(files)
    cols = st.columns(3)
    cols[0].metric("crops counted", f"{result.crops:,}")
    cols[1].metric("unknown", f"{result.unknown.raw:,}")
    cols[2].metric("unreadable", f"{result.unreadable:,}")
    frame = _frame(result)
    _chart(frame)
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        f"Adjusted with {result.adjusted_with}." if result.adjusted_with else "Raw counts only (no stored confusion)."
    )
    for note in result.notes:
        st.caption(f"Note: {note}")
    evaluation = ws.last_evaluation()
    error = evaluation.count_error if evaluation is not None else None
    if error is not None and error.classes:
        st.caption(
            f"On the test split (`oceanid evaluate`), the mean relative count error per class "
            f"({error.classes} classes with >= {error.min_crops} crops) is {error.raw:.3f} raw and "
            + (f"{error.adjusted:.3f} adjusted." if error.adjusted is not None else "not adjusted.")
        )
