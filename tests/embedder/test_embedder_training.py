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
    base = dict(backbone="tiny", weights="none", image_size=16, dim=8, epochs=4, batch_p=4, batch_k=3, lr=0.01,
                patience=10, workers=0, device="cpu", loss="arcface")
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
    assert {"config.json", "weights.safetensors", "history.json", "curves.png", "last"} <= {p.name for p in out.iterdir()}
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
    [({"schedule": "step"}, InvalidInput), ({"loss": "contrastive"}, InvalidInput),
     ({"augment": "heavy"}, InvalidInput), ({"epochs": 0}, InvalidInput),
     ({"backbone": "vgg"}, ModelError), ({"freeze": "half"}, ModelError)],
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
