"""Decoding crop files into upright RGB PIL images for the encoder.

A small, self-contained twin of the catalog's decoder (``embedder`` does not
import ``index`` beyond its errors): EXIF orientation applied, every mode
converted to RGB, the file fully decoded so truncation fails here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from index.errors import BadImage

#: Crops larger than this many pixels are refused (decompression bombs).
MAX_PIXELS = 180_000_000


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency is composited on black, 16-bit
    grayscale is stretched over its own min..max range."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: Path | str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully into an upright RGB image.

    Raises:
        BadImage: missing, empty, corrupt, truncated, non-image or over-limit file
            (one-line message naming the file).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImage(f"{path.name}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.size[0] * image.size[1] > max_pixels:
                    raise BadImage(f"{path.name}: {image.size[0]}x{image.size[1]} is over the pixel limit")
                image.load()
                upright = ImageOps.exif_transpose(image)  # always a new image
        return to_rgb(upright)
    except BadImage:
        raise
    except FileNotFoundError:
        raise BadImage(f"{path.name}: file not found") from None
    except UnidentifiedImageError:
        raise BadImage(f"{path.name}: not an image file (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"{path.name}: refused as a possible decompression bomb") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadImage(f"{path.name}: corrupt or truncated image ({reason})") from None
