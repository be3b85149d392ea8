"""Device choice: the only module that asks torch about CUDA.

Everything else takes the ``torch.device`` returned here, so a GPU is never
guessed and a missing GPU is never replaced by the CPU silently.
"""

from __future__ import annotations

import logging

import torch

from index.errors import ModelError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when torch sees at least one usable CUDA device."""
    return torch.cuda.is_available()


def resolve_device(choice: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda"`` (or ``"cuda:N"``) into a ``torch.device``.

    ``auto`` picks CUDA when present, else the CPU. An explicit ``cuda`` without
    CUDA raises :class:`ModelError` instead of falling back. The choice is logged.

    Raises:
        ModelError: unknown choice, or ``cuda`` requested where CUDA is missing.
    """
    if isinstance(choice, torch.device):  # already resolved upstream: check, don't re-log
        if choice.type == "cuda" and not cuda_available():
            raise ModelError(f"device {choice} was requested but torch sees no CUDA GPU")
        return choice
    name = str(choice).strip().lower()
    if name == "auto":
        device = torch.device("cuda" if cuda_available() else "cpu")
        log.info("device auto -> %s", device)
        return device
    if name == "cpu":
        log.info("device cpu")
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not cuda_available():
            raise ModelError(
                f"device {name!r} was requested but torch sees no CUDA GPU",
                hint="use --device cpu (or auto), or install a CUDA build of torch and a driver",
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device {name!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)")
        log.info("device %s (%s)", device, torch.cuda.get_device_name(device))
        return device
    raise ModelError(f"unknown device {choice!r}; valid: {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype for mixed precision on ``device``: bf16 where the GPU
    supports it, else fp16; ``None`` on the CPU (training stays fp32 there)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def set_threads(threads: int) -> None:
    """torch's intra-op threads for this process (``app.workspace.threads`` chooses how many)."""
    torch.set_num_threads(int(threads))
