"""Evaluation: the last ``oceanid evaluate`` report — metrics, confusion matrix,
ROC curves per OOD scorer, few-shot results and answers at rank (taxonomy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.explorer.widgets import table as show_table

SECTIONS = (
    ("classification", "Classification"),
    ("ood", "Out-of-distribution detection"),
    ("retrieval", "Retrieval"),
    ("few_shot", "Few-shot: adding species from k examples"),
)


def _scalars(data: dict) -> dict:
    return {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _rows(data) -> pd.DataFrame | None:
    """A dict of dicts (name -> numbers) as a table, one row per name; None otherwise."""
    if isinstance(data, dict) and data and all(isinstance(v, dict) and _scalars(v) for v in data.values()):
        return pd.DataFrame({k: _scalars(v) for k, v in data.items()}).T
    return None


def _label(key: str | int) -> str:
    return str(key).replace("_", " ")  # few-shot results are keyed by their number of shots


def _show(value) -> None:
    """A section of the report: numbers as metrics, name -> numbers as tables, the rest folded."""
    table = _rows(value)
    if table is not None:
        show_table(table)
        for row, item in value.items():  # deeper tables inside rows (e.g. few-shot per species)
            for key, sub in item.items():
                if _rows(sub) is not None:
                    with st.expander(f"{_label(key)} — {_label(row)}"):
                        show_table(_rows(sub))
        return
    if not isinstance(value, dict):
        st.json(value, expanded=False)
        return
    scalars = _scalars(value)
    if scalars:
        cols = st.columns(min(len(scalars), 6))
        for n, (key, number) in enumerate(scalars.items()):
            cols[n % len(cols)].metric(_label(key), f"{number:.3f}" if isinstance(number, float) else str(number))
    for key, item in value.items():
        if key in scalars or item in (None, [], {}):
            continue
        sub = _rows(item)
        if sub is not None or (isinstance(item, list) and all(isinstance(r, dict) for r in item)):
            with st.expander(_label(key)):
                show_table(sub if sub is not None else pd.DataFrame(item))
        else:
            with st.expander(_label(key)):
                st.json(item, expanded=False)


def _live(ws) -> tuple[str, str | None] | None:
    """(model, live generation) Identify answers with now; None when there is none."""
    from index.errors import OceanidError

    try:
        model, generation, _ = ws.engine_key()
    except OceanidError:
        return None
    return model, generation


def _plots(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def _taxonomy(t) -> None:
    """Answers at rank: both decodings beside the top-1 species, and where held-out species land."""
    st.subheader("Answers at rank (taxonomy)")
    st.caption(
        f"rank threshold {t.rank_threshold:.2f} ({t.threshold_source}); taxonomic distance: FathomNet "
        "2025, 7 ranks, 0 = right label .. 12 = nothing shared (an answer naming nothing counts 12)"
    )
    rows = [{"answer": "top-1 species", "mean distance": t.species_mean_distance, **t.species_rank_accuracy}]
    rows += [
        {"answer": f"decode {k}", "mean distance": d.mean_distance, **d.rank_accuracy} for k, d in t.decodings.items()
    ]
    show_table(pd.DataFrame(rows), hide_index=True)
    held = [
        {
            "species": name,
            "decode": k,
            "crops": p.crops,
            "flagged new": p.flagged_new,
            "right genus": p.genus,
            "right family": p.family,
        }
        for k, d in t.decodings.items()
        if d.held_out is not None
        for name, p in [("all held-out", d.held_out), *d.held_out_species.items()]
    ]
    if held:
        st.markdown(
            "*held-out species: flagged new at species level, and their answer names their true genus / family*"
        )
        show_table(pd.DataFrame(held), hide_index=True)


def render(ws, status) -> None:
    st.header("Evaluation")
    summary = ws.last_evaluation()
    if summary is None:
        st.info("No evaluation yet: run `oceanid evaluate` (or `oceanid demo`) and reload this page.")
        return
    report = summary.to_dict()
    folder = Path(summary.report_dir or "")
    counts = report["counts"]
    line = ", ".join(f"{v} {k}" for k, v in counts.items() if isinstance(v, int))
    held = ", ".join(summary.counts.held_out_species) or "none"
    st.caption(
        f"made with model `{summary.model}` · index `{summary.generation}` · {line} · "
        f"held out: {held} · report folder `{folder}`"
    )
    live = _live(ws)
    stale = live is not None and live != (summary.model, summary.generation)
    if stale:
        st.warning(
            f"Stale report: it was made with model `{summary.model}`, index `{summary.generation}`; "
            f"Identify now uses model `{live[0]}`, index `{live[1]}`. Run `oceanid evaluate` again."
        )
    if summary.model_stale:
        st.warning(
            f"Model `{summary.model}` was stale when this report was made ({summary.model_stale}): "
            "its figures may be inflated. Retrain it and run `oceanid evaluate` again."
        )
    if summary.classification.top5 is None:
        st.caption("top-5 accuracy: n/a (5 trained species or fewer)")
    for key, title in SECTIONS:
        if not report.get(key):
            continue
        st.subheader(title)
        _show(report[key])
        if key == "classification":
            if report["confusable"]:
                st.markdown("*most confusable species pairs*")
                show_table(pd.DataFrame(report["confusable"]), hide_index=True)
            for png in _plots(folder, "confusion*.png"):
                st.image(str(png), caption=png.stem.replace("_", " "))
        if key == "ood" and summary.ood_decision_scorer:
            st.caption(
                f'`{summary.ood_decision_scorer}` decided "unknown" when this report was made'
                + (" (the report is stale: Identify may decide otherwise now)" if stale else "")
            )
        if key == "ood":
            rocs = _plots(folder, "roc*.png")
            cols = st.columns(min(len(rocs), 2)) if rocs else []
            for n, png in enumerate(rocs):
                cols[n % len(cols)].image(str(png), caption=png.stem.replace("_", " "), width=720)
    if summary.taxonomy is not None:
        _taxonomy(summary.taxonomy)
    shown = {p for pattern in ("confusion*.png", "roc*.png") for p in _plots(folder, pattern)}
    others = [p for p in _plots(folder, "*.png") if p not in shown]
    if others:
        st.subheader("Other plots")
        for png in others:
            st.image(str(png), caption=png.stem.replace("_", " "))
