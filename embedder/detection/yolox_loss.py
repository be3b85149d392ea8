"""YOLOX's training loss: SimOTA assignment, IoU loss on boxes, BCE on objectness and classes.

After YOLOX (Ge et al. 2021, ``yolox/models/yolo_head.py``): for each true box the candidate
cells are those whose centre lies inside the box or within 2.5 strides of its centre; each pair
costs ``class BCE + 3 x (-log IoU)`` (+ a large penalty outside "box and centre"), and each true
box takes its ``dynamic k`` cheapest cells (k = the sum of its 10 best IoUs, at least 1); a cell
claimed twice goes to the cheaper box. Losses, summed and divided by the number of matched cells:
``5 x (1 - IoU^2)`` on the matched boxes, BCE of objectness against "matched" on every cell, BCE
of the class scores against one-hot x IoU on the matched cells.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.ops import box_iou

from embedder.detection.yolox_boxes import decode_boxes

CENTRE_RADIUS = 2.5
IOU_WEIGHT = 5.0


@torch.no_grad()
def simota(
    pred_boxes: torch.Tensor,
    obj_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    cells: torch.Tensor,
    steps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's assignment: (fg (n,) bool, matched true-box index (n,) int64; -1 where not fg).

    ``pred_boxes`` (n, 4) x1, y1, x2, y2; ``obj_logits`` (n,); ``cls_logits`` (n, k);
    ``gt_boxes`` (g, 4) x1, y1, x2, y2; ``gt_labels`` (g,) in 0..k-1."""
    n = pred_boxes.shape[0]
    centres = (cells + 0.5) * steps[:, None]  # (n, 2)
    cx, cy = centres[:, 0][None], centres[:, 1][None]
    in_box = (cx > gt_boxes[:, 0:1]) & (cx < gt_boxes[:, 2:3]) & (cy > gt_boxes[:, 1:2]) & (cy < gt_boxes[:, 3:4])
    gt_centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    radius = CENTRE_RADIUS * steps[None]
    in_centre = ((cx - gt_centre[:, 0:1]).abs() < radius) & ((cy - gt_centre[:, 1:2]).abs() < radius)
    candidate = (in_box | in_centre).any(0)
    matched = torch.full((n,), -1, dtype=torch.int64, device=pred_boxes.device)
    if not candidate.any():
        return matched >= 0, matched
    index = torch.nonzero(candidate).squeeze(1)
    ious = box_iou(gt_boxes, pred_boxes[index])  # (g, c)
    probs = (torch.sigmoid(cls_logits[index]) * torch.sigmoid(obj_logits[index])[:, None]).sqrt()  # (c, k)
    onehot = F.one_hot(gt_labels, cls_logits.shape[1]).float()  # (g, k)
    g, c, k = len(gt_boxes), len(index), cls_logits.shape[1]
    cls_cost = F.binary_cross_entropy(
        probs[None].expand(g, c, k).clamp(1e-6, 1 - 1e-6), onehot[:, None].expand(g, c, k), reduction="none"
    ).sum(-1)
    both = (in_box & in_centre)[:, index]
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~both)
    dynamic_k = torch.topk(ious, min(10, c), dim=1).values.sum(1).int().clamp(min=1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for gi in range(g):
        matching[gi, torch.topk(cost[gi], int(min(dynamic_k[gi], c)), largest=False).indices] = True
    claimed = matching.sum(0)
    twice = claimed > 1
    if twice.any():
        best = cost[:, twice].argmin(0)
        matching[:, twice] = False
        matching[best, torch.nonzero(twice).squeeze(1)] = True
    fg = matching.any(0)
    matched[index[fg]] = matching[:, fg].float().argmax(0)
    return matched >= 0, matched


def yolox_loss(
    raw: torch.Tensor,
    cells: torch.Tensor,
    steps: torch.Tensor,
    gt_boxes: list[torch.Tensor],
    gt_labels: list[torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The losses of a batch: ``raw`` (B, n, 5 + k) rows; per image true boxes (g, 4) x1, y1, x2, y2
    input pixels and labels (g,) in 0..k-1. Returns ``{"loss_iou", "loss_obj", "loss_cls"}``
    (weighted; their sum is what is minimised)."""
    pred_boxes = decode_boxes(raw, cells, steps)
    obj_target = torch.zeros(raw.shape[:2], device=raw.device)
    fg_pred, fg_boxes, fg_cls, fg_cls_target = [], [], [], []
    for b in range(raw.shape[0]):
        boxes = gt_boxes[b].reshape(-1, 4).float()
        if not len(boxes):
            continue
        fg, matched = simota(
            pred_boxes[b].detach(), raw[b, :, 4].detach(), raw[b, :, 5:].detach(), boxes, gt_labels[b], cells, steps
        )
        if not fg.any():
            continue
        obj_target[b, fg] = 1.0
        target_boxes = boxes[matched[fg]]
        fg_pred.append(pred_boxes[b, fg])
        fg_boxes.append(target_boxes)
        iou = box_iou(pred_boxes[b, fg].detach(), target_boxes).diagonal()
        fg_cls.append(raw[b, fg, 5:])
        fg_cls_target.append(F.one_hot(gt_labels[b][matched[fg]], raw.shape[2] - 5).float() * iou[:, None])
    num_fg = max(1.0, float(sum(len(p) for p in fg_pred)))
    loss_obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_target, reduction="sum") / num_fg
    if fg_pred:
        pred, target = torch.cat(fg_pred), torch.cat(fg_boxes)
        loss_iou = (1 - _paired_iou(pred, target) ** 2).sum() / num_fg
        loss_cls = (
            F.binary_cross_entropy_with_logits(torch.cat(fg_cls), torch.cat(fg_cls_target), reduction="sum") / num_fg
        )
    else:
        loss_iou = loss_cls = raw.sum() * 0.0
    return {"loss_iou": IOU_WEIGHT * loss_iou, "loss_obj": loss_obj, "loss_cls": loss_cls}


def _paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of row i of ``a`` with row i of ``b`` (both (m, 4) x1, y1, x2, y2), differentiable."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1) + (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1) - inter
    return inter / union.clamp(min=1e-9)
