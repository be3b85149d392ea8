"""YOLOX-Nano in PyTorch: the COCO ONNX graph converted by onnx2torch, cut before its sigmoids.

:func:`convert_yolox` turns the ONNX file (:mod:`embedder.detection.yolox_weights`) into a
``torch.fx.GraphModule`` whose output is the three raw head maps (strides 8, 16, 32), each
``(B, 5 + k, H/s, W/s)`` = box terms, objectness logit, class logits: the graph's own
sigmoids, reshapes (fixed to 416 px and batch 1) and transpose are cut off, so any batch and any
input size that is a multiple of 32 runs. With ``num_classes`` != 80 the class convolutions are
replaced by new ones (see :func:`convert_yolox`); the COCO objectness and every other weight are kept.

:class:`YoloxDetector` wraps it with torchvision's detector interface, so
:mod:`embedder.detection.training` and :mod:`embedder.detection.predict` drive it like FCOS:
a list of (3, H, W) RGB tensors in [0, 1] in; in training mode a dict of losses
(:mod:`embedder.detection.yolox_loss`), in eval mode one ``{"boxes" (x1, y1, x2, y2 input px),
"scores", "labels"}`` dict per image (score = objectness x max class probability, one NMS
over all classes). Inside, frames are letterboxed exactly as YOLOX expects
(:mod:`embedder.detection.yolox_decode`: top left on grey 114, BGR, 0-255).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from embedder.detection.yolox_boxes import decode_boxes, torch_grids
from embedder.detection.yolox_decode import PAD_VALUE, STRIDES
from embedder.detection.yolox_loss import yolox_loss
from index.errors import ModelError

COCO_CLASSES = 80


def convert_yolox(onnx_file: Path | str, num_classes: int = COCO_CLASSES) -> torch.fx.GraphModule:
    """The ONNX YOLOX file as a GraphModule answering the raw head maps (see the module).

    Raises ModelError when onnx/onnx2torch are missing or the graph is not a YOLOX head."""
    try:
        import onnx
        from onnx2torch import convert
    except ImportError:
        raise ModelError("YOLOX in PyTorch needs onnx and onnx2torch: pip install onnx onnx2torch") from None
    try:
        graph_module = convert(onnx.load(str(onnx_file)))
    except Exception as exc:  # noqa: BLE001 - unreadable or unsupported graph: one line
        raise ModelError(f"{onnx_file}: cannot convert to PyTorch ({str(exc).splitlines()[0][:120]})") from None
    graph = graph_module.graph
    heads = [
        n
        for n in graph.nodes
        if n.op == "call_module"
        and len(n.args) == 3
        and all(getattr(a, "op", None) == "call_module" for a in n.args)
        and [type(graph_module.get_submodule(a.target)).__name__ for a in n.args] == ["Conv2d", "Sigmoid", "Sigmoid"]
    ]
    if len(heads) != len(STRIDES):
        raise ModelError(f"{onnx_file}: not a YOLOX graph ({len(heads)} head outputs, expected {len(STRIDES)})")
    for head in heads:
        reg, obj, cls = head.args
        obj_conv, cls_conv = obj.args[0], cls.args[0]
        head.args = (reg, obj_conv, cls_conv)
        if num_classes != COCO_CLASSES:
            old = graph_module.get_submodule(cls_conv.target)
            new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding)
            nn.init.normal_(new.weight, std=0.01)
            # one class ("organism"): start at probability 0.5, so the first ranking is the COCO objectness;
            # several: YOLOX's prior 0.01
            nn.init.constant_(new.bias, 0.0 if num_classes == 1 else -math.log((1 - 0.01) / 0.01))
            setattr(graph_module, cls_conv.target, new)
    output = next(n for n in graph.nodes if n.op == "output")
    output.args = (tuple(heads),)
    graph.eliminate_dead_code()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


def flatten_levels(levels: list[torch.Tensor]) -> torch.Tensor:
    """Head maps ``(B, c, h, w)`` per stride -> ``(B, n, c)`` rows in the order of the ONNX output."""
    return torch.cat([level.flatten(2) for level in levels], dim=2).permute(0, 2, 1)


class YoloxDetector(nn.Module):
    """YOLOX-Nano behind torchvision's detector interface (see the module docstring)."""

    def __init__(
        self,
        graph: nn.Module,
        num_classes: int,
        image_size: int,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        max_detections: int = 100,
    ) -> None:
        super().__init__()
        if image_size % 32:
            raise ModelError(f"YOLOX input size must be a multiple of 32, got {image_size}")
        self.graph = graph
        self.num_classes = num_classes
        self.image_size = image_size
        self.score_thresh, self.nms_thresh, self.max_detections = score_thresh, nms_thresh, max_detections

    def raw(self, batch: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` BGR 0-255 -> ``(B, n, 5 + k)`` raw rows (logits for objectness and classes)."""
        with warnings.catch_warnings():  # onnx2torch's Slice indexes with a list (a torch deprecation notice)
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)
            return flatten_levels(list(self.graph(batch)))

    def letterboxed(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        """RGB [0, 1] images -> ((B, 3, S, S) BGR 0-255 batch, per-image scale input px / image px)."""
        size = self.image_size
        batch = torch.full((len(images), 3, size, size), float(PAD_VALUE), device=images[0].device)
        scales = []
        for i, image in enumerate(images):
            scale = min(size / image.shape[-1], size / image.shape[-2])
            if abs(scale - 1.0) > 1e-6:
                h, w = max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale))
                image = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            batch[i, :, : image.shape[-2], : image.shape[-1]] = image.flip(0) * 255.0
            scales.append(scale)
        return batch, scales

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        batch, scales = self.letterboxed(images)
        raw = self.raw(batch)
        cells, steps = torch_grids(batch.shape[-2], batch.shape[-1], batch.device)
        if self.training:
            if targets is None:
                raise ModelError("YOLOX training needs targets")
            boxes = [t["boxes"] * s for t, s in zip(targets, scales, strict=True)]
            labels = [(t["labels"] - 1).clamp(0, self.num_classes - 1) for t in targets]  # torchvision: 1 = first
            return yolox_loss(raw, cells, steps, boxes, labels)
        return self.postprocess(raw, cells, steps, scales)

    def postprocess(
        self, raw: torch.Tensor, cells: torch.Tensor, steps: torch.Tensor, scales: list[float]
    ) -> list[dict[str, torch.Tensor]]:
        from torchvision.ops import nms

        boxes = decode_boxes(raw, cells, steps)
        probs = torch.sigmoid(raw[..., 4:])
        best, labels = probs[..., 1:].max(dim=-1)
        scores = probs[..., 0] * best
        out = []
        for b, scale in enumerate(scales):
            keep = torch.nonzero(scores[b] >= self.score_thresh).squeeze(1)
            kept = nms(boxes[b, keep], scores[b, keep], self.nms_thresh)[: self.max_detections]
            keep = keep[kept]
            out.append({"boxes": boxes[b, keep] / scale, "scores": scores[b, keep], "labels": labels[b, keep] + 1})
        return out


class _Rows(nn.Module):
    """The graph as the shipped ONNX file answers: ``(1, n, 5 + k)`` rows, objectness and classes as probabilities."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        rows = flatten_levels(list(self.graph(batch)))
        return torch.cat([rows[..., :4], torch.sigmoid(rows[..., 4:])], dim=-1)


def export_onnx(model: YoloxDetector, path: Path | str) -> Path:
    """Write ``model`` (fine-tuned or not) as an ONNX file shaped like the shipped one: input ``images``
    (1, 3, S, S) BGR 0-255, output (1, n, 5 + k), so :class:`embedder.detection.yolox_onnx.YoloxOnnx`
    runs it on onnxruntime. Raises ModelError when the export fails."""
    path = Path(path)
    rows = _Rows(model.graph).eval()
    example = torch.full((1, 3, model.image_size, model.image_size), float(PAD_VALUE))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                rows,
                (example,),
                str(tmp),
                input_names=["images"],
                output_names=["output"],
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # noqa: BLE001 - any exporter failure: one line
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot export the YOLOX detector to ONNX ({str(exc).splitlines()[0][:120]})") from None
    tmp.replace(path)
    return path
