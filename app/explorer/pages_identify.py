"""Identify: an uploaded image (or a catalog crop) -> species or "unknown", the OOD
scores against their thresholds, and the k most similar crops."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.explorer import state
from app.explorer.widgets import filter_sidebar, gallery
from index.imaging import decode_bytes

UPLOAD = "Upload an image"
CATALOG = "Pick a crop from the catalog"


def _query_from_catalog(ws) -> tuple[object, object, str] | None:
    """(image to identify, search query, label) for a crop chosen by id, or None.
    Searching by id leaves the crop itself out of its own gallery."""
    crops = state.crop_choices(ws)
    if not crops:
        st.info("The catalog has no crops with vectors yet.")
        return None
    labels = {c.annotation_id: f"#{c.annotation_id} · {c.species} · {c.split or '—'}" for c in crops}
    chosen = st.selectbox("Crop", list(labels), format_func=labels.get, key="identify_crop")
    crop = next(c for c in crops if c.annotation_id == chosen)
    return crop.crop, crop.annotation_id, f"crop #{chosen}"


def _query_from_upload() -> tuple[object, object, str] | None:
    upload = st.file_uploader("Drop an image of an organism (PNG, JPEG, TIFF, …)", key="identify_upload")
    if upload is None:
        st.info("Upload an image, or pick a crop from the catalog, to see what it is.")
        return None
    data = upload.getvalue()
    return data, data, upload.name


def _verdict(result) -> None:
    if result.unknown:
        st.subheader("Unknown")
        st.caption(f"closest known species: {result.top[0][0]} ({result.top[0][1]:.3f}), "
                   f"below the `{result.scorer}` threshold")
    else:
        st.subheader(result.species)
        st.caption(f"decided by the `{result.scorer}` OOD score against its threshold")
    left, right = st.columns(2)
    left.metric(f"probability it is {result.top[0][0]} (calibrated)", f"{result.probability:.0%}")
    right.metric(f"unknown score ({result.scorer}) vs threshold",
                 f"{result.unknown_score:.3f} {'<' if result.unknown else '≥'} {result.unknown_threshold:.3f}")
    st.markdown("**Top species** (probability calibrated on validation; similarity = cosine to the prototype)")
    cosine = dict(result.top)
    st.dataframe(pd.DataFrame([(s, p, cosine.get(s)) for s, p in result.probabilities],
                              columns=["species", "probability", "similarity"]), hide_index=True,
                 width="stretch")
    st.markdown("**Out-of-distribution scores** (higher = more like a known species)")
    rows = [{"scorer": name, "score": v["score"], "threshold": v["threshold"],
             "verdict": "unknown" if v["unknown"] else "known",
             "decides": "✓" if name == result.scorer else ""} for name, v in result.ood.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render(ws, status) -> None:
    st.header("Identify")
    if not status.has_index:
        st.warning(status.message)
        return
    where = filter_sidebar(ws.stats())
    k = st.sidebar.slider("Similar crops to show", 1, 24, 8, key="identify_k")
    mode = st.radio("Image", [UPLOAD, CATALOG], horizontal=True, key="identify_mode",
                    label_visibility="collapsed")
    picked = _query_from_upload() if mode == UPLOAD else _query_from_catalog(ws)
    if picked is None:
        return
    image, query, label = picked
    result = ws.identify([image], k=5, names=[label])[0]
    if result.error:
        st.error(f"Cannot read this image: {result.error}")
        return
    left, right = st.columns([1, 2])
    with left:
        shown = decode_bytes(image, label) if isinstance(image, bytes) else str(image)  # any mode -> RGB
        st.image(shown, caption=label, width="stretch")
    with right:
        _verdict(result)
    st.divider()
    st.subheader(f"Most similar crops ({k})")
    with state.guard():
        hits = ws.search(query, k=k, where=where)
        if not hits:
            st.info("No crop matches the filter.")
        gallery(hits)
