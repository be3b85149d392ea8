"""EmbeddingModel folders: save/load round trip, config hash, safetensors only."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch

from embedder.model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    build_model,
    config_hash,
    load_model,
    save_model,
)
from index.errors import ModelError


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny", dim=8, image_size=24, class_names=("a", "b"), training={"loss": "arcface"})
    save_model(model, tmp_path / "m")
    return model, tmp_path / "m"


def test_round_trip_gives_identical_embeddings(saved):
    model, folder = saved
    images = torch.randn(5, 3, 24, 24)
    loaded = load_model(folder)
    model.eval()
    with torch.no_grad():
        a, b = model(images), loaded(images)
    assert torch.equal(a, b)
    assert a.dtype == torch.float32 and a.shape == (5, 8)
    assert torch.allclose(a.norm(dim=1), torch.ones(5), atol=1e-5)
    assert loaded.config == model.config
    assert loaded.config.class_names == ("a", "b") and not loaded.training


def test_folder_is_self_describing(saved):
    _, folder = saved
    data = json.loads((folder / CONFIG_FILE).read_text())
    assert data["backbone"] == "tiny" and data["dim"] == 8 and data["image_size"] == 24
    assert data["mean"] == [0.485, 0.456, 0.406] and len(data["std"]) == 3
    assert data["training"] == {"loss": "arcface"} and len(data["weights_sha256"]) == 64
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]


def test_config_hash_is_stable(saved):
    model, folder = saved
    h = config_hash(folder)
    data = json.loads((folder / CONFIG_FILE).read_text())
    reordered = dict(reversed(list(data.items())))
    assert h == config_hash(reordered) == config_hash(model.config) == config_hash(str(folder))
    assert len(h) == 64 and all(c in "0123456789abcdef" for c in h)
    # the canonical form: sorted keys, no whitespace, ASCII
    assert config_hash({"b": 1, "a": [1.5, "x"]}) == hashlib.sha256(b'{"a":[1.5,"x"],"b":1}').hexdigest()


@pytest.mark.parametrize("change", [{"dim": 9}, {"class_names": ["a", "c"]}, {"weights_sha256": "0" * 64}])
def test_config_hash_changes_with_content(saved, change):
    _, folder = saved
    data = json.loads((folder / CONFIG_FILE).read_text())
    assert config_hash({**data, **change}) != config_hash(data)


def test_retrained_weights_change_the_hash(saved, tmp_path):
    model, folder = saved
    with torch.no_grad():
        model.head.weight.add_(0.01)
    save_model(model, tmp_path / "again")
    assert config_hash(tmp_path / "again") != config_hash(folder)


def test_changed_weights_file_is_refused(saved):
    model, folder = saved
    with torch.no_grad():
        model.head.bias.add_(1.0)
    from safetensors.torch import save_model as st_save

    st_save(model, str(folder / WEIGHTS_FILE))  # bypasses save_model: config keeps the old sha256
    with pytest.raises(ModelError, match="sha256"):
        load_model(folder)


def test_loading_never_unpickles(saved, capsys):
    _, folder = saved

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    (folder / WEIGHTS_FILE).write_bytes(pickle.dumps(Payload()))
    data = json.loads((folder / CONFIG_FILE).read_text())
    data["weights_sha256"] = None
    (folder / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="cannot load"):
        load_model(folder)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize("broken", ["no-folder", "no-weights", "bad-json", "unknown-key", "wrong-shape"])
def test_load_errors(saved, tmp_path, broken):
    _, folder = saved
    data = json.loads((folder / CONFIG_FILE).read_text())
    if broken == "no-folder":
        folder = tmp_path / "missing"
    elif broken == "no-weights":
        (folder / WEIGHTS_FILE).unlink()
    elif broken == "bad-json":
        (folder / CONFIG_FILE).write_text("{not json")
    elif broken == "unknown-key":
        (folder / CONFIG_FILE).write_text(json.dumps({**data, "colour": "blue"}))
    else:
        (folder / CONFIG_FILE).write_text(json.dumps({**data, "dim": 4, "weights_sha256": None}))
    with pytest.raises(ModelError):
        load_model(folder)


def test_model_config_round_trip():
    config = ModelConfig(backbone="cnn", dim=32, class_names=("x",), training={"epochs": 3})
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("freeze, frozen_bn_in_eval", [("none", False), ("all", True)])
def test_frozen_batchnorm_stays_in_eval_mode(freeze, frozen_bn_in_eval):
    model = build_model("tiny", dim=4, freeze=freeze).train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.training is not frozen_bn_in_eval for bn in bns)
    assert model.head.weight.requires_grad


def test_bad_dim():
    with pytest.raises(ModelError, match="dim"):
        build_model("tiny", dim=0)
