"""Backbones, heads and the loss: output shapes, strides, weight loading, and the loss formula."""

import pytest
import torch

from aidpose.models import ConvHead, DeconvHead, KeypointMSELoss, PoseNet, TimmBackbone


@pytest.mark.parametrize(
    ("name", "out_index", "feature_location", "head", "channels"),
    [
        ("resnet18", 4, None, DeconvHead, 512),
        ("hrnet_w18_small", 1, "", ConvHead, 16),
    ],
)
def test_pose_net_outputs_quarter_resolution_heatmaps(name, out_index, feature_location, head, channels):
    backbone = TimmBackbone(name, out_index=out_index, feature_location=feature_location)
    assert backbone.out_channels == channels
    net = PoseNet(backbone, head, out_channels=17).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 128, 96))
    assert out.shape == (2, 17, 32, 24)


def test_deconv_head_upsamples_8x():
    head = DeconvHead(in_channels=8, out_channels=5, num_deconv_layers=3, deconv_channels=4)
    assert head(torch.zeros(1, 8, 2, 3)).shape == (1, 5, 16, 24)


def test_local_weights_are_loaded(tmp_path):
    source = TimmBackbone("resnet18", out_index=4)
    path = tmp_path / "resnet18.pth"
    torch.save(source.body.state_dict(), path)
    loaded = TimmBackbone("resnet18", out_index=4, weights=str(path))
    for (k, a), b in zip(source.body.state_dict().items(), loaded.body.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_missing_or_foreign_weights_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"backbone\.weights"):
        TimmBackbone("resnet18", out_index=4, weights=str(tmp_path / "nope.pth"))
    path = tmp_path / "foreign.pth"
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match=r"none of its 1 tensors match"):
        TimmBackbone("resnet18", out_index=4, weights=str(path))


def test_mse_loss_with_target_weight():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.ones(1, 2, 2, 2)
    weight = torch.tensor([[1.0, 0.0]])
    # joint 0: squared error 1 on 4 pixels, joint 1 masked → 0.5 * mean over 8 values = 0.5 * 4/8
    targets = {"heatmaps": target, "keypoint_weights": weight}  # the names UDPHeatmapCodec.encode gives them
    assert KeypointMSELoss()(pred, targets)["loss"].item() == pytest.approx(0.25)
    assert KeypointMSELoss(use_target_weight=False)(pred, targets)["loss"].item() == pytest.approx(0.5)


def test_parameters_that_cannot_reach_the_head_are_frozen():
    # HRNet's last fusion layers of the low-resolution branches never get a gradient (DDP rejects them)
    hrnet = TimmBackbone("hrnet_w18_small", out_index=1, feature_location="")
    frozen = [n for n, p in hrnet.named_parameters() if not p.requires_grad]
    assert frozen and all("stage4" in n for n in frozen)
    hrnet(torch.zeros(1, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None for p in hrnet.parameters() if p.requires_grad)
    assert all(p.requires_grad for p in TimmBackbone("resnet18", out_index=4).parameters())


@pytest.mark.parametrize("option", ["resnet18", "resnet50", "hrnet_w18_small", "hrnet_w32", "hrnet_w48"])
def test_every_backbone_config_builds_a_pose_net(option, tmp_path):
    from hydra.utils import instantiate

    from tests.helpers import compose_config

    cfg = compose_config([f"backbone={option}"], tmp_path)
    net = PoseNet(instantiate(cfg.backbone), instantiate(cfg.head), out_channels=17).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 17, 16, 16)


def test_pretrained_without_a_hub_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match=r"backbone\.weights=PATH"):
        TimmBackbone("resnet18", out_index=4, pretrained=True)
