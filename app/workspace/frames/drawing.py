"""Drawing a frame's identified organisms on it (PIL ImageDraw): a box and "species 0.93" each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from index.files import output_target, output_writer
from index.imaging import open_image

if TYPE_CHECKING:
    from app.workspace.frames.cascade import FrameIdentification
    from app.workspace.identify import Identification

KNOWN, UNKNOWN = (60, 220, 90), (255, 170, 0)  # box colours: a named species, unknown


def label(organism: Identification) -> str:
    """``"Chromis viridis 0.93"``, or ``"unknown (score 0.41 < 0.62)"``: what the box is called. An
    unknown's label shows its unknown score against the threshold, never the probability of the
    closest known species (which reads as certainty about a species it is not)."""
    if organism.unknown:
        score, threshold = organism.unknown_score, organism.unknown_threshold
        return "unknown" + (
            f" (score {score:.2f} < {threshold:.2f})" if score is not None and threshold is not None else ""
        )
    return f"{organism.species} {organism.probability:.2f}"


def annotate(image: Image.Image, frame: FrameIdentification, numbers: bool = True) -> Image.Image:
    """A copy of ``image`` (the frame) with every organism's box and label drawn on it."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    size = max(11, round(min(out.size) / 40))
    font = ImageFont.load_default(size=size)
    width = max(2, round(min(out.size) / 250))
    for n, organism in enumerate(frame.organisms, start=1):
        x, y, w, h = organism.box
        colour = UNKNOWN if organism.unknown else KNOWN
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=width)
        text = f"{n}: {label(organism)}" if numbers else label(organism)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        ty = y - (bottom - top) - 4 if y - (bottom - top) - 4 >= 0 else y + h + 2
        ty = min(ty, out.height - (bottom - top) - 4)
        tx = min(max(0, x), max(0, out.width - (right - left) - 4))
        draw.rectangle((tx, ty, tx + right - left + 4, ty + bottom - top + 4), fill=colour)
        draw.text((tx + 2, ty + 2 - top), text, fill=(0, 0, 0), font=font)
    return out


def drawing_name(frame: FrameIdentification) -> str:
    """The file an annotated frame is written to: its name with folders joined by ``__``, as PNG."""
    stem = str(Path(frame.name).with_suffix("")).replace("/", "__").replace("\\", "__").replace(" ", "_")
    return f"{stem}.png"


def draw_frames(frames: Sequence[FrameIdentification], folder: Path) -> list[Path]:
    """Write one annotated PNG per frame that was read (from its source file) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [frame for frame in frames if not frame.error and frame.source]
    for frame in drawn:  # every file checked before the first is drawn (a FIFO or folder there: one line)
        output_target(folder / drawing_name(frame), "--draw")
    written = []
    for frame in drawn:
        path = folder / drawing_name(frame)
        with output_writer(path, "--draw") as fh:
            annotate(open_image(frame.source), frame).save(fh, format="PNG")
        written.append(path)
    return written
