"""Decision rules over two vector spaces, evaluated from cached features (bench/two_spaces.py).

A *naming space* is where a crop is named (nearest class prototype, as today): the tuned space, a general
space, either centred on its training mean and re-normalised (SimpleShot "CL2N"), or a fusion
``[sqrt(w) t, sqrt(1-w) g]`` of the two centred spaces, whose cosine is ``w cos_t + (1-w) cos_g``.
An *unknown rule* decides whether the name is given: the knn scorer (k-th neighbour, ``few_shot`` for
the added species, threshold at 95% of the known validation crops) in one space; the z-normalised sum of
the tuned and the general knn scores; or two stages (the tuned space's trained-species score accepts; below
its threshold, a crop is named only when the naming space names an added species and that space's knn
score accepts it).

Every rule sees the same support draws (paired comparison). The fusion weight of a fold is chosen on the
other folds (their added species' 5-shot ceiling and known validation top-1), never on the fold itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from index.scoring.fusion import Fusion
from index.scoring.ood import KnnScorer, calibrate
from index.scoring.prototypes import Prototypes

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
COLUMNS = (
    "named",
    "called_unknown",
    "named_wrongly",
    "ceiling",
    "known_named_added",
    "known_top1",
    "known_f1_macro",
    "unknown_auroc",
    "recall_at_1",
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def cl2n(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """SimpleShot CL2N: centred on ``mean`` (the training crops'), re-normalised."""
    return unit(x - mean)


def fuse(t: np.ndarray, g: np.ndarray, w: float) -> np.ndarray:
    """Unit ``t`` and ``g`` -> unit ``[sqrt(w) t, sqrt(1-w) g]``: its cosine is ``w cos_t + (1-w) cos_g``."""
    return np.concatenate([np.sqrt(w) * t, np.sqrt(1 - w) * g], 1).astype(np.float32)


def draw_support(rng, y, g, idx, added, shots):
    support, queries = {}, {}
    for species in added:
        mine = idx["added"][y[idx["added"]] == species]
        chosen = rng.choice(np.unique(g[mine]), shots, replace=False)
        support[species] = np.array([rng.choice(mine[g[mine] == c]) for c in chosen])
        queries[species] = mine[~np.isin(g[mine], chosen)]
    return support, queries


class Draw:
    """One support draw: prototypes and knn scorers per space, computed once and shared by every rule."""

    def __init__(self, reps, y, idx, support, queries, added, fold_cache: dict | None = None):
        self.reps, self.y, self.idx, self.added = reps, y, idx, added
        self.support, self.queries = support, queries
        self.q = np.concatenate(list(queries.values()))
        self.train = np.concatenate([idx["train"], *support.values()])
        self.pools = {"q": self.q, "test": idx["test"], "unknown": idx["unknown"], "val": idx["val"]}
        self._names, self._knn, self._trained, self._protos, self._scores = {}, {}, {}, {}, {}
        # what does not depend on the draw (the trained species' Gaussians, ViM's subspace), shared by the
        # fold's draws
        self.fold = fold_cache if fold_cache is not None else {}

    def prototypes(self, space) -> Prototypes:
        if space not in self._protos:
            v, y, tr = self.reps[space], self.y, self.idx["train"]
            protos = Prototypes.fit(v[tr], y[tr])
            for species, rows in self.support.items():
                protos = protos.with_class(species, v[rows])
            self._protos[space] = protos
        return self._protos[space]

    def rows(self, space):
        """``(rows, owners, names)``: the prototype rows ``space`` names with (cosine).

        A fused space names as the product does: each class's prototype in each space (the mean of its
        raw vectors there), the two fused by the stored :class:`index.scoring.fusion.Fusion`.
        """
        fusion = self.reps.get(("fusion", space))
        if fusion is None:
            protos = self.prototypes(space)
            return protos.vectors, protos.owners, np.asarray(protos.names)
        pt, pg = self.prototypes("tuned"), self.prototypes(fusion[0])
        assert pt.names == pg.names and len(pt.vectors) == len(pt.names)
        return fusion[1].fuse(pt.vectors, pg.vectors), pt.owners, np.asarray(pt.names)

    def names(self, naming):
        """``pool -> predicted names`` under ``naming``: a space (nearest prototype by cosine, as the product
        names), or ``"<space>#<method>"`` with a method of :data:`NAMING_METHODS`."""
        if naming not in self._names:
            space, _, method = naming.partition("#")
            v = self.reps[space]
            if method in ("", "cosine", "dc-cosine"):
                rows, owners, names = self.rows(space)
                if method == "dc-cosine":  # each added species' row calibrated from its nearest trained ones
                    rows = rows.copy()
                    trained = ~np.isin(names[owners], self.added)
                    for species, support in self.support.items():
                        rows[names[owners] == species] = calibrated_prototype(v[support], rows[trained])
                self._names[naming] = {k: names[owners[(v[ix] @ rows.T).argmax(1)]] for k, ix in self.pools.items()}
            else:
                names, d2 = self.gaussian(space).distances(method, self.support)
                self._scores[naming] = -d2.min(1)
                pred = names[d2.argmin(1)]
                self._names[naming] = {k: pred[ix] for k, ix in self.pools.items()}
        return self._names[naming]

    def gaussian(self, space) -> GaussianSpace:
        """The space's trained species as Gaussians (Tukey-transformed first where its features are
        non-negative, as DC asks: the raw pooled features)."""
        key = ("gaussian", space)
        if key not in self.fold:
            v = self.reps[space]
            lam = 0.5 if v.min() >= 0 else None
            scored = np.concatenate([self.idx[p] for p in ("added", "test", "unknown", "val")])
            self.fold[key] = GaussianSpace(
                v, self.y, self.idx["train"], tukey_lam=lam, basis=self.basis(space, lam), scored=scored
            )
        return self.fold[key]

    def basis(self, space, lam=None):
        """``pca_basis`` of the space's training crops (Tukey-transformed with ``lam``), every component;
        shared by the Gaussian rules and ViM."""
        key = ("pca", space, lam)
        if key not in self.fold:
            x = self.reps[space][self.idx["train"]].astype(np.float64)
            self.fold[key] = pca_basis(x if lam is None else tukey(x, lam), x.shape[1])
        return self.fold[key]

    def score(self, rule: tuple):
        """``pool -> score`` of a scorer that is not knn: ``("vim-residual", space)``: minus ViM's residual
        (no head); ``("vim-proto", space)``: ViM's score with the space's cosine prototypes as the head
        (logits ``VIM_SCALE * cos``); ``("maha", naming)``: minus the smallest squared distance of a
        Gaussian naming (``"<space>#<method>"``)."""
        if rule not in self._scores:
            kind, arg = rule
            if kind == "maha":
                self.names(arg)
                s = self._scores[arg]
            elif kind == "vim-head":  # the tuned model's own classifier over its head features
                x = self.reps[arg].astype(np.float64)
                weight, bias = self.reps[("classifier", arg)]
                key = ("vim-head", arg)
                if key not in self.fold:
                    self.fold[key] = vim_head_fit(x[self.idx["train"]], weight, bias)
                origin, basis, alpha = self.fold[key]
                s = vim_score(vim_residual(x, origin, basis), x @ weight.T + bias, alpha)
            else:
                v = self.reps[arg]
                key = ("vim", arg)
                if key not in self.fold:
                    origin, basis = vim_fit(v[self.idx["train"]], basis=self.basis(arg))
                    self.fold[key] = (origin, basis, vim_residual(v, origin, basis))
                _, _, residual = self.fold[key]
                if kind == "vim-residual":
                    s = -residual
                else:
                    rows = self.prototypes(arg).vectors
                    logits = VIM_SCALE * (v @ rows.T)
                    tr = self.idx["train"]
                    alpha = logits[tr].max(1).mean() / residual[tr].mean()
                    s = vim_score(residual, logits, alpha)
            self._scores[rule] = s
        s = self._scores[rule]
        return {k: s[ix] for k, ix in self.pools.items()}

    def knn(self, space):
        """``pool -> knn score`` in ``space`` with the added species as few-shot classes."""
        if space not in self._knn:
            v = self.reps[space]
            scorer = KnnScorer(few_shot=self.added).fit(v[self.train], self.y[self.train])
            self._knn[space] = {k: scorer.score(v[ix]) for k, ix in self.pools.items()}
        return self._knn[space]

    def trained(self, space):
        """``pool -> knn score`` against the trained species only (stage one of the two-stage rule)."""
        if space not in self._trained:
            v, tr = self.reps[space], self.idx["train"]
            scorer = KnnScorer().fit(v[tr], self.y[tr])
            self._trained[space] = {k: scorer.score(v[ix]) for k, ix in self.pools.items()}
        return self._trained[space]


# -- rules beyond cosine to the prototype (issue 26 item 2): Gaussian naming, distribution calibration, ViM --
#
# Every Gaussian rule works in a PCA basis of the naming space (fitted on the fold's training crops, GAUSS_DIM
# components): 1280-d / 2560-d covariances from a few hundred crops per species are not estimable, and the
# 256 leading components keep the directions the crops vary in. Fitted once per fold and space, shared by
# every draw (the trained species' statistics do not depend on the draw; the added species' do).

#: PCA components the Gaussian rules work in; DC's k nearest trained species; Simple CNAPS' lambda constant
GAUSS_DIM = 256
DC_K = 2
CNAPS_KAPPA = 1.0
#: the naming methods beside cosine to the prototype (the product's): see :meth:`GaussianSpace.distances`
NAMING_METHODS = ("maha-shared", "maha-cnaps", "maha-shrunk", "dc-cosine", "dc-maha")
#: ViM's principal subspace keeps this share of the training crops' variance
VIM_VARIANCE = 0.9


def tukey(x: np.ndarray, lam: float = 0.5) -> np.ndarray:
    """Tukey's ladder of powers (DC's first step): ``x ** lam`` (``log x`` at 0) of non-negative features."""
    x = np.maximum(np.asarray(x, np.float64), 0.0)
    return np.log(x + 1e-6) if lam == 0 else x**lam


def pca_basis(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (d,), components (k, d), variances (k,))`` of ``x: (n, d)``, k = min(dim, n - 1, d), largest first."""
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    c = x - mean
    k = min(dim, len(x) - 1, x.shape[1])
    # eigen-decomposition of the smaller of the Gram and scatter matrices (an SVD of 1,700 x 2,560 is ~10x slower)
    if len(c) < c.shape[1]:
        s2, u = np.linalg.eigh(c @ c.T)
        s2, u = s2[::-1][:k], u[:, ::-1][:, :k]
        keep = s2 > s2[0] * 1e-12
        s2, u = s2[keep], u[:, keep]
        vt = (u.T @ c) / np.sqrt(s2)[:, None]
    else:
        s2, v = np.linalg.eigh(c.T @ c)
        s2, vt = s2[::-1][:k], v[:, ::-1][:, :k].T
    return mean, vt, np.maximum(s2, 0.0) / max(len(x) - 1, 1)


def shared_covariance(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk within-class covariance (every class centred on its own mean) of ``z: (n, k)``."""
    from sklearn.covariance import LedoitWolf

    centred = np.asarray(z, np.float64).copy()
    for c in np.unique(labels):
        rows = labels == c
        centred[rows] -= centred[rows].mean(0)
    return LedoitWolf(assume_centered=True).fit(centred).covariance_


def cnaps_covariance(own: np.ndarray, n: int, shared: np.ndarray, kappa: float = CNAPS_KAPPA) -> np.ndarray:
    """Simple CNAPS' class covariance ``lam S_c + (1 - lam) S_shared + s2 I``, ``lam = n / (n + kappa)``.

    ``own``: the class's sample covariance (zeros for one crop); the identity term is the shared covariance's
    mean variance ``s2`` (Simple CNAPS adds ``I`` to features of unit scale per dimension; ours are unit
    vectors, whose per-dimension variance is ~1/d)."""
    lam = n / (n + kappa)
    s2 = np.trace(shared) / len(shared)
    return lam * own + (1 - lam) * shared + s2 * np.eye(len(shared))


def shrunk_toward(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A species' covariance shrunk toward ``target`` (the shared one) by a fixed rule:
    ``lam S + (1 - lam) target``, ``lam = n / (n + k)`` for ``n`` crops ``z: (n, k)`` (S their sample
    covariance): five crops in 256 dimensions keep 2% of their own, a species of 256 crops half.
    (Ledoit-Wolf's own intensity toward a target was tried first: at five crops it kept ~95% of the
    rank-4 sample covariance, tests/test_two_space_rules.py.)"""
    z = np.atleast_2d(np.asarray(z, np.float64))
    n, k = z.shape
    own = np.cov(z, rowvar=False) if n > 1 else np.zeros((k, k))
    lam = n / (n + k)
    return lam * own + (1 - lam) * target


def mahalanobis_sq(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``(n,)`` squared Mahalanobis distances of ``z: (n, k)`` to a Gaussian's mean under ``cov``."""
    r = np.asarray(z, np.float64) - mean
    chol = np.linalg.cholesky(cov)
    w = np.linalg.solve(chol, r.T)
    return (w * w).sum(0)


def calibrate_distribution(
    support: np.ndarray, base_means: np.ndarray, base_covs: np.ndarray, k: int = DC_K, alpha: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Distribution calibration (Yang et al. 2021, "Free Lunch for Few-shot Learning") of a class from its
    ``support: (s, d)`` crops and the trained classes' Gaussians ``base_means: (C, d)``, ``base_covs: (C, d, d)``.

    Each support crop borrows the statistics of its ``k`` nearest trained classes (Euclidean distance to their
    means): mean ``(sum of their means + the crop) / (k + 1)``, covariance ``mean of their covariances + alpha
    I``. The class is the mixture of its crops' calibrated Gaussians, returned as one Gaussian of the same
    first two moments ``(mean (d,), covariance (d, d))`` (the paper samples from each; the moments are what a
    Gaussian classifier of the samples would estimate)."""
    support = np.atleast_2d(np.asarray(support, np.float64))
    d2 = ((support[:, None, :] - base_means[None]) ** 2).sum(-1)
    near = np.argsort(d2, axis=1)[:, :k]
    means = np.stack([(base_means[n].sum(0) + x) / (k + 1) for x, n in zip(support, near, strict=True)])
    covs = np.stack([base_covs[n].mean(0) for n in near]) + alpha * np.eye(support.shape[1])
    mean = means.mean(0)
    spread = (means - mean).T @ (means - mean) / len(means)
    return mean, covs.mean(0) + spread


def calibrated_prototype(support: np.ndarray, rows: np.ndarray, k: int = DC_K) -> np.ndarray:
    """DC's mean calibration for cosine naming: the unit mean over the support crops of ``(sum of the k
    nearest prototype rows + the crop) / (k + 1)``; ``rows: (C, d)`` the trained species' prototypes."""
    support = np.atleast_2d(np.asarray(support, np.float64))
    d2 = ((support[:, None, :] - rows[None]) ** 2).sum(-1)
    near = np.argsort(d2, axis=1)[:, :k]
    mean = np.mean([(rows[n].sum(0) + x) / (k + 1) for x, n in zip(support, near, strict=True)], axis=0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


class GaussianSpace:
    """A naming space's trained species as Gaussians in its PCA basis (fitted once per fold and space).

    ``x``: every crop's vectors in the space, ``train``: the training rows, ``y``: labels. Tukey's
    transform first when ``tukey_lam`` is given (DC's step; only for non-negative features). ``basis``:
    ``pca_basis`` of the (transformed) training rows when the caller has it; ``scored``: the rows whose
    distances are asked for (default all; the others' are ``inf``)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        train: np.ndarray,
        dim: int = GAUSS_DIM,
        tukey_lam=None,
        basis=None,
        scored: np.ndarray | None = None,
    ):
        x = np.asarray(x, np.float64)
        if tukey_lam is not None:
            x = tukey(x, tukey_lam)
        mean, comps, _ = basis if basis is not None else pca_basis(x[train], dim)
        comps = comps[:dim]
        self.z = (x - mean) @ comps.T  # (n, k) every crop, projected once
        self.scored = np.arange(len(x)) if scored is None else np.asarray(scored)
        yt = self.yt = y[train]
        self.train = train
        self.names = np.unique(yt)
        zt = self.z[train]
        self.means = np.stack([zt[yt == c].mean(0) for c in self.names])
        self.counts = np.array([(yt == c).sum() for c in self.names])
        self.covs = np.stack([np.cov(zt[yt == c], rowvar=False) for c in self.names])
        self.shared = shared_covariance(zt, yt)
        self.s2 = float(np.trace(self.shared) / len(self.shared))
        self._trained: dict[str, np.ndarray] = {}

    def class_cov(self, method: str, z: np.ndarray) -> np.ndarray:
        """A species' covariance under ``method`` from its crops ``z: (n, k)`` (dc-maha: as maha-shrunk)."""
        if method == "maha-shared":
            return self.shared
        if method == "maha-cnaps":
            own = np.cov(z, rowvar=False) if len(z) > 1 else np.zeros((z.shape[1],) * 2)
            return cnaps_covariance(own, len(z), self.shared)
        return shrunk_toward(z, self.shared)

    def trained_distances(self, method: str) -> np.ndarray:
        """``(n_crops, C)`` squared distances of every crop to each trained species (cached per method)."""
        key = "maha-shrunk" if method == "dc-maha" else method  # dc-maha: the trained species as maha-shrunk
        if key not in self._trained:
            zt = self.z[self.train]
            d2 = np.full((len(self.z), len(self.names)), np.inf)
            for i, (m, c) in enumerate(zip(self.means, self.names, strict=True)):
                d2[self.scored, i] = mahalanobis_sq(self.z[self.scored], m, self.class_cov(key, zt[self.yt == c]))
            self._trained[key] = d2
        return self._trained[key]

    def added_gaussian(self, method: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An added species' ``(mean, covariance)`` from its support crops ``rows`` under ``method``."""
        s = self.z[rows]
        if method == "dc-maha":
            return calibrate_distribution(s, self.means, self.covs, alpha=self.s2)
        return s.mean(0), self.class_cov(method, s)

    def distances(self, method: str, support: dict) -> tuple[np.ndarray, np.ndarray]:
        """``(names (C + A,), (n_crops, C + A) squared distances)``: trained species, then each added one.

        maha-shared: one shared Ledoit-Wolf within-class covariance for every species (the added ones' mean
        from their support crops); maha-cnaps: Simple CNAPS' per-species covariance (:func:`cnaps_covariance`,
        an added species' own from its support crops); maha-shrunk: each species' covariance shrunk toward the
        shared one by ``n / (n + k)`` (:func:`shrunk_toward`); dc-maha: the trained species as maha-shrunk,
        an added species' Gaussian calibrated from its nearest trained species (:func:`calibrate_distribution`,
        plus the shared covariance's mean variance on the diagonal, DC's alpha)."""
        cols = [self.trained_distances(method)]
        for rows in support.values():
            mean, cov = self.added_gaussian(method, rows)
            col = np.full((len(self.z), 1), np.inf)
            col[self.scored, 0] = mahalanobis_sq(self.z[self.scored], mean, cov)
            cols.append(col)
        return np.r_[self.names, list(support)], np.concatenate(cols, 1)


def vim_fit(
    x_train: np.ndarray, variance: float = VIM_VARIANCE, basis=None, origin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """ViM's principal subspace: ``(origin, basis (k, d))``, k the fewest directions holding ``variance`` of
    the training crops' spread about the origin.

    ViM (Wang et al. 2022) takes the origin ``-pinv(W) b`` of the classifier ``W, b`` and the eigenvectors of
    the uncentred scatter about it (``origin`` given: :func:`vim_head_fit`). Without a classifier (the general
    and the fused space have none) the origin is the training mean and the basis its principal components
    (``basis``: a ``pca_basis`` the caller has)."""
    if origin is not None:
        c = np.asarray(x_train, np.float64) - origin
        var, v = np.linalg.eigh(c.T @ c)
        var, comps = var[::-1], v[:, ::-1].T
        mean = origin
    else:
        mean, comps, var = basis if basis is not None else pca_basis(x_train, x_train.shape[1])
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), variance) + 1)
    return mean, comps[:k]


def vim_head_fit(x_train: np.ndarray, weight: np.ndarray, bias: np.ndarray, variance: float = VIM_VARIANCE):
    """ViM with the classifier ``logits = x W' + b`` over features ``x``: ``(origin, basis, alpha)``,
    origin ``-pinv(W) b``, alpha = the training crops' mean max logit over their mean residual."""
    origin = -np.linalg.pinv(weight) @ bias
    origin, basis = vim_fit(x_train, variance, origin=origin)
    logits = x_train @ weight.T + bias
    alpha = logits.max(1).mean() / vim_residual(x_train, origin, basis).mean()
    return origin, basis, float(alpha)


def vim_residual(x: np.ndarray, origin: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``(n,)`` norm of each vector's part outside the principal subspace (ViM's residual)."""
    r = np.asarray(x, np.float64) - origin
    return np.linalg.norm(r - (r @ basis.T) @ basis, axis=1)


def vim_score(residual: np.ndarray, logits: np.ndarray, alpha: float) -> np.ndarray:
    """ViM's in-distribution score: ``logsumexp(logits) - alpha * residual`` (its virtual logit is
    ``alpha * residual``; higher = more known)."""
    top = logits.max(1, keepdims=True)
    return (top[:, 0] + np.log(np.exp(logits - top).sum(1))) - alpha * residual


#: cosine logits' scale of the "vim-proto" scorer (a prototype classifier stands in for the missing head)
VIM_SCALE = 16.0


def decide(draw: Draw, naming: str, rule: tuple):
    """``(names, accepted, score)`` per pool under ``rule``; score orders known above unknown (AUROC)."""
    names = draw.names(naming)
    kind = rule[0]
    if kind == "knn":
        s = draw.knn(rule[1])
        thr = calibrate(s["val"])
        return names, {k: s[k] >= thr for k in s}, s
    if kind == "zsum":
        parts = [draw.knn(space) for space in rule[1:]]
        stats = [(p["val"].mean(), p["val"].std() + 1e-9) for p in parts]
        s = {k: sum((p[k] - m) / sd for p, (m, sd) in zip(parts, stats, strict=True)) for k in parts[0]}
        thr = calibrate(s["val"])
        return names, {k: s[k] >= thr for k in s}, s
    if kind in ("two-stage", "two-stage-vim", "two-stage-by"):
        if kind == "two-stage":
            first = draw.trained(rule[1])
        else:  # stage one by another scorer of the trained species: ViM with the head, or ("two-stage-by", rule)
            first = draw.score(("vim-head", rule[1]) if kind == "two-stage-vim" else tuple(rule[1]))
        second = draw.knn(rule[2])
        t1, t2 = calibrate(first["val"]), calibrate(second["val"])
        ok = {k: (first[k] >= t1) | ((second[k] >= t2) & np.isin(names[k], draw.added)) for k in first}
        # a score for the AUROC: stage one's, lifted above every stage-one rejection when stage two accepts
        s = {k: np.where(first[k] >= t1, first[k], np.where(ok[k], t1, first[k] - 1.0)) for k in first}
        return names, ok, s
    if kind in ("vim-residual", "vim-proto", "maha", "vim-head"):
        s = draw.score(rule)
        thr = calibrate(s["val"])
        return names, {k: s[k] >= thr for k in s}, s
    raise ValueError(kind)


def figures(draw: Draw, naming: str, rule: tuple, known) -> dict:
    names, ok, s = decide(draw, naming, rule)
    y, added, q = draw.y, draw.added, draw.q
    pred, acc = names["q"], ok["q"]
    per = lambda m: float(np.mean([np.mean(m[y[q] == sp]) for sp in added]))  # noqa: E731
    yt = y[draw.idx["test"]]
    return {
        "named": per(acc & (pred == y[q])),
        "called_unknown": per(~acc),
        "named_wrongly": per(acc & (pred != y[q])),
        "ceiling": per(pred == y[q]),
        "known_named_added": float(np.mean(ok["test"] & np.isin(names["test"], added))),
        "known_top1": float(np.mean(names["test"] == yt)),
        "known_f1_macro": macro_f1(yt, names["test"], known),
        "unknown_auroc": float(
            roc_auc_score(np.r_[np.ones(len(yt)), np.zeros(len(draw.idx["unknown"]))], np.r_[s["test"], s["unknown"]])
        ),
    }


def macro_f1(truth: np.ndarray, pred: np.ndarray, labels) -> float:
    """F1-macro over ``labels`` (as scikit-learn's ``f1_score(average="macro", zero_division=0)``, faster)."""
    out = []
    for c in labels:
        tp = np.sum((pred == c) & (truth == c))
        denom = np.sum(pred == c) + np.sum(truth == c)
        out.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(out))


def recall_at_1(v: np.ndarray, y, g, idx, added) -> float:
    """Held-out species' crops: is the nearest crop of another group (added + known test) the same species?

    Mean over the added species.
    """
    q = idx["added"]
    pool = np.concatenate([idx["added"], idx["test"]])
    sims = v[q] @ v[pool].T
    _, codes = np.unique(g, return_inverse=True)
    sims[codes[q][:, None] == codes[pool][None, :]] = -np.inf
    hit = y[pool][sims.argmax(1)] == y[q]
    return float(np.mean([np.mean(hit[y[q] == sp]) for sp in added]))


def fold_reps(spaces: dict, idx, weights=WEIGHTS) -> dict[str, np.ndarray]:
    """Every naming space of a fold: raw and CL2N of each space, fusions of tuned CL2N with each general CL2N."""
    tr = idx["train"]
    reps = {}
    for name, x in spaces.items():
        reps[name] = x.astype(np.float32)
        reps[f"{name} CL2N"] = cl2n(x, x[tr].mean(0))
    for name in spaces:
        if name != "tuned":
            for w in weights:
                fusion = Fusion.fit(spaces["tuned"][tr], spaces[name][tr], w)
                reps[f"fused {name} w={w}"] = fusion.fuse(spaces["tuned"], spaces[name])
                reps[("fusion", f"fused {name} w={w}")] = (name, fusion)
    return reps


def rules_for(general: list[str], w: dict[str, float]) -> list[tuple[str, str, tuple]]:
    """``(row name, naming space, unknown rule)`` of every rule reported."""
    rows = [("tuned (today)", "tuned", ("knn", "tuned")), ("tuned CL2N", "tuned CL2N", ("knn", "tuned CL2N"))]
    for name in general:
        f = f"fused {name} w={w[name]}"
        rows += [
            (f"general {name}", name, ("knn", name)),
            (f"general {name} CL2N", f"{name} CL2N", ("knn", f"{name} CL2N")),
            (f"fused {name} · unknown by tuned", f, ("knn", "tuned")),
            (f"fused {name} · unknown by fused", f, ("knn", f)),
            (f"fused {name} · unknown by general", f, ("knn", f"{name} CL2N")),
            (f"fused {name} · unknown by z-sum tuned+general", f, ("zsum", "tuned", f"{name} CL2N")),
            (f"fused {name} · two-stage tuned -> tuned (product rule 'tuned')", f, ("two-stage", "tuned", "tuned")),
            (f"fused {name} · two-stage tuned -> fused", f, ("two-stage", "tuned", f)),
            (f"fused {name} · two-stage tuned -> general (product rule 'two-stage')", f, ("two-stage", "tuned", name)),
            (f"fused {name} · two-stage tuned -> general CL2N", f, ("two-stage", "tuned", f"{name} CL2N")),
        ]
    return rows + new_rules_for(general, w)


#: the product's unknown rule 'tuned', as a rule of :func:`decide`
PRODUCT_UNKNOWN = ("two-stage", "tuned", "tuned")


def new_rules_for(general: list[str], w: dict[str, float]) -> list[tuple[str, str, tuple]]:
    """The rules beyond cosine to the prototype, each beside the cosine row it is compared with (same space,
    same unknown rule): every :data:`NAMING_METHODS` in the tuned CL2N, general CL2N and fused spaces; the
    Gaussian ones with Tukey's transform in the raw spaces (DC's setting); and, naming by the fused cosine,
    the unknown decided by ViM (residual only, or with prototype logits) and by the shared-covariance
    Mahalanobis distance."""
    rows = [(f"tuned CL2N · {m}", f"tuned CL2N#{m}", ("knn", "tuned CL2N")) for m in NAMING_METHODS]
    rows += [(f"tuned · {m} (Tukey)", f"tuned#{m}", ("knn", "tuned")) for m in ("maha-cnaps", "dc-maha")]
    for name in general:
        f = f"fused {name} w={w[name]}"
        rows += [(f"general {name} CL2N · {m}", f"{name} CL2N#{m}", ("knn", f"{name} CL2N")) for m in NAMING_METHODS]
        rows += [(f"general {name} · {m} (Tukey)", f"{name}#{m}", ("knn", name)) for m in ("maha-cnaps", "dc-maha")]
        rows += [(f"fused {name} · {m} · product rule 'tuned'", f"{f}#{m}", PRODUCT_UNKNOWN) for m in NAMING_METHODS]
        rows += [
            (f"fused {name} · unknown by ViM residual (no head) tuned", f, ("vim-residual", "tuned")),
            (f"fused {name} · unknown by ViM residual (no head) general", f, ("vim-residual", name)),
            (f"fused {name} · unknown by ViM residual (no head) fused", f, ("vim-residual", f)),
            (f"fused {name} · unknown by ViM, prototype logits, tuned", f, ("vim-proto", "tuned")),
            (f"fused {name} · unknown by ViM, prototype logits, fused", f, ("vim-proto", f)),
            (f"fused {name} · unknown by Mahalanobis shared tuned CL2N", f, ("maha", "tuned CL2N#maha-shared")),
            (f"fused {name} · unknown by Mahalanobis shared fused", f, ("maha", f"{f}#maha-shared")),
            (f"fused {name} · unknown by ViM (tuned head + classifier)", f, ("vim-head", HEAD)),
            (f"fused {name} · two-stage ViM (head) -> tuned", f, ("two-stage-vim", HEAD, "tuned")),
            (f"fused {name} · two-stage ViM (head) -> general", f, ("two-stage-vim", HEAD, name)),
            (
                f"fused {name} · two-stage ViM residual (no head) tuned -> general",
                f,
                ("two-stage-by", ("vim-residual", "tuned"), name),
            ),
        ]
    return rows


#: the tuned model's head features (its classifier's input): a space the ViM rows need, with its classifier
#: at ``reps[("classifier", HEAD)]``; folds without them skip those rows
HEAD = "tuned head"


def space_of(naming: str) -> str:
    """The vector space of a naming (``"<space>#<method>"`` -> ``<space>``)."""
    return naming.partition("#")[0]


def weight_grid(reps, y, g, idx, added, known, general, draws=5, shots=5, seed=0) -> dict:
    """``general name -> w -> (5-shot ceiling, known val top-1)`` of the fused naming space."""
    rng = np.random.default_rng(seed)
    ceil = {(n, w): [] for n in general for w in WEIGHTS}
    for _ in range(draws):
        support, queries = draw_support(rng, y, g, idx, added, shots)
        d = Draw(reps, y, idx, support, queries, added)
        for name, w in ceil:
            names = d.names(f"fused {name} w={w}")
            ceil[name, w].append(np.mean([np.mean(names["q"][y[d.q] == sp] == sp) for sp in added]))
    # known validation top-1 does not depend on the draw's added species once they are few (the last draw's)
    return {
        name: {
            str(w): {
                "ceiling": float(np.mean(ceil[name, w])),
                "val_top1": float(np.mean(d.names(f"fused {name} w={w}")["val"] == y[idx["val"]])),
            }
            for w in WEIGHTS
        }
        for name in general
    }


def choose_weight(grids: dict[int, dict], fold: int, name: str) -> float:
    """The weight that maximises ceiling + val top-1 averaged over the *other* folds."""
    others = [grids[f][name] for f in grids if f != fold] or [grids[fold][name]]
    score = {w: np.mean([o[str(w)]["ceiling"] + o[str(w)]["val_top1"] for o in others]) for w in WEIGHTS}
    return max(score, key=score.get)


#: fusion weights whose rule rows each fold stores (the fold's weight is then chosen on the other folds)
TABLE_WEIGHTS = (0.3, 0.5, 0.7)


def fold_rules(general: list[str], weights=TABLE_WEIGHTS) -> dict[str, tuple[str, tuple]]:
    """``row key -> (naming, rule)`` of every rule a fold stores: fused rows once per weight (``"<row> @w=<w>"``)."""
    rules = {}
    for w in weights:
        for row, naming, rule in rules_for(general, {n: w for n in general}):
            rules[f"{row} @w={w}" if naming.startswith("fused") else row] = (naming, rule)
    return rules


def evaluate_fold(
    split, spaces: dict, general: list[str], shots, draws, weights=TABLE_WEIGHTS, only=None, grid=None, head=None
) -> dict:
    """One fold, from its cached features: the weight grid, and every rule's figures at each weight.

    Fused rows are keyed ``"<row> @w=<w>"``; the others once. JSON-ready. ``only``: compute just these row
    keys (the support draws are the same whatever rows are computed: seeded per shot count); ``grid``: a
    weight grid computed before (not recomputed); ``head``: ``(head features (n, h), (W (C, h), b (C,)))`` of
    the tuned model's classifier, for the ViM rows that use it."""
    paths, y, g, added, known, idx = split
    general = [n for n in general if n in spaces]
    reps = fold_reps(spaces, idx)
    if head is not None:
        reps[HEAD], reps[("classifier", HEAD)] = head[0].astype(np.float32), head[1]
    if grid is None:
        grid = weight_grid(reps, y, g, idx, added, known, general, draws=draws)
    rules = fold_rules(general, weights)
    if ("classifier", HEAD) not in reps:  # no classifier cached: no ViM-with-head rows
        rules = {row: v for row, v in rules.items() if HEAD not in v[1]}
    if only is not None:
        rules = {row: v for row, v in rules.items() if row in only}
    recall = {n: recall_at_1(reps[n], y, g, idx, added) for n in {space_of(n) for n, _ in rules.values()}}
    table = {
        row: {"naming": naming, "rule": list(rule), "recall_at_1": recall[space_of(naming)]}
        for row, (naming, rule) in rules.items()
    }
    fold_cache: dict = {}
    for k in shots:
        rng = np.random.default_rng(0)
        got: dict[str, list] = {row: [] for row in rules}
        for _ in range(draws):  # one draw shared by every rule: paired comparison, each space fitted once
            support, queries = draw_support(rng, y, g, idx, added, k)
            d = Draw(reps, y, idx, support, queries, added, fold_cache)
            for row, (naming, rule) in rules.items():
                got[row].append(figures(d, naming, rule, known))
        for row, values in got.items():
            table[row][f"{k}shot"] = {c: float(np.mean([r[c] for r in values])) for c in values[0]}
    return {
        "added": list(added),
        "known": list(known),
        "n": {k: int(len(v)) for k, v in idx.items()},
        "general": general,
        "weight_grid": grid,
        "table": table,
        "shots": list(shots),
        "draws": draws,
    }


def assemble(dataset: str, per_fold: dict[int, dict]) -> dict:
    """Every fold's rows with its fusion weight chosen on the other folds (:func:`choose_weight`)."""
    general = [n for n in next(iter(per_fold.values()))["general"] if all(n in f["general"] for f in per_fold.values())]
    grids = {fold: f["weight_grid"] for fold, f in per_fold.items()}
    out = {}
    for fold, f in per_fold.items():
        weights = {n: min(TABLE_WEIGHTS, key=lambda w: abs(w - choose_weight(grids, fold, n))) for n in general}
        table = {}
        for row, naming, _ in rules_for(general, weights):
            w = next((weights[n] for n in general if n in row and naming.startswith("fused")), None)
            key = f"{row} @w={w}" if w is not None else row
            if key in f["table"]:  # a fold stored before a rule was added lacks it (evaluate --folds N adds it)
                table[row] = f["table"][key]
        out[str(fold)] = {
            **{k: v for k, v in f.items() if k != "table"},
            "weights": weights,
            "table": table,
            "fixed_weight_tables": {
                str(w): {
                    row: f["table"][f"{row} @w={w}"]
                    for row, naming, _ in rules_for(general, {n: w for n in general})
                    if naming.startswith("fused") and f"{row} @w={w}" in f["table"]
                }
                for w in TABLE_WEIGHTS
            },
        }
    first = next(iter(per_fold.values()))
    return {"dataset": dataset, "folds": out, "shots": first["shots"], "draws": first["draws"]}


def _cell(values) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():.3f} ± {a.std():.3f}" if a.size > 1 else f"{a.mean():.3f}"


def markdown(r: dict) -> str:
    folds = r["folds"]
    top = f"{max(r['shots'])}shot"
    lines = []
    rows = [row for row in next(iter(folds.values()))["table"] if all(row in f["table"] for f in folds.values())]
    head = (
        "| rule | named (" + " / ".join(f"{k}" for k in r["shots"]) + " shots) | unknown | wrong | ceiling | "
        "known named added | known top-1 | F1-macro | AUROC | recall@1 across tracks |"
    )
    lines += [
        f"Mean ± spread (population std) over {len(folds)} folds ({', '.join(folds)}), {r['draws']} support "
        f"draws; columns after 'named' at {top[:-4]} shots.",
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row]
        cells.append(
            " / ".join(
                f"{np.mean([f['table'][row][f'{k}shot']['named'] for f in folds.values()]):.2f}" for k in r["shots"]
            )
        )
        for c in (
            "named",
            "called_unknown",
            "named_wrongly",
            "ceiling",
            "known_named_added",
            "known_top1",
            "known_f1_macro",
            "unknown_auroc",
        ):
            if c == "named":
                cells[-1] += f" ({_cell([f['table'][row][top]['named'] for f in folds.values()])})"
                continue
            cells.append(_cell([f["table"][row][top][c] for f in folds.values()]))
        cells.append(_cell([f["table"][row]["recall_at_1"] for f in folds.values()]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *paired_lines(r, rows, top), ""]
    for fold, f in folds.items():
        lines.append(
            f"fold {fold} (added {', '.join(f['added'])}; weights {f['weights']}): 5-shot named by rule: "
            + "; ".join(f"{row} {f['table'][row][top]['named']:.2f}" for row in rows)
        )
        grid = "; ".join(
            f"{n}: " + ", ".join(f"w={w} {v['ceiling']:.2f}/{v['val_top1']:.3f}" for w, v in g.items())
            for n, g in f["weight_grid"].items()
        )
        lines.append(f"  weight grid (5-shot ceiling / known val top-1): {grid}")
    return "\n".join(lines)


#: the shipped rule's row (app/workspace/spaces.py: NAMING "fused", UNKNOWN_RULE "tuned", Lite0 160 px)
SHIPPED = "fused lite0-160 · two-stage tuned -> tuned (product rule 'tuned')"
PAIRED = ("named", "ceiling", "named_wrongly", "known_named_added", "known_top1", "unknown_auroc")


def paired_lines(r: dict, rows: list[str], top: str, base: str = SHIPPED) -> list[str]:
    """Each rule minus ``base`` on the same folds and draws: the mean difference and on how many folds it
    is above zero (a difference counts only when it holds on most folds)."""
    folds = list(r["folds"].values())
    if base not in rows:
        return []
    head = " | ".join(f"Δ {c}" for c in PAIRED)
    out = [
        f"Paired against the shipped rule ({base}), {top[:-4]} shots: mean difference over the folds "
        "(folds where it is > 0 / of all).",
        "",
        f"| rule | {head} |",
        "|---|" + "---|" * len(PAIRED),
    ]
    for row in rows:
        if row == base:
            continue
        cells = []
        for c in PAIRED:
            d = np.array([f["table"][row][top][c] - f["table"][base][top][c] for f in folds])
            cells.append(f"{d.mean():+.3f} ({int(np.sum(d > 0))}/{len(d)})")
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    return out
