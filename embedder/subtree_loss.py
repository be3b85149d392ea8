"""Softmax loss for labels at mixed ranks: a crop is credited for the probability of its label's subtree.

When one class is an ancestor of others ("Copepod" above Calanus, Oithona, ...), a crop labelled with
the ancestor is right whatever member of its subtree the classifier names. The flat softmax trains it
as wrong, teaching the model to separate a class from its own members. Here the label's term is the
marginal over the subtree (a "label at rank" / hierarchical-softmax marginal):

    nll_i = -log sum_{c in subtree(y_i)} softmax(W e_i + b)_c

with the label smoothing of :class:`embedder.losses.SoftmaxLoss` kept as is:
``loss = mean_i[(1 - eps) * nll_i + eps * mean_c(-log softmax_c)]``. When no class has members below
it, ``subtree(y) = {y}`` and this is exactly ``nn.CrossEntropyLoss(label_smoothing=eps)``.

The membership matrix comes from the caller (the app layer reads the catalog's lineages); the
embedder never reads the catalog.
"""

from __future__ import annotations

import torch

from embedder.losses import SoftmaxLoss
from index.errors import InvalidInput


def membership(classes: list[str], subtrees: dict[str, list[str]] | None) -> torch.Tensor:
    """``(C, C)`` bool, row ``i`` the classes inside class ``i``'s subtree (itself included).

    ``subtrees``: class -> the classes strictly below it (names outside ``classes`` are ignored:
    a member with no training crops has no logit). Raises InvalidInput on a class named below itself.
    """
    index = {name: i for i, name in enumerate(classes)}
    members = torch.eye(len(classes), dtype=torch.bool)
    for parent, below in (subtrees or {}).items():
        if parent not in index:
            continue
        for child in below:
            if child == parent:
                raise InvalidInput(f"class {parent!r} is listed inside its own subtree")
            if child in index:
                members[index[parent], index[child]] = True
    return members


class SubtreeSoftmaxLoss(SoftmaxLoss):
    """Linear classifier + the subtree-marginal cross-entropy (label smoothing as SoftmaxLoss).

    ``members``: ``(C, C)`` bool from :func:`membership`; a buffer that is not saved in checkpoints
    (it is the catalog's, passed in again on resume).
    """

    def __init__(
        self, num_classes: int, embedding_size: int, members: torch.Tensor, label_smoothing: float = 0.1
    ) -> None:
        super().__init__(num_classes, embedding_size, label_smoothing)
        if tuple(members.shape) != (num_classes, num_classes):
            raise InvalidInput(f"membership matrix must be ({num_classes}, {num_classes}), got {tuple(members.shape)}")
        self.register_buffer("members", members.bool() | torch.eye(num_classes, dtype=torch.bool), persistent=False)
        self.eps = label_smoothing

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return subtree_nll(self.classifier(embeddings), labels, self.members, self.eps)


def subtree_nll(logits: torch.Tensor, labels: torch.Tensor, members: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Mean subtree-marginal NLL of ``logits: (n, C)`` for ``labels: (n,) int64``, smoothed by ``eps``."""
    logp = torch.log_softmax(logits.float(), dim=1)
    inside = members[labels]  # (n, C)
    marginal = torch.logsumexp(logp.masked_fill(~inside, float("-inf")), dim=1)
    return -((1.0 - eps) * marginal + eps * logp.mean(dim=1)).mean()
