"""The general space's encoder (embedder/general.py): frozen, a model folder of its own, one decode for two encoders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedder.general import GeneralConfig, encode_images_both, general_encoder, is_general, write_general_model

TINY = GeneralConfig(backbone="tiny", weights="none", image_size=32)


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA"]
    return [
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).convert(modes[i % 3]) for i in range(n)
    ]


def test_the_general_encoder_is_frozen_and_pooled():
    model = general_encoder(TINY)
    assert model.config.output == "pooled" and model.config.vector_dim == model.config.feature_dim
    assert not any(p.requires_grad for p in model.parameters())
    assert is_general(model.config) and model.config.training["image_size"] == 32


def test_written_folder_loads_as_a_model_with_its_own_hash(tmp_path):
    from embedder.model import build_model, config_hash, load_model, save_model

    write_general_model(tmp_path / "general", TINY)
    save_model(build_model("tiny", image_size=32, output="pooled"), tmp_path / "tuned")
    loaded = load_model(tmp_path / "general")
    assert is_general(loaded.config) and not is_general(load_model(tmp_path / "tuned").config)
    assert config_hash(tmp_path / "general") != config_hash(tmp_path / "tuned")


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_both_encoders_from_one_decode_match_each_encoder_alone(batch_size):
    """The oracle is encode_images, run for each encoder on its own."""
    from embedder.encoding import encode_images
    from embedder.model import build_model

    tuned = build_model("tiny", image_size=24, output="pooled").eval()
    general = general_encoder(TINY)
    ims = images(5)
    got = encode_images_both([tuned, general], ims, batch_size=batch_size, device="cpu")
    assert [g.shape for g in got] == [(5, tuned.config.vector_dim), (5, general.config.vector_dim)]
    np.testing.assert_allclose(got[0], encode_images(tuned, ims, device="cpu"), atol=1e-5)
    np.testing.assert_allclose(got[1], encode_images(general, ims, device="cpu"), atol=1e-5)
    assert not np.allclose(got[1][0], got[1][1])  # rows are the images', not one repeated
