"""Quadruplet loss (Chen et al. 2017, "Beyond triplet loss"), which
pytorch-metric-learning does not ship; written as a pml loss so it takes a
distance and a reducer like the others.

For every ordered positive pair (a, p) (same class, p != a) and negative n::

    triplet term    [d(a,p) - d(a,n) + margin]_+
    quadruplet term [d(a,p) - d(l,k) + margin2]_+   for every pair l<k with
                    label(l) != label(k) and neither of a's class

``d`` defaults to the squared Euclidean distance of L2-normalised embeddings
(the paper's g^2). Each term is reduced on its own (default: mean of the
non-zero terms, pml's AvgNonZeroReducer) and the two are summed.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.reducers import AvgNonZeroReducer, MultipleReducers
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu


class QuadrupletLoss(BaseMetricLossFunction):
    """``forward(embeddings (n, d), labels (n,)) -> scalar``.

    Args:
        margin: alpha1, the anchor-relative margin (triplet term).
        margin2: alpha2, the margin against negative pairs of other anchors
            (the paper's weaker push; smaller than ``margin``).
    """

    def __init__(self, margin: float = 0.4, margin2: float = 0.2, **kwargs) -> None:
        kwargs.setdefault("distance", LpDistance(normalize_embeddings=True, p=2, power=2))
        super().__init__(**kwargs)
        self.margin = margin
        self.margin2 = margin2
        self.add_to_recordable_attributes(list_of_names=["margin", "margin2"], is_stat=False)

    def _sub_loss_names(self) -> list[str]:
        return ["triplet_loss", "quadruplet_loss"]

    def get_default_reducer(self) -> MultipleReducers:
        return MultipleReducers({}, default_reducer=AvgNonZeroReducer())

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        mat = self.distance(embeddings, embeddings)
        a_idx, p_idx, n_idx = lmu.get_all_triplets_indices(labels)
        if len(a_idx) == 0:
            return self.zero_losses()
        ap = mat[a_idx, p_idx]
        triplet = torch.relu(self.distance.margin(ap, mat[a_idx, n_idx]) + self.margin)

        # positive pairs x negative pairs (l<k, different labels, both not the anchor's)
        same = labels[:, None] == labels[None, :]
        pa, pp = torch.where(same.logical_and(~torch.eye(len(labels), dtype=torch.bool, device=labels.device)))
        l_idx, k_idx = torch.where((~same).triu(1))
        anchor_lab = labels[pa][:, None]
        valid = (labels[l_idx][None, :] != anchor_lab) & (labels[k_idx][None, :] != anchor_lab)
        q_pos, q_neg = torch.where(valid)
        quad = torch.relu(
            self.distance.margin(mat[pa[q_pos], pp[q_pos]], mat[l_idx[q_neg], k_idx[q_neg]]) + self.margin2
        )
        losses = {
            "triplet_loss": {"losses": triplet, "indices": (a_idx, p_idx, n_idx), "reduction_type": "triplet"},
            "quadruplet_loss": {"losses": quad, "indices": pa[q_pos], "reduction_type": "element"},
        }
        if len(quad) == 0:
            losses["quadruplet_loss"] = self.zero_loss()
        return losses
