"""Bottom-up losses (HigherHRNet): masked heatmap MSE per resolution and the associative-embedding loss."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


def masked_heatmap_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean((pred - target)² · mask)`` over batch, joints and pixels; ``mask`` (B, h, w) is 1 where trained.

    HigherHRNet's ``HeatmapLoss`` (per-image mean over K·h·w, then the batch mean; no 0.5 factor).
    """
    if pred.shape != target.shape or mask.shape != (pred.shape[0], *pred.shape[2:]):
        raise ValueError(
            f"heatmaps {tuple(pred.shape)}, targets {tuple(target.shape)}, masks {tuple(mask.shape)}"
        )
    return (((pred.float() - target.float()) ** 2) * mask[:, None].float()).mean()


PUSH_KINDS = ("exp", "max")


def check_push_kind(push_kind: str, option: str = "push_kind") -> None:
    """A clear error naming ``option`` when ``push_kind`` is not one of :data:`PUSH_KINDS`."""
    if push_kind not in PUSH_KINDS:
        raise ValueError(f"{option}: unknown {push_kind!r}; choose one of {list(PUSH_KINDS)}")


def associative_embedding_loss(
    tags: torch.Tensor, keypoint_indices: torch.Tensor, push_kind: str = "exp"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Push and pull terms (each averaged over the batch) of HigherHRNet's ``AELoss``.

    ``tags`` (B, K, h, w) are per-joint tag maps; ``keypoint_indices`` (B, P, K, 2) hold for every person
    and joint ``(k·h·w + y·w + x, valid)`` (``encode_keypoint_indices``). Per image, with ``t_p`` the mean
    tag of person ``p``'s valid joints and ``n`` the people with at least one valid joint:

    * pull = ``(1/n) Σ_p mean_k (tag_pk - t_p)²``  (0 when n = 0);
    * push = ``1/(2 n (n-1)) Σ_{p≠q} f(t_p - t_q)``  (0 when n < 2), with ``f(d) = exp(-d²)`` for
      ``push_kind="exp"`` (HigherHRNet's COCO setting) or ``f(d) = max(0, 1 - |d|)`` for ``"max"``: the exp push
      has no gradient when all tags are equal (as at initialisation), the max push a constant one.
    """
    check_push_kind(push_kind)
    b = tags.shape[0]
    flat = tags.reshape(b, -1).float()
    index, valid = keypoint_indices[..., 0].long(), keypoint_indices[..., 1].float()  # (B, P, K)
    picked = flat.gather(1, index.reshape(b, -1)).reshape(index.shape)  # (B, P, K)
    count = valid.sum(-1)  # (B, P)
    person = count > 0
    mean = (picked * valid).sum(-1) / count.clamp(min=1)
    pull_person = (((picked - mean[..., None]) ** 2) * valid).sum(-1) / count.clamp(min=1)
    n = person.sum(-1).float()  # (B,)
    pull = (pull_person * person).sum(-1) / n.clamp(min=1)
    pair = person[:, :, None] & person[:, None, :]
    pair &= ~torch.eye(person.shape[1], dtype=torch.bool, device=tags.device)
    diff = mean[:, :, None] - mean[:, None, :]
    closeness = torch.exp(-(diff**2)) if push_kind == "exp" else (1 - diff.abs()).clamp(min=0)
    push = (closeness * pair).sum((-2, -1)) / (n * (n - 1)).clamp(min=1) * 0.5
    return push.mean(), pull.mean()


class BottomUpLoss(nn.Module):
    """Masked heatmap MSE at every resolution + associative-embedding push/pull on the tag output.

    Args:
        heatmap_weight: factor of each resolution's heatmap loss (HigherHRNet: 1.0).
        push_weight, pull_weight: factors of the AE terms (HigherHRNet: 0.001 each).
        push_kind: "exp" (HigherHRNet's COCO setting) or "max" (see :func:`associative_embedding_loss`).
        num_keypoints: K (the first K channels of an output with heatmaps are heatmaps).
        with_heatmaps, with_tags: per output, as ``AssociativeEmbeddingCodec`` (tags: the first output
            with tags carries the AE loss).
    """

    def __init__(
        self,
        num_keypoints: int,
        with_heatmaps: Sequence[bool],
        with_tags: Sequence[bool],
        heatmap_weight: float = 1.0,
        push_weight: float = 0.001,
        pull_weight: float = 0.001,
        push_kind: str = "exp",
    ) -> None:
        super().__init__()
        if len(with_heatmaps) != len(with_tags) or True not in list(with_tags):
            raise ValueError(
                f"with_heatmaps {with_heatmaps} / with_tags {with_tags}: one flag per output, one tag output"
            )
        self.num_keypoints = num_keypoints
        self.with_heatmaps = list(with_heatmaps)
        self.tag_output = list(with_tags).index(True)
        self.heatmap_weight = heatmap_weight
        self.push_weight = push_weight
        self.pull_weight = pull_weight
        check_push_kind(push_kind, "paradigm.loss.push_kind")
        self.push_kind = push_kind

    def forward(self, outputs: Sequence[torch.Tensor], targets: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Loss terms (already weighted) and their sum under ``loss``; heatmap terms ``heatmap_i``.

        Reads the targets ``heatmaps`` and ``masks`` (one per output resolution) and ``keypoint_indices``
        (``AssociativeEmbeddingCodec.encode``, ``BottomUpDataset``'s masks).
        """
        k = self.num_keypoints
        heatmaps, masks = targets["heatmaps"], targets["masks"]
        terms: dict[str, torch.Tensor] = {}
        for i, (output, has_heatmaps) in enumerate(zip(outputs, self.with_heatmaps, strict=True)):
            if has_heatmaps:
                terms[f"heatmap_{i}"] = self.heatmap_weight * masked_heatmap_mse(
                    output[:, :k], heatmaps[i], masks[i]
                )
        tag_output = outputs[self.tag_output]
        offset = k if self.with_heatmaps[self.tag_output] else 0
        push, pull = associative_embedding_loss(
            tag_output[:, offset : offset + k], targets["keypoint_indices"], self.push_kind
        )
        terms["push"] = self.push_weight * push
        terms["pull"] = self.pull_weight * pull
        terms["loss"] = torch.stack(list(terms.values())).sum()
        return terms
