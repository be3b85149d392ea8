"""Where the held-out crops' probability goes: per held-out species, the mean calibrated probability
of its true genus / family (summed up the tree over the trained prototypes) and its top-1 species.

    .venv/bin/python -m bench.taxonomy_diagnose /tmp/taxa-f4k
"""

from __future__ import annotations

from pathlib import Path

from bench.common import bench_parser


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("home", type=Path, help="a home built by bench.taxonomy (trained, indexed)")
    args = parser.parse_args()
    import numpy as np

    from app.workspace import Workspace
    from app.workspace.decisions import trained_only
    from index.catalog.embeddings import load_embeddings
    from index.catalog.taxa import tree
    from index.taxonomy import rank_table

    ws = Workspace(args.home)
    eng = ws.engine()
    base = trained_only(eng.prototypes, eng.origins)
    _, hv, hl = load_embeddings(ws.catalog, eng.model_id, ("holdout",), with_labels=True)
    lin = tree(ws.catalog)
    t = rank_table(base.names, lin)
    p = eng.calibration.probabilities(base.similarities(hv)) if eng.calibration else None
    print("temperature", eng.calibration.temperature if eng.calibration else None, "rank thr", eng.rank_threshold)
    rp = t.probabilities(p)
    for name in sorted(set(hl.astype(str))):
        m = hl.astype(str) == name
        lineage = lin[name]
        for r in ("genus", "family", "order", "class"):
            tx = lineage.at(r)
            if tx and tx in t.taxa:
                v = rp[m, t.taxa.index(tx)]
                print(
                    name,
                    r,
                    tx,
                    f"mean p {v.mean():.3f}  share>=0.5 {(v >= 0.5).mean():.3f}  >=0.35 {(v >= 0.35).mean():.3f}",
                )
        top = np.asarray(base.names)[p[m].argmax(1)]
        u, c = np.unique(top, return_counts=True)
        print("  top-1:", sorted(zip(c, u, strict=True), reverse=True)[:4], f"max p mean {p[m].max(1).mean():.3f}")


if __name__ == "__main__":
    main()
