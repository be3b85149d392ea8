"""Discover: the crops the model answers unknown, grouped into candidate species (``oceanid discover``).

Each cluster is a gallery (exemplars first, then the members by distance to the centre) with its
facts; crops that do not belong can be split off, and the rest named in one step through the Add
species path (``species add``: no retraining).
"""

from __future__ import annotations

import streamlit as st

from app.explorer import state
from app.explorer.widgets import image_row

SHOWN = 18  # members shown per cluster (exemplars first)


def _key(member) -> str:
    return str(member.crop_id if member.crop_id is not None else member.path)


def _label(member) -> str:
    name = f"#{member.crop_id}" if member.crop_id is not None else str(member.path).rsplit("/", 1)[-1]
    return f"{name} · {member.distance:.3f}" + (" · exemplar" if member.exemplar else "")


def _facts(cluster) -> str:
    f = cluster.facts
    parts = [f"**{cluster.size}** crops", f"cohesion {cluster.cohesion:.3f}"]
    if f.nearest_species:
        parts.append(f"nearest known species *{f.nearest_species}* ({f.nearest_similarity:.3f})")
    if f.taxon:
        parts.append(f"placed at {f.taxon_rank} *{f.taxon}* ({f.taxon_share:.0%} of members)")
    if f.genus or f.family:
        parts.append(f"likeliest genus {f.genus or '—'}, family {f.family or '—'}")
    seen = f"{f.frames} frame(s)"
    if f.sources:
        seen += f" from {', '.join(f.sources)}"
    if f.first_date:
        seen += f", {f.first_date} … {f.last_date}"
    if f.depth_m:
        seen += f", {f.depth_m[0]:g}–{f.depth_m[1]:g} m"
    if f.sites:
        seen += f", {len(f.sites)} site(s)"
    parts.append(seen)
    return " · ".join(parts)


def _run_controls(discovery) -> None:
    with st.form("discover_run"):
        left, right = st.columns([3, 1])
        where = left.text_input("Only crops matching (filter grammar)", placeholder="source=survey-2024")
        size = right.number_input(
            "Smallest cluster", min_value=2, value=int(discovery.default_min_cluster_size), step=1
        )
        go = st.form_submit_button("Discover", type="primary")
    if go:
        with st.spinner("Clustering the crops answered unknown…"):
            run = discovery.run(where=where.strip() or None, min_cluster_size=int(size))
        st.session_state["discovery_run"] = run.id


def _cluster(discovery, cluster) -> None:
    named = f" · named **{', '.join(n.species for n in cluster.names)}**" if cluster.names else ""
    st.subheader(f"Cluster {cluster.id} (#{cluster.number})")
    st.markdown(_facts(cluster) + named)
    ordered = [*cluster.exemplars, *(m for m in cluster.members if not m.exemplar)]  # exemplars first
    shown = ordered[:SHOWN]
    image_row([m.path for m in shown], [_label(m) for m in shown])
    if len(cluster.members) > SHOWN:
        st.caption(f"… and {len(cluster.members) - SHOWN} more (`oceanid discover show {cluster.discovery_id}`)")
    labels = {_label(m): m for m in ordered}
    with st.form(f"name_{cluster.id}"):
        odd = st.multiselect("Split off crops that do not belong", list(labels), key=f"split_{cluster.id}")
        species = st.text_input("Species name", key=f"species_{cluster.id}", placeholder="Glaucichthys melanurus")
        submitted = st.form_submit_button("Name it (add species)")
    if not submitted:
        return
    if not species.strip():
        st.error("Give the species a name.")
        return
    dropped = {_key(labels[o]) for o in odd}
    crops = None
    if dropped:  # the exemplars that remain, else the nearest members that remain
        kept = [m for m in cluster.members if _key(m) not in dropped]
        chosen = [m for m in kept if m.exemplar] or kept[: len(cluster.exemplars) or 5]
        crops = [_key(m) for m in chosen]
    with st.spinner(f"Adding {species.strip()}…"):
        result = discovery.name(cluster.id, species.strip(), crops=crops)
    state.forget()
    st.session_state["discovery_named"] = result
    st.rerun()


def render(ws, status) -> None:
    st.header("Discover")
    if not status.has_index:
        st.warning(status.message)
        return
    st.caption(
        "The crops the model answers *unknown*, grouped by similarity into candidate new species "
        "(HDBSCAN; crops that fit no group stay out). Name a group and it is added as a species from "
        "its exemplars, without retraining."
    )
    named = st.session_state.get("discovery_named")
    if named:
        st.success(
            f"Added **{named.species}** from {len(named.examples)} crop(s) of cluster {named.cluster_id}; "
            f"{len(named.answered)} of {named.members} members are now answered {named.species}."
        )
    discovery = ws.discovery()
    _run_controls(discovery)
    runs = discovery.list()
    if not runs:
        st.info("No discovery yet: press **Discover** (or run `oceanid discover`).")
        return
    labels = {
        f"run {r.id} · {len(r.clusters)} clusters of {r.unknown} unknown crops · {r.space} · {r.model_id}": r.id
        for r in runs
    }
    wanted = st.session_state.get("discovery_run")
    index = next((n for n, rid in enumerate(labels.values()) if rid == wanted), 0)
    picked = st.selectbox("Discovery run", list(labels), index=index, key="discovery_pick")
    run = discovery.show(labels[picked])
    st.caption(
        f"{run.unknown} of {run.inputs} crops answered unknown; {run.clustered} in {len(run.clusters)} "
        f"cluster(s), {run.unknown - run.clustered} left out · parameters {run.params}"
    )
    if not run.clusters:
        st.info("No cluster in this run: fewer similar unknown crops than the smallest cluster size.")
    for cluster in run.clusters:
        _cluster(discovery, cluster)
