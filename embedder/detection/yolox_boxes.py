"""YOLOX's grid decoding in torch (what training and the PyTorch model need; numpy twin:
:func:`embedder.detection.yolox_decode.decode`)."""

from __future__ import annotations

import torch

from embedder.detection.yolox_decode import STRIDES


def torch_grids(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2) x, y cell indices and (n,) strides of a ``height`` x ``width`` input (as ``yolox_decode.grids``)."""
    cells, steps = [], []
    for stride in STRIDES:
        ys, xs = torch.meshgrid(
            torch.arange(height // stride, device=device), torch.arange(width // stride, device=device), indexing="ij"
        )
        cells.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1))
        steps.append(torch.full((xs.numel(),), stride, device=device))
    return torch.cat(cells).float(), torch.cat(steps).float()


def decode_boxes(raw: torch.Tensor, cells: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Rows ``(..., n, 5 + k)`` -> boxes ``(..., n, 4)`` x1, y1, x2, y2 input pixels."""
    centre = (raw[..., :2] + cells) * steps[:, None]
    half = torch.exp(raw[..., 2:4].clamp(-20.0, 20.0)) * steps[:, None] / 2
    return torch.cat([centre - half, centre + half], dim=-1)
