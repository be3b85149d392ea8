"""Where the held-out crops' probability goes: per held-out species, the mean calibrated probability
of its true genus / family (summed up the tree over the trained prototypes) and its top-1 species.

    PYTHONPATH=$PWD .venv/bin/python bench/taxonomy_diagnose.py /tmp/taxa-f4k
"""
import sys

import numpy as np

from app.workspace import Workspace
from index.catalog.embeddings import load_embeddings
from index.catalog.taxa import tree
from index.taxonomy import rank_table
ws = Workspace(sys.argv[1]); eng = ws.engine()
from app.workspace.decisions import trained_only
base = trained_only(eng.prototypes, eng.origins)
_, hv, hl = load_embeddings(ws.catalog, eng.model_id, ("holdout",), with_labels=True)
lin = tree(ws.catalog); t = rank_table(base.names, lin)
p = eng.calibration.probabilities(base.similarities(hv)) if eng.calibration else None
print("temperature", eng.calibration.temperature if eng.calibration else None, "rank thr", eng.rank_threshold)
rp = t.probabilities(p)
for name in sorted(set(hl.astype(str))):
    m = hl.astype(str) == name; L = lin[name]
    for r in ("genus", "family", "order", "class"):
        tx = L.at(r)
        if tx and tx in t.taxa:
            v = rp[m, t.taxa.index(tx)]
            print(name, r, tx, "mean p %.3f  share>=0.5 %.3f  >=0.35 %.3f" % (v.mean(), (v >= .5).mean(), (v >= .35).mean()))
    top = np.asarray(base.names)[p[m].argmax(1)]
    u, c = np.unique(top, return_counts=True); print("  top-1:", sorted(zip(c, u), reverse=True)[:4], "max p mean %.3f" % p[m].max(1).mean())
