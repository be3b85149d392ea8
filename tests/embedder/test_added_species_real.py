"""An added species is named on real fish, and the representation that fails is caught.

The shipped default indexes the backbone's pooled features (``ModelConfig.output =
"pooled"``; WiSE-FT averages with the ImageNet weights are an option, bench/leave_species_out.py,
bench/RESULTS.md). The test runs that path on a small real case, fast: the ImageNet
backbone (where fine-tuning and WiSE-FT start; no training in a test) through
build_model -> encode_paths -> Prototypes.with_class (what ``species add`` does) -> the
few-shot knn scorer. Two fish4knowledge species, each a near relative of a trained one
(Chaetodon lunulatus / C. trifascialis, Neoniphon sammara / Myripristis kuntee, both
Holocentridae), are added from 5 crops of 5 distinct tracks and their crops from other
tracks must be named.

The control is the representation this project shipped before: the 128-d head of a
model fine-tuned on the other species only (here the head is trained on the frozen
backbone's features with the product's own loss, so it is quick). It folds the new
species onto trained neighbours and must fail the same check.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

FISH4K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fish4knowledge"
TRACK = re.compile(r"fish_(\d+)_")
KNOWN = (
    "01_Dascyllus_reticulatus",
    "02_Plectroglyphidodon_dickii",
    "04_Amphiprion_clarkii",
    "06_Chaetodon_trifascialis",
    "07_Myripristis_kuntee",
    "08_Acanthurus_nigrofuscus",
)
ADDED = ("05_Chaetodon_lunulatus", "10_Neoniphon_sammara")
TRAIN_TRACKS, SHOTS, QUERY_TRACKS = 10, 5, 20
NAMED_AT_LEAST = 0.6  # of the added species' crops from other tracks, named it

pytestmark = pytest.mark.skipif(not FISH4K.is_dir(), reason=f"fish4knowledge not found at {FISH4K}")


def _tracks(species: str) -> list[list[Path]]:
    tracks: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((FISH4K / species).glob("*.png")):
        tracks[TRACK.match(path.name).group(1)].append(path)
    return [tracks[t] for t in np.random.default_rng(0).permutation(sorted(tracks))]


@pytest.fixture(scope="module")
def case():
    """(paths, labels, role) with role train (known), support (5 tracks) or query (other tracks)."""
    paths, labels, roles = [], [], []
    for species in KNOWN:
        for frames in _tracks(species)[:TRAIN_TRACKS]:
            for path in frames[:2]:
                paths.append(path), labels.append(species), roles.append("train")
    for species in ADDED:
        tracks = _tracks(species)
        for i, frames in enumerate(tracks[: SHOTS + QUERY_TRACKS]):
            paths.append(frames[0]), labels.append(species), roles.append("support" if i < SHOTS else "query")
    return paths, np.array(labels), np.array(roles)


@pytest.fixture(scope="module")
def pooled_model():
    from embedder.model import build_model

    return build_model("efficientnet_lite0", weights="imagenet", image_size=96, output="pooled").eval()


@pytest.fixture(scope="module")
def pooled(case, pooled_model):
    from embedder.encoding import encode_paths

    enc = encode_paths(pooled_model, case[0], batch_size=64, workers=0, device="cpu", progress=False)
    assert not enc.failed and enc.vectors.shape == (len(case[0]), 1280)
    return enc.vectors


def _named(vectors: np.ndarray, labels: np.ndarray, roles: np.ndarray) -> float:
    """As ``species add`` + identify: prototypes of the known species plus each added one from
    its support crops; a query is named when the few-shot knn scorer accepts it (threshold at
    95% of the known training crops) and its nearest prototype is its species."""
    from index.scoring.ood import KnnScorer, calibrate
    from index.scoring.prototypes import Prototypes

    train = roles == "train"
    protos = Prototypes.fit(vectors[train], labels[train])
    for species in ADDED:
        protos = protos.with_class(species, vectors[(roles == "support") & (labels == species)])
    gallery = roles != "query"
    scorer = KnnScorer(few_shot=ADDED).fit(vectors[gallery], labels[gallery])
    threshold = calibrate(scorer.score(vectors[train]))
    query = roles == "query"
    names = np.asarray(protos.names)[protos.similarities(vectors[query]).argmax(1)]
    accepted = scorer.score(vectors[query]) >= threshold
    return float(np.mean(accepted & (names == labels[query])))


def test_an_added_species_is_named_by_the_shipped_representation(case, pooled):
    _, labels, roles = case
    named = _named(pooled, labels, roles)
    assert named >= NAMED_AT_LEAST


def test_the_head_of_a_model_tuned_on_the_other_species_fails_the_same_check(case, pooled_model, pooled):
    """The control: fold the embedding onto the known species (a 128-d head trained with the
    product's softmax loss on them), embed through the model with output=head, and the added
    species are no longer named."""
    from embedder.encoding import encode_paths
    from embedder.losses import build_loss
    from embedder.transforms import eval_transform
    from index.imaging import open_image

    paths, labels, roles = case
    torch.manual_seed(0)
    model = dataclasses.replace(pooled_model.config, output="head")
    head_model = type(pooled_model)(model)  # fresh head; the backbone is copied below
    head_model.backbone.load_state_dict(pooled_model.backbone.state_dict())
    train = roles == "train"
    classes = {c: i for i, c in enumerate(KNOWN)}
    transform = eval_transform(head_model.config)
    with torch.no_grad():  # the backbone's own (unnormalised) features: what the head is fed
        x = head_model.backbone(
            torch.stack([transform(open_image(p)) for p, t in zip(paths, train, strict=False) if t])
        )
    y = torch.tensor([classes[c] for c in labels[train]])
    loss_fn = build_loss("softmax", len(KNOWN), head_model.config.dim)
    optimizer = torch.optim.AdamW([*head_model.head.parameters(), *loss_fn.parameters()], lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        loss = loss_fn(torch.nn.functional.normalize(head_model.head(x), dim=1), y)
        loss.backward()
        optimizer.step()
    head_model.eval()
    enc = encode_paths(head_model, paths, batch_size=64, workers=0, device="cpu", progress=False)
    assert enc.vectors.shape == (len(paths), 128)
    named = _named(enc.vectors, labels, roles)
    assert named < NAMED_AT_LEAST, f"the folded head named {named:.2f} of the added species"
    assert _named(pooled, labels, roles) - named >= 0.2
