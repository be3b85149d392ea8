"""ONNX export (embedder/export.py) and the torch-free runner (embedder/runtime.py).

The runner's Pillow/numpy preprocessing is compared with training's eval transform pixel for
pixel, and its vectors with torch's; an export of other weights, or one that failed its check,
is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.encoding import encode_images
from embedder.export import export_model
from embedder.model import build_model, save_model
from embedder.runtime import EXPORT_FILE, ONNX_FILE, OnnxEncoder, Preprocessing, export_problem, preprocess, read_export
from embedder.transforms import eval_transform
from index.errors import ModelError


def images(seed: int = 0, n: int = 6) -> list[Image.Image]:
    """Crops of odd sizes, both orientations, and modes the decoder may hand over."""
    rng = np.random.default_rng(seed)
    shapes = [(37, 53), (80, 29), (16, 16), (101, 64), (9, 40), (33, 33)]
    out = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes[:n]]
    out[2] = out[2].convert("L")
    return out


@pytest.mark.parametrize("geometry", ["centre", "letterbox"])
@pytest.mark.parametrize("size", [16, 31])
def test_preprocessing_equals_training_eval_transform(geometry, size):
    # would fail: a resize of the long side, another rounding of the crop offset, PIL's default
    # resampling, a missing /255, mean/std swapped, or HWC instead of CHW
    model = build_model("tiny", dim=8, image_size=size, geometry=geometry)
    config = model.config
    prep = Preprocessing(size, geometry, (0.2, 0.5, 0.7), (0.3, 0.25, 0.9))
    config = type(config)(**{**config.__dict__, "mean": prep.mean, "std": prep.std})
    batch = images()
    expected = torch.stack([eval_transform(config)(im.convert("RGB")) for im in batch]).numpy()
    got = preprocess(batch, prep)
    assert got.shape == expected.shape == (len(batch), 3, size, size) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.fixture(scope="module", params=["head", "pooled", "both"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("onnx") / request.param
    model = build_model("tiny", dim=8, image_size=24, output=request.param).eval()
    save_model(model, folder)
    crops = []
    for i, im in enumerate(images(1)):
        im.save(folder.parent / f"{request.param}-{i}.png")
        crops.append(folder.parent / f"{request.param}-{i}.png")
    result = export_model(folder, crops, model=model)
    return folder, model, result


def test_export_writes_a_checked_record(exported):
    folder, model, result = exported
    record = read_export(folder)
    assert (folder / ONNX_FILE).is_file() and result.passed and result.check_crops == 6
    assert record["check"]["passed"] and record["check"]["max_cosine_gap"] < 1e-5
    assert record["weights_sha256"] == model.config.weights_sha256
    assert record["vector_dim"] == model.config.vector_dim
    assert record["preprocessing"]["image_size"] == 24 and record["preprocessing"]["mean"] == list(model.config.mean)
    assert export_problem(folder) is None


def test_onnxruntime_vectors_equal_torch(exported):
    # would fail: the head exported without combine() (unnormalised, or the head instead of pooled),
    # a fixed batch axis (the batches below are 1 and 5 images), or preprocessing that differs
    folder, model, _ = exported
    batch = images(7)[:5]
    encoder = OnnxEncoder(folder, threads=1)
    ref = encode_images(model, batch, device="cpu")
    for got, want in ((encoder.embed(batch[:1]), ref[:1]), (encoder.embed(batch), ref)):
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.min(np.sum(got * want, axis=1)) > 0.9999
    np.testing.assert_allclose(np.linalg.norm(encoder.embed(batch), axis=1), 1.0, atol=1e-5)


def test_export_of_other_weights_or_failed_check_is_refused(tmp_path):
    torch.manual_seed(1)
    folder = tmp_path / "m"
    model = build_model("tiny", dim=8, image_size=16).eval()
    save_model(model, folder)
    assert "no ONNX export" in export_problem(folder)
    export_model(folder, model=model)
    assert export_problem(folder) is None
    with torch.no_grad():
        model.head.bias.add_(1.0)
    save_model(model, folder)  # retrained weights, the old export beside them
    assert "other weights" in export_problem(folder)
    with pytest.raises(ModelError, match="other weights"):
        OnnxEncoder(folder)
    export_model(folder, model=model)
    record = json.loads((folder / EXPORT_FILE).read_text())
    record["check"]["passed"] = False
    (folder / EXPORT_FILE).write_text(json.dumps(record))
    assert "failed its check" in export_problem(folder)


def test_a_changed_onnx_file_is_refused(tmp_path):
    folder = tmp_path / "m"
    model = build_model("tiny", dim=8, image_size=16).eval()
    save_model(model, folder)
    export_model(folder, model=model)
    with open(folder / ONNX_FILE, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        OnnxEncoder(folder)
