"""Image transforms: augmentation presets for underwater crops and the eval
transform derived from a model's config (resize + centre crop + normalise).

Every transform maps an RGB PIL image to a ``(3, S, S)`` float32 tensor
normalised with the model's own mean/std. torchvision is imported only by the training
presets: the eval path (encoding, identify) is PIL + torch alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from embedder.model import ModelConfig
from index.errors import InvalidInput

if TYPE_CHECKING:
    from torchvision.transforms import v2

Transform = Callable[[Image.Image], torch.Tensor]


def _to_tensor(config: ModelConfig) -> list[v2.Transform]:
    from torchvision.transforms import v2

    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(config.mean), std=list(config.std)),
    ]


class _CentreSquare:
    """RGB PIL -> ``(3, S, S)`` uint8: the shorter side resized to ``S``, a centred square cut.

    The same pixels as ``v2.Resize(S) + v2.CenterCrop(S) + v2.PILToTensor()`` (torchvision's
    size and offset rounding, PIL bilinear resampling; a test holds them equal), written
    against PIL directly: on small crops torchvision's per-call dispatch cost 4x the resize
    itself (fish4knowledge crops: 0.62 -> 0.16 ms each). A class, so DataLoader workers can
    pickle it.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        size = self.size
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        scaled = (size, int(size * long / short)) if short != size else (short, long)
        new_w, new_h = scaled if width <= height else scaled[::-1]
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), Image.BILINEAR)
        if (new_w, new_h) != (size, size):
            top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
            image = image.crop((left, top, left + size, top + size))
        pixels = np.array(image, dtype=np.uint8, copy=True)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """The whole crop, its longer side resized to ``size`` (aspect kept), centred on a
    black ``size`` x ``size`` square. Long, thin organisms (siphonophores, chaetognaths)
    stay whole, where the centre square keeps only their middle."""
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BILINEAR)
    if (new_w, new_h) == (size, size):
        return image
    canvas = Image.new(image.mode, (size, size))
    canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


class _Letterbox:
    """RGB PIL -> ``(3, S, S)`` uint8 by :func:`letterbox`. A class, so workers can pickle it."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = np.array(letterbox(image, self.size), dtype=np.uint8, copy=True)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


class _LetterboxFirst:
    """Letterbox to ``size`` before a training transform, so its random crops see the whole crop."""

    def __init__(self, size: int, then: Transform) -> None:
        self.size, self.then = int(size), then

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.then(letterbox(image, self.size))


def _geometry(config: ModelConfig) -> Callable[[Image.Image], torch.Tensor]:
    if getattr(config, "geometry", "centre") == "letterbox":
        return _Letterbox(config.image_size)
    return _CentreSquare(config.image_size)


class _Eval:
    """:func:`eval_geometry` then :func:`normalize_batch`, for one image."""

    def __init__(self, config: ModelConfig) -> None:
        self.config, self.geometry = config, _geometry(config)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return normalize_batch(self.config, self.geometry(image)[None])[0]


def eval_transform(config: ModelConfig) -> Transform:
    """The model's geometry (``centre``: resize the shorter side to ``image_size``, centre-crop
    a square; ``letterbox``: :func:`letterbox`), then normalise: RGB PIL -> ``(3, S, S)`` float32."""
    return _Eval(config)


def eval_geometry(config: ModelConfig) -> Callable[[Image.Image], torch.Tensor]:
    """The pixel part of :func:`eval_transform`: RGB PIL -> ``(3, S, S)`` uint8.

    Encoding ships uint8 crops out of the DataLoader workers (4x less to copy)
    and normalises whole batches with :func:`normalize_batch`.
    """
    return _geometry(config)


def normalize_batch(config: ModelConfig, images: torch.Tensor) -> torch.Tensor:
    """``(n, 3, S, S)`` uint8 -> float32 scaled to [0, 1] and normalised with the
    model's mean/std, on the tensor's own device."""
    mean = torch.tensor(config.mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _none(config: ModelConfig) -> Transform:
    return eval_transform(config)


def _light(config: ModelConfig) -> Transform:
    from torchvision.transforms import v2

    size = config.image_size
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            *_to_tensor(config),
        ]
    )


def is_grey(image: Image.Image) -> bool:
    """True for a single-channel image, or an RGB one whose three channels are equal
    (how the decoder hands over grayscale crops, e.g. plankton microscopy)."""
    if image.mode in ("L", "LA", "I", "I;16", "F", "1"):
        return True
    if image.mode != "RGB":
        return False
    r, g, b = image.split()
    return r.tobytes() == g.tobytes() == b.tobytes()


class KeepGrey:
    """Apply ``colour`` to colour crops and ``grey`` to grayscale ones, so colour
    augmentations (hue jitter, TrivialAugmentWide's colour ops) never invent colour
    that grayscale data never has. Picklable for DataLoader workers."""

    def __init__(self, colour: Transform, grey: Transform) -> None:
        self.colour, self.grey = colour, grey

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.grey(image) if is_grey(image) else self.colour(image)


def _underwater(config: ModelConfig) -> Transform:
    """Crops vary in framing, orientation, turbidity and colour cast (depth-dependent
    light absorption), so: crop/scale, flips, small rotations, colour jitter
    including hue, TrivialAugmentWide, and random erasing (occlusion). Grayscale
    crops take the same steps on one channel, then are replicated to three."""
    from torchvision.transforms import v2

    size = config.image_size
    to_image, to_float, normalize = _to_tensor(config)

    def steps(grey: bool) -> v2.Compose:
        erase = v2.RandomErasing(p=0.25, scale=(0.02, 0.15))
        # grey crops are erased to black before normalising (equal channels whatever the
        # model's mean/std); colour crops after it, as measured in bench/RESULTS.md
        tail = [to_image, to_float, erase, normalize] if grey else [to_image, to_float, normalize, erase]
        return v2.Compose(
            [
                *([v2.Grayscale(num_output_channels=1)] if grey else []),
                v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(p=0.1),
                v2.RandomRotation(15),
                v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
                v2.TrivialAugmentWide(),
                *([v2.Grayscale(num_output_channels=3)] if grey else []),
                *tail,
            ]
        )

    return KeepGrey(steps(False), steps(True))


AUGMENT_PRESETS: dict[str, Callable[[ModelConfig], Transform]] = {
    "none": _none,
    "light": _light,
    "underwater": _underwater,
}


def train_transform(config: ModelConfig, preset: str = "underwater") -> Transform:
    """The training transform for ``preset``.

    Raises:
        InvalidInput: unknown preset (the message lists the valid ones).
    """
    if preset not in AUGMENT_PRESETS:
        raise InvalidInput(f"unknown augment preset {preset!r}; valid: {', '.join(AUGMENT_PRESETS)}")
    transform = AUGMENT_PRESETS[preset](config)
    if getattr(config, "geometry", "centre") == "letterbox" and preset != "none":
        return _LetterboxFirst(config.image_size, transform)
    return transform
