"""Safe image decoding: one place that turns a file into an upright RGB image.

Every image that enters oceanid (source frames, crops, uploads) is opened here so
the same rules apply everywhere: a pixel limit against decompression bombs, a
full decode so truncated files fail now rather than later, EXIF orientation
applied, and every mode (CMYK, 16-bit, grayscale, palette, RGBA) converted to RGB.
"""

from __future__ import annotations

import io
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from index.errors import BadImage

#: Largest image accepted, in pixels (about 16k x 11k). Bigger files are refused
#: as possible decompression bombs instead of being decoded.
MAX_PIXELS = 180_000_000

# PIL warns above its own limit (89 Mpx) and refuses at twice that; make its limit ours
# so images up to MAX_PIXELS decode and bigger ones are refused before decoding.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def is_image_name(path: Path | str) -> bool:
    """True when the file name has an image extension (the content is checked on open)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on black.

    16-bit grayscale (``I;16``/``I``) is rescaled to its own min..max range so a
    dark 16-bit frame does not turn white when clipped to 8 bits.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(opener, name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with opener() as fh:
                image = Image.open(fh)
                width, height = image.size
                if width * height > max_pixels:
                    raise BadImage(f"{name}: {width}x{height} is over the {max_pixels:,}-pixel limit")
                if width < 1 or height < 1:
                    raise BadImage(f"{name}: image has no pixels")
                image.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"{name}: refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise BadImage(f"{name}: not an image file (unrecognised format)") from None
    except FileNotFoundError:
        raise BadImage(f"{name}: file not found") from None
    except PermissionError:
        raise BadImage(f"{name}: cannot be read (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadImage(f"{name}: corrupt or truncated image ({reason})") from None
    image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def open_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file fully into an upright RGB PIL image.

    Raises BadImage (one line) for missing, unreadable, empty, corrupt, truncated, non-image
    or over-limit files, and for a path that is not a regular file (a folder; a FIFO or a
    device node is never opened: reading one could wait forever).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadImage(f"{path.name}: file not found") from None
    except OSError as exc:
        raise BadImage(f"{path.name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadImage(f"{path.name}: a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise BadImage(f"{path.name}: not a regular file (a FIFO, device node or socket)")
    if st.st_size == 0:
        raise BadImage(f"{path.name}: empty file (0 bytes)")
    return _decode(lambda: open(path, "rb"), path.name, max_pixels)


def decode_bytes(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Like :func:`open_image` for bytes in memory (uploads)."""
    if not data:
        raise BadImage(f"{name}: empty file (0 bytes)")
    return _decode(lambda: io.BytesIO(data), name, max_pixels)
