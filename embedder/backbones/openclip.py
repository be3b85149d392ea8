"""open_clip image towers as backbones: ``openclip:<name>``.

Names (the part after ``openclip:``) are open_clip's own:

- a built-in config, e.g. ``ViT-B-16``; ``weights`` is an open_clip
  pretrained TAG such as ``openai`` or ``laion2b_s34b_b88k`` (downloads once;
  never in tests; ``open_clip.list_pretrained_tags_by_model(name)`` lists them),
  a local checkpoint file (``open_clip.create_model(name, pretrained=PATH)``),
  or ``none``: RANDOM initialisation (a ViT trained from scratch; logged as a
  warning because it is rarely what a user wants);
- ``hf-hub:org/repo``, e.g. ``hf-hub:imageomics/bioclip``; offline, pass the
  downloaded repo folder (holding ``open_clip_config.json`` and the weights) as
  ``weights`` and it is opened as ``local-dir:`` instead of the Hub; ``weights``
  ``pretrained`` downloads from the Hub;
- ``local-dir:/path`` (a folder with ``open_clip_config.json`` + weights).

The tower's open_clip config is recorded in ``Backbone.arch`` so a saved model
is rebuilt offline from its own ``config.json``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from embedder.backbones._registry import Backbone, register_prefix
from index.errors import ModelError

log = logging.getLogger(__name__)

HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def _looks_like_path(weights: str) -> bool:
    return "/" in weights or "\\" in weights or weights.endswith(_WEIGHT_SUFFIXES) or Path(weights).exists()


def resolve_source(name: str, weights: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """Map ``(name, weights)`` to ``(open_clip model name, pretrained, local config)``.

    ``local config`` is the ``open_clip_config.json`` content when the tower
    comes from a local folder, else None.

    Raises:
        ModelError: empty name, a weights path that does not exist, a hub name
            with a single file (the folder is needed for its config), or a folder
            without ``open_clip_config.json``.
    """
    if not name or name in (HF_HUB, LOCAL_DIR):
        raise ModelError("open_clip backbone needs a model name, e.g. openclip:ViT-B-16")
    folder: Path | None = None
    if name.startswith(LOCAL_DIR):
        folder = Path(name[len(LOCAL_DIR) :])
    elif weights not in ("none", "pretrained") and _looks_like_path(weights):
        path = Path(weights)
        if not path.exists():
            raise ModelError(f"open_clip weights not found: {path}")
        if path.is_dir():
            folder = path
        elif name.startswith(HF_HUB):
            raise ModelError(
                f"{name} with a single weights file: pass the downloaded repo folder "
                f"(with {CONFIG_FILE}) as weights so the config is read offline"
            )
        else:
            return name, str(path), None
    if folder is not None:
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise ModelError(f"{folder} has no {CONFIG_FILE}; it is not an open_clip model folder")
        return LOCAL_DIR + str(folder), None, json.loads(config_path.read_text(encoding="utf-8"))
    if name.startswith(HF_HUB):
        return name, None, None  # the hub supplies config and weights (network)
    if weights == "none":
        return name, None, None
    if weights == "imagenet":
        raise ModelError(
            f"open_clip towers take a pretrained tag ({_tags_hint(name)}), a file or 'none', not 'imagenet'"
        )
    if weights != "pretrained":
        tags = _known_tags(name)
        if tags is not None and weights not in tags:
            raise ModelError(f"unknown open_clip pretrained tag {weights!r} for {name}; valid: {_tags_hint(name)}")
    return name, (None if weights == "pretrained" else weights), None


def _known_tags(name: str) -> list[str] | None:
    """open_clip's pretrained tags for a built-in ``name``; None when open_clip knows none
    (a config added at run time, whose tags cannot be checked here)."""
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name)
    return tags or None


def _tags_hint(name: str) -> str:
    tags = _known_tags(name)
    return ", ".join(tags[:6]) + (", ..." if len(tags) > 6 else "") if tags else "e.g. openai"


def _tower_arch(open_name: str, local_cfg: dict[str, Any] | None, model: Any) -> dict[str, Any]:
    import open_clip

    if local_cfg is not None:
        model_cfg = local_cfg["model_cfg"]
    elif open_name.startswith(HF_HUB):  # network path, never taken in tests
        from huggingface_hub import hf_hub_download

        cfg_file = hf_hub_download(open_name[len(HF_HUB) :], CONFIG_FILE)
        model_cfg = json.loads(Path(cfg_file).read_text(encoding="utf-8"))["model_cfg"]
    else:
        model_cfg = open_clip.get_model_config(open_name)
    return {"model_cfg": model_cfg, "preprocess_cfg": dict(open_clip.get_model_preprocess_cfg(model))}


def _rebuild(arch: dict[str, Any]) -> Any:
    """Build a randomly initialised model from a recorded config, offline."""
    import open_clip

    with tempfile.TemporaryDirectory(prefix="oceanid-openclip-") as tmp:
        (Path(tmp) / CONFIG_FILE).write_text(json.dumps(arch), encoding="utf-8")
        return open_clip.create_model(LOCAL_DIR + tmp, pretrained_text=False)


def _last_stage(visual: Any) -> tuple[str, ...]:
    names = [n for n, _ in visual.named_parameters()]
    blocks = sorted({int(n.split(".")[2]) for n in names if n.startswith("transformer.resblocks.")})
    if blocks:  # VisionTransformer: last block, final norm and projection
        return (f"transformer.resblocks.{blocks[-1]}.", "ln_post.", "proj", "attn_pool")
    if any(n.startswith("layer4.") for n in names):  # ModifiedResNet
        return ("layer4.", "attnpool.")
    children = [n for n, m in visual.named_children() if any(True for _ in m.parameters())]
    return (children[-1] + ".",) if children else ()


def create_openclip_backbone(name: str, weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
    """Factory registered for the ``openclip:`` prefix (see the module docstring).

    The tower keeps its native input size (``Backbone.image_size``); the
    ``image_size`` argument is ignored with a log line when it differs.

    Raises:
        ModelError: see :func:`resolve_source`; or open_clip failing to build/load.
    """
    import open_clip

    try:
        if arch is not None:
            model = _rebuild(arch)
        else:
            open_name, pretrained, local_cfg = resolve_source(name, weights)
            if pretrained is None and local_cfg is None and not open_name.startswith(HF_HUB):
                log.warning("open_clip tower %s with weights 'none': random initialisation", open_name)
            log.info("open_clip tower %s (pretrained=%s)", open_name, pretrained)
            model = open_clip.create_model(open_name, pretrained=pretrained, pretrained_text=False)
            arch = _tower_arch(open_name, local_cfg, model)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - open_clip raises RuntimeError/ValueError/OSError
        raise ModelError(f"open_clip could not build {name!r}: {str(exc).splitlines()[0]}") from None
    visual = model.visual
    pre = open_clip.get_model_preprocess_cfg(model)
    size = pre.get("size", getattr(visual, "image_size", image_size))
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    if size != image_size:
        log.info("open_clip tower %s uses its native %d px input (asked %d)", name, size, image_size)
    out_dim = getattr(visual, "output_dim", None)
    if out_dim is None:
        with torch.no_grad():
            out_dim = visual.eval()(torch.zeros(1, 3, size, size)).shape[-1]
    return Backbone(
        module=visual,
        feature_dim=int(out_dim),
        mean=tuple(float(v) for v in pre.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(float(v) for v in pre.get("std", open_clip.OPENAI_DATASET_STD)),
        last_stage=_last_stage(visual),
        image_size=size,
        arch=arch,
    )


register_prefix("openclip", create_openclip_backbone)
