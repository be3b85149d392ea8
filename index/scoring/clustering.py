"""Grouping vectors nobody has named into candidate species: HDBSCAN over unit vectors (issue 29).

A pure function over vectors: ``(n, d)`` L2-normalised rows in, a :class:`Clustering` out (labels,
centres, each member's distance to its centre, the members nearest each centre as exemplars, and a
cohesion per cluster). scikit-learn's ``HDBSCAN`` does the grouping (density-based, so crops that
belong nowhere stay unclustered as noise instead of being forced into a group); it is imported when
a clustering runs, and the serving install (no scikit-learn) gets one line saying what to install.

On unit vectors the Euclidean distance HDBSCAN uses is a monotone function of the cosine
(``|a - b|^2 = 2 - 2 cos``), so clusters are cosine clusters. ``dims`` first projects on the leading
principal components (an SVD, deterministic up to sign, which distances ignore), which keeps 100,000
vectors within minutes (bench/discover.py measures both the quality and the time).

Deterministic: the same rows in the same order give the same labels, and clusters are numbered by
size (largest first; ties: the one whose first member comes first), never by HDBSCAN's internal order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.errors import InvalidInput

NOISE = -1
#: the defaults, chosen on fish4knowledge's leave-species-out fold 0 (bench/discover.py, bench/RESULTS.md
#: "Discover"): min_cluster_size 3 with eom on 16 or 32 components met every fish target in the tuned and the
#: fused space; 5 and more fragmented less but named fewer held-out crops in one click than 5-shot species add
MIN_CLUSTER_SIZE = 3
EXEMPLARS = 5
SELECTIONS = ("eom", "leaf")  # HDBSCAN's cluster selection: excess of mass | the leaves of the tree
SELECTION = "eom"
#: principal components kept before clustering (0 keeps every dimension): HDBSCAN's tree search slows
#: sharply with the dimension (bench/RESULTS.md "Discover": 100,000 128-d vectors took 555 CPU s on 32
#: components, 92 on 8); on fish4knowledge fold 0, 16 clustered as well as 32 (fused: purity 0.96, ARI 0.87)
DIMS = 16
BRUTE_MAX = 5000  # up to this many rows in more than DIMS dimensions: exact pairwise distances (n^2 memory)


@dataclass(frozen=True)
class ClusterParams:
    """How a set of vectors is clustered (stored with each discovery run)."""

    min_cluster_size: int = MIN_CLUSTER_SIZE  # the smallest group HDBSCAN calls a cluster
    min_samples: int | None = None  # HDBSCAN's density smoothing (None: min_cluster_size)
    selection: str = SELECTION  # eom | leaf
    dims: int = DIMS  # principal components kept first (0: all)
    exemplars: int = EXEMPLARS  # members nearest each centre shown first and offered to name it

    def __post_init__(self) -> None:
        if isinstance(self.min_cluster_size, bool) or int(self.min_cluster_size) < 2:
            raise InvalidInput(f"--min-cluster-size must be at least 2, got {self.min_cluster_size}")
        if self.min_samples is not None and int(self.min_samples) < 1:
            raise InvalidInput(f"min_samples must be at least 1, got {self.min_samples}")
        if self.selection not in SELECTIONS:
            raise InvalidInput(f"unknown cluster selection {self.selection!r}; valid: {', '.join(SELECTIONS)}")
        if int(self.dims) < 0:
            raise InvalidInput(f"dims must be 0 (all) or more, got {self.dims}")
        if int(self.exemplars) < 1:
            raise InvalidInput(f"--exemplars must be at least 1, got {self.exemplars}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterParams:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True, eq=False)
class Clustering:
    """The clusters of n vectors (rows in input order; cluster c is ``labels == c``, 0 the largest)."""

    labels: np.ndarray  # (n,) int64: the row's cluster, or NOISE (-1)
    centres: np.ndarray = field(repr=False)  # (k, d) float32 unit: each cluster's normalised mean
    distances: np.ndarray = field(repr=False)  # (n,) float32: 1 - cosine to its centre (nan for noise)
    cohesion: np.ndarray = field(repr=False)  # (k,) float32: mean cosine of a cluster's members to its centre
    exemplars: tuple[np.ndarray, ...] = field(
        repr=False
    )  # per cluster: rows nearest its centre (distinct groups first)

    @property
    def count(self) -> int:
        return len(self.centres)

    def members(self, cluster: int) -> np.ndarray:
        """(m,) rows of ``cluster``, nearest its centre first (ties: input order)."""
        rows = np.flatnonzero(self.labels == cluster)
        return rows[np.argsort(self.distances[rows], kind="stable")]


def _hdbscan():
    try:
        from sklearn.cluster import HDBSCAN
    except ModuleNotFoundError as exc:
        raise InvalidInput(
            "discover clusters with scikit-learn, which this install lacks: pip install 'oceanid[train]'"
        ) from exc
    return HDBSCAN


def project(vectors: np.ndarray, dims: int) -> np.ndarray:
    """``(n, d)`` -> ``(n, min(dims, d))`` float64 coordinates on the leading principal components
    (``dims`` 0 or >= d: the centred vectors unchanged)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    if dims <= 0 or dims >= x.shape[1]:
        return x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:dims].T


def cluster_vectors(
    vectors: np.ndarray, params: ClusterParams = ClusterParams(), groups: np.ndarray | None = None
) -> Clustering:
    """Cluster ``vectors`` (n, d) float32, L2-normalised, with HDBSCAN (see the module docstring).

    Fewer rows than ``params.min_cluster_size`` give no cluster (every row noise). ``groups`` (n,): each
    row's near-duplicate group (a track, a frame burst); exemplars then come from distinct groups first
    (nearest the centre within that rule), so five exemplars are not five frames of one track.

    Raises:
        InvalidInput: scikit-learn is not installed, or ``vectors`` is not 2-D.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInput(f"vectors must be (n, d), got shape {x.shape}")
    n = len(x)
    hdbscan = _hdbscan()
    if n < max(params.min_cluster_size, 2):
        raw = np.full(n, NOISE, dtype=np.int64)
    else:
        z = project(x, params.dims)
        model = hdbscan(
            min_cluster_size=int(params.min_cluster_size),
            min_samples=None if params.min_samples is None else min(int(params.min_samples), n - 1),
            cluster_selection_method=params.selection,
            algorithm="brute" if z.shape[1] > DIMS and n <= BRUTE_MAX else "auto",
            copy=True,
        )
        raw = np.asarray(model.fit_predict(z), dtype=np.int64)
    return _summarise(x, _renumber(raw), params.exemplars, groups)


def _renumber(raw: np.ndarray) -> np.ndarray:
    """HDBSCAN's labels renumbered by size, largest first (ties: the earlier first member)."""
    found = [c for c in np.unique(raw) if c != NOISE]
    order = sorted(found, key=lambda c: (-int((raw == c).sum()), int(np.argmax(raw == c))))
    out = np.full(len(raw), NOISE, dtype=np.int64)
    for new, old in enumerate(order):
        out[raw == old] = new
    return out


def _exemplars(rows: np.ndarray, cos: np.ndarray, count: int, groups: np.ndarray | None) -> np.ndarray:
    """``count`` of ``rows`` nearest the centre (``cos``: their cosines to it), distinct groups first."""
    order = rows[np.argsort(-cos, kind="stable")]
    if groups is None:
        return order[:count]
    seen, first, rest = set(), [], []
    for r in order:
        (rest if groups[r] in seen else first).append(r)
        seen.add(groups[r])
    return np.asarray((first + rest)[:count], dtype=np.int64)


def _summarise(x: np.ndarray, labels: np.ndarray, exemplars: int, groups: np.ndarray | None = None) -> Clustering:
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    centres = np.zeros((k, x.shape[1]), np.float32)
    distances = np.full(len(x), np.nan, np.float32)
    cohesion = np.zeros(k, np.float32)
    chosen = []
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        mean = x[rows].astype(np.float64).mean(axis=0)
        centre = mean / (np.linalg.norm(mean) or 1.0)
        cos = x[rows].astype(np.float64) @ centre
        centres[c] = centre
        distances[rows] = 1.0 - cos
        cohesion[c] = float(cos.mean())
        chosen.append(_exemplars(rows, cos, exemplars, groups))
    return Clustering(labels, centres, distances, cohesion, tuple(chosen))
