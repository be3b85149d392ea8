"""The subtree-marginal softmax loss (labels at mixed ranks): equal to cross-entropy without
descendants, blind to mass on a parent label's members, and a correct gradient."""

from __future__ import annotations

import math

import pytest
import torch

from embedder.subtree_loss import SubtreeSoftmaxLoss, membership, subtree_nll
from embedder.train_config import TrainConfig
from index.errors import InvalidInput

CLASSES = ["Calanus", "Copepod", "Oithona", "Snow"]  # Copepod holds Calanus and Oithona
SUBTREES = {"Copepod": ["Calanus", "Oithona"]}


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_equals_cross_entropy_when_no_class_has_descendants(eps):
    torch.manual_seed(0)
    loss = SubtreeSoftmaxLoss(5, 8, membership(list("abcde"), {}), label_smoothing=eps)
    x, y = torch.randn(32, 8), torch.randint(0, 5, (32,))
    expected = torch.nn.functional.cross_entropy(loss.classifier(x), y, label_smoothing=eps)
    assert torch.allclose(loss(x, y), expected, atol=1e-6)


def test_membership_matrix_from_subtrees():
    m = membership(CLASSES, {**SUBTREES, "Absent": ["Snow"]})  # a parent with no logit is ignored
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, True, False],
        [False, False, True, False],
        [False, False, False, True],
    ]
    with pytest.raises(InvalidInput):
        membership(CLASSES, {"Copepod": ["Copepod"]})


def test_parent_label_is_not_penalised_for_mass_on_its_members():
    m = membership(CLASSES, SUBTREES)
    parent = torch.tensor([1])
    on_parent = torch.tensor([[0.0, 9.0, 0.0, 0.0]])
    on_member = torch.tensor([[9.0, 0.0, 0.0, 0.0]])  # all mass on Calanus, a member of Copepod
    on_other = torch.tensor([[0.0, 0.0, 0.0, 9.0]])  # on Snow, outside the subtree
    assert subtree_nll(on_member, parent, m) == pytest.approx(subtree_nll(on_parent, parent, m).item(), abs=1e-6)
    assert subtree_nll(on_other, parent, m).item() == pytest.approx(9 - math.log(3), abs=1e-3)  # 3 of 4 logits inside
    # the flat loss does penalise it, and a member's label is still graded strictly
    flat = torch.nn.functional.cross_entropy(on_member, parent)
    assert flat > 8.0
    member = torch.tensor([0])
    assert subtree_nll(on_parent, member, m) > 8.0


def test_gradient_matches_finite_differences():
    m = membership(CLASSES, SUBTREES)
    logits = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    labels = torch.tensor([1, 1, 0, 2, 3, 1])

    def f(z):
        logp = torch.log_softmax(z, dim=1)
        inside = m[labels]
        marginal = torch.logsumexp(logp.masked_fill(~inside, float("-inf")), dim=1)
        return -((0.9) * marginal + 0.1 * logp.mean(dim=1)).mean()

    assert torch.autograd.gradcheck(f, (logits,))
    # and the loss module's own value agrees with it (float32 path)
    assert subtree_nll(logits.detach().float(), labels, m, 0.1).item() == pytest.approx(f(logits).item(), abs=1e-5)
    # the gradient on a parent label's logits: no push away from its members, only from outsiders
    z = torch.zeros(1, 4, requires_grad=True)
    subtree_nll(z, torch.tensor([1]), m).backward()
    g = z.grad[0]
    assert g[0] == g[1] == g[2] < 0 < g[3]


def test_config_refuses_subtree_with_another_loss():
    TrainConfig(label_rank="subtree").validate()
    with pytest.raises(InvalidInput, match="softmax"):
        TrainConfig(label_rank="subtree", loss="arcface").validate()
    with pytest.raises(InvalidInput, match="label_rank"):
        TrainConfig(label_rank="genus").validate()


def _toy(tmp_path):
    from tests.embedder.test_embedder_training import write_toy_crops

    items = write_toy_crops(tmp_path / "crops")
    return [x for j, x in enumerate(items) if j % 3], [x for j, x in enumerate(items) if j % 3 == 0]


CFG = {"loss": "softmax", "schedule": "plateau", "epochs": 1}
NESTED = {"species 0": ["species 1"]}


def test_training_is_flat_without_subtrees_and_changes_with_them(tmp_path):
    """A tiny training: ``subtree`` with no subtrees retraces the flat run; with one it differs and is
    stored in config.json."""
    import json

    from embedder.training import train
    from tests.embedder.test_embedder_training import _assert_same_run, tiny_config

    toy = _toy(tmp_path)
    train(tiny_config(**CFG), *toy, tmp_path / "flat", progress=False)
    train(tiny_config(**CFG, label_rank="subtree"), *toy, tmp_path / "none", progress=False, subtrees={})
    _assert_same_run(tmp_path / "flat", tmp_path / "none")
    train(tiny_config(**CFG, label_rank="subtree"), *toy, tmp_path / "nested", progress=False, subtrees=NESTED)
    assert json.loads((tmp_path / "nested" / "config.json").read_text())["training"]["label_rank"] == "subtree"
    with pytest.raises(AssertionError):  # the subtree loss did change the training
        _assert_same_run(tmp_path / "flat", tmp_path / "nested")


def test_a_resumed_subtree_run_retraces_the_uninterrupted_one(tmp_path):
    from embedder.training import train
    from tests.embedder.test_embedder_training import _assert_same_run, tiny_config

    toy = _toy(tmp_path)
    straight = tiny_config(**{**CFG, "epochs": 2}, label_rank="subtree")
    train(straight, *toy, tmp_path / "straight", progress=False, subtrees=NESTED)
    train(tiny_config(**CFG, label_rank="subtree"), *toy, tmp_path / "split", progress=False, subtrees=NESTED)
    train(straight, *toy, tmp_path / "split", resume=True, progress=False, subtrees=NESTED)
    _assert_same_run(tmp_path / "straight", tmp_path / "split")
