"""The fitted unknown scorers the engine reads, stored where the data changes (loading only reads).

``index build`` stores the known species' scorers (:func:`store_known_scorers`), ``species add`` /
``remove`` and ``index build`` the decision scorer fitted with the added species' support crops
(:func:`store_added_scorer`); the engine reads them back (:func:`known_scorers`, :func:`added_scorer`)
from ``index.scoring.scorer_store``. The decision itself is :mod:`app.workspace.decisions`.
"""

from __future__ import annotations

import logging

import numpy as np

from app.workspace.decisions import fit_scorers
from index.catalog.catalog import Catalog
from index.catalog.decisions import Decision, load_decision, prototypes_digest
from index.catalog.embeddings import ADDED, load_embeddings, load_prototypes
from index.errors import EmptyIndex
from index.home import Home
from index.records import SUPPORT, TRAIN
from index.scoring.ood import TPR_TARGET, Scorer, make_scorer
from index.scoring.prototypes import Prototypes
from index.scoring.scorer_store import load_scorers, save_scorers, scorer_folder

log = logging.getLogger(__name__)


def known_scorers(
    catalog: Catalog, home: Home, model_id: str, trained: Prototypes, decision: Decision
) -> dict[str, Scorer]:
    """Every OOD scorer fitted on the known species' training crops, read from the store
    (``index.scoring.scorer_store``), where ``index build`` put them (:func:`store_known_scorers`).

    Raises:
        EmptyIndex: none are stored for these prototypes (a home from before they were stored).
    """
    scorers = load_scorers(
        scorer_folder(home.root, model_id, "known", decision.prototypes_digest), trained, decision.prototypes_digest
    )
    if scorers is None:
        raise EmptyIndex(
            f"model {model_id} has no stored unknown scorers for its prototypes",
            hint="run `oceanid index build` (it stores them once; loading only reads)",
        )
    return scorers


def store_known_scorers(catalog: Catalog, home: Home, model_id: str, trained: Prototypes, decision: Decision) -> bool:
    """Fit and store the known species' OOD scorers when none are stored for ``decision``'s
    prototypes (``index build`` calls this). Returns whether they were written."""
    digest = decision.prototypes_digest
    folder = scorer_folder(home.root, model_id, "known", digest)
    if load_scorers(folder, trained, digest) is not None:
        return False
    _, train_v, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    scorers, _ = fit_scorers(trained, (train_v, train_l))
    save_scorers(folder, scorers, digest, decision.prototypes_version)
    return True


def added_scorer(
    catalog: Catalog,
    home: Home,
    model_id: str,
    prototypes: Prototypes,
    origins: dict[str, str],
    chosen: str,
    version: int = 0,
    decided: str | None = None,
) -> Scorer | None:
    """The decision scorer ``chosen`` fitted with the added species' support crops (None without
    added species), read from the store where ``species add`` / ``remove`` / ``index build`` put
    it (:func:`store_added_scorer`). One not stored (a ``chosen`` that overrides the stored
    decision's scorer ``decided`` for one engine, or a species change in another process that has
    committed its prototypes but not yet stored the scorer) is fitted in memory, the same fit,
    and never stored: loading writes nothing.
    """
    added = sorted(name for name, origin in origins.items() if origin == ADDED)
    if not added:
        return None
    digest = prototypes_digest(prototypes)
    stored = load_scorers(scorer_folder(home.root, model_id, f"added-{chosen}", digest), prototypes, digest)
    if stored is not None:
        return stored[chosen]
    if decided is None or chosen == decided:  # a species change in another process is storing it now
        log.info(
            "model %s: the scorer of its added species is not stored yet; fitted in memory for this "
            "engine (`oceanid index build` stores it)",
            model_id,
        )
    return _fit_added(catalog, model_id, prototypes, added, chosen)


def store_added_scorer(catalog: Catalog, home: Home, model_id: str) -> bool:
    """Fit and store the stored decision's scorer with the added species' support crops, when
    the model has added species and none is stored for its prototypes (``species add`` /
    ``remove`` and ``index build`` call this). Returns whether one was written."""
    decision = load_decision(catalog, model_id)
    prototypes, origins = load_prototypes(catalog, model_id)
    added = sorted(name for name, origin in origins.items() if origin == ADDED)
    if decision is None or not added:
        return False
    digest = prototypes_digest(prototypes)
    folder = scorer_folder(home.root, model_id, f"added-{decision.scorer}", digest)
    if load_scorers(folder, prototypes, digest) is not None:
        return False
    scorer = _fit_added(catalog, model_id, prototypes, added, decision.scorer)
    save_scorers(folder, {decision.scorer: scorer}, digest, catalog.prototypes_version(model_id))
    return True


def _fit_added(catalog: Catalog, model_id: str, prototypes: Prototypes, added: list[str], chosen: str) -> Scorer:
    """``chosen`` fitted on the training crops plus the added species' support crops."""
    _, train_v, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    _, sup_v, sup_l = load_embeddings(catalog, model_id, (SUPPORT,), with_labels=True)
    options = {"few_shot": tuple(added), "tpr": TPR_TARGET} if chosen == "knn" else {}
    return make_scorer(chosen, **options).fit(
        np.concatenate([train_v, sup_v]), np.concatenate([train_l, sup_l]), prototypes
    )
