"""Encoding crops: corrupt files are skipped and reported; images decode upright RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.encoding import EncodeResult, encode_images, encode_paths
from embedder.model import build_model
from index.errors import BadImage, InvalidInput
from index.imaging import open_image


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("tiny", dim=8, image_size=16).eval()


@pytest.fixture()
def crops(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = tmp_path / f"ok{i}.png"
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not a png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(paths[0].read_bytes()[:60])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    # order: ok0, corrupt, ok1, truncated, ok2, missing, ok3, empty, ok4
    return [paths[0], corrupt, paths[1], truncated, paths[2], tmp_path / "missing.png", paths[3], empty, paths[4]]


@pytest.mark.parametrize("workers", [0, 1])
def test_encode_paths_skips_and_reports_bad_files(model, crops, workers):
    result = encode_paths(model, crops, batch_size=4, workers=workers, device="cpu", progress=False)
    assert isinstance(result, EncodeResult)
    assert result.ok == [0, 2, 4, 6, 8]
    assert [path for path, _ in result.failed] == [str(crops[i]) for i in (1, 3, 5, 7)]
    reasons = dict(result.failed)
    assert "not an image" in reasons[str(crops[1])]
    assert "corrupt or truncated" in reasons[str(crops[3])]
    assert "not found" in reasons[str(crops[5])] and "empty" in reasons[str(crops[7])]
    assert all("\n" not in reason for _, reason in result.failed)
    assert result.vectors.shape == (5, 8) and result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


def test_encode_images_matches_encode_paths(model, crops):
    good = [crops[i] for i in (0, 2, 4, 6, 8)]
    from_files = encode_paths(model, good, batch_size=2, workers=0, device="cpu", progress=False).vectors
    images = [Image.open(p) for p in good]
    images[1] = images[1].convert("RGBA")  # any mode is accepted
    from_memory = encode_images(model, images, batch_size=3, device="cpu")
    assert from_memory.shape == (5, 8) and from_memory.dtype == np.float32
    np.testing.assert_allclose(from_memory, from_files, atol=1e-5)


def test_batches_do_not_change_vectors(model, crops):
    good = [crops[i] for i in (0, 2, 4, 6, 8)]
    one = encode_paths(model, good, batch_size=1, workers=0, device="cpu", progress=False).vectors
    all_ = encode_paths(model, good, batch_size=5, workers=0, device="cpu", progress=False).vectors
    np.testing.assert_allclose(one, all_, atol=1e-5)


def test_only_bad_files_gives_empty_result(model, crops):
    result = encode_paths(model, [crops[1], crops[5]], workers=0, device="cpu", progress=False)
    assert result.vectors.shape == (0, 8) and result.ok == [] and len(result.failed) == 2
    assert encode_images(model, [], device="cpu").shape == (0, 8)


def test_batch_size_must_be_positive(model, crops):
    with pytest.raises(InvalidInput):
        encode_paths(model, crops, batch_size=0, device="cpu")


def test_open_image_applies_exif_orientation(tmp_path):
    pixels = np.zeros((10, 30, 3), np.uint8)  # 30 wide, 10 high; left third red
    pixels[:, :10] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    upright = open_image(path)
    assert upright.size == (10, 30) and upright.mode == "RGB"
    assert np.asarray(upright)[2, 5, 0] > 200  # red moved to the top


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_open_image_converts_every_mode(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 255, (12, 9, 3), dtype=np.uint8))
    image = base.convert("L").convert("I;16") if mode == "I;16" else base.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    image.save(path)
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (9, 12)


def test_open_image_raises_bad_image(tmp_path):
    path = tmp_path / "junk.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(BadImage, match="junk.jpg"):
        open_image(path)


def test_batched_normalisation_equals_the_eval_transform(model, crops):
    from torchvision.transforms import v2

    from embedder.transforms import eval_geometry, eval_transform, normalize_batch

    config = model.config
    size = config.image_size
    torchvision_eval = v2.Compose(
        [
            v2.Resize(size, antialias=True),
            v2.CenterCrop(size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(config.mean), list(config.std)),
        ]
    )
    image = open_image(crops[0])
    reference = torchvision_eval(image)
    single = eval_transform(config)(image)
    batched = normalize_batch(config, eval_geometry(config)(image)[None])[0]
    assert reference.shape == single.shape == batched.shape == (3, 16, 16)
    torch.testing.assert_close(single, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched, reference, atol=1e-5, rtol=0)


def test_eval_geometry_equals_torchvision_resize_and_centre_crop():
    """eval_geometry is written against PIL for speed; it must give torchvision's pixels
    (v2.Resize + v2.CenterCrop: size and offset rounding, bilinear) for every shape."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import v2

    from embedder.model import ModelConfig
    from embedder.transforms import eval_geometry

    rng = np.random.default_rng(0)
    for size in (16, 96):
        config = ModelConfig(backbone="tiny", dim=8, image_size=size)
        reference = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.PILToTensor()])
        shapes = [(size, size), (size, size + 1), (size + 1, size), (1, 300), (300, 1), (3, 3), (55, 52)]
        shapes += [tuple(int(v) for v in rng.integers(1, 400, 2)) for _ in range(40)]
        for w, h in shapes:
            image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            assert torch.equal(eval_geometry(config)(image), reference(image)), (size, w, h)


def test_prefetched_decoding_gives_the_same_vectors_and_failures(model, crops):
    serial = encode_paths(model, crops, batch_size=2, workers=0, device="cpu", progress=False, prefetch=0)
    ahead = encode_paths(model, crops, batch_size=2, workers=0, device="cpu", progress=False, prefetch=2)
    assert (ahead.ok, ahead.failed) == (serial.ok, serial.failed)
    np.testing.assert_array_equal(ahead.vectors, serial.vectors)


def test_prefetched_keeps_order_raises_producer_errors_and_stops_early():
    import threading
    import time

    from embedder.encoding import prefetched

    assert list(prefetched(range(50), depth=3)) == list(range(50))
    assert list(prefetched(iter([]), depth=2)) == []

    def failing():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetched(endless(), depth=2):
        if item == 3:
            break
    time.sleep(0.3)
    assert len(produced) <= 3 + 2 + 2  # the producer stopped a couple of items ahead, not running on
    assert not any(t.name == "oceanid-prefetch" for t in threading.enumerate())


def test_the_eval_path_does_not_import_torchvision():
    """Encoding (identify, embed) needs PIL + torch only: torchvision's import (which pulls in
    torch._dynamo, about a second) belongs to training's augmentations and the detector."""
    import subprocess
    import sys

    code = (
        "import sys; import embedder.encoding, embedder.transforms as t; "
        "from embedder.model import ModelConfig; "
        "t.eval_transform(ModelConfig(backbone='efficientnet_lite0', dim=8, image_size=32)); "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
