"""Bottom-up losses (hand-computed values) and heads (output shapes on the tiny HRNet)."""

from __future__ import annotations

import math

import pytest
import torch

from aidpose.models.backbones import TimmBackbone
from aidpose.models.bottomup_losses import BottomUpLoss, associative_embedding_loss, masked_heatmap_mse
from aidpose.models.heads import HigherHRNetHead, SimpleBottomUpHead
from aidpose.models.pose_net import PoseNet


def tag_batch(values: list[float]) -> torch.Tensor:
    """Tags (1, K=2, h=1, w=len/2) holding ``values`` in flattened order."""
    return torch.tensor(values).reshape(1, 2, 1, -1)


def test_ae_loss_two_people_hand_computed() -> None:
    # flattened tags: [1.0, 2.0, 3.0, 9.0]; person A: joints at indices 0 and 1 (tags 1, 2),
    # person B: index 2 (tag 3); index 3 belongs to an invalid joint.
    tags = tag_batch([1.0, 2.0, 3.0, 9.0])
    indices = torch.tensor([[[[0, 1], [1, 1]], [[2, 1], [3, 0]], [[0, 0], [0, 0]]]])
    push, pull = associative_embedding_loss(tags, indices)
    # pull: A mean 1.5 → ((0.5)² + (0.5)²)/2 = 0.25; B → 0; averaged over 2 people
    assert pull.item() == pytest.approx(0.125)
    # push: 1/(2·2·1) · 2·exp(-(1.5 - 3)²)
    assert push.item() == pytest.approx(0.5 * math.exp(-2.25), rel=1e-6)


def test_ae_loss_three_people_and_batch_mean() -> None:
    tags = tag_batch([0.0, 1.0, 2.0, 4.0])
    indices = torch.tensor([[[[0, 1], [0, 0]], [[1, 1], [0, 0]], [[2, 1], [3, 1]]]])
    push, pull = associative_embedding_loss(tags, indices)
    # means 0, 1, 3 → pull: (0 + 0 + 1)/3; push: Σ_{p≠q} exp(-Δ²) / (3·2) · 0.5
    expected_push = 2 * (math.exp(-1) + math.exp(-9) + math.exp(-4)) / 6 * 0.5
    assert pull.item() == pytest.approx(1 / 3)
    assert push.item() == pytest.approx(expected_push, rel=1e-6)
    # a second image with one person (push 0, pull 0) halves both batch means
    batch_tags = torch.cat([tags, tag_batch([5.0, 5.0, 0.0, 0.0])])
    one = torch.tensor([[[[0, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]]])
    push2, pull2 = associative_embedding_loss(batch_tags, torch.cat([indices, one]))
    assert push2.item() == pytest.approx(expected_push / 2, rel=1e-6) and pull2.item() == pytest.approx(1 / 6)


def test_ae_loss_max_push_hand_computed_and_its_gradient_at_equal_tags() -> None:
    # people: tag 0.0 (index 0), tag 0.5 (index 1), tags 2 and 4 (mean 3); max push: only the pair 0/0.5 is
    # closer than 1 → 1/(2·3·2) · 2·(1 - 0.5)
    tags = tag_batch([0.0, 0.5, 2.0, 4.0])
    indices = torch.tensor([[[[0, 1], [0, 0]], [[1, 1], [0, 0]], [[2, 1], [3, 1]]]])
    push, pull = associative_embedding_loss(tags, indices, push_kind="max")
    assert push.item() == pytest.approx(1 / 12) and pull.item() == pytest.approx(1 / 3)
    # two people with nearly equal tags (0 and 0.01): push = f(0.01)/2; d push/d t_0 is -f'(d)/2
    for kind, expected in (("max", 0.5), ("exp", 0.01 * math.exp(-1e-4))):
        near = torch.tensor([0.0, 0.01, 0.0, 0.0]).reshape(1, 2, 1, 2).requires_grad_()
        two = torch.tensor([[[[0, 1], [0, 0]], [[1, 1], [0, 0]]]])
        associative_embedding_loss(near, two, push_kind=kind)[0].backward()
        assert near.grad.flatten()[0].item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="push_kind"):
        associative_embedding_loss(tags, indices, push_kind="linear")


def test_ae_loss_without_people_is_zero_with_gradient() -> None:
    tags = torch.zeros(2, 2, 3, 3, requires_grad=True)
    push, pull = associative_embedding_loss(tags, torch.zeros(2, 4, 2, 2, dtype=torch.long))
    assert push.item() == 0 and pull.item() == 0
    (push + pull).backward()
    assert tags.grad is not None


def test_masked_heatmap_mse_ignores_masked_pixels() -> None:
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.ones(1, 2, 2, 2)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert masked_heatmap_mse(pred, target, mask).item() == pytest.approx(2 / 8)
    with pytest.raises(ValueError, match="masks"):
        masked_heatmap_mse(pred, target, mask[0])


def test_bottomup_loss_weights_terms() -> None:
    k = 2
    loss = BottomUpLoss(
        k, with_heatmaps=[True, True], with_tags=[True, False], push_weight=0.01, pull_weight=0.1
    )
    quarter = torch.zeros(1, 2 * k, 1, 2)
    quarter[0, k:] = torch.tensor([1.0, 2.0, 3.0, 9.0]).reshape(2, 1, 2)
    half = torch.zeros(1, k, 2, 4)
    heatmaps = [torch.ones(1, k, 1, 2), torch.ones(1, k, 2, 4)]
    masks = [torch.ones(1, 1, 2), torch.zeros(1, 2, 4)]
    indices = torch.tensor([[[[0, 1], [1, 1]], [[2, 1], [3, 0]]]])
    terms = loss([quarter, half], {"heatmaps": heatmaps, "masks": masks, "keypoint_indices": indices})
    assert terms["heatmap_0"].item() == pytest.approx(1.0) and terms["heatmap_1"].item() == 0
    assert terms["pull"].item() == pytest.approx(0.1 * 0.125)
    assert terms["push"].item() == pytest.approx(0.01 * 0.5 * math.exp(-2.25), rel=1e-6)
    assert terms["loss"].item() == pytest.approx(1.0 + 0.0125 + 0.005 * math.exp(-2.25), rel=1e-6)


@pytest.fixture(scope="module")
def tiny_backbone() -> TimmBackbone:
    return TimmBackbone("hrnet_w18_small", out_index=1, feature_location="")


def test_higherhrnet_head_outputs_quarter_and_half(tiny_backbone: TimmBackbone) -> None:
    net = PoseNet(tiny_backbone, HigherHRNetHead, out_channels=[34, 17])
    out = net(torch.zeros(2, 3, 128, 128))
    assert [tuple(o.shape) for o in out] == [(2, 34, 32, 32), (2, 17, 64, 64)]
    sum(o.sum() for o in out).backward()  # every head parameter receives a gradient
    assert all(p.grad is not None for p in net.head.parameters())


def test_simple_bottomup_head_outputs_quarter_only(tiny_backbone: TimmBackbone) -> None:
    net = PoseNet(tiny_backbone, SimpleBottomUpHead, out_channels=[28])
    out = net(torch.zeros(1, 3, 128, 128))
    assert [tuple(o.shape) for o in out] == [(1, 28, 32, 32)]
