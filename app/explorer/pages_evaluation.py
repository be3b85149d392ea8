"""Evaluation: the last ``oceanid evaluate`` report — metrics, confusion matrix,
ROC curves per OOD scorer and few-shot results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

SECTIONS = (("classification", "Classification"), ("ood", "Out-of-distribution detection"),
            ("retrieval", "Retrieval"), ("few_shot", "Few-shot: adding species from k examples"))


def _scalars(data: dict) -> dict:
    return {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _show(value) -> None:
    """Numbers as metrics, a dict of dicts or a list of dicts as a table, the rest as JSON."""
    if isinstance(value, dict):
        scalars = _scalars(value)
        if scalars:
            cols = st.columns(min(len(scalars), 5))
            for n, (key, number) in enumerate(scalars.items()):
                cols[n % len(cols)].metric(key.replace("_", " "), f"{number:.3f}" if isinstance(number, float)
                                           else str(number))
        nested = {k: v for k, v in value.items() if isinstance(v, dict)}
        if nested and all(_scalars(v) for v in nested.values()):
            st.dataframe(pd.DataFrame({k: _scalars(v) for k, v in nested.items()}).T, width="stretch")
        rest = {k: v for k, v in value.items() if k not in scalars and not (nested and k in nested)}
        for key, item in rest.items():
            if isinstance(item, list) and item and all(isinstance(r, dict) for r in item):
                st.markdown(f"*{key.replace('_', ' ')}*")
                st.dataframe(pd.DataFrame(item), hide_index=True, width="stretch")
            elif item not in (None, [], {}):
                with st.expander(key.replace("_", " ")):
                    st.json(item, expanded=False)
    elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        st.dataframe(pd.DataFrame(value), hide_index=True, width="stretch")
    else:
        st.json(value, expanded=False)


def _plots(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def render(ws, status) -> None:
    st.header("Evaluation")
    report = ws.last_evaluation()
    if not report:
        st.info("No evaluation yet: run `oceanid evaluate` (or `oceanid demo`) and reload this page.")
        return
    folder = Path(report.get("report_dir") or "")
    st.caption(f"report folder: {folder}" if str(folder) not in ("", ".") else "")
    for key, title in SECTIONS:
        if key not in report:
            continue
        st.subheader(title)
        _show(report[key])
        if key == "classification":
            for png in _plots(folder, "confusion*.png"):
                st.image(str(png), caption=png.stem.replace("_", " "))
        if key == "ood":
            rocs = _plots(folder, "roc*.png")
            cols = st.columns(min(len(rocs), 2)) if rocs else []
            for n, png in enumerate(rocs):
                cols[n % len(cols)].image(str(png), caption=png.stem.replace("_", " "), width="stretch")
    shown = {p for pattern in ("confusion*.png", "roc*.png") for p in _plots(folder, pattern)}
    others = [p for p in _plots(folder, "*.png") if p not in shown]
    if others:
        st.subheader("Other plots")
        for png in others:
            st.image(str(png), caption=png.stem.replace("_", " "))
