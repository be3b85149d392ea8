"""Decoding crop files into upright RGB PIL images for the encoder.

The encoder follows exactly the catalog's decoding rules (pixel limit, full
decode, EXIF orientation, every mode to RGB), so it uses the same small module;
``index.imaging`` needs only PIL and numpy, none of index's heavy dependencies.
"""

from __future__ import annotations

from index.imaging import MAX_PIXELS, open_image, to_rgb

__all__ = ["MAX_PIXELS", "open_rgb", "to_rgb"]


def open_rgb(path, max_pixels: int = MAX_PIXELS):
    """Decode ``path`` fully into an upright RGB image. Raises BadImage (one line)."""
    return open_image(path, max_pixels)
