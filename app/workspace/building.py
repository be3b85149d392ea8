"""A model's spaces embedded, fitted and indexed together: the tuned space, and the general space
beside it when the model keeps one (:mod:`app.workspace.spaces`).

::

    embed_spaces    every crop without a vector, locally (pipeline.embed_crops) or on Ray (ray_embed)
    build_spaces    prototypes, decisions and a new index generation of each space (pipeline, spaces)
    verify_spaces   the live generations checked against their manifests (indexes.verify_generation)

The Workspace's ``embed``, ``index_build`` and ``index_verify`` delegate here; the single-space steps
stay in :mod:`app.workspace.pipeline` and :mod:`app.workspace.indexes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from index.errors import InvalidInput

if TYPE_CHECKING:
    from app.workspace.engine_cache import Engines
    from app.workspace.index_results import BuildResult, VerifyResult
    from app.workspace.pipeline import EmbedReport
    from app.workspace.writer import HomeWriter
    from embedder.ray_runner import RayConfig
    from embedder.train_config import TrainConfig
    from embedder.training import TrainResult
    from index.catalog.catalog import Catalog
    from index.home import Home


def embed_spaces(
    catalog: Catalog,
    home: Home,
    model: Callable[[], str],
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = False,
    engine: str = "local",
    ray: RayConfig | None = None,
    general: bool | None = None,
) -> EmbedReport:
    """Embed every crop that has no vector for the model ``model()`` names yet, and in its general
    space when it keeps one; returns the tuned space's report. (``model`` is asked only when needed:
    an unknown ``engine`` is reported before a missing model.)

    ``engine="ray"`` embeds on a Ray cluster (``ray``: where and how wide; its ``batch_size`` is
    taken from ``batch_size``); ``local`` in this process. ``general``: start the frozen general
    space beside the tuned one for a model that has none (None: the default,
    :func:`app.workspace.spaces.general_space`, on); a model that keeps one keeps it either way, so
    its vectors stay complete.
    """
    from app.workspace.spaces import embed_general, ensure_general_model, general_space, wants_general

    if engine not in ("local", "ray"):
        raise InvalidInput(f"unknown engine {engine!r}; valid: local, ray")
    if general_space(general):
        ensure_general_model(catalog, home, model())
    if engine == "ray":
        from app.workspace.ray_embed import embed_crops_ray
        from embedder.ray_runner import RayConfig

        config = replace(ray or RayConfig(), batch_size=batch_size)
        model_id = model()
        report = embed_crops_ray(catalog, home, model_id, config)[0]
        if wants_general(home, model_id):  # the general space beside it
            embed_crops_ray(catalog, home, ensure_general_model(catalog, home, model_id), config)
        return report
    from app.workspace.pipeline import embed_crops

    model_id = model()
    report = embed_crops(catalog, home, model_id, batch_size, device, progress)
    embed_general(catalog, home, model_id, batch_size, device, progress)
    return report


def build_spaces(
    catalog: Catalog,
    home: Home,
    model_id: str,
    refit: Callable[[], bool],
    refresh: Callable[[], None],
    kind: str = "auto",
    device: str = "cpu",
    rebuild: bool = True,
    shards: int = 1,
    n_centres: int = 1,
) -> BuildResult:
    """``refit`` the tuned space's prototypes (and the decision and scorers the engine reads; True
    when they were written), then build a new index generation of each space from the stored
    vectors (``shards`` >= 2: that many indexes by id hash). ``rebuild=False``: nothing is written
    when a live generation already holds exactly the stored vectors and its prototypes are current.
    ``refresh`` (forget the loaded engines) runs when either space changed. The caller holds the
    home's writer lock."""
    from app.workspace.counting import refresh_added_confusion
    from app.workspace.pipeline import build_index
    from app.workspace.spaces import build_general
    from index.catalog.decisions import load_decision

    refitted = refit()
    result = build_index(catalog, home, model_id, kind, device, rebuild=rebuild, shards=shards)
    refresh_added_confusion(catalog, home, model_id)  # the added species' count confusion, once live
    general = build_general(catalog, home, model_id, kind, device, rebuild, n_centres, shards)
    if result.built or (general is not None and (general.built or general.prototypes_refit)):
        refresh()
    decision = load_decision(catalog, model_id)  # the class priors it holds afterwards
    return replace(result, prototypes_refit=refitted, priors=decision.priors if decision is not None else None)


def verify_spaces(catalog: Catalog, home: Home, model_id: str, generation: str | None = None) -> VerifyResult:
    """Check a generation (default: the live one) against its manifest and the model; with no
    ``generation``, the general space's live one too. Raises IndexMismatch / NotFound."""
    from app.workspace import indexes
    from app.workspace.spaces import verify_general

    result = indexes.verify_generation(catalog, home, model_id, generation)
    if generation is None:
        verify_general(catalog, home, model_id)
    return result


# -- moved from the Workspace facade: the model id a training gets, prototypes refit, build under the lock --


def train(
    catalog: Catalog, home: Home, config: TrainConfig, model: str | None, resume: bool, progress: bool
) -> TrainResult:
    """Train an encoder on the train split (model id default: ``<backbone>-<loss>-d<dim>``; with
    ``resume`` and no ``model``, the current model)."""
    from app.workspace.pipeline import train_model
    from index.home import default_model_id

    model_id = model or default_model_id(config.backbone, config.loss, config.dim)
    if resume and not model:
        model_id = catalog.current_model() or model_id
    return train_model(catalog, home, model_id, config, resume=resume, progress=progress)


def refit_prototypes(
    catalog: Catalog,
    home: Home,
    engines: Engines,
    model: str | None,
    n_centres: int = 1,
    priors: str | None = None,
    prior_tau: float | None = None,
) -> bool:
    """Fit the trained species' prototypes from the train split; write them (and the decision and
    scorers the engine reads) only when they changed, then forget the loaded engines. ``priors``
    (train | balanced | a class,weight CSV) and ``prior_tau`` decide the class priors again (None:
    keep the stored). Returns whether anything was written."""
    from app.workspace.decisions import priors_request
    from app.workspace.pipeline import fit_prototypes

    request = priors_request(priors, prior_tau)
    _, written = fit_prototypes(catalog, engines.model(model), n_centres, home=home, priors=request)
    if written:
        engines.engines.clear()
    return written


def build_home(
    writer: HomeWriter,
    engines: Engines,
    catalog: Catalog,
    home: Home,
    model: str | None,
    kind: str = "auto",
    device: str = "cpu",
    rebuild: bool = True,
    n_centres: int = 1,
    shards: int = 1,
    priors: str | None = None,
    prior_tau: float | None = None,
) -> BuildResult:
    """:func:`build_spaces` under the home's writer lock (built on the catalog as it is once no other
    writer runs), refitting with :func:`refit_prototypes`; the engines are forgotten on a change."""
    with writer:
        model_id = engines.model(model)
        refit = lambda: refit_prototypes(catalog, home, engines, model_id, n_centres, priors, prior_tau)  # noqa: E731
        return build_spaces(catalog, home, model_id, refit, engines.clear, kind, device, rebuild, shards, n_centres)
