"""Identify: an uploaded image (or a catalog crop) -> species or "unknown", the OOD
scores against their thresholds, and the k most similar crops."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.explorer import state
from app.explorer.widgets import filter_sidebar, gallery, table
from index.imaging import decode_bytes

UPLOAD = "Upload an image"
DECODINGS = {"probable": "most probable (deepest confident rank)", "distance": "least expected taxonomic distance"}
FRAME = "Upload a whole frame"
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


SAME_IMAGE = 0.9999  # cosine at which a neighbour is the query image itself (an upload already in the catalog)


def lineage_text(lineage: dict[str, str]) -> str:
    """``kingdom Animalia › … › genus Chaetodon`` (every rank the source gave, top down)."""
    return " › ".join(f"{rank} {name}" for rank, name in lineage.items())


def _taxon(result) -> None:
    """The answer at the deepest confident rank, and its lineage."""
    t = result.taxon
    if t is None:
        return
    if result.unknown:  # placed only at a rank that held up on held-out species, with how often it did
        if t.name is None:
            st.markdown("**New to oceanid**: no rank above species held up on held-out species")
            return
        st.markdown(
            f"**New to oceanid; of {t.rank or 'taxon'} {t.name}** (such placements were right "
            f"{t.probability:.0%} of the time on held-out species)"
        )
        st.caption(f"lineage: {lineage_text(t.lineage)}")
        return
    if t.name is None:
        st.markdown("**Answer at rank:** no taxon is probable enough to name")
        return
    how = "least expected taxonomic distance" if t.decode == "distance" else "deepest rank past the threshold"
    st.markdown(f"**answer at rank: {t.rank or 'taxon'} {t.name}** ({t.probability:.0%}, {how})")
    st.caption(f"lineage: {lineage_text(t.lineage)}")


def _verdict(result) -> None:
    v = result.verdict
    if result.unknown:
        st.subheader("Unknown")
        st.caption(
            f"no known species is close enough: below the `{result.scorer}` threshold"
            + (f" (decided in the {result.unknown_by} space)" if result.unknown_by else "")
        )
    else:
        st.subheader(result.species)
        st.caption(
            f"decided by the `{result.scorer}` OOD score against its threshold"
            + (f"; named in the {result.named_by} space" if result.named_by else "")
        )
    if result.warning:
        st.warning(result.warning)
    left, right = st.columns(2)
    if result.unknown:  # the probability is of the closest known species, never the answer's
        left.metric(f"closest known: {result.closest} (among known species)", f"{result.probability:.0%}")
    else:
        left.metric(f"probability it is {result.closest} (calibrated)", f"{result.probability:.0%}")
    right.metric(
        f"unknown score ({result.scorer}) vs threshold",
        f"{v.score:.3f} {'<' if v.score < v.threshold else '≥'} {v.threshold:.3f}",
    )
    if result.accepted_as_added:
        right.caption(f"under the threshold, but accepted by {result.species}'s few-shot scorer (an added species)")
    _taxon(result)
    st.markdown(
        "**Top species** (probability among the known species, calibrated on validation; "
        "similarity = cosine to the prototype)"
    )
    cosine = dict(result.top)
    table(
        pd.DataFrame(
            [(s, p, cosine.get(s)) for s, p in result.probabilities], columns=["species", "probability", "similarity"]
        ),
        hide_index=True,
    )
    st.markdown("**Out-of-distribution scores** (higher = more like a known species)")
    rows = [
        {
            "scorer": name,
            "score": o.score,
            "threshold": o.threshold,
            "verdict": "unknown" if o.unknown else "known",
            "decides": "✓" if name == result.scorer else "",
        }
        for name, o in result.ood.items()
    ]
    table(pd.DataFrame(rows), hide_index=True)


def _similar(hits) -> None:
    st.divider()
    st.subheader(f"Most similar crops ({len(hits)})")
    if not hits:
        st.info("No crop matches the filter.")
    same = {h.annotation_id for h in hits if h.score >= SAME_IMAGE}
    if same:  # an upload that is in the catalog finds itself: marked, not hidden
        st.caption("marked ⟲: the uploaded image itself, already in the catalog")
    gallery(hits, marked=same)


def _frame(ws, k: int, where) -> None:
    """A whole frame: every organism the detector finds, drawn with its label; one chosen shows its answer."""
    from app.workspace import organism_label as label

    upload = st.file_uploader(
        "Drop a whole frame (many organisms): each one is found, then identified", key="identify_frame"
    )
    min_score = st.sidebar.slider(
        "Detector: lowest box score", 0.0, 1.0, ws.detector_min_score(), 0.05, key="identify_min_score"
    )
    if upload is None:
        st.info("Upload a frame from a camera, ROV or imager: the detector finds every organism in it.")
        return
    data = upload.getvalue()
    crop = None
    with state.guard():
        result = ws.identify_frames([data], names=[upload.name], min_score=min_score)
        frame = result.frames[0]
        if frame.error:
            st.error(f"Cannot use this frame: {frame.error}")
            return
        for note in frame.notes:
            st.caption(note)
        image = decode_bytes(data, upload.name)
        st.image(
            ws.annotate_frame(image, frame),
            width="stretch",
            caption=f"{upload.name}: {len(frame.organisms)} organisms ({result.boxes_from})",
        )
        if not frame.organisms:
            st.info(f"No organism found above score {min_score:.2f}.")
            return
        choices = list(range(len(frame.organisms)))
        chosen = st.selectbox(
            "Organism",
            choices,
            key="identify_organism",
            format_func=lambda i: (
                f"{i + 1}: {label(frame.organisms[i])} (box score {frame.organisms[i].detection_score:.2f})"
            ),
        )
        organism = frame.organisms[min(chosen, len(choices) - 1)]
        crop = ws.cut_box(image, organism.box)
        left, right = st.columns([1, 2])
        left.image(
            crop, caption=f"organism {chosen + 1}, box " + " ".join(f"{v:.0f}" for v in organism.box), width="stretch"
        )
        with right:
            _verdict(organism)
    if crop is not None:
        with state.guard():
            _similar(tuple(ws.search(crop, k=k, where=where)))


def render(ws, status) -> None:
    st.header("Identify")
    if not status.has_index:
        st.warning(status.message)
        return
    where = filter_sidebar(ws.stats())
    k = st.sidebar.slider("Similar crops to show", 1, 24, 8, key="identify_k")
    method = st.sidebar.radio("Answer's taxon", list(DECODINGS), format_func=DECODINGS.get, key="identify_decode")
    mode = st.radio(
        "Image", [UPLOAD, FRAME, CATALOG], horizontal=True, key="identify_mode", label_visibility="collapsed"
    )
    if mode == FRAME:
        _frame(ws, k, where)
        return
    picked = _query_from_upload() if mode == UPLOAD else _query_from_catalog(ws)
    if picked is None:
        return
    image, query, label = picked
    found = None
    with state.guard():  # one embedding (or the crop's stored vectors) answers and searches both
        found = ws.look_up(query, name=label, k=k, where=where, decode=method)
    if found is None:
        return
    result = found.identification
    if result.error:
        st.error(f"Cannot read this image: {result.error}")
        return
    left, right = st.columns([1, 2])
    with left:
        st.image(found.image if found.image is not None else str(image), caption=label, width="stretch")
    with right:
        _verdict(result)
    _similar(found.similar)
