"""Training loop: resume equivalence, Ctrl-C checkpoint, outputs, config, devices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import embedder.training as training
from embedder.device import cuda_available, resolve_device
from embedder.model import config_hash, load_model
from embedder.training import TrainConfig, train
from index.errors import InvalidInput, ModelError

COLOURS = [(220, 40, 40), (40, 200, 60), (50, 60, 230), (230, 220, 40)]


def write_toy_crops(folder, per_class=9, size=(18, 14), seed=0):
    """Noisy colour patches, one colour per class: (path, label) pairs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for c, colour in enumerate(COLOURS):
        for i in range(per_class):
            pixels = np.clip(np.array(colour) * 0.8 + rng.normal(0, 35, (size[1], size[0], 3)), 0, 255)
            path = folder / f"c{c}_{i}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            items.append((path, f"species {c}"))
    return items


@pytest.fixture()
def toy(tmp_path):
    items = write_toy_crops(tmp_path / "crops")
    return [x for j, x in enumerate(items) if j % 3], [x for j, x in enumerate(items) if j % 3 == 0]


def tiny_config(**changes):
    base = dict(
        backbone="tiny",
        weights="none",
        image_size=16,
        dim=8,
        epochs=4,
        batch_p=4,
        batch_k=3,
        lr=0.01,
        patience=10,
        workers=0,
        device="cpu",
        loss="arcface",
    )
    return TrainConfig(**{**base, **changes})


def _weights(folder):
    return load_file(str(folder / "weights.safetensors"))


def _assert_same_run(a, b, atol=1e-5):
    wa, wb = _weights(a / "last"), _weights(b / "last")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.allclose(wa[key], wb[key], atol=atol), key
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    for ea, eb in zip(ha, hb, strict=True):
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=1e-4)
        assert ea["val_f1_macro"] == pytest.approx(eb["val_f1_macro"], abs=1e-6)


def test_train_writes_best_model_history_and_checkpoint(toy, tmp_path):
    result = train(tiny_config(), *toy, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert {"config.json", "weights.safetensors", "history.json", "curves.png", "last"} <= {
        p.name for p in out.iterdir()
    }
    assert {"state.json", "state.safetensors", "weights.safetensors"} <= {p.name for p in (out / "last").iterdir()}
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and result.epochs_run == 4
    best = max(history, key=lambda h: h["val_f1_macro"])
    assert result.best_metrics["f1_macro"] == best["val_f1_macro"] and result.best_epoch == best["epoch"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model = load_model(out)
    assert model.config.class_names == ("species 0", "species 1", "species 2", "species 3")
    assert model.config.training == tiny_config().to_dict() and len(config_hash(out)) == 64
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_a_finished_shorter_run_matches_uninterrupted(toy, tmp_path):
    cfg = tiny_config(schedule="plateau")  # the schedule does not depend on the epoch count
    train(cfg, *toy, tmp_path / "straight", progress=False)
    train(tiny_config(schedule="plateau", epochs=2), *toy, tmp_path / "split", progress=False)
    result = train(cfg, *toy, tmp_path / "split", resume=True, progress=False)
    assert result.epochs_run == 4 and len(result.history) == 4
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


class Interrupt:
    """Replaces _train_step: raises KeyboardInterrupt on call number ``at``."""

    def __init__(self, at):
        self.at, self.calls, self.real = at, 0, training._train_step

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def test_ctrl_c_saves_a_resumable_checkpoint(toy, tmp_path, monkeypatch):
    cfg = tiny_config()  # cosine schedule: 2 batches per epoch, interrupt inside epoch 2
    train(cfg, *toy, tmp_path / "straight", progress=False)
    monkeypatch.setattr(training, "_train_step", Interrupt(at=4))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, *toy, tmp_path / "split", progress=False)
    state = json.loads((tmp_path / "split/last/state.json").read_text())["loop"]
    assert (state["epoch"], state["step"]) == (1, 1)  # epoch 2 (0-based 1), one batch done
    monkeypatch.undo()
    result = train(cfg, *toy, tmp_path / "split", resume=True, progress=False)
    assert result.epochs_run == 4
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_resume_refuses_a_different_config(toy, tmp_path):
    train(tiny_config(epochs=1), *toy, tmp_path / "out", progress=False)
    with pytest.raises(ModelError, match="loss"):
        train(tiny_config(loss="triplet"), *toy, tmp_path / "out", resume=True, progress=False)


def test_resume_without_checkpoint(toy, tmp_path):
    with pytest.raises(ModelError, match="nothing to resume"):
        train(tiny_config(), *toy, tmp_path / "fresh", resume=True, progress=False)


def test_early_stopping_with_patience(toy, tmp_path):
    result = train(tiny_config(epochs=6, patience=1, lr=1e-9), *toy, tmp_path / "out", progress=False)
    assert result.stopped_early and result.epochs_run < 6


@pytest.mark.parametrize(
    "change, error",
    [
        ({"schedule": "step"}, InvalidInput),
        ({"loss": "contrastive"}, InvalidInput),
        ({"augment": "heavy"}, InvalidInput),
        ({"epochs": 0}, InvalidInput),
        ({"backbone": "vgg"}, ModelError),
        ({"freeze": "half"}, ModelError),
        ({"lp_epochs": 4}, InvalidInput),
        ({"lp_epochs": -1}, InvalidInput),
        ({"layer_lr_decay": 0.0}, InvalidInput),
        ({"layer_lr_decay": 1.5}, InvalidInput),
    ],
)
def test_bad_config_values(toy, tmp_path, change, error):
    with pytest.raises(error):
        train(tiny_config(**change), *toy, tmp_path / "out", progress=False)


def test_one_class_is_not_enough(toy, tmp_path):
    one = [x for x in toy[0] if x[1] == "species 0"]
    with pytest.raises(InvalidInput, match="2 classes"):
        train(tiny_config(), one, toy[1], tmp_path / "out", progress=False)


def test_train_config_round_trip():
    cfg = TrainConfig(loss="triplet", epochs=3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InvalidInput, match="colour"):
        TrainConfig.from_dict({"colour": 1})


@pytest.mark.skipif(cuda_available(), reason="CUDA is present")
def test_explicit_cuda_without_cuda_is_an_error():
    with pytest.raises(ModelError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("choice", ["tpu", "gpu", ""])
def test_unknown_device(choice):
    with pytest.raises(ModelError, match="auto, cpu, cuda"):
        resolve_device(choice)


@pytest.mark.gpu
def test_one_training_step_on_cuda(toy, tmp_path):
    if not cuda_available():
        pytest.skip("no CUDA GPU")
    result = train(tiny_config(epochs=1, device="cuda"), *toy, tmp_path / "out", progress=False)
    assert result.epochs_run == 1 and np.isfinite(result.history[0]["train_loss"])


def test_lp_ft_trains_only_the_head_first_then_everything(toy, tmp_path, monkeypatch):
    """LP-FT: during the lp_epochs no backbone tensor (batch-norm statistics included) moves; after, they do."""
    seen = []
    step = training._train_step

    def spy(model, *args):
        before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        head = model.head.weight.detach().clone()
        loss = step(model, *args)
        moved = any(not torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
        seen.append(
            (moved, not torch.equal(head, model.head.weight), any(p.requires_grad for p in model.backbone.parameters()))
        )
        return loss

    monkeypatch.setattr(training, "_train_step", spy)
    train(tiny_config(epochs=2, lp_epochs=1), *toy, tmp_path / "out", progress=False)
    steps = len(seen) // 2
    assert steps >= 1 and len(seen) == 2 * steps
    assert all(not moved and head and not grad for moved, head, grad in seen[:steps])  # linear probe
    assert all(moved and grad for moved, _, grad in seen[steps:])  # then the fine-tune


def test_layer_lr_decay_gives_early_stages_lower_rates():
    from embedder.model import build_model
    from embedder.param_groups import backbone_groups

    model = build_model("tiny", weights="none", dim=8, image_size=16)
    groups = backbone_groups(model.backbone, 1e-2, 0.5, 1e-4)
    assert [g["stage"] for g in groups] == ["0", "1", "3", "4"]  # conv, bn, conv, bn; ReLU/pool hold nothing
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 * 0.5**3, 1e-2 * 0.5**2, 1e-2 * 0.5, 1e-2])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.backbone.parameters())
    assert [g["lr"] for g in backbone_groups(model.backbone, 1e-2, 1.0, 0.0)] == [1e-2] * 4
    partial = build_model("tiny", weights="none", dim=8, image_size=16, freeze="partial")
    assert [g["stage"] for g in backbone_groups(partial.backbone, 1e-2, 0.5, 0.0)] == ["3", "4"]


def test_layer_lr_decay_slows_the_stem_in_training(toy, tmp_path, monkeypatch):
    """With decay 0.01 the first stage moves far less than with one learning rate for all."""
    from embedder.model import build_model

    torch.manual_seed(0)  # what train() seeds before building the model (seed 0)
    start = build_model("tiny", weights="none", dim=8, image_size=16).backbone[0].weight.detach().clone()
    moved = {}
    for decay in (1.0, 0.01):
        out = tmp_path / f"d{decay}"
        train(tiny_config(epochs=1, layer_lr_decay=decay, loss="softmax"), *toy, out, progress=False)
        moved[decay] = float((_weights(out / "last")["backbone.0.weight"] - start).abs().mean())
    assert moved[0.01] < 0.2 * moved[1.0]
