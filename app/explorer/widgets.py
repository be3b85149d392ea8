"""Small layout pieces shared by pages: the metadata filter sidebar and crop galleries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from index.catalog.filters import quote
from index.records import ALL_SPLITS


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} in ({', '.join(quote(v) for v in values)})"


def filter_sidebar(survey, key: str = "filter") -> str | None:
    """Sidebar widgets (species, depth, date, split, source, free text) written as one
    expression in the ``oceanid search --where`` grammar; None when nothing is chosen."""
    bar = st.sidebar
    bar.subheader("Filter the gallery")
    parts: list[str] = []
    species = bar.multiselect("Species", list(survey.per_species), key=f"{key}_species")
    if species:
        parts.append(_in("species", species))
    depth = survey.depth or {}
    if depth.get("count") and depth["max"] > depth["min"]:
        lo, hi = float(depth["min"]), float(depth["max"])
        chosen = bar.slider("Depth (m)", lo, hi, (lo, hi), key=f"{key}_depth")
        if chosen != (lo, hi):
            parts.append(f"depth={chosen[0]:g}..{chosen[1]:g}")
    dates = bar.date_input("Date range", value=(), min_value=date(1900, 1, 1), key=f"{key}_date")
    if isinstance(dates, Sequence) and len(dates) == 2:
        parts.append(f"date={dates[0].isoformat()}..{dates[1].isoformat()}")
    splits = bar.multiselect(
        "Split", [s for s in survey.per_split if s != "unassigned"] or list(ALL_SPLITS), key=f"{key}_split"
    )
    if splits:
        parts.append(_in("split", splits))
    sources = bar.multiselect("Source", list(survey.per_source), key=f"{key}_source")
    if sources:
        parts.append(_in("source", sources))
    extra = bar.text_input(
        "More (filter grammar)",
        key=f"{key}_extra",
        placeholder="genus=Chromis and lat<-10",
        help="Same grammar as `oceanid search --where`: and/or, = != < <= > >=, "
        "in (a, b), ranges a..b; columns species, genus, family, depth, date, "
        "lat, lon, split, source.",
    )
    if extra.strip():
        parts.append(f"({extra.strip()})")
    where = " and ".join(parts) or None
    if where:
        bar.caption(f"where: `{where}`")
    return where


DIGITS = "%.4f"  # every fractional number in a table: fixed precision, never "0.0000…0001" pushing columns off


def number_columns(frame: pd.DataFrame) -> dict:
    """A fixed-precision column for every float column of ``frame`` (whole-number ones as integers:
    a count read back as float stays "12", not "12.0000"), for ``st.dataframe(column_config=...)``."""
    out = {}
    for name in frame.columns:
        column, values = frame[name], frame[name].dropna()
        mixed = column.dtype == object and len(values) and all(isinstance(v, float) for v in values)
        if pd.api.types.is_float_dtype(column) or mixed:
            whole = len(values) > 0 and all(float(v).is_integer() for v in values)
            out[name] = st.column_config.NumberColumn(str(name), format="%d" if whole else DIGITS)
    return out


def table(frame: pd.DataFrame, **kwargs) -> None:
    """``st.dataframe`` at full width with every number at fixed precision (:func:`number_columns`)."""
    config = {**number_columns(frame), **kwargs.pop("column_config", {})}
    st.dataframe(frame, width="stretch", column_config=config, **kwargs)


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def hit_caption(hit, itself: bool = False) -> str:
    """One crop's metadata as a short caption: species, similarity, depth, date, place, source;
    ``itself`` marks the query image itself (an upload already in the catalog)."""
    when = hit.timestamp.date().isoformat() if hasattr(hit.timestamp, "date") else _fmt(hit.timestamp)
    place = "—" if hit.latitude is None or hit.longitude is None else f"{hit.latitude:.2f}, {hit.longitude:.2f}"
    mark = " · ⟲ *this image itself*" if itself else ""
    return (
        f"**{hit.species}** · {hit.score:.3f}{mark}  \n"
        f"{_fmt(hit.depth_m, ' m')} · {when}  \n"
        f"{place} · {hit.source} · {hit.split or '—'} · #{hit.annotation_id}"
    )


def gallery(hits: Sequence, columns: int = 4, marked: set[int] = frozenset()) -> None:
    """Crops in a grid, each with its metadata caption (``marked`` ids flagged as the query itself)."""
    for start in range(0, len(hits), columns):
        cols = st.columns(columns)
        for col, hit in zip(cols, hits[start : start + columns], strict=False):
            with col:
                if hit.crop is not None and Path(hit.crop).is_file():
                    st.image(str(hit.crop), width="stretch")
                st.markdown(hit_caption(hit, hit.annotation_id in marked))


def image_row(paths: Sequence[Path], captions: Sequence[str] | None = None, columns: int = 6) -> None:
    """A row (or rows) of crop images from files; missing files are skipped."""
    paths = [Path(p) for p in paths if Path(p).is_file()]
    if not paths:
        st.caption("no crops to show")
        return
    for start in range(0, len(paths), columns):
        cols = st.columns(columns)
        for n, (col, path) in enumerate(zip(cols, paths[start : start + columns], strict=False)):
            caption = captions[start + n] if captions else None
            col.image(str(path), caption=caption, width="stretch")
