"""Loading the query engine: what it refuses, and the unknown rule it applies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.workspace import Workspace
from index.errors import EmptyIndex, IndexMismatch, NotFound


def test_unknown_model_and_empty_workspace(tmp_path, tiny_home):
    with pytest.raises(NotFound, match="unknown model id 'nope'"):
        Workspace(tiny_home).identify([b"x"], model="nope")
    empty = Workspace(tmp_path / "empty")
    empty.catalog.ensure_schema()
    with pytest.raises(EmptyIndex, match="no model"):
        empty.identify([b"x"])


def test_model_without_index(tiny_ws):
    shutil.rmtree(tiny_ws.home / "indexes")
    with pytest.raises(EmptyIndex, match="no index generation"):
        tiny_ws.identify([b"x"])


def test_index_from_another_model_is_refused(tiny_ws):
    from index.catalog.embeddings import register_model

    register_model(tiny_ws.catalog, "tiny", "0" * 64, 32, "tiny")  # the catalog now knows another config
    with pytest.raises(IndexMismatch):
        tiny_ws.search(1)


def test_engine_is_cached_until_its_key_changes(tiny_ws):
    first = tiny_ws.engine()
    assert tiny_ws.engine() is first
    tiny_ws.catalog.bump_prototypes_version("tiny")
    assert tiny_ws.engine() is not first


@pytest.mark.parametrize("threshold, unknown", [(np.inf, True), (-np.inf, False)])
def test_unknown_follows_the_deciding_threshold(tiny_ws, threshold, unknown):
    """The verdict comes from the deciding scorer's threshold (index.scoring.ood.is_unknown): moving
    the threshold past every score flips every answer; the other scorers do not decide."""
    engine = tiny_ws.engine()
    engine.thresholds[engine.scorer] = threshold
    for other in set(engine.thresholds) - {engine.scorer}:
        engine.thresholds[other] = -threshold
    crops = sorted((tiny_ws.home / "crops").rglob("*.png"))[:6]
    results = tiny_ws.identify(crops)
    assert [r.unknown for r in results] == [unknown] * 6
    assert all(r.species == ("unknown" if unknown else r.top[0][0]) for r in results)
    assert all(r.ood[s].unknown == (not unknown) for r in results for s in r.ood if s != engine.scorer)


def test_query_device_cpu_keeps_everything_on_the_cpu(tiny_home):
    from app.workspace import Workspace

    engine = Workspace(tiny_home, device="cpu").engine()
    assert engine.device == "cpu" and engine.gpu_index is None


def test_query_device_cuda_without_cuda_is_an_error_not_a_fallback(tiny_home):
    import torch

    from app.workspace import Workspace
    from index.errors import OceanidError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(OceanidError, match="cuda"):
        Workspace(tiny_home, device="cuda").engine()


@pytest.mark.gpu
def test_query_device_cuda_runs_the_encoder_and_unfiltered_search_on_the_gpu(tiny_home):
    import torch

    from app.workspace import Workspace
    from index.vectors.vector_index import gpu_available

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    ws = Workspace(tiny_home, device="cuda")
    engine = ws.engine()
    assert engine.device.startswith("cuda")
    cpu = Workspace(tiny_home, device="cpu")
    crop = next((tiny_home / "crops").rglob("*.png"))
    on_gpu, on_cpu = ws.identify([crop])[0], cpu.identify([crop])[0]
    assert next(engine.model.parameters()).is_cuda
    assert on_gpu.top[0][0] == on_cpu.top[0][0] and abs(on_gpu.top[0][1] - on_cpu.top[0][1]) < 1e-2
    crop_hits = [h.annotation_id for h in ws.search(1, k=5)]
    assert crop_hits == [h.annotation_id for h in cpu.search(1, k=5)]
    if gpu_available():
        assert engine.gpu_index is not None and engine.gpu_index.device == "cuda"


def _no_fitting(monkeypatch):
    """Make every OOD scorer fit (and the generation's load) an error: loading must only read."""
    import app.workspace.decisions as decisions
    import app.workspace.stored_scorers as stored_scorers
    import index.vectors.generations as generations
    from index.scoring.ood import SCORERS

    def refuse(*args, **kwargs):
        raise AssertionError("fitted or read at load")

    monkeypatch.setattr(decisions, "fit_scorers", refuse)
    monkeypatch.setattr(stored_scorers, "fit_scorers", refuse)
    monkeypatch.setattr(generations, "load_generation", refuse)
    for cls in SCORERS.values():
        monkeypatch.setattr(cls, "fit", refuse)


def test_loading_reads_the_stored_scorers_and_never_the_generation(tiny_ws, monkeypatch):
    crop = tiny_ws.crop_files([1])
    fitted_answer = tiny_ws.identify(crop)[0].to_dict()  # index build stored the scorers
    tiny_ws.reload()
    _no_fitting(monkeypatch)
    assert tiny_ws.identify(crop)[0].to_dict() == fitted_answer


def test_a_home_without_stored_scorers_is_told_to_build_and_build_stores_them(tiny_ws, monkeypatch):
    """Loading never fits: a home whose scorers are gone says `index build`; the build stores
    them and the answers are those of before, read without fitting."""
    crop = tiny_ws.crop_files([1])
    answer = tiny_ws.identify(crop)[0].to_dict()
    shutil.rmtree(tiny_ws.home / "indexes" / "tiny" / "scorers")
    tiny_ws.reload()
    with pytest.raises(EmptyIndex, match="no stored unknown scorers") as err:
        tiny_ws.identify(crop)
    assert "oceanid index build" in err.value.hint
    assert not (tiny_ws.home / "indexes" / "tiny" / "scorers").exists()  # the failed load wrote nothing
    tiny_ws.index_build(rebuild=False)
    assert list((tiny_ws.home / "indexes" / "tiny" / "scorers").iterdir())
    tiny_ws.reload()
    _no_fitting(monkeypatch)
    assert tiny_ws.identify(crop)[0].to_dict() == answer


def test_loading_writes_nothing_to_the_catalog_or_the_scorer_store(tiny_ws, monkeypatch):
    """A fresh Workspace loads the engine (with an added species) while every write path to the
    catalog and the scorer store raises: loading is a read."""
    import app.workspace.decisions as decisions
    import app.workspace.stored_scorers as stored_scorers
    import index.catalog.decisions as stored
    from index.catalog.catalog import Catalog

    examples = tiny_ws.crop_files([1, 2, 3])
    tiny_ws.species_add("Newfish novus", examples)
    answer = tiny_ws.identify(examples)[0].to_dict()

    def refuse(*args, **kwargs):
        raise AssertionError("loading wrote")

    monkeypatch.setattr(Catalog, "write", refuse)
    monkeypatch.setattr(Catalog, "ensure_schema", refuse)
    monkeypatch.setattr(stored, "store_decision", refuse)
    monkeypatch.setattr(decisions, "save_scorers", refuse)
    monkeypatch.setattr(stored_scorers, "save_scorers", refuse)
    fresh = Workspace(tiny_ws.home)
    assert fresh.identify(examples)[0].to_dict() == answer


def test_species_add_stores_the_added_species_scorer(tiny_ws, monkeypatch):
    examples = tiny_ws.crop_files([1, 2, 3])
    tiny_ws.species_add("Newfish novus", examples)
    kinds = {p.name.rsplit("-", 1)[0] for p in (tiny_ws.home / "indexes" / "tiny" / "scorers").iterdir()}
    assert any(k.startswith("added-") for k in kinds)
    answer = tiny_ws.identify(examples)[0].to_dict()
    tiny_ws.reload()
    _no_fitting(monkeypatch)
    assert tiny_ws.identify(examples)[0].to_dict() == answer
