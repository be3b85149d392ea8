"""Splitting a home into train / val / test and held-out species, and the guard that keeps a model's
figures honest: a split that moves crops under a trained model is refused (or, forced, marks it
stale), and ``evaluate`` refuses test crops the model was trained or selected on."""

from __future__ import annotations

import json
import logging

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.embeddings import list_models, split_ids
from index.catalog.splits import SplitConfig, SplitSummary
from index.errors import InvalidInput
from index.home import Home
from index.records import TEST

log = logging.getLogger(__name__)

SEEN_CROPS = "seen_crops.json"  # in a model folder: the train + val crop ids it was trained and selected on


def check_no_leak(catalog: Catalog, home: Home, model_id: str) -> None:
    """Refuse to grade ``model_id`` on test crops it was trained or selected on (the home was
    re-split after training). Raises InvalidInput. Models from before this record: not checked."""
    path = home.model(model_id) / SEEN_CROPS
    if not path.is_file():
        log.warning("model %s has no %s: cannot check that its test crops are unseen", model_id, SEEN_CROPS)
        return
    seen = np.asarray(json.loads(path.read_text(encoding="utf-8"))["crops"], dtype=np.int64)
    test = split_ids(catalog, (TEST,))
    leaked = np.intersect1d(test, seen)
    if leaked.size:
        stale = catalog.model_stale(model_id)
        raise InvalidInput(
            f"{leaked.size} of {test.size} test crops were train or val crops of model {model_id} "
            f"({'the model is stale: ' + stale if stale else 'the home was re-split after it was trained'})"
            ": its figures would be inflated",
            hint="retrain on the new split (`oceanid train --model NEW`), or split again with the "
            "settings it was trained on",
        )


STALE_REASON = "trained on a split that `oceanid split --force` replaced"


def split_home(catalog: Catalog, home: Home, config: SplitConfig, force: bool = False) -> SplitSummary:
    """Assign train/val/test (groups never cut) and hold species out.

    A split that moves crops under models trained on the current split is refused
    (InvalidInput naming them); with ``force`` it goes ahead and marks those models stale
    (``summary.stale_models``). Splitting again with the same settings moves nothing.
    """
    from index.catalog.splits import check_fractions, make_splits

    check_fractions(config)  # a bad option is named before the catalog is read
    check, marked = split_guard(catalog, home, force)
    summary = make_splits(catalog, config, before_write=check)
    summary.stale_models = list(marked)
    return summary


def split_guard(catalog: Catalog, home: Home, force: bool):
    """The check ``make_splits`` runs before it moves crops: refuse (InvalidInput naming the
    models) to change the split under models trained on it, or with ``force`` mark them stale
    in the same transaction. Returns ``(check, marked)``; ``marked`` lists the models marked."""
    trained = [
        m.model_id
        for m in list_models(catalog)
        if (home.model(m.model_id) / SEEN_CROPS).is_file() and not catalog.model_stale(m.model_id)
    ]
    marked: list[str] = []

    def check(changed: int, con) -> None:
        if not changed or not trained:
            return
        if not force:
            raise InvalidInput(
                f"this split moves {changed} crops, and model(s) {', '.join(trained)} were trained "
                "on the current split: evaluating them on the new one would grade crops they "
                "trained on",
                hint="split with --force to go ahead (those models are marked stale), or keep "
                "the split and train a new model",
            )
        for model_id in trained:
            catalog.set_model_stale(model_id, STALE_REASON, con)
        marked.extend(trained)

    return check, marked
