"""``oceanid detect train``'s defaults: the architecture, and per architecture its input size, epochs, batch
and learning rate (torch-free, so the CLI and the workspace read them without loading a model).

Chosen on the aquarium frames under the 30-minute CPU training budget (bench/RESULTS.md, "YOLOX-Nano
fine-tuned: the candidates", issue 27): YOLOX-Nano from COCO, fine-tuned at 416 px for 25 epochs (about 25
minutes on one core), beat FCOS on the ImageNet EfficientNet-Lite0 body at 384 px for 10 epochs. FCOS keeps
its own measured setting for users who pick it (no detector weights to fetch).
"""

from __future__ import annotations

from dataclasses import dataclass

ARCHITECTURES = ("fcos", "retinanet", "yolox-nano")
DEFAULT_ARCH = "yolox-nano"


@dataclass(frozen=True)
class ArchDefaults:
    """What ``detect train --arch A`` uses for each setting left out."""

    image_size: int  # the frame's longer side, px (a multiple of 32)
    epochs: int
    batch_size: int
    lr: float  # AdamW peak
    min_score: float  # boxes below this are dropped when no --min-score is given (detect, identify --frames)


_DEFAULTS = {
    "fcos": ArchDefaults(image_size=384, epochs=8, batch_size=4, lr=1e-3, min_score=0.3),
    "retinanet": ArchDefaults(image_size=384, epochs=8, batch_size=4, lr=1e-3, min_score=0.3),
    # batch norm is folded into YOLOX's convolutions: 1e-3 wrecked the COCO start within 19 steps (val
    # mAP@0.5 0.025; 1e-4: 0.196; 3e-4: 0.208, bench/RESULTS.md "YOLOX-Nano from COCO")
    # YOLOX's scores (objectness x class) run lower than FCOS's: at 0.3 it kept 5.3 boxes per aquarium val
    # frame for 7.2 organisms (the cascade found and named 0.43 of them), at 0.1 10.0 boxes (1.4 per organism)
    # and 0.54 (bench/RESULTS.md "YOLOX-Nano fine-tuned: the candidates"; chosen and reported on those frames)
    "yolox-nano": ArchDefaults(image_size=416, epochs=25, batch_size=8, lr=3e-4, min_score=0.1),
}


def arch_defaults(arch: str) -> ArchDefaults:
    """The defaults of ``arch`` (one of :data:`ARCHITECTURES`)."""
    return _DEFAULTS[arch]


def box_score(arch: str | None) -> float:
    """The box score below which ``arch``'s boxes are dropped when none is asked for; FCOS's for a detector
    of no known architecture (or none)."""
    return _DEFAULTS.get(arch or "", _DEFAULTS["fcos"]).min_score
