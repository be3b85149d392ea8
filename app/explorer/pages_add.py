"""Add species: a name, optional genus and family, a few example images -> the
species joins the prototypes and the index without retraining."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from app.explorer import state
from index.records import HOLDOUT


def _as_file(folder: Path, n: int, upload) -> Path:
    """An upload written under ``folder`` with its own file name (a folder per upload keeps
    two uploads of the same name apart)."""
    path = folder / str(n) / (Path(upload.name).name or f"upload-{n + 1}")
    path.parent.mkdir()
    path.write_bytes(upload.getvalue())
    return path


def _catalog_examples(ws) -> dict[str, Path]:
    """Catalog crops offered as examples (label -> crop file), held-out species first."""
    crops = sorted(state.crop_choices(ws), key=lambda c: (c.split != HOLDOUT, c.species, c.annotation_id))
    return {f"#{c.annotation_id} · {c.species} · {c.split or '—'}": c.crop for c in crops if c.crop}


def render(ws, status) -> None:
    st.header("Add a species")
    if not status.has_index:
        st.warning(status.message)
        return
    st.caption(
        "A few example images are enough: their embeddings become the species' prototype and join "
        "the index. Nothing is retrained; Identify recognises the species at once."
    )
    added = st.session_state.get("added_species")
    if added:
        st.success(f"Added **{added.species}** from {added.examples} example(s) (index generation {added.generation}).")
        for item, reason in added.skipped:
            st.warning(f"skipped {item}: {reason}")
    examples = _catalog_examples(ws)
    with st.form("add_species"):
        name = st.text_input("Species name", placeholder="Glaucichthys melanurus")
        left, right = st.columns(2)
        genus = left.text_input("Genus (optional)")
        family = right.text_input("Family (optional)")
        uploads = st.file_uploader("Example images", accept_multiple_files=True, key="add_uploads")
        picked = st.multiselect("…or example crops from the catalog", list(examples), key="add_picked")
        submitted = st.form_submit_button("Add species", type="primary")
    if not submitted:
        return
    if not name.strip():
        st.error("Give the species a name.")
        return
    if not uploads and not picked:
        st.error("Add at least one example image (upload, or pick crops from the catalog).")
        return
    with st.spinner(f"Adding {name.strip()}…"), tempfile.TemporaryDirectory(prefix="oceanid-add-") as tmp:
        # uploads go through files named as uploaded, so a bad one is reported by its file name
        images = [_as_file(Path(tmp), n, u) for n, u in enumerate(uploads or [])] + [examples[p] for p in picked]
        result = ws.species_add(name.strip(), images, genus=genus.strip() or None, family=family.strip() or None)
    state.forget()
    st.session_state["added_species"] = result
    st.rerun()
