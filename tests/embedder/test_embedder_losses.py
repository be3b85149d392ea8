"""Losses by name, the hand-written quadruplet loss, and the P x K sampler."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.reducers import MeanReducer, MultipleReducers

from embedder.losses import LOSSES, build_loss
from embedder.quadruplet import QuadrupletLoss
from embedder.sampling import PKSampler
from index.errors import InvalidInput, ModelError


def _toy(seed=0, classes=4, per_class=8, features=6):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=gen) * 2
    labels = torch.arange(classes).repeat_interleave(per_class)
    return centres[labels] + 0.5 * torch.randn(len(labels), features, generator=gen), labels


@pytest.mark.parametrize("name", list(LOSSES))
def test_each_loss_steps_and_decreases_on_a_toy_problem(name):
    torch.manual_seed(0)
    x, y = _toy()
    encoder = torch.nn.Linear(x.shape[1], 8)
    loss_fn = build_loss(name, num_classes=4, dim=8)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(loss_fn.parameters()), lr=0.05)
    values = []
    for _ in range(30):
        loss = loss_fn(torch.nn.functional.normalize(encoder(x), dim=1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert math.isfinite(values[0]) and values[0] > 0
    assert values[-1] < 0.7 * values[0], values[::5]


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ModelError) as err:
        build_loss("contrastive", 3, 8)
    for name in ("softmax", "arcface", "subcenter-arcface", "triplet", "quadruplet"):
        assert name in str(err.value)


def test_arcface_margins_are_converted_to_degrees():
    arc = build_loss("arcface", 5, 8)
    sub = build_loss("subcenter-arcface", 5, 8)
    # pml stores the margin in radians after converting the degrees it is given
    assert arc.margin == pytest.approx(0.35) and sub.margin == pytest.approx(0.35)
    assert arc.scale == sub.scale == 30
    assert sub.sub_centers == 3 and sub.W.shape == (8, 15)


def _unit(deg):
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_quadruplet_hand_computed_case():
    # A0 at 0deg, A1 at 60deg (class 0), B at 150deg (class 1), C at 240deg (class 2).
    # Squared distances 2 - 2cos(angle): A0A1 = 1, A0B = 2+sqrt(3), A0C = 3, A1B = 2, A1C = 4, BC = 2.
    emb = torch.tensor([_unit(0), _unit(60), _unit(150), _unit(240)])
    labels = torch.tensor([0, 0, 1, 2])
    loss = QuadrupletLoss(margin=1.5, margin2=1.25)
    # triplets: (A0,A1,B) 1-3.732+1.5<0, (A0,A1,C) 1-3+1.5<0, (A1,A0,B) 1-2+1.5=0.5, (A1,A0,C) 1-4+1.5<0
    # -> mean of non-zero = 0.5; quadruplets (A0,A1|B,C) and (A1,A0|B,C): 1-2+1.25 = 0.25 each -> 0.25
    assert loss(emb, labels).item() == pytest.approx(0.75, abs=1e-5)
    mean = QuadrupletLoss(margin=1.5, margin2=1.25, reducer=MultipleReducers({}, default_reducer=MeanReducer()))
    assert mean(emb, labels).item() == pytest.approx(0.5 / 4 + 0.25, abs=1e-5)


def _quadruplet_oracle(emb, labels, m1, m2):
    """Brute force over every (a, p, n) and (a, p, l, k), mean of the non-zero terms."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    d = ((e[:, None] - e[None]) ** 2).sum(-1)
    n = len(labels)
    trip, quad = [], []
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        trip += [d[a, p] - d[a, q] + m1 for q in range(n) if labels[q] != labels[a]]
        quad += [
            d[a, p] - d[l, k] + m2
            for l, k in itertools.combinations(range(n), 2)
            if len({labels[a], labels[l], labels[k]}) == 3
        ]
    nz = lambda v: np.mean([x for x in v if x > 0]) if any(x > 0 for x in v) else 0.0  # noqa: E731
    return nz(trip) + nz(quad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadruplet_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(12, 3)).astype(np.float32)
    labels = rng.integers(0, 4, size=12)
    got = QuadrupletLoss(margin=0.4, margin2=0.2)(torch.from_numpy(emb), torch.from_numpy(labels)).item()
    assert got == pytest.approx(_quadruplet_oracle(emb, labels, 0.4, 0.2), abs=1e-4)


def test_quadruplet_without_positives_is_zero():
    emb = torch.randn(3, 4, requires_grad=True)
    assert QuadrupletLoss()(emb, torch.tensor([0, 1, 2])).item() == 0.0


@pytest.mark.parametrize("p, k", [(3, 4), (5, 2), (2, 6)])
def test_sampler_batches_are_p_by_k(p, k):
    labels = np.repeat(np.arange(6), [10, 7, 3, 12, 5, 9])
    sampler = PKSampler(labels, p, k, length=p * k * 5, seed=3)
    idx = list(sampler)
    assert len(idx) == len(sampler) == p * k * 5
    for start in range(0, len(idx), p * k):
        counts = np.bincount(labels[idx[start : start + p * k]], minlength=6)
        assert sorted(counts[counts > 0].tolist()) == [k] * p


def test_sampler_is_resumable():
    labels = np.repeat(np.arange(5), 8)
    a = PKSampler(labels, 3, 2, length=36, seed=7)
    epochs = []
    for epoch in range(3):
        a.set_epoch(epoch)
        epochs.append(list(a))
    assert epochs[0] != epochs[1] != epochs[2]
    b = PKSampler(labels, 3, 2, length=36, seed=7)  # a fresh process resuming epoch 2
    b.load_state_dict({"seed": 7, "epoch": 2, "start": 0})
    assert list(b) == epochs[2]
    b.set_epoch(1, start_batch=2)  # mid-epoch: skips the first two batches
    assert list(b) == epochs[1][12:]
    a.set_epoch(0)
    assert list(a) == epochs[0]  # unaffected by pml's global numpy state
    np.random.seed(123)
    assert list(a) == epochs[0]


@pytest.mark.parametrize("labels, p, k, length", [([0, 0, 1, 1], 3, 2, 12), ([0, 1, 2], 2, 2, 3), ([0, 1], 2, 0, 8)])
def test_sampler_rejects_impossible_batches(labels, p, k, length):
    with pytest.raises(InvalidInput):
        PKSampler(labels, p, k, length)
